// HTTP stack benchmark: an authenticated GET /api/v1/notes (the workspace list)
// through the whole Enclave stack, next to a bare Express + pg server
// (bench/bare-server.ts) that sends the same SQL to the same tenant schema of
// the same database, in the same run, at the same concurrency.
//
//   node bench/http-stack.bench.ts [--duration 10] [--warmup 3] [--connections 50]
//     [--rounds 3] [--notes 50] [--pool-size 10] [--variants bare,enclave,...]
//     [--baseline-tree <dir>]
// Every option can also be set as BENCH_<NAME> (BENCH_ROUNDS=2...).
// BENCH_DATABASE_URL: an admin URL that may create databases and roles
// (default postgres://postgres@127.0.0.1:5432/postgres); BENCH_REDIS_URL
// (default redis://127.0.0.1:6379).
//
// Every server and the load generator (autocannon) run in their own process,
// so no two of them share an event loop; only one server is under load at a
// time. The same file is the entry point of the Enclave server and load
// generator children (`--child enclave|load`), which the parent starts itself.
//
// The scratch database is dropped at the end, with the tenant role that the
// registration made (tenant roles are cluster-wide), also when a step fails or
// on Ctrl-C. Before the HTTP runs, the cost of one request log line is also
// measured in isolation. --baseline-tree <dir>: a copy of the project (with
// its node_modules) whose Enclave server runs beside this one at LOG_LEVEL=info,
// as the variant `baseline-log-info`: a change compared with the code before
// it in the same rounds, on the same busy machine. BENCH_CPU_PROF=<dir> writes V8 CPU profiles of the
// Enclave servers. Results: bench/results/http-stack-<time>.json and
// docs/BENCHMARKS.md.

import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { createClient } from 'redis';
import type { Pool } from '../kernel/db.ts';
import { createLogger } from '../kernel/logger.ts';
import { createBenchDatabase, type ScratchDatabase } from '../test/helpers/database.ts';
import { api, type Registered, registerPerson, signOut } from './api-client.ts';
import { Child, type Ready } from './children.ts';
import { cpuBetween, cpuMs, snapshot } from './cpu.ts';
import { saveResults } from './results.ts';
import { beginRun, benchUrls, cleanUp, machine, optionReader, runBench } from './run.ts';

const THIS_FILE = fileURLToPath(import.meta.url);
const BARE_SERVER = fileURLToPath(new URL('./bare-server.ts', import.meta.url));
const log = (line: string) => process.stderr.write(`${line}\n`);
// A closed stderr or stdout (e.g. piped into `head`) must not kill the run before its cleanup.
process.stderr.on('error', () => {});
process.stdout.on('error', () => {});
const round = (n: number, digits = 2) => Number(n.toFixed(digits));

// --- what is measured -------------------------------------------------------

type ServerName = 'bare' | 'enclave' | 'enclave-info' | 'baseline-info';

interface Variant {
  name: string;
  server: ServerName;
  path: string;
  /** Sends the session cookie. */
  signedIn: boolean;
  what: string;
}

const VARIANTS: readonly Variant[] = [
  {
    name: 'bare',
    server: 'bare',
    path: '/notes',
    signedIn: false,
    what: 'bare Express 5 + pg: the same SELECT on the same schema, one round trip, as the superuser',
  },
  {
    name: 'enclave',
    server: 'enclave',
    path: '/api/v1/notes',
    signedIn: true,
    what: 'the whole Enclave stack, LOG_LEVEL=warn (no per-request log line)',
  },
  {
    name: 'bare-tx',
    server: 'bare',
    path: '/notes-tx',
    signedIn: false,
    what: "bare, with the unit of work's SQL: BEGIN; set_config(role, search_path); the SELECT; COMMIT",
  },
  {
    name: 'enclave-me',
    server: 'enclave',
    path: '/api/v1/me',
    signedIn: true,
    what: 'Enclave GET /api/v1/me: the same middleware, session and registry check, no unit of work',
  },
  {
    name: 'enclave-log-info',
    server: 'enclave-info',
    path: '/api/v1/notes',
    signedIn: true,
    what: 'the whole Enclave stack, LOG_LEVEL=info (one JSON log line per request)',
  },
  {
    name: 'baseline-log-info',
    server: 'baseline-info',
    path: '/api/v1/notes',
    signedIn: true,
    what: 'enclave-log-info, run from the --baseline-tree copy of the project (the code before a change)',
  },
];

