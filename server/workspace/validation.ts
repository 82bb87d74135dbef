// Schemas for everything a client sends to the workspace: bodies and query
// strings. Strict objects (an unknown field is refused, not ignored, so a typo
// like `tilte` is an error rather than a silent no-op), and a size limit on
// every string and array. Unknown query parameters are refused the same way.
// Values are normalised here (trimmed titles, lower-case unique tags), so the
// services only ever see clean input.
import { z } from 'zod';
import { NotFoundError, ValidationError } from '../app-errors.ts';

export const LIMITS = {
  title: 500,
  body: 100_000,
  tags: 20,
  tag: 40,
  query: 200,
  pageSize: 100,
  defaultPageSize: 50,
  // A title key of 500 characters, JSON-escaped and base64url-encoded, fits.
  cursor: 8192,
} as const;

// PostgreSQL text cannot hold U+0000: refuse it here, as a 400, not a 500 from the database.
const noNul = (s: string) => !s.includes('\u0000');
const NUL_MESSAGE = 'must not contain the NUL character';
// JSON can carry half of a UTF-16 surrogate pair alone (`"\ud800"`), which is
// no character at all: UTF-8 cannot encode it and PostgreSQL's jsonb (the audit
// trail) refuses it. Refused here, as a 400, before anything is written.
const wellFormed = (s: string) => s.isWellFormed();
export const INVALID_CHARACTERS_MESSAGE = 'contains invalid characters (a lone UTF-16 surrogate)';

export const TAG_PATTERN = /^[a-z0-9][a-z0-9_-]*$/;

const title = z
  .string()
  .trim()
  .min(1, 'a title is required')
  .max(LIMITS.title, `at most ${LIMITS.title} characters`)
  .refine(noNul, NUL_MESSAGE)
  .refine(wellFormed, INVALID_CHARACTERS_MESSAGE);

const body = z
  .string()
  .max(LIMITS.body, `at most ${LIMITS.body} characters`)
  .refine(noNul, NUL_MESSAGE)
  .refine(wellFormed, INVALID_CHARACTERS_MESSAGE);

const tag = z
  .string()
  .trim()
  .toLowerCase()
  .min(1, 'a tag cannot be empty')
  .max(LIMITS.tag, `a tag has at most ${LIMITS.tag} characters`)
  .regex(TAG_PATTERN, 'a tag is letters a-z, digits, "-" and "_", starting with a letter or digit');

const tags = z
  .array(tag)
  .max(LIMITS.tags, `at most ${LIMITS.tags} tags`)
  .transform((list) => [...new Set(list)]);

const version = z.number().int().min(1).max(2_147_483_647);

export const TASK_STATUSES = ['open', 'doing', 'done'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];
const status = z.enum(TASK_STATUSES);

/** A calendar date `YYYY-MM-DD` that exists (no 2026-02-30), years 1900 to 9999. */
export const isoDate = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}$/, 'a date is YYYY-MM-DD')
  .refine((s) => {
    const d = new Date(`${s}T00:00:00Z`);
    const year = Number(s.slice(0, 4));
    return year >= 1900 && !Number.isNaN(d.getTime()) && d.toISOString().startsWith(s);
  }, 'not a calendar date');

const entityId = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);

export const NoteCreate = z.strictObject({ title, body: body.default(''), tags: tags.default([]) });
export type NoteCreate = z.output<typeof NoteCreate>;

export const NoteUpdate = z
  .strictObject({ version, title: title.optional(), body: body.optional(), tags: tags.optional() })
  .refine((v) => v.title !== undefined || v.body !== undefined || v.tags !== undefined, {
    message: 'nothing to change: send at least one of title, body, tags',
  });
export type NoteUpdate = z.output<typeof NoteUpdate>;

export const TaskCreate = z.strictObject({
  title,
  status: status.default('open'),
  dueDate: isoDate.nullable().default(null),
  noteId: entityId.nullable().default(null),
});
export type TaskCreate = z.output<typeof TaskCreate>;

