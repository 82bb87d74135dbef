// Noisy-neighbour benchmark (issue 8, finding 4): how much one abusive tenant
// slows another tenant's reads, through the whole HTTP stack of a real Enclave
// server. A victim reads one of its notes (GET /api/v1/notes/:id) in a closed
// loop; its latency is measured quiet, then while an abusive tenant runs
// concurrent exports of its whole workspace, searches for a word that is in
// every one of its notes, and big writes (95 kB notes), all at once and
// ignoring every 429. Each mode runs its own server:
//   on:  the defaults (TENANT_MAX_EXPORTS 2, TENANT_MAX_SEARCHES 4, TENANT_MAX_CONCURRENT 4,
//        TENANT_STATEMENT_TIMEOUT_MS 5000, TENANT_QUOTA_MB 100, ...);
//   off: the limits effectively off (1000 exports and searches at once, no per-tenant cap, no
//        statement timeout, no storage quota, a 1 TB spool budget).
//
//   node bench/noisy-neighbour.bench.ts [--modes on,off] [--quiet 15] [--abusive 15] [--warmup 3]
//     [--victim-connections 2] [--exports 12] [--searches 12] [--writers 4]
//     [--victim-notes 2000] [--abuser-notes 2000] [--abuser-big-notes 200] [--pool-size 10]
//     [--on-env TENANT_MAX_SEARCHES=2,...]  (settings of the `on` server besides the defaults)
// Every option can also be set as BENCH_<NAME>. BENCH_DATABASE_URL: an admin
// URL that may create databases and roles (default
// postgres://postgres@127.0.0.1:5432/postgres); BENCH_REDIS_URL (default
// redis://127.0.0.1:6379).
//
// Steps, per mode: a server in a child process on the run's scratch database
// (test/helpers/database.ts, dropped at the end); a victim and an abuser
// registered through the API; their notes written straight into their schemas
// (bench/workspace-content.ts, plus the abuser's big notes), VACUUM ANALYZE;
// every route checked once. Then, driven by bench/http-load.ts in child
// processes (the victim's load alone in one, the abuser's three in another):
// the victim warms up, is measured quiet, then measured again while the
// abuser's loads run (they start `--warmup` seconds earlier and stop after).
// Results: bench/results/noisy-neighbour-<time>.json and docs/BENCHMARKS.md.
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { ident } from '../kernel/identifiers.ts';
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

type Mode = 'on' | 'off';

/** The server's environment beyond the database, per mode. */
const MODE_ENV: Record<Mode, Record<string, string>> = {
  on: {},
  off: {
    TENANT_MAX_EXPORTS: '1000',
    TENANT_MAX_SEARCHES: '1000',
    TENANT_MAX_CONCURRENT: '0',
    TENANT_STATEMENT_TIMEOUT_MS: '0',
    TENANT_IDLE_IN_TRANSACTION_MS: '0',
    EXPORT_STATEMENT_TIMEOUT_MS: '0',
    EXPORT_SPOOL_BUDGET_MB: '1048576',
    TENANT_QUOTA_MB: '0',
  },
};

const envOf = (mode: Mode, opts: Options) =>
  mode === 'on' ? { ...MODE_ENV.on, ...opts.onEnv } : MODE_ENV.off;

// --- options ----------------------------------------------------------------

const OPTIONS = {
  modes: 'on,off',
  quiet: '15',
  abusive: '15',
  warmup: '3',
  'victim-connections': '2',
  exports: '12',
  searches: '12',
  writers: '4',
  'victim-notes': '2000',
  'abuser-notes': '2000',
  'abuser-big-notes': '200',
  'pool-size': '10',
  /** Extra server settings for the `on` mode, e.g. TENANT_MAX_SEARCHES=2,TENANT_MAX_EXPORTS=1. */
  'on-env': '',
};
type OptionName = keyof typeof OPTIONS;

function readOptions(values: Partial<Record<OptionName, string>>) {
  const { raw, int } = optionReader(OPTIONS, values);
  const modes = raw('modes')
    .split(',')
    .map((m) => m.trim());
  if (modes.length === 0 || modes.some((m) => m !== 'on' && m !== 'off'))
    throw new Error('--modes: on, off or on,off');
  return {
    ...benchUrls(),
    modes: modes as Mode[],
    quiet: int('quiet', 1),
    abusive: int('abusive', 1),
    warmup: int('warmup', 0),
    victimConnections: int('victim-connections', 1),
    exports: int('exports', 0),
    searches: int('searches', 0),
    writers: int('writers', 0),
    victimNotes: int('victim-notes', 1),
    abuserNotes: int('abuser-notes', 1),
    abuserBigNotes: int('abuser-big-notes', 0),
    poolSize: int('pool-size', 1),
    onEnv: Object.fromEntries(
      raw('on-env')
        .split(',')
        .filter((kv) => kv.trim() !== '')
        .map((kv) => {
          const [k, v] = kv.split('=');
          if (!k || v === undefined || !/^[A-Z_]+$/.test(k.trim())) throw new Error(`--on-env: bad "${kv}"`);
          return [k.trim(), v.trim()];
        }),
    ) as Record<string, string>,
  };
}
type Options = ReturnType<typeof readOptions>;

