// The admin console's tenants table: every tenant with its state, size, rows,
// growth over 7 days, last activity, schema version (behind the latest?),
// drift (from its latest good backup's check), latest good backup and legal
// hold; sorted, filtered, searched and paged by keyset. The same function
// serves the page (/admin/tenants) and the API (/api/v1/admin/tenants), with
// the same query parameters. Control plane only: no tenant content.
import { z } from 'zod';
import { type Pool, run } from '../../kernel/db.ts';
import { ValidationError } from '../app-errors.ts';
import { parse } from '../workspace/validation.ts';
import * as sql from './tenant-directory-sql.ts';

export type { SortDir, SortName } from './tenant-directory-sql.ts';
export { SORTS, STATES } from './tenant-directory-sql.ts';

export const PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 200;

export interface DirectoryTenant {
  id: string;
  displayName: string;
  state: sql.TenantStateName;
  /** Bytes of its tables, indexes and TOAST at the latest statistics run; null: not measured yet. */
  totalBytes: number | null;
  rowsEstimate: number | null;
  /** Bytes gained over 7 days; null: no sample that old. */
  growthBytes: number | null;
  statsAt: Date | null;
  lastActiveAt: Date | null;
  createdAt: Date;
  schemaVersion: number;
  /** How many tenant migrations it is behind the latest (0: current). */
  behindBy: number;
  /** Differences the drift check of its latest good backup found; null: no such backup, or not checked. */
  drift: number | null;
  latestBackup: { id: string; finishedAt: Date } | null;
  legalHold: boolean;
  deletedAt: Date | null;
}

export interface DirectoryPage {
  tenants: DirectoryTenant[];
  /** The cursor of the next page; null: this is the last. */
  nextCursor: string | null;
  latestVersion: number;
}

export type DirectoryParams = Omit<sql.DirectoryQuery, 'after' | 'latestVersion'> & {
  cursor: string | null;
};

const count = (max: number, what: string) =>
  z
    .string()
    .regex(/^\d{1,6}$/, `must be a whole number of ${what} from 1 to ${max}`)
    .transform(Number)
    .refine((n) => n >= 1 && n <= max, `must be a whole number of ${what} from 1 to ${max}`);

const flag = z.enum(['0', '1']).transform((v) => v === '1');

/** The query parameters, for the page and the API alike (an unknown one is a 400). */
export const DirectoryQuerySchema = z.strictObject({
  state: z.enum(sql.STATES).optional(),
  inactiveDays: count(36_500, 'days').optional(),
  noBackupHours: count(876_000, 'hours').optional(),
  behind: flag.optional(),
  drift: flag.optional(),
  q: z
    .string()
    .trim()
    .max(200, 'at most 200 characters')
    .refine((s) => !s.includes('\u0000') && s.isWellFormed(), 'contains invalid characters')
    .optional(),
  sort: z.enum(sql.SORTS).optional(),
  dir: z.enum(['asc', 'desc']).optional(),
  cursor: z.string().max(1000).optional(),
  limit: count(MAX_PAGE_SIZE, 'rows').optional(),
});

/** The default direction of each sort: names A to Z, the biggest and fastest-growing first, the most recently active first, the oldest backup first. */
export const DEFAULT_DIR: Record<sql.SortName, sql.SortDir> = {
  name: 'asc',
  size: 'desc',
  growth: 'desc',
  activity: 'desc',
  backup: 'desc',
};

/** Parses the query (ValidationError on anything wrong); `extra` names parameters the caller handles itself. */
export function parseDirectoryQuery(query: unknown): DirectoryParams {
  const raw = { ...(query as Record<string, unknown>) };
  for (const k of Object.keys(raw)) if (raw[k] === '') delete raw[k]; // an empty form field is "not set"
  const q = parse(DirectoryQuerySchema, raw, 'query');
  const sort = q.sort ?? 'name';
  return {
    state: q.state ?? null,
    inactiveDays: q.inactiveDays ?? null,
    noBackupHours: q.noBackupHours ?? null,
    behind: q.behind ?? false,
    drift: q.drift ?? false,
    q: q.q ? q.q : null,
    sort,
    dir: q.dir ?? DEFAULT_DIR[sort],
    cursor: q.cursor ?? null,
    limit: q.limit ?? PAGE_SIZE,
  };
}

