// Search benchmark (issue 14, "search with a bound"): the latency of a search
// for a word found in every note of a 10,000-note workspace, through the whole
// HTTP stack of a real Enclave server, and what such searches in a loop cost a
// neighbour: another tenant's list (GET /api/v1/notes, first 50) measured
// alone and while the searcher loops, side by side in one run, several rounds
// (the order of the two phases alternates by round).
//
//   node bench/search.bench.ts [--notes 10000] [--neighbour-notes 2000] [--rounds 3]
//     [--duration 8] [--warmup 2] [--search-connections 1] [--neighbour-connections 2]
//     [--pool-size 10] [--statement-runs 100] [--search-rate N]
// --search-rate sets the server's TENANT_SEARCHES_PER_MINUTE (searches one workspace may
// start per minute, a sixth of it per 10 s); without it the server's default (60) holds, so the
// searcher's closed loops are mostly refused with 429 (counted per phase: `answered` and
// `refused`; latencies mix both). `--search-rate 0` switches the limit off: the measurement as
// it was before the limit, every search answered.
// Every option can also be set as BENCH_<NAME>. BENCH_DATABASE_URL: an admin
// URL that may create databases and roles (default
// postgres://postgres@127.0.0.1:5432/postgres); BENCH_REDIS_URL (default
// redis://127.0.0.1:6379).
//
// Steps: a server in a child process on a scratch database (dropped at the
// end), defaults but LOG_LEVEL=warn and sealing off; a searcher and a
// neighbour registered through the API; notes of bench/workspace-content.ts
// (timestamps spread over a year, as bench/workspace.bench.ts writes them)
// straight into their schemas, VACUUM ANALYZE; every search checked once; the
// search statement's EXPLAIN ANALYZE as the tenant role. Then per round:
// each search alone (1 connection), the neighbour's list alone, the
// neighbour's list while the searcher loops on the everywhere word.
// Results: bench/results/search-<time>.json and docs/BENCHMARKS.md ("Search with a bound").
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { loadConfig } from '../kernel/config.ts';
import { ident } from '../kernel/identifiers.ts';
import type { KeysetSort } from '../server/workspace/pagination.ts';
import * as workspaceSql from '../server/workspace/workspace-sql.ts';
import { createBenchDatabase } from '../test/helpers/database.ts';
import { api, type Registered, registerPerson, signOut } from './api-client.ts';
import { Child } from './children.ts';
import { cpuBetween, snapshot } from './cpu.ts';
import { type LoadReply, type LoadRequest, type LoadResult, serveLoad } from './http-load.ts';
import { saveResults } from './results.ts';
import { beginRun, benchUrls, cleanUp, machine, optionReader, runBench } from './run.ts';
import { noteContent, PLANTED } from './workspace-content.ts';

const THIS_FILE = fileURLToPath(import.meta.url);
const log = (line: string) => process.stderr.write(`${line}\n`);
process.stderr.on('error', () => {});
process.stdout.on('error', () => {});
const round = (n: number, digits = 2) => Number(n.toFixed(digits));
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

const RANK_SORT: KeysetSort = { name: 'rank', column: 'rank', type: 'number', direction: 'desc' };

const OPTIONS = {
  notes: '10000',
  'neighbour-notes': '2000',
  rounds: '3',
  duration: '8',
  warmup: '2',
  'search-connections': '1',
  'neighbour-connections': '2',
  'pool-size': '10',
  'statement-runs': '100',
  /** TENANT_SEARCHES_PER_MINUTE of the server; empty: the server's default. */
  'search-rate': '',
};
type OptionName = keyof typeof OPTIONS;

function readOptions(values: Partial<Record<OptionName, string>>) {
  const { int, raw } = optionReader(OPTIONS, values);
  return {
    ...benchUrls(),
    notes: int('notes', 1),
    neighbourNotes: int('neighbour-notes', 1),
    rounds: int('rounds', 0),
    duration: int('duration', 1),
    warmup: int('warmup', 0),
    searchConnections: int('search-connections', 1),
    neighbourConnections: int('neighbour-connections', 1),
    poolSize: int('pool-size', 1),
    statementRuns: int('statement-runs', 1),
    /** undefined: the server's default TENANT_SEARCHES_PER_MINUTE. */
    searchRate: raw('search-rate') === '' ? undefined : int('search-rate', 0),
  };
}