// --- options ----------------------------------------------------------------

const OPTIONS = {
  duration: '10',
  warmup: '3',
  connections: '50',
  rounds: '3',
  notes: '50',
  'pool-size': '10',
  variants: VARIANTS.filter((v) => v.server !== 'baseline-info')
    .map((v) => v.name)
    .join(','),
  'baseline-tree': '',
};
type OptionName = keyof typeof OPTIONS;

function readOptions(values: Partial<Record<OptionName, string>>) {
  const { raw, int } = optionReader(OPTIONS, values);
  const names = raw('variants')
    .split(',')
    .map((s) => s.trim());
  const variants = names.map((name) => {
    const v = VARIANTS.find((x) => x.name === name);
    if (!v)
      throw new Error(`--variants: unknown "${name}" (known: ${VARIANTS.map((x) => x.name).join(', ')})`);
    return v;
  });
  if (!variants.some((v) => v.name === 'bare'))
    throw new Error('--variants must include bare (the baseline)');
  const baselineTree = raw('baseline-tree');
  if (baselineTree && !variants.some((v) => v.server === 'baseline-info'))
    variants.push(VARIANTS.find((v) => v.server === 'baseline-info') as Variant);
  if (!baselineTree && variants.some((v) => v.server === 'baseline-info'))
    throw new Error('--variants baseline-log-info needs --baseline-tree <dir>');
  return {
    ...benchUrls(),
    duration: int('duration', 1),
    warmup: int('warmup', 0),
    connections: int('connections', 1),
    rounds: int('rounds', 1),
    notes: int('notes', 1),
    poolSize: int('pool-size', 1),
    variants,
    baselineTree: baselineTree ? path.resolve(baselineTree) : '',
  };
}
type Options = ReturnType<typeof readOptions>;

// --- children: one process per server and for the load generator ------------

interface LoadRequest {
  type: 'load';
  id: number;
  url: string;
  connections: number;
  duration: number;
  headers: Record<string, string>;
}
interface LoadReply {
  type: 'result';
  id: number;
  result?: LoadResult;
  error?: string;
}

/** The part of autocannon's result we keep (latencies in ms, 1 ms resolution). */
interface LoadResult {
  durationS: number;
  requests: number;
  ok: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  bytes: number;
  latency: { mean: number; p50: number; p90: number; p97_5: number; p99: number; max: number };
}

interface AutocannonResult {
  duration: number;
  requests: { total: number };
  throughput: { total: number };
  '2xx': number;
  non2xx: number;
  errors: number;
  timeouts: number;
  latency: Record<'mean' | 'p50' | 'p90' | 'p97_5' | 'p99' | 'max', number>;
}
type Autocannon = (options: {
  url: string;
  connections: number;
  duration: number;
  headers: Record<string, string>;
}) => Promise<AutocannonResult>;

/** `--child load`: runs autocannon on request; one process for the whole benchmark. */
function loadChild(): void {
  // autocannon is CommonJS and ships no types: required, with the little we use typed above.
  const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;
  process.on('message', (msg: LoadRequest) => {
    if (msg.type !== 'load') return;
    const { url, connections, duration, headers } = msg;
    autocannon({ url, connections, duration, headers }).then(
      (r) => {
        const result: LoadResult = {
          durationS: r.duration,
          requests: r.requests.total,
          ok: r['2xx'],
          non2xx: r.non2xx,
          errors: r.errors,
          timeouts: r.timeouts,
          bytes: r.throughput.total,
          latency: {
            mean: r.latency.mean,
            p50: r.latency.p50,
            p90: r.latency.p90,
            p97_5: r.latency.p97_5,
            p99: r.latency.p99,
            max: r.latency.max,
          },
        };
        process.send?.({ type: 'result', id: msg.id, result } satisfies LoadReply);
      },
      (err: unknown) =>
        process.send?.({ type: 'result', id: msg.id, error: String(err) } satisfies LoadReply),
    );
  });
  process.once('disconnect', () => process.exit(0));
  process.send?.({ type: 'ready', url: '' } satisfies Ready);
}

