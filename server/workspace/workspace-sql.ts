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

/** A row of searchNotes: a hit, or (id NULL) the one row of a page with no hit; both carry the flag. */
export type SearchStatementRow = (SearchRow | { [K in keyof SearchRow]: null }) & { cut_short: boolean };

/** The bound on how many matches a search ranks (issue 14): the most recently edited ones. */
export const SEARCH_CANDIDATES = 1000;

/**
 * Notes matching `q` (web-search syntax: words, "phrases", -not, or), best
 * first. The rank is ts_rank_cd over the weighted `search` column (title A,
 * body B), normalised into [0, 1), plus 1 when the title itself matches: a
 * title hit always ranks above a body-only hit, however often the body
 * repeats the word. The snippet is made only for the page of results.
 *
 * Bounded: only the `candidates` most recently edited matches (updated_at,
 * then id, descending: a stable set while nothing is edited) are ranked. They
 * are found through the GIN index and kept by a top-N sort on two columns,
 * with no rank, title test or tsvector read for the rest; a word in every one
 * of 10,000 notes then costs what 1,000 matches cost. Every row carries
 * `cut_short`: more matches exist than were ranked. The statement always
 * returns at least one row: a page with no hit is one row of NULLs but for
 * `cut_short` (filtered out by the caller).
 */
export function searchNotes(options: {
  q: string;
  sort: KeysetSort;
  cursor?: { key: string | null; id: number };
  limit: number;
  candidates?: number;
}): Statement {
  const candidates = options.candidates ?? SEARCH_CANDIDATES;
  // $1 is the query, $2 the bound; the cursor's condition follows, then the limit and the headline's two values.
  const where = after(options.sort, options.cursor, 3);
  const n = 3 + where.params.length;
  const headline = `StartSel=${MARK_START}, StopSel=${MARK_END}, MaxWords=30, MinWords=12, MaxFragments=2, FragmentDelimiter=" … "`;
  return {
    // `matches`: the index's matches in (updated_at, id) order, one more than the bound (to
    // tell that there were more). With the query inline the planner sees its selectivity: a
    // word in most notes is read from notes_updated_idx, stopping after bound + 1 matches; a
    // rare one through the GIN index. MATERIALIZED so that the rank is computed above that
    // Limit, for the kept rows only, and only the page's hits are joined back for their columns.
    text: `WITH q AS MATERIALIZED (SELECT websearch_to_tsquery('simple', $1) AS query),
            matches AS MATERIALIZED (
              SELECT n.id, n.updated_at, n.search
                FROM notes n
               WHERE n.search @@ websearch_to_tsquery('simple', $1)
               ORDER BY n.updated_at DESC, n.id DESC
               LIMIT $2::int + 1
            ),
            flag AS (SELECT count(*) > $2::int AS cut_short FROM matches),
            ranked AS (
              SELECT c.id, ((ts_filter(c.search, '{a}') @@ q.query)::int + ts_rank_cd(c.search, q.query, 32))::float8 AS rank
                FROM (SELECT * FROM matches ORDER BY updated_at DESC, id DESC LIMIT $2::int) c, q
            ),
            hits AS (
              SELECT * FROM ranked
               WHERE ${where.sql}
               ORDER BY ${orderBy(options.sort)}
               LIMIT $${n}
            )
         SELECT n.id, n.title, n.tags, n.version, ${iso('n.updated_at')} AS updated_at,
                hits.rank, ${keyText(options.sort)} AS sort_key,
                ts_headline('simple', translate(left(n.body, ${SNIPPET_SOURCE_CHARS}), $${n + 1}, ''), q.query, $${n + 2}) AS snippet,
                flag.cut_short
           FROM flag CROSS JOIN q LEFT JOIN (hits JOIN notes n ON n.id = hits.id) ON TRUE
          ORDER BY ${orderBy(options.sort, 'hits')}`,
    values: [options.q, candidates, ...where.params, options.limit, MARK_START + MARK_END, headline],
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
