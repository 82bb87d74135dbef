// Read statements of the workspace (lists, search, reference data) as small
// pure functions: options in, a Statement (`$n` placeholders) out, run with
// uow.query(statement) inside the tenant's transaction. Table names are unqualified: the
// unit of work's search_path is the tenant schema, and its role can reach
// nothing else. Every value is a parameter; every identifier is our constant.
//
// Why SQL here and not MikroORM: a list is read-only, and hydrating entities
// was the largest per-request cost of GET /api/v1/notes, whose server is bound
// by its one event loop (the measurements: docs/BENCHMARKS.md, "HTTP stack").
// SQL also lets a list select only what it shows (an excerpt, not a
// 100,000-character body; never the `search` tsvector) and read sort keys to
// the microsecond for cursors.
// Writes stay with the entities (version column, change sets).
import type { Statement } from '../../kernel/db.ts';
import { after, type KeysetSort, keyText, orderBy } from './pagination.ts';

const ISO_MS = `'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'`;
const iso = (column: string) => `to_char(${column} AT TIME ZONE 'UTC', ${ISO_MS})`;

/** How much of a body a list reads for its excerpt. */
export const EXCERPT_SOURCE_CHARS = 400;

export interface NoteSummaryRow {
  id: string | number;
  title: string;
  excerpt_source: string;
  tags: string[];
  version: number;
  created_at: string;
  updated_at: string;
  sort_key: string | null;
}

export function listNotes(options: {
  sort: KeysetSort;
  cursor?: { key: string | null; id: number };
  tag?: string;
  limit: number;
}): Statement {
  const where = after(options.sort, options.cursor);
  const values = [...where.params];
  let tagFilter = '';
  if (options.tag !== undefined) {
    values.push(options.tag);
    // @> (not = ANY) so that the GIN index on tags serves it.
    tagFilter = ` AND tags @> ARRAY[$${values.length}]::text[]`;
  }
  values.push(options.limit);
  return {
    text: `SELECT id, title, left(body, ${EXCERPT_SOURCE_CHARS}) AS excerpt_source, tags, version,
                  ${iso('created_at')} AS created_at, ${iso('updated_at')} AS updated_at,
                  ${keyText(options.sort)} AS sort_key
             FROM notes
            WHERE ${where.sql}${tagFilter}
            ORDER BY ${orderBy(options.sort, 'notes')}
            LIMIT $${values.length}`,
    values,
  };
}

export interface TaskRow {
  id: string | number;
  title: string;
  status: 'open' | 'doing' | 'done';
  due_date: string | null;
  note_id: string | number | null;
  version: number;
  created_at: string;
  updated_at: string;
  sort_key: string | null;
}

export function listTasks(options: {
  sort: KeysetSort;
  cursor?: { key: string | null; id: number };
  status?: string;
  limit: number;
}): Statement {
  const where = after(options.sort, options.cursor);
  const values = [...where.params];
  let statusFilter = '';
  if (options.status !== undefined) {
    values.push(options.status);
    statusFilter = ` AND status = $${values.length}`;
  }
  values.push(options.limit);
  return {
    text: `SELECT id, title, status, to_char(due_date, 'YYYY-MM-DD') AS due_date, note_id, version,
                  ${iso('created_at')} AS created_at, ${iso('updated_at')} AS updated_at,
                  ${keyText(options.sort)} AS sort_key
             FROM tasks
            WHERE ${where.sql}${statusFilter}
            ORDER BY ${orderBy(options.sort, 'tasks')}
            LIMIT $${values.length}`,
    values,
  };
}

// Highlight marks for search snippets: two private-use characters, removed
// from the body first, so the page can split on them and escape everything.
export const MARK_START = '\uE000';
export const MARK_END = '\uE001';
/** Only the start of a long body is scanned for a snippet: ts_headline re-parses the text it is given. */
export const SNIPPET_SOURCE_CHARS = 20_000;

export interface SearchRow {
  id: string | number;
  title: string;
  tags: string[];
  version: number;
  updated_at: string;
  rank: number | string;
  sort_key: string;
  snippet: string;
}

/**
 * Notes matching `q` (web-search syntax: words, "phrases", -not, or), best
 * first. The rank is ts_rank_cd over the weighted `search` column (title A,
 * body B), normalised into [0, 1), plus 1 when the title itself matches: a
 * title hit always ranks above a body-only hit, however often the body
 * repeats the word. The snippet is made only for the page of results.
 */
export function searchNotes(options: {
  q: string;
  sort: KeysetSort;
  cursor?: { key: string | null; id: number };
  limit: number;
}): Statement {
  // $1 is the query; the cursor's condition follows, then the limit and the headline's two values.
  const where = after(options.sort, options.cursor, 2);
  const n = 2 + where.params.length;
  const headline = `StartSel=${MARK_START}, StopSel=${MARK_END}, MaxWords=30, MinWords=12, MaxFragments=2, FragmentDelimiter=" … "`;
  return {
    text: `WITH q AS (SELECT websearch_to_tsquery('simple', $1) AS query),
            ranked AS (
              SELECT n.id, n.title, n.tags, n.version, n.updated_at, n.body,
                     ((ts_filter(n.search, '{a}') @@ q.query)::int + ts_rank_cd(n.search, q.query, 32))::float8 AS rank
                FROM notes n, q
               WHERE n.search @@ q.query
            ),
            hits AS (
              SELECT * FROM ranked
               WHERE ${where.sql}
               ORDER BY ${orderBy(options.sort)}
               LIMIT $${n}
            )
         SELECT hits.id, hits.title, hits.tags, hits.version, ${iso('hits.updated_at')} AS updated_at,
                hits.rank, ${keyText(options.sort)} AS sort_key,
                ts_headline('simple', translate(left(hits.body, ${SNIPPET_SOURCE_CHARS}), $${n + 1}, ''), q.query, $${n + 2}) AS snippet
           FROM hits, q
          ORDER BY ${orderBy(options.sort)}`,
    values: [options.q, ...where.params, options.limit, MARK_START + MARK_END, headline],
  };
}

/**
 * Unlinks a deleted note's tasks as a change of each task (new version, new
 * updated_at), so a client holding one of them learns of it on its next save.
 */
export const unlinkTasksOfNote = (noteId: number): Statement => ({
  text: `UPDATE tasks SET note_id = NULL, version = version + 1, updated_at = now()
          WHERE note_id = $1 RETURNING id, version`,
  values: [noteId],
});

/** Stores the HTML of a note that has none yet (written before migration 0003), if it is still that version. */
export const storeMissingHtml = (noteId: number, version: number, html: string): Statement => ({
  text: 'UPDATE notes SET html = $1 WHERE id = $2 AND version = $3 AND html IS NULL',
  values: [html, noteId, version],
});

/** Locks the note against deletion until the transaction ends (a task is being linked to it). */
export const lockNoteForLink = (noteId: number): Statement => ({
  text: 'SELECT id FROM notes WHERE id = $1 FOR KEY SHARE',
  values: [noteId],
});

export const tagPalette = (): Statement => ({
  text: 'SELECT name, color FROM reference.tag_palette ORDER BY position, name',
  values: [],
});

export const taskTemplates = (): Statement => ({
  text: 'SELECT id, title, status, due_in_days FROM reference.task_templates ORDER BY id',
  values: [],
});