type Part = 'server' | 'postgres' | 'redis' | 'loadgen';
type LoadChild = Child<Omit<LoadRequest, 'id'>, LoadReply>;

// --- setup through the API --------------------------------------------------

type Workspace = Registered;

/** Registers a person (which provisions their workspace), keeps the session cookie, writes `count` notes. */
async function registerWorkspace(base: string, pool: Pool, count: number): Promise<Workspace> {
  const ws = await registerPerson(base, pool, log);
  for (let i = 1; i <= count; i++) {
    const res = await api(base, 'POST', '/api/v1/notes', {
      cookie: ws.cookie,
      csrf: ws.csrf,
      body: { title: `Note ${i}`, body: `${'Some words in the body of a benchmark note. '.repeat(6)}#${i}` },
    });
    if (res.status !== 201) throw new Error(`POST /api/v1/notes answered ${res.status}: ${res.text}`);
  }
  return ws;
}

/** Every variant answers 200, and the bare list is the same JSON as Enclave's. */
async function checkAnswers(urls: Record<ServerName, string>, ws: Workspace, variants: readonly Variant[]) {
  const bodies = new Map<string, { notes?: unknown[] }>();
  for (const v of variants) {
    const res = await api(urls[v.server], 'GET', v.path, v.signedIn ? { cookie: ws.cookie } : {});
    if (res.status !== 200) throw new Error(`${v.name}: GET ${v.path} answered ${res.status}: ${res.text}`);
    bodies.set(v.name, res.json() as { notes?: unknown[] });
  }
  const listed = [...bodies].filter(([, b]) => b.notes);
  const [first, ...rest] = listed;
  if (!first) return;
  for (const [name, body] of rest) {
    if (!isDeepStrictEqual(body.notes, first[1].notes))
      throw new Error(`${name} and ${first[0]} list different notes: not the same query`);
  }
  log(`checked: ${listed.map(([n]) => n).join(', ')} return the same ${first[1].notes?.length} notes`);
}

// --- the runs ---------------------------------------------------------------

interface Run {
  variant: string;
  round: number;
  order: number;
  rps: number;
  latency: LoadResult['latency'];
  requests: number;
  bytesPerResponse: number;
  /** CPU ms per request, by process (processes that lived through the run). */
  cpuMsPerRequest: Record<Part, number>;
  machineBusyShare: number;
  /** Lines on the server's stdout per request: about 1 at LOG_LEVEL info, a little more (aborted requests at a run's edges are logged too). */
  logLinesPerRequest: number;
}