export const TaskUpdate = z
  .strictObject({
    version,
    title: title.optional(),
    status: status.optional(),
    dueDate: isoDate.nullable().optional(),
    noteId: entityId.nullable().optional(),
  })
  .refine(
    (v) =>
      v.title !== undefined || v.status !== undefined || v.dueDate !== undefined || v.noteId !== undefined,
    { message: 'nothing to change: send at least one of title, status, dueDate, noteId' },
  );
export type TaskUpdate = z.output<typeof TaskUpdate>;

// Query strings: Express 5's simple parser gives a string, or an array when a
// key repeats (`?tag=a&tag=b`); only single values are accepted.
const pageSize = z
  .string()
  .regex(/^\d{1,3}$/, `a whole number from 1 to ${LIMITS.pageSize}`)
  .transform(Number)
  .pipe(z.number().min(1, 'at least 1').max(LIMITS.pageSize, `at most ${LIMITS.pageSize}`));
const cursor = z.string().min(1).max(LIMITS.cursor, 'not a cursor from this API');

export const NOTE_SORTS = [
  'updated_desc',
  'updated_asc',
  'created_desc',
  'created_asc',
  'title_asc',
  'title_desc',
] as const;
export type NoteSort = (typeof NOTE_SORTS)[number];
export const TASK_SORTS = [...NOTE_SORTS, 'due_asc', 'due_desc'] as const;
export type TaskSort = (typeof TASK_SORTS)[number];

export const NoteListQuery = z.strictObject({
  cursor: cursor.optional(),
  limit: pageSize.default(LIMITS.defaultPageSize),
  sort: z.enum(NOTE_SORTS).default('updated_desc'),
  tag: tag.optional(),
});
export type NoteListQuery = z.output<typeof NoteListQuery>;

export const TaskListQuery = z.strictObject({
  cursor: cursor.optional(),
  limit: pageSize.default(LIMITS.defaultPageSize),
  sort: z.enum(TASK_SORTS).default('updated_desc'),
  status: status.optional(),
});
export type TaskListQuery = z.output<typeof TaskListQuery>;

export const SearchQuery = z.strictObject({
  q: z
    .string()
    .trim()
    .min(1, 'type something to search for')
    .max(LIMITS.query, `at most ${LIMITS.query} characters`)
    .refine(noNul, NUL_MESSAGE)
    .refine(wellFormed, INVALID_CHARACTERS_MESSAGE),
  cursor: cursor.optional(),
  limit: pageSize.default(20),
});
export type SearchQuery = z.output<typeof SearchQuery>;

export const DeleteQuery = z.strictObject({
  version: z
    .string()
    .regex(/^[1-9]\d{0,9}$/, 'a version number')
    .transform(Number)
    .pipe(version)
    .optional(),
});
export type DeleteQuery = z.output<typeof DeleteQuery>;

/** Parses `input` with `schema`; a ValidationError (400) naming each problem otherwise. */
export function parse<S extends z.ZodType>(schema: S, input: unknown, what = 'request'): z.output<S> {
  const result = schema.safeParse(input ?? (what === 'query' ? {} : undefined));
  if (result.success) return result.data;
  const issues = result.error.issues.slice(0, 20).map((issue) => ({
    path: issue.path.map(String).join('.'),
    message: issueMessage(issue),
  }));
  const first = issues[0];
  const message = first
    ? `Invalid ${what}: ${first.path ? `${first.path}: ` : ''}${first.message}.`
    : `Invalid ${what}.`;
  throw new ValidationError(message, issues);
}

function issueMessage(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys')
    return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.join(', ')}`;
  if (issue.code === 'invalid_type' && /received undefined$/.test(issue.message)) return 'required';
  return issue.message;
}

const ID = /^[1-9]\d{0,15}$/;

/**
 * A resource id from a URL. Anything that is not a positive safe integer
 * (`abc`, `-1`, `1.5`, `99999999999999999999`) is "not found", exactly like
 * an id that does not exist or belongs to another workspace: a 404 tells a
 * prober nothing about which ids are valid.
 */
export function parseId(raw: unknown, what: 'note' | 'task'): number {
  const id = typeof raw === 'string' && ID.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(id)) throw notFound(what);
  return id;
}

export function notFound(what: 'note' | 'task'): NotFoundError {
  return new NotFoundError(`This ${what} does not exist in your workspace.`);
}
