// What the workspace pages show, shaped for the templates: tag chips with
// their palette class, dates as text and ISO, a task's due state and the
// moves its card offers, and the stylesheet that gives palette tags their
// colours. Pure functions: no request, no database.
import type { Request } from 'express';
import { displayTime } from '../http/render.ts';
import { field } from './page-forms.ts';

export type TaskStatus = 'open' | 'doing' | 'done';

export const STATUS_LABELS: Record<TaskStatus, string> = { open: 'Open', doing: 'Doing', done: 'Done' };
export const STATUSES = (['open', 'doing', 'done'] as const).map((value) => ({
  value,
  label: STATUS_LABELS[value],
}));

/** The buttons on a task card: every other column, worded as what happens. */
const MOVES: Record<TaskStatus, Array<{ status: TaskStatus; label: string }>> = {
  open: [
    { status: 'doing', label: 'Start' },
    { status: 'done', label: 'Mark done' },
  ],
  doing: [
    { status: 'open', label: 'Back to open' },
    { status: 'done', label: 'Mark done' },
  ],
  done: [{ status: 'open', label: 'Reopen' }],
};

export function movesOf(status: TaskStatus) {
  return MOVES[status];
}

export interface PaletteColor {
  name: string;
  color: string;
}

export interface TagChip {
  name: string;
  /** `chip-t-<name>` for a palette tag (coloured by the palette stylesheet), else `chip-plain`. */
  cls: string;
}

// Palette names are checked by the reference table (`^[a-z][a-z0-9-]{0,30}$`)
// and again here, as they become class names.
const CLASS_SAFE = /^[a-z][a-z0-9-]{0,30}$/;
const HEX_COLOR = /^#[0-9a-f]{6}$/;

export function chipsOf(tags: readonly string[], palette: ReadonlySet<string>): TagChip[] {
  return tags.map((name) => ({
    name,
    cls: palette.has(name) && CLASS_SAFE.test(name) ? `chip-t-${name}` : 'chip-plain',
  }));
}

/**
 * The palette as CSS classes. Text is black or white, whichever contrasts more
 * with the colour, so a lighter palette colour stays readable.
 */
export function paletteCss(palette: readonly PaletteColor[]): string {
  const rules = palette
    .filter((p) => CLASS_SAFE.test(p.name) && HEX_COLOR.test(p.color))
    .map((p) => {
      const text = contrastText(p.color);
      return `.chip-t-${p.name} { background: ${p.color}; border-color: ${p.color}; color: ${text}; }`;
    });
  return `/* The shared tag palette (reference data), one class per tag. */\n${rules.join('\n')}\n`;
}

function luminance(hex: string): number {
  const channel = (i: number) => {
    const c = Number.parseInt(hex.slice(i, i + 2), 16) / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5);
}

function contrastText(hex: string): string {
  const l = luminance(hex);
  // Contrast ratio with white vs with black; pick the larger.
  return 1.05 / (l + 0.05) >= (l + 0.05) / 0.05 ? '#ffffff' : '#111111';
}

export function timeOf(value: Date | string): { iso: string; label: string } {
  const date = new Date(value);
  return { iso: date.toISOString(), label: displayTime(date) };
}

const DAY = new Intl.DateTimeFormat('en-GB', {
  day: 'numeric',
  month: 'short',
  year: 'numeric',
  timeZone: 'UTC',
});

/** `YYYY-MM-DD` of a date-only value (a string from the API or a Date at UTC midnight). */
export function isoDay(value: Date | string | null | undefined): string | null {
  if (value === null || value === undefined || value === '') return null;
  if (typeof value === 'string') return value.slice(0, 10);
  return value.toISOString().slice(0, 10);
}

export function todayIso(now = new Date()): string {
  return now.toISOString().slice(0, 10);
}