async function measure(
  load: LoadChild,
  servers: Record<ServerName, Child>,
  scratch: ScratchDatabase,
  redisPid: number | undefined,
  ws: Workspace,
  opts: Options,
  signal: AbortSignal,
): Promise<Run[]> {
  const runs: Run[] = [];
  let order = 0;
  for (let r = 1; r <= opts.rounds; r++) {
    // Forward, then backward: a slow stretch of the machine does not land on one variant only.
    const sequence = r % 2 === 1 ? opts.variants : [...opts.variants].reverse();
    for (const v of sequence) {
      signal.throwIfAborted();
      const server = servers[v.server];
      const headers: Record<string, string> = v.signedIn ? { cookie: ws.cookie } : {};
      const request = {
        type: 'load' as const,
        url: `${server.url}${v.path}`,
        connections: opts.connections,
        headers,
      };
      if (opts.warmup > 0) checked(v, await load.request({ ...request, duration: opts.warmup }));
      const backends = await scratch.pool.query<{ pid: number }>(
        `SELECT pid FROM pg_stat_activity
          WHERE datname = $1 AND backend_type = 'client backend' AND pid <> pg_backend_pid()`,
        [scratch.name],
      );
      const before = await snapshot({
        server: [server.pid],
        postgres: backends.rows.map((b) => b.pid),
        redis: redisPid ? [redisPid] : [],
        loadgen: [load.pid],
      });
      const linesBefore = server.stdoutLines;
      const result = checked(v, await load.request({ ...request, duration: opts.duration }));
      const cpu = cpuBetween(before, await snapshot(before.pids));
      const perRequest = (ms: number) => round(ms / result.ok, 3);
      const run: Run = {
        variant: v.name,
        round: r,
        order: ++order,
        rps: round(result.ok / result.durationS, 1),
        latency: result.latency,
        requests: result.ok,
        bytesPerResponse: Math.round(result.bytes / result.ok),
        cpuMsPerRequest: {
          server: perRequest(cpu.parts.server),
          postgres: perRequest(cpu.parts.postgres),
          redis: perRequest(cpu.parts.redis),
          loadgen: perRequest(cpu.parts.loadgen),
        },
        machineBusyShare: round(cpu.machineBusyShare, 3),
        logLinesPerRequest: round((server.stdoutLines - linesBefore) / result.ok, 3),
      };
      runs.push(run);
      log(
        `round ${r} ${v.name.padEnd(17)} ${String(run.rps).padStart(8)} req/s  p50 ${run.latency.p50} ms  p99 ${run.latency.p99} ms  machine busy ${Math.round(run.machineBusyShare * 100)}%`,
      );
    }
  }
  return runs;
}

/** A run with any refusal or socket error is not a measurement of the route: stop. */
function checked(v: Variant, reply: LoadReply): LoadResult {
  if (reply.error || !reply.result) throw new Error(`${v.name}: load generator failed: ${reply.error}`);
  const r = reply.result;
  if (r.non2xx || r.errors || r.timeouts || r.ok === 0)
    throw new Error(
      `${v.name}: ${r.ok} ok, ${r.non2xx} non-2xx, ${r.errors} errors, ${r.timeouts} timeouts: fix the setup first`,
    );
  return r;
}

// --- summary ----------------------------------------------------------------

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

function summarise(runs: readonly Run[], variants: readonly Variant[]) {
  const bareByRound = new Map(runs.filter((r) => r.variant === 'bare').map((r) => [r.round, r]));
  return variants.map((v) => {
    const own = runs.filter((r) => r.variant === v.name);
    // Paired with the bare run of the same round.
    const ratios = own.map((r) => {
      const bare = bareByRound.get(r.round) as Run;
      return {
        round: r.round,
        rps: round(r.rps / bare.rps, 3),
        p50: round(r.latency.p50 / bare.latency.p50, 2),
        p99: round(r.latency.p99 / bare.latency.p99, 2),
      };
    });
    const cpu = (part: Part) => round(median(own.map((r) => r.cpuMsPerRequest[part])), 3);
    return {
      variant: v.name,
      what: v.what,
      rps: { median: round(median(own.map((r) => r.rps)), 1), runs: own.map((r) => r.rps) },
      p50: { median: median(own.map((r) => r.latency.p50)), runs: own.map((r) => r.latency.p50) },
      p99: { median: median(own.map((r) => r.latency.p99)), runs: own.map((r) => r.latency.p99) },
      vsBare: {
        rps: round(median(ratios.map((x) => x.rps)), 3),
        p50: round(median(ratios.map((x) => x.p50)), 2),
        p99: round(median(ratios.map((x) => x.p99)), 2),
        byRound: ratios,
      },
      cpuMsPerRequest: {
        server: cpu('server'),
        postgres: cpu('postgres'),
        redis: cpu('redis'),
        loadgen: cpu('loadgen'),
      },
      bytesPerResponse: own[0]?.bytesPerResponse ?? 0,
      logLinesPerRequest: round(median(own.map((r) => r.logLinesPerRequest)), 3),
    };
  });
}
type Summary = ReturnType<typeof summarise>;