// --- setup ------------------------------------------------------------------

/** A body of about `chars` characters of the benchmark's words (the everywhere word among them). */
function bigBody(seed: number, chars: number): string {
  let body = '';
  for (let k = seed; body.length < chars; k++) body += `${noteContent(k).body}\n\n`;
  return body.slice(0, chars);
}

/** Notes 1..count of workspace-content.ts, then `big` notes of 95,000 characters; returns the first id. */
async function writeNotes(pool: pg.Pool, schema: string, count: number, big: number): Promise<number> {
  const table = `${ident(schema)}.notes`;
  const insert = (titles: string[], bodies: string[], tags: string[]) =>
    pool.query(
      `INSERT INTO ${table} (title, body, tags)
       SELECT title, body, CASE WHEN tags = '' THEN '{}' ELSE string_to_array(tags, ',') END
         FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS t(title, body, tags, k)
        ORDER BY k`,
      [titles, bodies, tags],
    );
  for (let from = 1; from <= count; from += 500) {
    const notes = Array.from({ length: Math.min(500, count - from + 1) }, (_, i) => noteContent(from + i));
    await insert(
      notes.map((n) => n.title),
      notes.map((n) => n.body),
      notes.map((n) => n.tags.join(',')),
    );
  }
  for (let from = 0; from < big; from += 50) {
    const n = Math.min(50, big - from);
    await insert(
      Array.from({ length: n }, (_, i) => `big note ${from + i + 1}`),
      Array.from({ length: n }, (_, i) => bigBody(from + i + 1, 95_000)),
      Array.from({ length: n }, () => ''),
    );
  }
  const { rows } = await pool.query<{ id: number }>(`SELECT min(id)::int AS id FROM ${table}`);
  return rows[0]?.id as number;
}

/** The table's size (with TOAST and indexes) in MB. */
async function tableMB(pool: pg.Pool, schema: string): Promise<number> {
  const { rows } = await pool.query<{ mb: number }>(
    'SELECT round(pg_total_relation_size($1::regclass) / 1048576.0, 1)::float8 AS mb',
    [`${ident(schema)}.notes`],
  );
  return rows[0]?.mb as number;
}

// --- the runs ---------------------------------------------------------------

type LoadChild = Child<LoadRequest, LoadReply>;

interface Phase {
  latency: LoadResult['latency'];
  requests: number;
  rps: number;
  /** Victim answers other than 2xx, by status (should be none). */
  statuses: Record<string, number>;
  errors: number;
  machineBusyShare: number;
  serverCpuShare: number;
}

interface AbuseResult {
  activity: string;
  connections: number;
  requests: number;
  ok: number;
  statuses: Record<string, number>;
  errors: number;
  mbReceived: number;
}

function result(reply: LoadReply, what: string): LoadResult {
  if (reply.error || !reply.result) throw new Error(`${what}: load generator failed: ${reply.error}`);
  return reply.result;
}

async function measureVictim(
  victimLoad: LoadChild,
  server: Child,
  request: Omit<LoadRequest, 'durationS'>,
  seconds: number,
): Promise<Phase> {
  const before = snapshot({ server: [server.pid] });
  const r = result(await victimLoad.request({ ...request, durationS: seconds }), 'victim');
  const cpu = cpuBetween(before, snapshot(before.pids));
  if (r.ok === 0) throw new Error(`the victim got no answer: ${r.firstError}`);
  return {
    latency: r.latency,
    requests: r.requests,
    rps: round(r.requests / r.durationS, 1),
    statuses: r.statuses,
    errors: r.errors,
    machineBusyShare: round(cpu.machineBusyShare, 3),
    serverCpuShare: round(cpu.parts.server / (r.durationS * 1000), 3),
  };
}

interface ModeResult {
  mode: Mode;
  env: Record<string, string>;
  setup: { victimNotesMB: number; abuserNotesMB: number; exportMB: number };
  quiet: Phase;
  abusive: Phase;
  /** abusive p99 / quiet p99 (and the same for p50). */
  p99Ratio: number;
  p50Ratio: number;
  abuse: AbuseResult[];
}

