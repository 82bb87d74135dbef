// Keyset pagination: a page is "the next N rows after (sort key, id)", never
// "skip N rows". A row inserted while someone pages through a list therefore
// cannot shift the rows they have not seen yet (an OFFSET would repeat or skip
// one), and a page deep in a long list costs what the first one does.
//
// The cursor is opaque to clients: base64url of [sort name, key, id]. It is
// bound to its sort order (a cursor from another order is refused) and carries
// the key exactly as PostgreSQL wrote it as text (timestamps to the
// microsecond, which a JS Date would round to the millisecond and so lose
// rows that share a millisecond). Its values only ever reach SQL as parameters;
// a tampered cursor can only move the reader within their own workspace.
import { InvalidInputError } from '../../kernel/errors.ts';
import { LIMITS } from './validation.ts';

export type KeyType = 'timestamp' | 'date' | 'text' | 'number';

export interface KeysetSort {
  /** The public name, e.g. `updated_desc`: a cursor is valid only for the sort it came from. */
  readonly name: string;
  /** A column or output name of our own (a constant, never user input). */
  readonly column: string;
  readonly type: KeyType;
  readonly direction: 'asc' | 'desc';
  /** NULL keys sort last in either direction (a task with no due date comes after every dated one). */
  readonly nullable?: boolean;
}

export interface Cursor {
  readonly key: string | null;
  readonly id: number;
}

const CAST: Record<KeyType, string> = {
  timestamp: 'timestamptz',
  date: 'date',
  text: 'text',
  number: 'float8',
};

// Canonical text forms, independent of the session's DateStyle and TimeZone,
// and values PostgreSQL accepts: a tampered cursor must be a 400 here, never
// reach the database as `2026-13-45` or `1e400` and come back as a 500.
const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.\d{6}Z$/;
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const NUMBER = /^-?\d{1,20}(\.\d{1,20})?(e[-+]?\d{1,3})?$/i;

/** A day that exists in the calendar (no 2026-02-30), years 1 to 9999. */
function isCalendarDay(year: number, month: number, day: number): boolean {
  if (year < 1 || month < 1 || month > 12 || day < 1) return false;
  const d = new Date(0);
  d.setUTCFullYear(year, month - 1, day);
  return d.getUTCFullYear() === year && d.getUTCMonth() === month - 1 && d.getUTCDate() === day;
}

// float8 refuses what overflows or underflows it ("out of range"): keep well
// inside, and a text that reads as 0 must be a zero, not 1e-400 rounded to it.
const ZERO = /^-?0+(\.0+)?(e[-+]?\d+)?$/i;
const isSafeFloat = (text: string) => {
  const n = Number(text);
  if (n === 0) return ZERO.test(text);
  return Number.isFinite(n) && Math.abs(n) >= 1e-300 && Math.abs(n) <= 1e300;
};

const KEY_FORMAT: Record<KeyType, (key: string) => boolean> = {
  timestamp: (k) => {
    const m = TIMESTAMP.exec(k);
    if (!m) return false;
    const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number) as [
      number,
      number,
      number,
      number,
      number,
      number,
    ];
    return isCalendarDay(y, mo, d) && h <= 23 && mi <= 59 && s <= 59;
  },
  date: (k) => {
    const m = DATE.exec(k);
    return m !== null && isCalendarDay(Number(m[1]), Number(m[2]), Number(m[3]));
  },
  // A title: at most 500 characters; PostgreSQL text never holds NUL, and
  // UTF-8 cannot carry a lone surrogate.
  text: (k) => k.length <= 600 && !k.includes('\u0000') && k.isWellFormed(),
  number: (k) => NUMBER.test(k) && isSafeFloat(k),
};