function markdown(runs: readonly Run[], summary: Summary): string {
  const lines = [
    '| variant | req/s (median) | req/s per run | vs bare req/s | p50 ms | p99 ms | vs bare p50 | vs bare p99 |',
    '| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |',
    ...summary.map(
      (s) =>
        `| ${s.variant} | ${s.rps.median} | ${s.rps.runs.join(', ')} | ${s.vsBare.rps} | ${s.p50.median} | ${s.p99.median} | ${s.vsBare.p50} | ${s.vsBare.p99} |`,
    ),
    '',
    '| variant | server CPU ms/req | PostgreSQL ms/req | Redis ms/req | autocannon ms/req | bytes/response |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    ...summary.map(
      (s) =>
        `| ${s.variant} | ${s.cpuMsPerRequest.server} | ${s.cpuMsPerRequest.postgres} | ${s.cpuMsPerRequest.redis} | ${s.cpuMsPerRequest.loadgen} | ${s.bytesPerResponse} |`,
    ),
    '',
    '| # | round | variant | req/s | p50 | p90 | p99 | max | mean | machine busy |',
    '| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...runs.map(
      (r) =>
        `| ${r.order} | ${r.round} | ${r.variant} | ${r.rps} | ${r.latency.p50} | ${r.latency.p90} | ${r.latency.p99} | ${r.latency.max} | ${round(r.latency.mean)} | ${Math.round(r.machineBusyShare * 100)}% |`,
    ),
  ];
  return `${lines.join('\n')}\n`;
}

// --- the log line alone ------------------------------------------------------

/**
 * What one request log line costs in isolation: Enclave's logger (scrub, timestamp, JSON) writing
 * the same fields request-log.ts writes to a stream that drops the bytes. In this process, before
 * any load, so it does not depend on the noise of the HTTP runs.
 */
async function logLineCost(lines = 20_000): Promise<{ usPerLine: number; bytesPerLine: number }> {
  let bytes = 0;
  let written = 0;
  let done: () => void = () => {};
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      bytes += chunk.length;
      if (++written === lines) done();
      callback();
    },
  });
  const logger = createLogger({ level: 'info', stream: sink });
  const fields = () => ({
    requestId: randomUUID(),
    method: 'GET',
    route: '/api/v1/notes',
    path: '/api/v1/notes',
    status: 200,
    durationMs: 12.3,
    userId: randomUUID(),
    tenantId: 'abcdefghijkl',
    via: 'session',
  });
  for (let i = 0; i < 2000; i++) logger.log('info', 'request', fields()); // warm-up (JIT)
  await new Promise<void>((resolve) => setImmediate(resolve));
  bytes = 0;
  written = 0;
  const finished = new Promise<void>((resolve) => {
    done = resolve;
  });
  const started = performance.now();
  for (let i = 0; i < lines; i++) logger.log('info', 'request', fields());
  await finished;
  const ms = performance.now() - started;
  logger.close();
  return { usPerLine: round((ms * 1000) / lines, 1), bytesPerLine: Math.round(bytes / lines) };
}

// --- main -------------------------------------------------------------------

async function redisFacts(url: string): Promise<{ pid: number | undefined; version: string }> {
  const client = createClient({ url, socket: { connectTimeout: 2000, reconnectStrategy: false } });
  client.on('error', () => {});
  try {
    await client.connect();
    const info = await client.info('server');
    const pid = Number(/process_id:(\d+)/.exec(info)?.[1]);
    const version = /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown';
    // Only a local Redis can be measured from /proc.
    return { pid: pid && cpuMs(pid) !== undefined ? pid : undefined, version };
  } catch (err) {
    throw new Error(`Redis is not reachable at ${url} (set BENCH_REDIS_URL): ${(err as Error).message}`);
  } finally {
    if (client.isOpen) await client.close();
  }
}