/** Notes 1..count of workspace-content.ts, with their creation and edit times spread over a year. */
async function writeNotes(pool: pg.Pool, schema: string, count: number): Promise<void> {
  const table = `${ident(schema)}.notes`;
  const now = Date.now();
  const DAY = 86_400_000;
  for (let from = 1; from <= count; from += 1000) {
    const notes = Array.from({ length: Math.min(1000, count - from + 1) }, (_, i) => noteContent(from + i));
    const created = notes.map((n) => now - n.ageDays * DAY);
    await pool.query(
      `INSERT INTO ${table} (title, body, tags, created_at, updated_at)
       SELECT title, body, CASE WHEN tags = '' THEN '{}' ELSE string_to_array(tags, ',') END, created, updated
         FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[])
              WITH ORDINALITY AS t(title, body, tags, created, updated, k)
        ORDER BY k`,
      [
        notes.map((n) => n.title),
        notes.map((n) => n.body),
        notes.map((n) => n.tags.join(',')),
        created.map((c) => new Date(c).toISOString()),
        notes.map((n, i) =>
          new Date(Math.min(now, (created[i] as number) + n.editedAfterDays * DAY)).toISOString(),
        ),
      ],
    );
  }
}

/** EXPLAIN (ANALYZE, BUFFERS) of the route's own search statement, as the tenant role, rolled back. */
async function explainSearch(pool: pg.Pool, ws: Registered, q: string): Promise<string> {
  const stmt = workspaceSql.searchNotes({ q, sort: RANK_SORT, limit: 21 });
  const client = await pool.connect();
  try {
    let plan = '';
    for (let i = 0; i < 2; i++) {
      await client.query('BEGIN');
      try {
        await client.query("SELECT set_config('role', $1, true), set_config('search_path', $2, true)", [
          ws.role,
          ident(ws.schema),
        ]);
        const { rows } = await client.query<{ 'QUERY PLAN': string }>(
          `EXPLAIN (ANALYZE, BUFFERS) ${stmt.text}`,
          stmt.values,
        );
        plan = rows.map((r) => r['QUERY PLAN']).join('\n');
      } finally {
        await client.query('ROLLBACK');
      }
    }
    return plan;
  } finally {
    client.release();
  }
}

/**
 * The statement alone, `runs` times on one connection as the tenant role (BEGIN, the role
 * binding, the statement, COMMIT; wall time in this process): the database's part of a
 * search without the HTTP stack's queueing.
 */