/** The query parameters that reproduce `p` (without the cursor), for links. */
export function directoryParams(p: DirectoryParams): Record<string, string> {
  const out: Record<string, string> = {};
  if (p.state) out.state = p.state;
  if (p.inactiveDays !== null) out.inactiveDays = String(p.inactiveDays);
  if (p.noBackupHours !== null) out.noBackupHours = String(p.noBackupHours);
  if (p.behind) out.behind = '1';
  if (p.drift) out.drift = '1';
  if (p.q) out.q = p.q;
  if (p.sort !== 'name') out.sort = p.sort;
  if (p.dir !== DEFAULT_DIR[p.sort]) out.dir = p.dir;
  if (p.limit !== PAGE_SIZE) out.limit = String(p.limit);
  return out;
}

// --- the cursor: opaque base64url of the sort, its direction, the last key and id ---

interface CursorBody {
  s: sql.SortName;
  d: sql.SortDir;
  k: string;
  i: string;
}

export function encodeCursor(c: CursorBody): string {
  return Buffer.from(JSON.stringify(c)).toString('base64url');
}

const badCursor = () =>
  new ValidationError('Invalid query: cursor: not a cursor of this list (start again from the first page).', [
    { path: 'cursor', message: 'not a cursor of this list' },
  ]);

export function decodeCursor(raw: string, sort: sql.SortName, dir: sql.SortDir): { key: string; id: string } {
  let c: unknown;
  try {
    if (!/^[A-Za-z0-9_-]+$/.test(raw)) throw badCursor();
    c = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
  } catch {
    throw badCursor();
  }
  const body = c as Partial<CursorBody>;
  if (
    !c ||
    typeof c !== 'object' ||
    body.s !== sort ||
    body.d !== dir ||
    typeof body.k !== 'string' ||
    body.k.length > 600 ||
    typeof body.i !== 'string' ||
    !/^[a-z0-9]{12}$/.test(body.i) ||
    !validKey(sort, body.k)
  )
    throw badCursor();
  return { key: body.k, id: body.i };
}

/** A key PostgreSQL will accept for the sort's type (else the cast would be a 500, not a 400). */
function validKey(sort: sql.SortName, key: string): boolean {
  if (sort === 'name') return !key.includes('\u0000') && key.isWellFormed();
  if (sort === 'size' || sort === 'growth') return /^-?\d{1,19}$/.test(key);
  return (
    key === '-infinity' || key === 'infinity' || /^\d{4}-\d\d-\d\d[ T][\d:.]+([+-]\d\d(:\d\d)?|Z)?$/.test(key)
  );
}

// --- the query ---------------------------------------------------------------------------

const num = (v: number | string | null) => (v === null ? null : Number(v));

/** One page of the table. */
export async function tenantDirectory(
  pool: Pool,
  params: DirectoryParams,
  latestVersion: number,
): Promise<DirectoryPage> {
  const after = params.cursor ? decodeCursor(params.cursor, params.sort, params.dir) : null;
  const { cursor: _, ...rest } = params;
  const { rows } = await run<sql.DirectoryRow>(
    pool,
    sql.directoryPage({ ...rest, after, latestVersion, limit: params.limit + 1 }),
  );
  const more = rows.length > params.limit;
  const page = more ? rows.slice(0, params.limit) : rows;
  const last = page.at(-1);
  return {
    tenants: page.map((r) => ({
      id: r.id,
      displayName: r.display_name,
      state: r.state,
      totalBytes: num(r.total_bytes),
      rowsEstimate: num(r.rows_estimate),
      growthBytes: num(r.growth_bytes),
      statsAt: r.sampled_at,
      lastActiveAt: r.last_active_at,
      createdAt: r.created_at,
      schemaVersion: r.schema_version,
      behindBy: Math.max(0, latestVersion - r.schema_version),
      drift: r.backup_drift,
      latestBackup: r.backup_id && r.backup_at ? { id: r.backup_id, finishedAt: r.backup_at } : null,
      legalHold: r.legal_hold,
      deletedAt: r.deleted_at,
    })),
    nextCursor:
      more && last ? encodeCursor({ s: params.sort, d: params.dir, k: last.sort_key, i: last.id }) : null,
    latestVersion,
  };
}

/** A tenant as JSON (times as ISO strings). */
export function tenantJson(t: DirectoryTenant) {
  return {
    ...t,
    statsAt: t.statsAt?.toISOString() ?? null,
    lastActiveAt: t.lastActiveAt?.toISOString() ?? null,
    createdAt: t.createdAt.toISOString(),
    latestBackup: t.latestBackup
      ? { id: t.latestBackup.id, finishedAt: t.latestBackup.finishedAt.toISOString() }
      : null,
    deletedAt: t.deletedAt?.toISOString() ?? null,
  };
}