async function main(values: Partial<Record<OptionName, string>>): Promise<void> {
  const opts = readOptions(values);
  let load: LoadChild | undefined;
  const { stopped, startedAt, loadAverageAtStart } = beginRun(log, 'run', () => [load]);
  const redis = await redisFacts(opts.redisUrl);
  const logLine = await logLineCost();
  log(`one request log line, in isolation: ${logLine.usPerLine} µs, ${logLine.bytesPerLine} bytes`);
  const scratch = await createBenchDatabase(opts.adminUrl, { poolSize: 2, migrate: false, log });
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'enclave-bench-http-'));
  const children: Child[] = [];
  let ws: Workspace | undefined;
  let enclaveUrl = '';
  try {
    log(`scratch database ${scratch.name}; starting two Enclave servers (LOG_LEVEL warn and info)`);
    const baseEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      NODE_ENV: 'production',
    };
    const enclaveEnv = {
      ...baseEnv,
      DATABASE_URL: scratch.url,
      REDIS_URL: opts.redisUrl,
      DATA_DIR: dataDir,
      SESSION_SECRET: randomBytes(32).toString('hex'),
      DB_POOL_SIZE: String(opts.poolSize),
    };
    const start = async <C extends Child>(child: C) => {
      children.push(child);
      return child.ready();
    };
    // BENCH_CPU_PROF=<dir>: V8 CPU profiles of the Enclave servers, written when they stop.
    const prof = process.env.BENCH_CPU_PROF
      ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`]
      : [];
    // One after the other: both apply the control-plane migrations at start.
    const enclave = await start(
      new Child('enclave', [...prof, THIS_FILE, '--child', 'enclave'], { ...enclaveEnv, LOG_LEVEL: 'warn' }),
    );
    const enclaveInfo = await start(
      new Child('enclave-info', [...prof, THIS_FILE, '--child', 'enclave'], {
        ...enclaveEnv,
        LOG_LEVEL: 'info',
      }),
    );
    const baselineInfo = opts.baselineTree
      ? await start(
          new Child(
            'baseline-info',
            [...prof, path.join(opts.baselineTree, 'bench/http-stack.bench.ts'), '--child', 'enclave'],
            { ...enclaveEnv, LOG_LEVEL: 'info' },
          ),
        )
      : enclaveInfo;
    enclaveUrl = enclave.url;
    log(`registering a person and writing ${opts.notes} notes through the API`);
    ws = await registerWorkspace(enclave.url, scratch.pool, opts.notes);
    const bare = await start(
      new Child('bare', [BARE_SERVER], {
        ...baseEnv,
        BARE_DATABASE_URL: scratch.url,
        BARE_SCHEMA: ws.schema,
        BARE_ROLE: ws.role,
        BARE_POOL_SIZE: String(opts.poolSize),
      }),
    );
    load = await start(new Child('load generator', [THIS_FILE, '--child', 'load'], baseEnv) as LoadChild);
    const servers = { bare, enclave, 'enclave-info': enclaveInfo, 'baseline-info': baselineInfo };
    await checkAnswers(
      {
        bare: bare.url,
        enclave: enclave.url,
        'enclave-info': enclaveInfo.url,
        'baseline-info': baselineInfo.url,
      },
      ws,
      opts.variants,
    );
    await scratch.pool.query('VACUUM ANALYZE'); // autovacuum may be off; the planner should know the table

    log(
      `${opts.rounds} rounds x ${opts.variants.length} variants: ${opts.warmup} s warm-up + ${opts.duration} s at ${opts.connections} connections each`,
    );
    const runs = await measure(load, servers, scratch, redis.pid, ws, opts, stopped);
    const summary = summarise(runs, opts.variants);
    const { adminUrl: _a, redisUrl: _r, variants, ...options } = opts;
    const results = {
      startedAt: startedAt.toISOString(),
      machine: await machine(scratch, loadAverageAtStart, { redis: redis.version }),
      options: { ...options, variants: variants.map((v) => v.name), notesListed: Math.min(opts.notes, 50) },
      variants: variants.map(({ name, server, path: p, what }) => ({ name, server, path: p, what })),
      summary,
      logLineInIsolation: logLine,
      runs,
    };
    const saved = saveResults('http-stack', results.startedAt, results);
    process.stdout.write(markdown(runs, summary));
    log(`results written to ${saved}`);
  } finally {
    if (ws && enclaveUrl) await signOut(enclaveUrl, ws).catch(() => {});
    await cleanUp(children, scratch, dataDir);
  }
}

await runBench(OPTIONS, loadChild, main);