async function timeStatement(pool: pg.Pool, ws: Registered, q: string, runs: number) {
  const stmt = workspaceSql.searchNotes({ q, sort: RANK_SORT, limit: 21 });
  const client = await pool.connect();
  const ms: number[] = [];
  try {
    for (let i = 0; i < runs; i++) {
      const t0 = process.hrtime.bigint();
      await client.query('BEGIN');
      await client.query("SELECT set_config('role', $1, true), set_config('search_path', $2, true)", [
        ws.role,
        ident(ws.schema),
      ]);
      await client.query(stmt.text, stmt.values);
      await client.query('COMMIT');
      ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
  } finally {
    client.release();
  }
  ms.sort((a, b) => a - b);
  const at = (p: number) => round(ms[Math.min(ms.length - 1, Math.ceil(p * ms.length) - 1)] as number);
  return {
    runs,
    min: round(ms[0] as number),
    p50: at(0.5),
    p99: at(0.99),
    max: round(ms[ms.length - 1] as number),
  };
}

type LoadChild = Child<LoadRequest, LoadReply>;

interface Phase {
  latency: LoadResult['latency'];
  requests: number;
  /** Answered 2xx; and refused with 429 (the workspace's search rate or its concurrent searches). */
  answered: number;
  refused: number;
  rps: number;
  statuses: Record<string, number>;
  errors: number;
  machineBusyShare: number;
  /** Server and PostgreSQL CPU per answer, ms. */
  serverCpuMsPerReq: number;
  postgresCpuMsPerReq: number;
}

/** The load's result; it must have had answers (or, with `refusals`, at least 429 refusals). */
function result(reply: LoadReply, what: string, refusals = false): LoadResult {
  if (reply.error || !reply.result) throw new Error(`${what}: load generator failed: ${reply.error}`);
  const r = reply.result;
  if (r.ok === 0 && !(refusals && refusedOf(r) > 0)) throw new Error(`${what}: no answer: ${r.firstError}`);
  return r;
}

const refusedOf = (r: LoadResult) => r.statuses['429'] ?? 0;

async function postgresPids(pool: pg.Pool): Promise<number[]> {
  const { rows } = await pool.query<{ pid: number }>(
    'SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()',
  );
  return rows.map((r) => r.pid);
}

const SEARCHES = {
  everywhere: PLANTED.everywhereWord,
  common: PLANTED.commonWord,
  rare: PLANTED.rareWord,
} as const;

interface RoundResult {
  round: number;
  search: Record<keyof typeof SEARCHES, Phase>;
  neighbourAlone: Phase;
  neighbourBeside: Phase;
  /** The searcher's own loop while the neighbour was measured. */
  searchBeside: Phase;
}

async function main(values: Partial<Record<OptionName, string>>): Promise<void> {
  const opts = readOptions(values);
  const children: Child[] = [];
  const { startedAt, loadAverageAtStart } = beginRun(log, 'step', () => children);
  const scratch = await createBenchDatabase(opts.adminUrl, { poolSize: 4, migrate: true, log });
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'enclave-bench-search-'));
  let server: Child | undefined;
  let searcher: Registered | undefined;
  let neighbour: Registered | undefined;
  try {
    server = new Child('enclave', [THIS_FILE, '--child', 'enclave'], {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      NODE_ENV: 'production',
      LOG_LEVEL: 'warn',
      DATABASE_URL: scratch.url,
      REDIS_URL: opts.redisUrl,
      DATA_DIR: dataDir,
      SESSION_SECRET: randomBytes(32).toString('hex'),
      DB_POOL_SIZE: String(opts.poolSize),
      AUDIT_SEAL_INTERVAL_SECONDS: '0',
      JOBS_IN_SERVER: 'false',
      // The server's default unless --search-rate says otherwise.
      ...(opts.searchRate === undefined ? {} : { TENANT_SEARCHES_PER_MINUTE: String(opts.searchRate) }),
    });
    children.push(server);
    await server.ready();
    const base = server.url;
    searcher = await registerPerson(base, scratch.pool, log);
    neighbour = await registerPerson(base, scratch.pool, log);
    log(`writing ${opts.notes} searcher notes and ${opts.neighbourNotes} neighbour notes`);
    await writeNotes(scratch.pool, searcher.schema, opts.notes);
    await writeNotes(scratch.pool, neighbour.schema, opts.neighbourNotes);
    await scratch.pool.query('VACUUM ANALYZE');

    // Every search answers 200 before anything is timed; its answer's fields are recorded.
    const checks: Record<string, unknown> = {};
    for (const [name, word] of Object.entries(SEARCHES)) {
      let res = await api(base, 'GET', `/api/v1/search?q=${word}`, { cookie: searcher.cookie });
      // A low --search-rate may refuse the checks too: wait as told, once.
      if (res.status === 429) {
        await new Promise((r) => setTimeout(r, Number(res.headers.get('retry-after') ?? 10) * 1000 + 100));
        res = await api(base, 'GET', `/api/v1/search?q=${word}`, { cookie: searcher.cookie });
      }
      if (res.status !== 200)
        throw new Error(`search ${word} answered ${res.status}: ${res.text.slice(0, 300)}`);
      const body = res.json() as { results: Array<{ title: string }>; nextCursor: string | null } & Record<
        string,
        unknown
      >;
      const { count } = (
        await scratch.pool.query<{ count: number }>(
          `SELECT count(*)::int AS count FROM ${ident(searcher.schema)}.notes WHERE search @@ websearch_to_tsquery('simple', $1)`,
          [word],
        )
      ).rows[0] as { count: number };
      const { results, nextCursor, ...rest } = body;
      checks[name] = {
        word,
        matches: count,
        results: results.length,
        nextCursor: nextCursor !== null,
        ...rest,
      };
      log(`  ${name} "${word}": ${JSON.stringify(checks[name])}`);
    }
    const listPath = '/api/v1/notes';
    const listed = await api(base, 'GET', listPath, { cookie: neighbour.cookie });
    if (listed.status !== 200) throw new Error(`neighbour list answered ${listed.status}`);

    const plans: Record<string, string> = {};
    for (const [name, word] of Object.entries(SEARCHES))
      plans[name] = await explainSearch(scratch.pool, searcher, word);
    log(`plan of the everywhere search:\n${plans.everywhere}`);
    const statement: Record<string, Awaited<ReturnType<typeof timeStatement>>> = {};
    for (const [name, word] of Object.entries(SEARCHES)) {
      statement[name] = await timeStatement(scratch.pool, searcher, word, opts.statementRuns);
      log(`  statement alone, ${name}: ${JSON.stringify(statement[name])}`);
    }

    const searcherLoad = new Child('searcher load', [THIS_FILE, '--child', 'load'], {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
    }) as LoadChild;
    const neighbourLoad = new Child('neighbour load', [THIS_FILE, '--child', 'load'], {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
    }) as LoadChild;
    children.push(searcherLoad, neighbourLoad);
    await Promise.all([searcherLoad.ready(), neighbourLoad.ready()]);
    const serverPid = server.pid;
    const searchRequest = (word: string, durationS: number): LoadRequest => ({
      type: 'load',
      base,
      connections: opts.searchConnections,
      durationS,
      headers: { cookie: (searcher as Registered).cookie },
      plan: { kind: 'get', path: `/api/v1/search?q=${word}` },
    });
    const listRequest = (durationS: number): LoadRequest => ({
      type: 'load',
      base,
      connections: opts.neighbourConnections,
      durationS,
      headers: { cookie: (neighbour as Registered).cookie },
      plan: { kind: 'get', path: listPath },
    });
    /** Runs `load`, timing it and the CPU of the server and of PostgreSQL meanwhile. */
    const timed = async (what: string, load: Promise<LoadReply>, refusals = false): Promise<Phase> => {
      const before = snapshot({ server: [serverPid], postgres: await postgresPids(scratch.pool) });
      const r = result(await load, what, refusals);
      const cpu = cpuBetween(before, snapshot(before.pids));
      return {
        latency: r.latency,
        requests: r.requests,
        answered: r.ok,
        refused: refusedOf(r),
        rps: round(r.requests / r.durationS, 1),
        statuses: r.statuses,
        errors: r.errors,
        machineBusyShare: round(cpu.machineBusyShare, 3),
        serverCpuMsPerReq: round(cpu.parts.server / r.requests, 3),
        postgresCpuMsPerReq: round(cpu.parts.postgres / r.requests, 3),
      };
    };
    try {
      if (opts.warmup > 0) {
        await searcherLoad.request(searchRequest(PLANTED.everywhereWord, opts.warmup));
        await neighbourLoad.request(listRequest(opts.warmup));
      }
      const rounds: RoundResult[] = [];
      for (let i = 1; i <= opts.rounds; i++) {
        log(`round ${i}`);
        const search = {} as Record<keyof typeof SEARCHES, Phase>;
        for (const [name, word] of Object.entries(SEARCHES) as Array<[keyof typeof SEARCHES, string]>) {
          search[name] = await timed(name, searcherLoad.request(searchRequest(word, opts.duration)), true);
          log(
            `  search ${name}: p50 ${search[name].latency.p50} p99 ${search[name].latency.p99} ms, ${search[name].answered} answered, ${search[name].refused} refused (429)`,
          );
        }
        const alone = () => timed('neighbour alone', neighbourLoad.request(listRequest(opts.duration)));
        const beside = async () => {
          // The searcher starts first and stops after the neighbour's window.
          const loop = searcherLoad.request(searchRequest(PLANTED.everywhereWord, opts.duration + 2));
          await new Promise((r) => setTimeout(r, 1000));
          const phase = await timed('neighbour beside', neighbourLoad.request(listRequest(opts.duration)));
          const searching = result(await loop, 'searcher loop', true);
          return { phase, searching };
        };
        let neighbourAlone: Phase;
        let besideRun: Awaited<ReturnType<typeof beside>>;
        if (i % 2 === 1) {
          neighbourAlone = await alone();
          besideRun = await beside();
        } else {
          besideRun = await beside();
          neighbourAlone = await alone();
        }
        const s = besideRun.searching;
        const searchBeside: Phase = {
          latency: s.latency,
          requests: s.requests,
          answered: s.ok,
          refused: refusedOf(s),
          rps: round(s.requests / s.durationS, 1),
          statuses: s.statuses,
          errors: s.errors,
          machineBusyShare: besideRun.phase.machineBusyShare,
          serverCpuMsPerReq: Number.NaN,
          postgresCpuMsPerReq: Number.NaN,
        };
        log(
          `  neighbour list p50/p99 alone ${neighbourAlone.latency.p50}/${neighbourAlone.latency.p99} ms, beside the searches ${besideRun.phase.latency.p50}/${besideRun.phase.latency.p99} ms`,
        );
        log(
          `  the search loop meanwhile: ${searchBeside.answered} answered, ${searchBeside.refused} refused (429)`,
        );
        rounds.push({ round: i, search, neighbourAlone, neighbourBeside: besideRun.phase, searchBeside });
      }
      const { adminUrl: _a, redisUrl: _r, ...options } = opts;
      // What the server ran with: the flag, or its default.
      const searchRate = opts.searchRate ?? loadConfig({}).TENANT_SEARCHES_PER_MINUTE;
      const saved = saveResults('search', startedAt.toISOString(), {
        startedAt: startedAt.toISOString(),
        machine: await machine(scratch, loadAverageAtStart),
        options: { ...options, searchRate },
        checks,
        statement,
        plans,
        rounds,
      });
      process.stdout.write(markdown(rounds, checks, searchRate));
      process.stdout.write(`\nthe statement alone (ms): ${JSON.stringify(statement)}\n`);
      process.stdout.write(`\nplan of the everywhere search:\n\`\`\`\n${plans.everywhere}\n\`\`\`\n`);
      log(`results written to ${saved}`);
    } finally {
      await searcherLoad.stop();
      await neighbourLoad.stop();
    }
  } finally {
    if (server)
      for (const who of [searcher, neighbour]) if (who) await signOut(server.url, who).catch(() => {});
    await cleanUp(children, scratch, dataDir);
  }
}