async function runMode(
  mode: Mode,
  scratch: ScratchDatabase,
  opts: Options,
  dataDir: string,
  children: Child[],
  signal: AbortSignal,
): Promise<ModeResult> {
  const server = new Child(`enclave (limits ${mode})`, [THIS_FILE, '--child', 'enclave'], {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NODE_ENV: 'production',
    LOG_LEVEL: 'error',
    DATABASE_URL: scratch.url,
    REDIS_URL: opts.redisUrl,
    DATA_DIR: dataDir,
    SESSION_SECRET: randomBytes(32).toString('hex'),
    DB_POOL_SIZE: String(opts.poolSize),
    AUDIT_SEAL_INTERVAL_SECONDS: '0',
    JOBS_IN_SERVER: 'false',
    ...envOf(mode, opts),
  });
  children.push(server);
  let victim: Registered | undefined;
  let abuser: Registered | undefined;
  try {
    await server.ready();
    victim = await registerPerson(server.url, scratch.pool, log);
    abuser = await registerPerson(server.url, scratch.pool, log);
    log(
      `limits ${mode}: writing ${opts.victimNotes} victim notes, ${opts.abuserNotes} + ${opts.abuserBigNotes} big abuser notes`,
    );
    const victimNote = await writeNotes(scratch.pool, victim.schema, opts.victimNotes, 0);
    await writeNotes(scratch.pool, abuser.schema, opts.abuserNotes, opts.abuserBigNotes);
    await scratch.pool.query('VACUUM ANALYZE');
    signal.throwIfAborted();

    const victimPath = `/api/v1/notes/${victimNote}`;
    const searchPath = `/api/v1/search?q=${PLANTED.everywhereWord}`;
    const bigNote = JSON.stringify({ title: 'big write', body: bigBody(7, 95_000) });
    // Every route answers as it should before anything is timed.
    const check = async (who: Registered, method: string, route: string, body?: unknown) => {
      const res = await api(server.url, method, route, { cookie: who.cookie, csrf: who.csrf, body });
      if (res.status >= 300)
        throw new Error(`${method} ${route} answered ${res.status}: ${res.text.slice(0, 300)}`);
      return res;
    };
    await check(victim, 'GET', victimPath);
    const exported = await fetch(new URL('/api/v1/export', server.url), {
      headers: { cookie: abuser.cookie },
    });
    if (exported.status !== 200) throw new Error(`GET /api/v1/export answered ${exported.status}`);
    const exportMB = round((await exported.arrayBuffer()).byteLength / 1048576, 1);
    await check(abuser, 'GET', searchPath);
    await check(abuser, 'POST', '/api/v1/notes', JSON.parse(bigNote));
    const setup = {
      victimNotesMB: await tableMB(scratch.pool, victim.schema),
      abuserNotesMB: await tableMB(scratch.pool, abuser.schema),
      exportMB,
    };
    log(`  ${JSON.stringify(setup)}`);

    const victimLoad = new Child('victim load', [THIS_FILE, '--child', 'load'], {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
    }) as LoadChild;
    const abuserLoad = new Child('abuser load', [THIS_FILE, '--child', 'load'], {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
    }) as LoadChild;
    children.push(victimLoad, abuserLoad);
    await Promise.all([victimLoad.ready(), abuserLoad.ready()]);
    try {
      const victimRequest = {
        type: 'load' as const,
        base: server.url,
        connections: opts.victimConnections,
        headers: { cookie: victim.cookie },
        plan: { kind: 'get', path: victimPath } as LoadPlan,
      };
      if (opts.warmup > 0) await victimLoad.request({ ...victimRequest, durationS: opts.warmup });
      log(`  quiet: ${opts.quiet} s`);
      const quiet = await measureVictim(victimLoad, server, victimRequest, opts.quiet);

      const abuseHeaders = { cookie: abuser.cookie, 'x-csrf-token': abuser.csrf };
      const activities: Array<[string, number, LoadPlan]> = [
        ['exports (GET /api/v1/export)', opts.exports, { kind: 'get', path: '/api/v1/export' }],
        [`searches (GET ${searchPath})`, opts.searches, { kind: 'get', path: searchPath }],
        [
          'big writes (POST /api/v1/notes, 95 kB)',
          opts.writers,
          { kind: 'post', path: '/api/v1/notes', body: bigNote },
        ],
      ];
      const abuseSeconds = opts.warmup + opts.abusive + 1;
      const running = activities
        .filter(([, connections]) => connections > 0)
        .map(([activity, connections, plan]) =>
          abuserLoad
            .request({
              type: 'load',
              base: server.url,
              connections,
              durationS: abuseSeconds,
              headers: abuseHeaders,
              plan,
            })
            .then((reply) => ({ activity, connections, r: result(reply, activity) })),
        );
      await sleep(opts.warmup * 1000);
      log(
        `  abusive: ${opts.abusive} s (${opts.exports} exports, ${opts.searches} searches, ${opts.writers} writers at once)`,
      );
      const abusive = await measureVictim(victimLoad, server, victimRequest, opts.abusive);
      const abuse = (await Promise.all(running)).map(({ activity, connections, r }) => ({
        activity,
        connections,
        requests: r.requests,
        ok: r.ok,
        statuses: r.statuses,
        errors: r.errors,
        mbReceived: round(r.bytes / 1048576, 1),
      }));
      const out: ModeResult = {
        mode,
        env: envOf(mode, opts),
        setup,
        quiet,
        abusive,
        p99Ratio: round(abusive.latency.p99 / quiet.latency.p99, 1),
        p50Ratio: round(abusive.latency.p50 / quiet.latency.p50, 1),
        abuse,
      };
      log(
        `  victim p50 ${quiet.latency.p50} -> ${abusive.latency.p50} ms, p99 ${quiet.latency.p99} -> ${abusive.latency.p99} ms (x${out.p99Ratio})`,
      );
      for (const a of abuse)
        log(
          `  abuser ${a.activity}: ${a.requests} requests, ${a.ok} ok, ${JSON.stringify(a.statuses)}, ${a.errors} errors`,
        );
      return out;
    } finally {
      await victimLoad.stop();
      await abuserLoad.stop();
    }
  } finally {
    for (const who of [victim, abuser]) if (who) await signOut(server.url, who).catch(() => {});
    await server.stop();
  }
}