/** The SQL that reads a sort key as the text a cursor carries. */
export function keyText(sort: KeysetSort): string {
  switch (sort.type) {
    case 'timestamp':
      return `to_char(${sort.column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
    case 'date':
      return `to_char(${sort.column}, 'YYYY-MM-DD')`;
    case 'number':
      return `${sort.column}::text`;
    default:
      return sort.column;
  }
}

/**
 * The ORDER BY of a sort. `table` qualifies the columns: a list that also
 * selects a column under its own name as text (`to_char(updated_at ...) AS
 * updated_at`) must name the table, or PostgreSQL sorts by that output text
 * (a bare name in ORDER BY means the output column first). Sorting by text
 * to the millisecond, while the cursor compares microseconds, skipped rows at
 * page edges and kept the index from serving the sort (docs/BENCHMARKS.md,
 * "Workspace").
 */
export function orderBy(sort: KeysetSort, table?: string): string {
  const dir = sort.direction === 'asc' ? 'ASC' : 'DESC';
  const at = table ? `${table}.` : '';
  // Non-nullable sorts keep PostgreSQL's default null order, so an index like
  // (updated_at DESC, id DESC) serves the ORDER BY as it is.
  const nulls = sort.nullable ? ' NULLS LAST' : '';
  return `${at}${sort.column} ${dir}${nulls}, ${at}id ${dir}`;
}

/**
 * The condition "comes after the cursor" in this sort (`$n` placeholders
 * numbered from `first`, values in order). With no cursor, no condition.
 */
export function after(
  sort: KeysetSort,
  cursor: Cursor | undefined,
  first = 1,
): { sql: string; params: unknown[] } {
  if (!cursor) return { sql: 'TRUE', params: [] };
  const op = sort.direction === 'asc' ? '>' : '<';
  const cast = CAST[sort.type];
  if (cursor.key === null) {
    // Past the last non-null key: only NULL keys remain, in id order.
    return { sql: `(${sort.column} IS NULL AND id ${op} $${first})`, params: [cursor.id] };
  }
  const compare = `(${sort.column}, id) ${op} ($${first}::${cast}, $${first + 1}::bigint)`;
  return {
    sql: sort.nullable ? `(${compare} OR ${sort.column} IS NULL)` : compare,
    params: [cursor.key, cursor.id],
  };
}

export function encodeCursor(sort: KeysetSort, key: string | null, id: number): string {
  return Buffer.from(JSON.stringify([sort.name, key, id]), 'utf8').toString('base64url');
}

/** The cursor's position, checked against the sort it must belong to; InvalidInputError (400) otherwise. */
export function decodeCursor(raw: string, sort: KeysetSort): Cursor {
  const bad = () => new InvalidInputError('This cursor is not valid: start again from the first page.');
  if (raw.length > LIMITS.cursor || !/^[A-Za-z0-9_-]+$/.test(raw)) throw bad();
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
  } catch {
    throw bad();
  }
  if (!Array.isArray(value) || value.length !== 3) throw bad();
  const [name, key, id] = value as [unknown, unknown, unknown];
  if (typeof name !== 'string') throw bad();
  if (name !== sort.name) {
    throw new InvalidInputError(
      'This cursor belongs to another sort order: start again from the first page.',
    );
  }
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 1) throw bad();
  if (key === null) {
    if (!sort.nullable) throw bad();
    return { key: null, id };
  }
  if (typeof key !== 'string' || !KEY_FORMAT[sort.type](key)) throw bad();
  return { key, id };
}

/**
 * Takes a page from rows fetched with `limit + 1`: the extra row only tells
 * that there is a next page, whose cursor is the last row shown.
 */
export function page<R extends { id: number; sortKey: string | null }>(
  rows: R[],
  limit: number,
  sort: KeysetSort,
): { rows: R[]; nextCursor: string | null } {
  if (rows.length <= limit) return { rows, nextCursor: null };
  const shown = rows.slice(0, limit);
  const last = shown[shown.length - 1] as R;
  return { rows: shown, nextCursor: encodeCursor(sort, last.sortKey, last.id) };
}