/** "24 Nov 2026", and whether an unfinished task is past it (days are UTC, like every time shown). */
export function dueOf(
  dueDate: Date | string | null | undefined,
  status: TaskStatus,
  today = todayIso(),
): { iso: string; label: string; overdue: boolean } | null {
  const iso = isoDay(dueDate);
  if (!iso) return null;
  return { iso, label: DAY.format(new Date(`${iso}T00:00:00Z`)), overdue: status !== 'done' && iso < today };
}

export function addDays(iso: string, days: number): string {
  const d = new Date(`${iso}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}

// --- Forms ------------------------------------------------------------

/** Every value of a repeated form field (checkboxes), ignoring anything that is not text. */
export function fieldList(req: Request, name: string): string[] {
  const value = (req.body as Record<string, unknown> | undefined)?.[name];
  if (typeof value === 'string') return [value];
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

/** What the note editor shows: palette tags as checkboxes, the rest as one comma-separated field. */
export interface NoteFormValues {
  title: string;
  body: string;
  tags: string[];
  otherTags: string;
}

export function noteFormOf(
  note: { title: string; body: string; tags: readonly string[] },
  palette: ReadonlySet<string>,
): NoteFormValues {
  return {
    title: note.title,
    body: note.body,
    tags: note.tags.filter((t) => palette.has(t)),
    otherTags: note.tags.filter((t) => !palette.has(t)).join(', '),
  };
}

export function noteFormFrom(req: Request): NoteFormValues {
  return {
    title: field(req, 'title'),
    // Browsers send textarea line breaks as CRLF; store what was typed, with plain LF.
    body: field(req, 'body').replace(/\r\n?/g, '\n'),
    tags: fieldList(req, 'tag'),
    otherTags: field(req, 'otherTags'),
  };
}

/** The tags a note form names: ticked palette tags, then the typed ones, in order, once each. */
export function tagsOf(values: NoteFormValues): string[] {
  const typed = values.otherTags
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '');
  return [...new Set([...values.tags, ...typed])];
}

export interface TaskFormValues {
  title: string;
  status: string;
  dueDate: string;
  noteId: string;
}

export function taskFormFrom(req: Request): TaskFormValues {
  return {
    title: field(req, 'title'),
    status: field(req, 'status') || 'open',
    dueDate: field(req, 'dueDate').trim(),
    noteId: field(req, 'noteId').trim(),
  };
}

/**
 * The form's text as the service's input: an empty date or note is "none"; a
 * note id that is not a number becomes one that cannot exist (0), which the
 * service refuses like any other bad id.
 */
export function taskInputOf(values: TaskFormValues) {
  return {
    title: values.title,
    status: values.status,
    dueDate: values.dueDate === '' ? null : values.dueDate,
    noteId: values.noteId === '' ? null : /^\d{1,16}$/.test(values.noteId) ? Number(values.noteId) : 0,
  };
}

/** A hidden version field as a number; anything else becomes 0, which the service's schema refuses. */
export function versionFrom(req: Request): number {
  const raw = field(req, 'version');
  return /^\d{1,10}$/.test(raw) ? Number(raw) : 0;
}

/**
 * A Markdown excerpt made easier to read in a list: link targets, heading and
 * quote marks, task-list boxes, bold/italic/code marks and fences go; the text
 * and list dashes (which read as separators once lines are joined) stay. A
 * preview only: the note itself is rendered by the Markdown renderer.
 */
export function plainPreview(text: string, trim = true): string {
  const plain = text
    .replace(/\[([^\]\n]*)\]\([^)\s]*\)/g, '$1')
    .replace(/```+|~~~+/g, ' ')
    .replace(/(^|\s)#{1,6}(?=\s)/g, '$1')
    .replace(/(^|\s)>(?=\s)/g, '$1')
    .replace(/(^|\s)([-*+]\s+)?\[[ xX]\](?=\s)/g, '$1$2')
    .replace(/\*\*|__|`/g, '')
    .replace(/(^|[\s(])[*_](?=\S)([^*_]*?\S)[*_](?=[\s.,;:!?)]|$)/g, '$1$2')
    .replace(/\s+/g, ' ');
  return trim ? plain.trim() : plain;
}