// --- summary ----------------------------------------------------------------

function markdown(results: readonly ModeResult[]): string {
  const lines = [
    '| limits | phase | victim p50 ms | p90 ms | p99 ms | max ms | req/s | answers | machine busy | server CPU |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const m of results) {
    for (const [phase, p] of [
      ['quiet', m.quiet],
      ['abusive', m.abusive],
    ] as const) {
      lines.push(
        `| ${m.mode} | ${phase} | ${p.latency.p50} | ${p.latency.p90} | ${p.latency.p99} | ${p.latency.max} | ${p.rps} | ${p.requests} | ${Math.round(p.machineBusyShare * 100)}% | ${Math.round(p.serverCpuShare * 100)}% |`,
      );
    }
  }
  lines.push('', '| limits | abusive/quiet p50 | abusive/quiet p99 |', '| --- | ---: | ---: |');
  for (const m of results) lines.push(`| ${m.mode} | ${m.p50Ratio} | ${m.p99Ratio} |`);
  lines.push(
    '',
    '| limits | abuser activity | at once | requests | 2xx | refused (by status) | MB received |',
    '| --- | --- | ---: | ---: | ---: | --- | ---: |',
  );
  for (const m of results) {
    for (const a of m.abuse) {
      const refused = Object.entries(a.statuses)
        .map(([s, n]) => `${n} × ${s}`)
        .join(', ');
      lines.push(
        `| ${m.mode} | ${a.activity} | ${a.connections} | ${a.requests} | ${a.ok} | ${refused || '-'}${a.errors ? `, ${a.errors} errors` : ''} | ${a.mbReceived} |`,
      );
    }
  }
  return `${lines.join('\n')}\n`;
}

// --- main -------------------------------------------------------------------

async function main(values: Partial<Record<OptionName, string>>): Promise<void> {
  const opts = readOptions(values);
  const children: Child[] = [];
  const { stopped, startedAt, loadAverageAtStart } = beginRun(log, 'step', () => children);
  const scratch = await createBenchDatabase(opts.adminUrl, { poolSize: 4, migrate: true, log });
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'enclave-bench-neighbour-'));
  try {
    const results: ModeResult[] = [];
    for (const mode of opts.modes)
      results.push(await runMode(mode, scratch, opts, dataDir, children, stopped));
    const { adminUrl: _a, redisUrl: _r, ...options } = opts;
    const saved = saveResults('noisy-neighbour', startedAt.toISOString(), {
      startedAt: startedAt.toISOString(),
      machine: await machine(scratch, loadAverageAtStart),
      options,
      results,
    });
    process.stdout.write(markdown(results));
    log(`results written to ${saved}`);
  } finally {
    await cleanUp(children, scratch, dataDir);
  }
}

await runBench(OPTIONS, serveLoad, main);
