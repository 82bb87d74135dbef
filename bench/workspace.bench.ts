// Workspace benchmark: list, search and update latency in a workspace of
// 10,000 notes while 1,000 other tenants exist, through the whole HTTP stack
// (session cookie, CSRF, unit of work, audit) of a real Enclave server.
//
//   node bench/workspace.bench.ts [--tenants 1000] [--notes 10000] [--fill-concurrency 4]
//     [--connections 1,10] [--duration 10] [--warmup 2] [--rounds 2] [--deep-page 100]
//     [--patch-notes 1000] [--pool-size 10] [--variants list-first,...,patch]
// Every option can also be set as BENCH_<NAME> (BENCH_ROUNDS=1...). --rounds 0
// sets everything up, checks the answers and prints the query plans only.
// BENCH_DATABASE_URL: an admin URL that may create databases and roles
// (default postgres://postgres@127.0.0.1:5432/postgres); BENCH_REDIS_URL
// (default redis://127.0.0.1:6379).
//
// Steps: a scratch database (test/helpers/database.ts, dropped at the end with
// every tenant role, also on failure or Ctrl-C); `--tenants` empty tenants
// provisioned with provisionTenant(), a few at a time; an Enclave server in a
// child process; a person registered through POST /api/v1/auth/register (their
// workspace is one more tenant); `--notes` notes written straight into that
// workspace's schema as the superuser (bench/workspace-content.ts: varied
// titles, Markdown bodies, tags), then VACUUM ANALYZE; cursors for the deep
// pages found by following nextCursor through the API. Then every variant runs
// through the API with the session cookie (and the CSRF header for PATCH), at
// each concurrency, for `--rounds` rounds, driven by bench/http-load.ts in a
// child process of its own. Before measuring, every answer is checked, and the
// plan of each read's SQL is taken with EXPLAIN ANALYZE as the tenant role.
// Results: bench/results/workspace-<time>.json and docs/BENCHMARKS.md.

import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import type { Statement } from '../kernel/db.ts';
import { ident } from '../kernel/identifiers.ts';
import { NOTE_SORT_SPECS } from '../server/workspace/notes.ts';
import { decodeCursor, type KeysetSort } from '../server/workspace/pagination.ts';
import { NoteListQuery, parse, SearchQuery } from '../server/workspace/validation.ts';
import * as workspaceSql from '../server/workspace/workspace-sql.ts';
import { provisionTenant } from '../tenancy/provision.ts';
import { loadTenantMigrations } from '../tenancy/templates.ts';
import { createBenchDatabase, type ScratchDatabase } from '../test/helpers/database.ts';
import { api, type Registered, registerPerson, signOut } from './api-client.ts';
import { Child } from './children.ts';
import { cpuBetween, snapshot } from './cpu.ts';
import { type LoadPlan, type LoadReply, type LoadRequest, type LoadResult, serveLoad } from './http-load.ts';
import { saveResults } from './results.ts';
import { beginRun, benchUrls, cleanUp, machine, optionReader, runBench } from './run.ts';
import { noteContent, PLANTED } from './workspace-content.ts';

const THIS_FILE = fileURLToPath(import.meta.url);
const log = (line: string) => process.stderr.write(`${line}\n`);
process.stderr.on('error', () => {});
process.stdout.on('error', () => {});
const round = (n: number, digits = 2) => Number(n.toFixed(digits));

// --- what is measured -------------------------------------------------------

/** What setup found out, which some variants' paths need. */
interface Setup {
  ws: Registered;
  /** Cursor of page `--deep-page` of the default list (newest edit first). */
  deepCursor: string;
  /** The same page in title order. */
  titleDeepCursor: string;
  firstId: number;
  notes: number;
  /** The PATCH edits notes 1..patchNotes in turn. */
  patchNotes: number;
}

interface Variant {
  name: string;
  what: string;
  /** GET path, or undefined for the PATCH. */
  path?: (s: Setup) => string;
  /** An index the schema lacks: the plan is also taken with it, made in a transaction rolled back. */
  whatIfIndex?: string;
}