function markdown(
  rounds: readonly RoundResult[],
  checks: Record<string, unknown>,
  searchRate: number,
): string {
  const med = (f: (r: RoundResult) => number) => round(median(rounds.map(f)), 2);
  const lines = [
    `TENANT_SEARCHES_PER_MINUTE=${searchRate}${searchRate === 0 ? ' (no limit)' : ` (${Math.ceil(searchRate / 6)} per 10 s)`}`,
    '',
    '| measured (median of rounds) | p50 ms | p99 ms | req/s | answered | refused (429) | server CPU ms/req | PostgreSQL CPU ms/req | per round p99 ms |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  ];
  const row = (label: string, pick: (r: RoundResult) => Phase) =>
    lines.push(
      `| ${label} | ${med((r) => pick(r).latency.p50)} | ${med((r) => pick(r).latency.p99)} | ${med((r) => pick(r).rps)} | ${med((r) => pick(r).answered)} | ${med((r) => pick(r).refused)} | ${med((r) => pick(r).serverCpuMsPerReq)} | ${med((r) => pick(r).postgresCpuMsPerReq)} | ${rounds.map((r) => pick(r).latency.p99).join(', ')} |`,
    );
  for (const name of Object.keys(SEARCHES) as Array<keyof typeof SEARCHES>)
    row(`search "${SEARCHES[name]}" alone`, (r) => r.search[name]);
  row('neighbour list, alone', (r) => r.neighbourAlone);
  row('neighbour list, beside the search loop', (r) => r.neighbourBeside);
  row('the search loop meanwhile', (r) => r.searchBeside);
  lines.push(
    '',
    `neighbour p99 beside/alone, per round: ${rounds.map((r) => round(r.neighbourBeside.latency.p99 / r.neighbourAlone.latency.p99, 2)).join(', ')}; median ${med((r) => r.neighbourBeside.latency.p99 / r.neighbourAlone.latency.p99)}`,
    `neighbour p50 beside/alone, median ${med((r) => r.neighbourBeside.latency.p50 / r.neighbourAlone.latency.p50)}`,
    '',
    `checks: ${JSON.stringify(checks)}`,
  );
  return `${lines.join('\n')}\n`;
}

await runBench(OPTIONS, serveLoad, main);