const VARIANTS: readonly Variant[] = [
  {
    name: 'list-first',
    what: 'GET /api/v1/notes: first page, 50 notes, newest edit first',
    path: () => '/api/v1/notes',
  },
  {
    name: 'list-deep',
    what: 'GET /api/v1/notes?cursor=: page --deep-page (default 100) of the same list',
    path: (s) => `/api/v1/notes?cursor=${s.deepCursor}`,
  },
  {
    name: 'list-tag-common',
    what: `GET /api/v1/notes?tag=${PLANTED.commonTag}: a tag on about 30% of the notes`,
    path: () => `/api/v1/notes?tag=${PLANTED.commonTag}`,
  },
  {
    name: 'list-tag-rare',
    what: `GET /api/v1/notes?tag=${PLANTED.rareTag}: a tag on 25 notes`,
    path: () => `/api/v1/notes?tag=${PLANTED.rareTag}`,
  },
  {
    name: 'list-title-deep',
    what: 'GET /api/v1/notes?sort=title_asc&cursor=: the deep page in title order',
    path: (s) => `/api/v1/notes?sort=title_asc&cursor=${s.titleDeepCursor}`,
    whatIfIndex: 'CREATE INDEX notes_title_idx ON {{table}} (title, id)',
  },
  {
    name: 'search-rare',
    what: `GET /api/v1/search?q=${PLANTED.rareWord}: 10 matching notes`,
    path: () => `/api/v1/search?q=${PLANTED.rareWord}`,
  },
  {
    name: 'search-common',
    what: `GET /api/v1/search?q=${PLANTED.commonWord}: a word in about half of the notes; first 20 hits`,
    path: () => `/api/v1/search?q=${PLANTED.commonWord}`,
  },
  {
    name: 'search-everywhere',
    what: `GET /api/v1/search?q=${PLANTED.everywhereWord}: a word in nearly every note; first 20 hits`,
    path: () => `/api/v1/search?q=${PLANTED.everywhereWord}`,
  },
  {
    name: 'patch',
    what: 'PATCH /api/v1/notes/:id {version, body}: a new body (~1 KB) for the next of the first --patch-notes notes each time, based on the version of the previous answer',
  },
];

// --- options ----------------------------------------------------------------

const OPTIONS = {
  tenants: '1000',
  notes: '10000',
  'fill-concurrency': '4',
  connections: '1,10',
  duration: '10',
  warmup: '2',
  rounds: '2',
  'deep-page': '100',
  'patch-notes': '1000',
  'pool-size': '10',
  variants: VARIANTS.map((v) => v.name).join(','),
};
type OptionName = keyof typeof OPTIONS;

function readOptions(values: Partial<Record<OptionName, string>>) {
  const { raw, int } = optionReader(OPTIONS, values);
  const connections = raw('connections')
    .split(',')
    .map((s) => Number(s.trim()));
  if (connections.some((c) => !Number.isInteger(c) || c < 1)) throw new Error('--connections: e.g. 1,10');
  const variants = raw('variants')
    .split(',')
    .map((name) => {
      const v = VARIANTS.find((x) => x.name === name.trim());
      if (!v)
        throw new Error(`--variants: unknown "${name}" (known: ${VARIANTS.map((x) => x.name).join(', ')})`);
      return v;
    });
  const opts = {
    ...benchUrls(),
    tenants: int('tenants', 0),
    notes: int('notes', 2),
    fillConcurrency: int('fill-concurrency', 1),
    connections,
    duration: int('duration', 1),
    warmup: int('warmup', 0),
    rounds: int('rounds', 0),
    deepPage: int('deep-page', 2),
    patchNotes: int('patch-notes', 1),
    poolSize: int('pool-size', 1),
    variants,
  };
  // The deep page must exist, with one note to spare for the PATCH check.
  if (opts.deepPage * 50 >= opts.notes) throw new Error('--deep-page times 50 must be below --notes');
  return opts;
}
type Options = ReturnType<typeof readOptions>;

// --- setup ------------------------------------------------------------------

/** `count` empty tenants, `concurrency` provisionings at a time (each one transaction, as in production). */
async function fillTenants(
  scratch: ScratchDatabase,
  count: number,
  concurrency: number,
  signal: AbortSignal,
) {
  const migrations = loadTenantMigrations();
  const started = performance.now();
  let begun = 0;
  let created = 0;
  let failure: unknown;
  const worker = async () => {
    while (begun < count && failure === undefined && !signal.aborted) {
      begun++;
      try {
        const row = await provisionTenant(scratch.pool, { displayName: 'bench other tenant' }, migrations);
        scratch.roles.add(row.role_name);
      } catch (err) {
        failure ??= err;
        return;
      }
      if (++created % 250 === 0) log(`  ${created}/${count} tenants`);
    }
  };
  // Every worker has stopped before an error goes up, so cleanup never races a provisioning.
  await Promise.all(Array.from({ length: concurrency }, worker));
  if (failure !== undefined) throw failure;
  signal.throwIfAborted();
  return round((performance.now() - started) / 1000, 1);
}

/**
 * Writes notes 1..count (workspace-content.ts) into the workspace's schema as
 * the superuser, in order, so that note k has id firstId + k - 1; checks that
 * it does.
 */
async function writeNotes(
  pool: pg.Pool,
  schema: string,
  count: number,
): Promise<{ firstId: number; seconds: number }> {
  const started = performance.now();
  const table = `${ident(schema)}.notes`;
  const before = (await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`)).rows[0]?.n;
  if (before !== 0) throw new Error(`the new workspace already has ${before} notes`);
  const now = Date.now();
  const DAY = 86_400_000;
  for (let from = 1; from <= count; from += 1000) {
    const titles: string[] = [];
    const bodies: string[] = [];
    const tags: string[] = [];
    const created: string[] = [];
    const updated: string[] = [];
    for (let k = from; k < Math.min(from + 1000, count + 1); k++) {
      const n = noteContent(k);
      const c = now - n.ageDays * DAY;
      titles.push(n.title);
      bodies.push(n.body);
      tags.push(n.tags.join(','));
      created.push(new Date(c).toISOString());
      updated.push(new Date(Math.min(now, c + n.editedAfterDays * DAY)).toISOString());
    }
    // Tags travel as one comma-joined string per note: unnest() flattens a 2-D array.
    await pool.query(
      `INSERT INTO ${table} (title, body, tags, created_at, updated_at)
       SELECT title, body, CASE WHEN tags = '' THEN '{}' ELSE string_to_array(tags, ',') END, created, updated
         FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[])
              WITH ORDINALITY AS t(title, body, tags, created, updated, k)
        ORDER BY k`,
      [titles, bodies, tags, created, updated],
    );
  }
  const { rows } = await pool.query<{ id: number; title: string }>(
    `SELECT id, title FROM ${table} ORDER BY id`,
  );
  const firstId = rows[0]?.id as number;
  rows.forEach((r, i) => {
    if (r.id !== firstId + i || r.title !== noteContent(i + 1).title)
      throw new Error(`note ${i + 1} is not at id ${firstId + i}: the PATCH plan would edit the wrong notes`);
  });
  return { firstId, seconds: round((performance.now() - started) / 1000, 1) };
}

/** Follows nextCursor through the API to page `page` of `route`; returns that page's cursor. */
async function cursorOfPage(base: string, ws: Registered, route: string, page: number): Promise<string> {
  let cursor: string | null = null;
  for (let p = 1; p < page; p++) {
    const url: string = cursor ? `${route}${route.includes('?') ? '&' : '?'}cursor=${cursor}` : route;
    const res = await api(base, 'GET', url, { cookie: ws.cookie });
    if (res.status !== 200) throw new Error(`GET ${url} answered ${res.status}: ${res.text}`);
    cursor = (res.json() as { nextCursor: string | null }).nextCursor;
    if (!cursor) throw new Error(`${route} has fewer than ${page} pages`);
  }
  return cursor as string;
}

/** How many notes match each planted word and tag (the superuser reads the schema directly). */
async function countFacts(pool: pg.Pool, schema: string) {
  const table = `${ident(schema)}.notes`;
  const q = async (where: string, value: string) =>
    (await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table} WHERE ${where}`, [value]))
      .rows[0]?.n as number;
  const word = (w: string) => q(`search @@ to_tsquery('simple', $1)`, w);
  return {
    notes: (await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`)).rows[0]?.n as number,
    commonTag: await q('tags @> ARRAY[$1]::text[]', PLANTED.commonTag),
    rareTag: await q('tags @> ARRAY[$1]::text[]', PLANTED.rareTag),
    commonWord: await word(PLANTED.commonWord),
    rareWord: await word(PLANTED.rareWord),
    rareWordInTitle: await q(`to_tsvector('simple', title) @@ to_tsquery('simple', $1)`, PLANTED.rareWord),
    everywhereWord: await word(PLANTED.everywhereWord),
    tableMB: (
      await pool.query<{ mb: number }>(
        'SELECT round(pg_total_relation_size($1::regclass) / 1048576.0, 1)::float8 AS mb',
        [table],
      )
    ).rows[0]?.mb as number,
  };
}
type Facts = Awaited<ReturnType<typeof countFacts>>;

// --- checks: every variant answers what it should, before anything is timed --

interface ListAnswer {
  notes: Array<{ id: number; title: string; tags: string[]; version: number }>;
  nextCursor: string | null;
}
interface SearchAnswer {
  results: Array<{ id: number; title: string }>;
  nextCursor: string | null;
}

async function checkAnswers(base: string, setup: Setup, facts: Facts, variants: readonly Variant[]) {
  const fail = (v: Variant, why: string) => {
    throw new Error(`${v.name}: ${why}`);
  };
  for (const v of variants) {
    if (!v.path) continue;
    const res = await api(base, 'GET', v.path(setup), { cookie: setup.ws.cookie });
    if (res.status !== 200) fail(v, `answered ${res.status}: ${res.text}`);
    const body = res.json() as ListAnswer & SearchAnswer;
    switch (v.name) {
      case 'list-first':
      case 'list-deep':
      case 'list-title-deep':
        if (body.notes.length !== 50 || !body.nextCursor) fail(v, `${body.notes.length} notes`);
        break;
      case 'list-tag-common':
      case 'list-tag-rare': {
        const tag = v.name === 'list-tag-common' ? PLANTED.commonTag : PLANTED.rareTag;
        const want = Math.min(50, v.name === 'list-tag-common' ? facts.commonTag : facts.rareTag);
        if (body.notes.length !== want) fail(v, `${body.notes.length} notes, expected ${want}`);
        if (!body.notes.every((n) => n.tags.includes(tag))) fail(v, `a note without the tag ${tag}`);
        break;
      }
      case 'search-rare': {
        if (body.results.length !== facts.rareWord)
          fail(v, `${body.results.length} hits, expected ${facts.rareWord}`);
        // The title hits come first.
        const titled = body.results.slice(0, facts.rareWordInTitle);
        if (!titled.every((r) => r.title.includes(PLANTED.rareWord)))
          fail(v, 'a body hit ranks above a title hit');
        break;
      }
      default:
        if (body.results.length !== 20 || !body.nextCursor) fail(v, `${body.results.length} hits`);
    }
  }
  if (variants.some((v) => !v.path)) {
    // The last note is outside the PATCH plan: edit it once, then again with the stale version.
    const id = setup.firstId + setup.notes - 1;
    const session = { cookie: setup.ws.cookie, csrf: setup.ws.csrf };
    const edit = await api(base, 'PATCH', `/api/v1/notes/${id}`, {
      ...session,
      body: { version: 1, body: 'edited' },
    });
    const version = (edit.json() as { note?: { version?: number } }).note?.version;
    if (edit.status !== 200 || version !== 2) throw new Error(`patch: answered ${edit.status}: ${edit.text}`);
    const stale = await api(base, 'PATCH', `/api/v1/notes/${id}`, {
      ...session,
      body: { version: 1, body: 'x' },
    });
    if (stale.status !== 409) throw new Error(`patch: a stale version answered ${stale.status}, not 409`);
  }
  log('checked: every variant answers 200 with what it should; a stale PATCH gets 409');
}

// --- query plans ---------------------------------------------------------------

/** Same as RANK_SORT in server/workspace/notes.ts (not exported there). */
const RANK_SORT: KeysetSort = { name: 'rank', column: 'rank', type: 'number', direction: 'desc' };

/** The statement the route sends for this path, built by the same functions from the same parsed query. */
function statementOf(pathAndQuery: string): Statement {
  const url = new URL(pathAndQuery, 'http://x');
  const raw = Object.fromEntries(url.searchParams);
  if (url.pathname === '/api/v1/search') {
    const q = parse(SearchQuery, raw, 'query');
    const cursor = q.cursor === undefined ? undefined : decodeCursor(q.cursor, RANK_SORT);
    return workspaceSql.searchNotes({ q: q.q, sort: RANK_SORT, cursor, limit: q.limit + 1 });
  }
  const q = parse(NoteListQuery, raw, 'query');
  const sort = NOTE_SORT_SPECS[q.sort];
  const cursor = q.cursor === undefined ? undefined : decodeCursor(q.cursor, sort);
  return workspaceSql.listNotes({ sort, cursor, tag: q.tag, limit: q.limit + 1 });
}

interface Plan {
  variant: string;
  /** The index made for this plan only (whatIfIndex), if any. */
  withIndex?: string;
  executionMs: number;
  /** A sequential scan of the notes table anywhere in the plan. */
  seqScan: boolean;
  sorts: string[];
  text: string;
}

/**
 * EXPLAIN ANALYZE of `text` as the tenant role with its search_path, in a
 * transaction that is rolled back (with `index` made first, if given), `runs`
 * times: the last plan, and the fastest execution time (the run least
 * disturbed by the rest of this shared machine).
 */
async function explainAs(
  client: pg.PoolClient,
  ws: Registered,
  text: string,
  values: unknown[],
  options: { index?: string; runs?: number; timing?: boolean } = {},
): Promise<{ text: string; executionMs: number; fastestMs: number }> {
  const { index, runs = 2, timing = true } = options;
  let plan = '';
  let fastestMs = Number.POSITIVE_INFINITY;
  for (let i = 0; i < runs; i++) {
    await client.query('BEGIN');
    try {
      if (index) await client.query(index.replace('{{table}}', `${ident(ws.schema)}.notes`));
      await client.query("SELECT set_config('role', $1, true), set_config('search_path', $2, true)", [
        ws.role,
        ident(ws.schema),
      ]);
      const { rows } = await client.query<{ 'QUERY PLAN': string }>(
        `EXPLAIN (ANALYZE, BUFFERS, TIMING ${timing ? 'ON' : 'OFF'}) ${text}`,
        values,
      );
      plan = rows.map((r) => r['QUERY PLAN']).join('\n');
      fastestMs = Math.min(fastestMs, Number(/Execution Time: ([\d.]+) ms/.exec(plan)?.[1]));
    } finally {
      await client.query('ROLLBACK');
    }
  }
  return { text: plan, executionMs: Number(/Execution Time: ([\d.]+) ms/.exec(plan)?.[1]), fastestMs };
}

/** The plan of each read's statement; a variant with a whatIfIndex gets a second plan with that index. */
async function explain(
  pool: pg.Pool,
  ws: Registered,
  setup: Setup,
  variants: readonly Variant[],
): Promise<Plan[]> {
  const plans: Plan[] = [];
  const client = await pool.connect();
  try {
    for (const v of variants) {
      if (!v.path) continue;
      const stmt = statementOf(v.path(setup));
      const text = stmt.text;
      for (const index of v.whatIfIndex ? [undefined, v.whatIfIndex] : [undefined]) {
        const plan = await explainAs(client, ws, text, stmt.values, { index });
        plans.push({
          variant: v.name,
          ...(index ? { withIndex: index.replace('{{table}}', 'notes') } : {}),
          executionMs: plan.executionMs,
          seqScan: /Seq Scan on notes/.test(plan.text),
          sorts: [...plan.text.matchAll(/Sort Method: ([^\n]+)/g)].map((m) => (m[1] as string).trim()),
          text: plan.text,
        });
      }
    }
  } finally {
    client.release();
  }
  return plans;
}

/**
 * Where a ranked search for a common word spends its time: the search without
 * its snippets, and each per-match step alone over every matching note, as the
 * tenant. Fastest of 5 runs of EXPLAIN (ANALYZE, TIMING OFF), so per-row
 * instrumentation does not add to the functions' cost. (The snippets' own
 * cost shows in the timed plan of the search: the Limit's end against the
 * whole.)
 */
async function searchParts(pool: pg.Pool, ws: Registered, word: string) {
  // The same shape as the search: the query in a CTE, matches found through the GIN index.
  const over = (expr: string) =>
    `WITH q AS MATERIALIZED (SELECT websearch_to_tsquery('simple', $1) AS query)
     SELECT ${expr} FROM notes n, q WHERE n.search @@ q.query`;
  const whole = workspaceSql.searchNotes({ q: word, sort: RANK_SORT, limit: 21 });
  const wholeText = whole.text;
  // The same statement with the snippet left out (its two parameters are the last two).
  const headline = /ts_headline\([^\n]*\) AS snippet/;
  if (!headline.test(wholeText)) throw new Error('searchParts: the search statement has changed shape');
  const parts: Array<[string, string, unknown[]]> = [
    [
      'the search without snippets (rank every match, keep the best 21)',
      wholeText.replace(headline, "'' AS snippet"),
      whole.values.slice(0, -2),
    ],
    ['find the matches (GIN index) and count them', over('count(*)'), [word]],
    ["+ read each match's search vector", over('sum(length(n.search))'), [word]],
    [
      '+ title test as ranked: ts_filter(search, {a}) @@ q',
      over("count(*) FILTER (WHERE ts_filter(n.search, '{a}') @@ q.query)"),
      [word],
    ],
    [
      '+ title test on the title: to_tsvector(title) @@ q',
      over("count(*) FILTER (WHERE to_tsvector('simple', n.title) @@ q.query)"),
      [word],
    ],
    ['+ ts_rank_cd(search, q, 32), as ranked', over('sum(ts_rank_cd(n.search, q.query, 32))'), [word]],
    ['+ ts_rank(search, q, 32) instead', over('sum(ts_rank(n.search, q.query, 32))'), [word]],
  ];
  const client = await pool.connect();
  try {
    const out: Array<{ part: string; ms: number }> = [];
    for (const [part, text, values] of parts) {
      out.push({
        part,
        ms: (await explainAs(client, ws, text, values, { runs: 5, timing: false })).fastestMs,
      });
    }
    return out;
  } finally {
    client.release();
  }
}

// --- the runs ---------------------------------------------------------------

type Part = 'server' | 'postgres' | 'loadgen';
type LoadChild = Child<LoadRequest, LoadReply>;

interface Run {
  variant: string;
  connections: number;
  round: number;
  order: number;
  rps: number;
  requests: number;
  conflicts: number;
  latency: LoadResult['latency'];
  bytesPerAnswer: number;
  cpuMsPerRequest: Record<Part, number>;
  machineBusyShare: number;
}

function planOf(v: Variant, setup: Setup): LoadPlan {
  return v.path
    ? { kind: 'get', path: v.path(setup) }
    : { kind: 'patch', firstId: setup.firstId, count: setup.patchNotes };
}

function checked(v: Variant, reply: LoadReply): LoadResult {
  if (reply.error || !reply.result) throw new Error(`${v.name}: load generator failed: ${reply.error}`);
  const r = reply.result;
  // A stale PATCH (409) is counted and reported; anything else is not a measurement of the route.
  const others = Object.entries(r.statuses).filter(([s]) => s !== '409');
  if (others.length > 0 || r.errors > 0 || r.ok === 0)
    throw new Error(
      `${v.name}: ${r.ok} ok, ${JSON.stringify(r.statuses)}, ${r.errors} errors (${r.firstError}): fix the setup first`,
    );
  return r;
}

async function measure(
  load: LoadChild,
  server: Child,
  scratch: ScratchDatabase,
  setup: Setup,
  opts: Options,
  signal: AbortSignal,
): Promise<Run[]> {
  const runs: Run[] = [];
  let order = 0;
  const headers = { cookie: setup.ws.cookie, 'x-csrf-token': setup.ws.csrf };
  for (let r = 1; r <= opts.rounds; r++) {
    // Forward, then backward: a slow stretch of the machine does not land on the same variants each round.
    const forward = r % 2 === 1;
    const levels = forward ? opts.connections : [...opts.connections].reverse();
    for (const connections of levels) {
      const sequence = forward ? opts.variants : [...opts.variants].reverse();
      for (const v of sequence) {
        signal.throwIfAborted();
        const request = {
          type: 'load' as const,
          base: server.url,
          connections,
          headers,
          plan: planOf(v, setup),
        };
        if (opts.warmup > 0) checked(v, await load.request({ ...request, durationS: opts.warmup }));
        const backends = await scratch.pool.query<{ pid: number }>(
          `SELECT pid FROM pg_stat_activity
            WHERE datname = $1 AND backend_type = 'client backend' AND application_name <> 'enclave-bench'`,
          [scratch.name],
        );
        const before = snapshot<Part>({
          server: [server.pid],
          postgres: backends.rows.map((b) => b.pid),
          loadgen: [load.pid],
        });
        const result = checked(v, await load.request({ ...request, durationS: opts.duration }));
        const cpu = cpuBetween(before, snapshot(before.pids));
        // What autovacuum would do after a burst of edits (it may be off on this server), untimed:
        // otherwise every later read would pay for the dead row versions of this run.
        if (!v.path) await scratch.pool.query(`VACUUM ANALYZE ${ident(setup.ws.schema)}.notes`);
        const perRequest = (ms: number) => round(ms / result.requests, 3);
        const run: Run = {
          variant: v.name,
          connections,
          round: r,
          order: ++order,
          rps: round(result.requests / result.durationS, 1),
          requests: result.requests,
          conflicts: result.conflicts,
          latency: result.latency,
          bytesPerAnswer: Math.round(result.bytes / result.requests),
          cpuMsPerRequest: {
            server: perRequest(cpu.parts.server),
            postgres: perRequest(cpu.parts.postgres),
            loadgen: perRequest(cpu.parts.loadgen),
          },
          machineBusyShare: round(cpu.machineBusyShare, 3),
        };
        runs.push(run);
        log(
          `round ${r} c=${String(connections).padEnd(3)} ${v.name.padEnd(18)} ${String(run.rps).padStart(7)} req/s  p50 ${run.latency.p50} ms  p99 ${run.latency.p99} ms  busy ${Math.round(run.machineBusyShare * 100)}%${run.conflicts ? `  ${run.conflicts} conflicts` : ''}`,
        );
      }
    }
  }
  return runs;
}

// --- summary ----------------------------------------------------------------

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

function summarise(runs: readonly Run[], opts: Options) {
  const rows = [];
  for (const connections of opts.connections) {
    for (const v of opts.variants) {
      const own = runs.filter((r) => r.variant === v.name && r.connections === connections);
      if (own.length === 0) continue;
      const med = (f: (r: Run) => number, digits = 2) => round(median(own.map(f)), digits);
      rows.push({
        variant: v.name,
        connections,
        rps: med((r) => r.rps, 1),
        /** Answers timed, over all rounds (a p99 of fewer than a few hundred is close to the maximum). */
        samples: own.reduce((a, r) => a + r.requests, 0),
        p50: med((r) => r.latency.p50),
        p90: med((r) => r.latency.p90),
        p99: med((r) => r.latency.p99),
        mean: med((r) => r.latency.mean),
        p50Runs: own.map((r) => round(r.latency.p50)),
        p99Runs: own.map((r) => round(r.latency.p99)),
        maxOfRuns: round(Math.max(...own.map((r) => r.latency.max))),
        serverCpuMs: med((r) => r.cpuMsPerRequest.server, 3),
        postgresCpuMs: med((r) => r.cpuMsPerRequest.postgres, 3),
        bytesPerAnswer: own[0]?.bytesPerAnswer ?? 0,
        conflicts: own.reduce((a, r) => a + r.conflicts, 0),
      });
    }
  }
  return rows;
}
type Summary = ReturnType<typeof summarise>;

type SearchCost = Array<{ word: string; matches: number; parts: Array<{ part: string; ms: number }> }>;

function markdown(
  runs: readonly Run[],
  summary: Summary,
  plans: readonly Plan[],
  searchCost: SearchCost,
): string {
  const lines = [
    '| variant | connections | p50 ms | p90 ms | p99 ms | mean ms | req/s | answers timed | p50 per round | p99 per round | server CPU ms/req | PostgreSQL CPU ms/req | bytes/answer |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | ---: | ---: | ---: |',
    ...summary.map(
      (s) =>
        `| ${s.variant} | ${s.connections} | ${s.p50} | ${s.p90} | ${s.p99} | ${s.mean} | ${s.rps} | ${s.samples} | ${s.p50Runs.join(', ')} | ${s.p99Runs.join(', ')} | ${s.serverCpuMs} | ${s.postgresCpuMs} | ${s.bytesPerAnswer} |`,
    ),
    '',
    '| # | round | connections | variant | req/s | p50 | p90 | p99 | max | mean | machine busy |',
    '| ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...runs.map(
      (r) =>
        `| ${r.order} | ${r.round} | ${r.connections} | ${r.variant} | ${r.rps} | ${r.latency.p50} | ${r.latency.p90} | ${r.latency.p99} | ${r.latency.max} | ${r.latency.mean} | ${Math.round(r.machineBusyShare * 100)}% |`,
    ),
    '',
    '| query of | execution ms (EXPLAIN ANALYZE) | seq scan on notes | sorts |',
    '| --- | ---: | --- | --- |',
    ...plans.map(
      (p) =>
        `| ${p.variant}${p.withIndex ? ` (with ${p.withIndex})` : ''} | ${p.executionMs} | ${p.seqScan ? 'yes' : 'no'} | ${p.sorts.join('; ')} |`,
    ),
    '',
    `| search cost (fastest of 5, ms) | ${searchCost.map((c) => `"${c.word}" (${c.matches} matches)`).join(' | ')} |`,
    `| --- |${searchCost.map(() => ' ---: |').join('')}`,
    ...(searchCost[0]?.parts ?? []).map(
      (p, i) => `| ${p.part} | ${searchCost.map((c) => c.parts[i]?.ms).join(' | ')} |`,
    ),
  ];
  return `${lines.join('\n')}\n`;
}

// --- main -------------------------------------------------------------------

async function main(values: Partial<Record<OptionName, string>>): Promise<void> {
  const opts = readOptions(values);
  const children: Child[] = [];
  const { stopped, startedAt, loadAverageAtStart } = beginRun(log, 'step', () => children);
  const scratch = await createBenchDatabase(opts.adminUrl, {
    poolSize: opts.fillConcurrency + 2,
    migrate: true,
    log,
  });
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'enclave-bench-workspace-'));
  let ws: Registered | undefined;
  let serverUrl = '';
  try {
    log(
      `scratch database ${scratch.name}: provisioning ${opts.tenants} other tenants, ${opts.fillConcurrency} at a time`,
    );
    const fillSeconds = await fillTenants(scratch, opts.tenants, opts.fillConcurrency, stopped);
    log(`  ${fillSeconds} s`);

    const server = new Child('enclave', [THIS_FILE, '--child', 'enclave'], {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      NODE_ENV: 'production',
      LOG_LEVEL: 'warn',
      DATABASE_URL: scratch.url,
      REDIS_URL: opts.redisUrl,
      DATA_DIR: dataDir,
      SESSION_SECRET: randomBytes(32).toString('hex'),
      DB_POOL_SIZE: String(opts.poolSize),
    });
    children.push(server);
    await server.ready();
    serverUrl = server.url;
    ws = await registerPerson(server.url, scratch.pool, log);
    log(`registered; writing ${opts.notes} notes into ${ws.schema}`);
    const written = await writeNotes(scratch.pool, ws.schema, opts.notes);
    log(`  ${written.seconds} s; VACUUM ANALYZE (autovacuum may be off on this server)`);
    const vacuumStarted = performance.now();
    await scratch.pool.query('VACUUM ANALYZE');
    const vacuumSeconds = round((performance.now() - vacuumStarted) / 1000, 1);
    const facts = await countFacts(scratch.pool, ws.schema);
    log(`  ${JSON.stringify(facts)}`);

    log(`following cursors to page ${opts.deepPage} (newest edit first, and by title)`);
    const setup: Setup = {
      ws,
      deepCursor: await cursorOfPage(server.url, ws, '/api/v1/notes', opts.deepPage),
      titleDeepCursor: await cursorOfPage(server.url, ws, '/api/v1/notes?sort=title_asc', opts.deepPage),
      firstId: written.firstId,
      notes: opts.notes,
      // The last note is kept out of the plan (the PATCH check edits it).
      patchNotes: Math.min(opts.patchNotes, opts.notes - 1),
    };
    await checkAnswers(server.url, setup, facts, opts.variants);
    const plans = await explain(scratch.pool, ws, setup, opts.variants);
    for (const p of plans)
      log(
        `  plan of ${p.variant.padEnd(18)} ${String(p.executionMs).padStart(8)} ms  seq scan: ${p.seqScan ? 'YES' : 'no'}  ${p.sorts.join('; ')}${p.withIndex ? `  (with ${p.withIndex})` : ''}`,
      );
    const searchCost: SearchCost = [];
    for (const [word, matches] of [
      [PLANTED.commonWord, facts.commonWord],
      [PLANTED.everywhereWord, facts.everywhereWord],
    ] as const) {
      const parts = await searchParts(scratch.pool, ws, word);
      for (const p of parts) log(`  search "${word}" (${matches} matches): ${p.part}: ${p.ms} ms`);
      searchCost.push({ word, matches, parts });
    }

    const load = new Child('load generator', [THIS_FILE, '--child', 'load'], {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
    }) as LoadChild;
    children.push(load);
    await load.ready();
    log(
      `${opts.rounds} rounds x ${opts.connections.length} concurrencies x ${opts.variants.length} variants: ${opts.warmup} s warm-up + ${opts.duration} s each`,
    );
    const runs = await measure(load, server, scratch, setup, opts, stopped);
    const summary = summarise(runs, opts);
    const { adminUrl: _a, redisUrl: _r, variants, ...options } = opts;
    const results = {
      startedAt: startedAt.toISOString(),
      machine: await machine(scratch, loadAverageAtStart),
      options: { ...options, variants: variants.map((v) => v.name) },
      setup: { fillSeconds, writeNotesSeconds: written.seconds, vacuumSeconds, facts },
      variants: variants.map(({ name, what }) => ({ name, what })),
      summary,
      plans,
      searchCost,
      runs,
    };
    const saved = saveResults('workspace', results.startedAt, results);
    process.stdout.write(markdown(runs, summary, plans, searchCost));
    log(`results written to ${saved}`);
  } finally {
    if (ws && serverUrl) await signOut(serverUrl, ws).catch(() => {});
    await cleanUp(children, scratch, dataDir);
  }
}

await runBench(OPTIONS, serveLoad, main);
