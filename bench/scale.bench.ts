// Scale benchmark (issue 15): one database filled to N tenants (default
// 10,000, about 13 relations each) and what grows with the fleet:
// - provisioning p50/p95 beside the one-query floor (bench/provisioning.ts,
//   the same SQL as bench/tenancy.bench.ts), at ~`--small` tenants and at N;
// - GET /api/v1/notes (50 notes) p50/p99 for one tenant at ~`--small`
//   tenants, at N, and at N once every tenant has been served;
// - the server's RSS before and after requests touched every tenant (each
//   through its own API token), and after a second pass; aim <= 300 MB;
// - PostgreSQL backends of the scratch database by application_name, sampled
//   during those passes (bounded by the server's pools);
// - a fleet migration (ADD COLUMN + CREATE INDEX on notes) over all N in
//   tenants/s, a run with nothing to apply, and drift detection;
// - the catalog at N: pg_class rows, the size of pg_catalog's relations, and
//   their dead tuples and (auto)vacuum times after the fleet migration.
//
//   node bench/scale.bench.ts [--tenants 10000] [--fill-concurrency 3] [--small 10]
//     [--samples 30] [--warmup 3] [--methods enclave,raw] [--notes 50]
//     [--connections 4] [--duration 10] [--load-warmup 3] [--touch-concurrency 8]
//     [--fleet-concurrency 4] [--sample-ms 500] [--server-node-options '']
// Every option can also be set as BENCH_<NAME> (BENCH_TENANTS=300...).
// BENCH_DATABASE_URL: an admin URL that may create databases and roles
// (default postgres://postgres@127.0.0.1:5432/postgres); BENCH_REDIS_URL
// (default redis://127.0.0.1:6379).
//
// Filling: N sign-ups over HTTP would cost N argon2 hashes, so each tenant's
// person, workspace and API token are made with the project's own functions
// (provisionTenantInTransaction + insertUser + the audit event, as
// registration does, with one password hash for all; createToken), in one
// transaction each, `--fill-concurrency` at a time; only the requests go over
// HTTP. The one tenant whose list is timed is registered over HTTP (its
// session cookie drives the load: a token allows 600 requests a minute).
// Token requests are limited to 1,200 a minute per client address, so the
// passes over every tenant spread over loopback addresses (127.0.X.Y, Linux
// routes all of 127/8 to lo), at most 500 requests per address per pass.
//
// The server (`--child enclave`) and the load generator (`--child load`,
// bench/http-load.ts) are child processes of this file; the server runs at
// its default settings. The scratch database is dropped at the end with every
// tenant role it made (tenant roles are cluster-wide), also on failure or Ctrl-C.
// Results: bench/results/scale-<time>.json, and a Markdown summary on stdout.

import { randomBytes, randomInt, randomUUID } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { record } from '../kernel/audit-inbox.ts';
import { createPool, type Pool, retryingTransaction } from '../kernel/db.ts';
import { ident } from '../kernel/identifiers.ts';
import { createToken } from '../server/accounts/api-tokens.ts';
import { hashPassword } from '../server/accounts/credentials.ts';
import * as usersSql from '../server/accounts/users-sql.ts';
import { detectDrift } from '../tenancy/drift.ts';
import { migrateFleet } from '../tenancy/fleet-migrate.ts';
import { provisionTenantInTransaction } from '../tenancy/provision.ts';
import {
  DEFAULT_TENANT_MIGRATIONS_DIR,
  loadTenantMigrations,
  type TenantMigration,
} from '../tenancy/templates.ts';
import { createBenchDatabase, type ScratchDatabase } from '../test/helpers/database.ts';
import { api, registerPerson, signOut } from './api-client.ts';
import { Child, startScriptNodeFlags } from './children.ts';
import { type LoadReply, type LoadRequest, type LoadResult, serveLoad } from './http-load.ts';
import {
  checkpoint,
  type Latency,
  latency,
  METHOD_LABEL,
  METHODS,
  type Method,
  median,
  provisionSamples,
  round,
  type SampleOptions,
  timed,
} from './provisioning.ts';
import { saveResults } from './results.ts';
import { beginRun, benchUrls, cleanUp, machine, optionReader, runBench } from './run.ts';

const THIS_FILE = fileURLToPath(import.meta.url);
const log = (line: string) => process.stderr.write(`${line}\n`);
// A closed stderr or stdout (e.g. piped into `head`) must not kill the run before its cleanup.
process.stderr.on('error', () => {});
process.stdout.on('error', () => {});

// --- options ----------------------------------------------------------------

const OPTIONS = {
  tenants: '10000',
  'fill-concurrency': '3',
  small: '10',
  samples: '30',
  warmup: '3',
  methods: 'enclave,raw',
  notes: '50',
  connections: '4',
  duration: '10',
  'load-warmup': '3',
  'touch-concurrency': '8',
  'fleet-concurrency': '4',
  'sample-ms': '500',
  /** NODE_OPTIONS of the server: `start` (default) for the flags of `npm start`; `none` for Node's defaults; or flags. */
  'server-node-options': 'start',
};
type OptionName = keyof typeof OPTIONS;

/** `start`: the flags `npm start` uses; `none`: none (Node's defaults); anything else as given. */
function nodeOptionsOf(value: string): string {
  if (value === 'start') return startScriptNodeFlags();
  return value === 'none' ? '' : value;
}

function readOptions(values: Partial<Record<OptionName, string>>) {
  const { raw, int } = optionReader(OPTIONS, values);
  const methods = raw('methods')
    .split(',')
    .map((s) => s.trim()) as Method[];
  for (const m of methods)
    if (!METHODS.includes(m)) throw new Error(`--methods: unknown "${m}" (known: ${METHODS.join(', ')})`);
  const opts = {
    ...benchUrls(),
    tenants: int('tenants', 2),
    fillConcurrency: int('fill-concurrency', 1),
    small: int('small', 1),
    samples: int('samples', 1),
    warmup: int('warmup', 0),
    methods,
    notes: int('notes', 1),
    connections: int('connections', 1),
    duration: int('duration', 1),
    loadWarmup: int('load-warmup', 0),
    touchConcurrency: int('touch-concurrency', 1),
    fleetConcurrency: int('fleet-concurrency', 1),
    sampleMs: int('sample-ms', 50),
    serverNodeOptions: nodeOptionsOf(raw('server-node-options')),
  };
  if (opts.small >= opts.tenants) throw new Error('--small must be below --tenants');
  return opts;
}
type Options = ReturnType<typeof readOptions>;

// --- filling: people, workspaces and tokens without HTTP --------------------

interface Member {
  tenantId: string;
  userId: string;
  /** The API token's secret: this tenant's requests in the passes carry it. */
  secret: string;
}

/**
 * A person with a workspace and a read-only API token, as registration and the
 * token route make them: the workspace and the user in one transaction (with
 * the `account.register` event), then createToken (with `token.create`). The
 * password hash is the same for everybody: nobody signs in with it.
 */
async function member(pool: Pool, passwordHash: string, migrations: readonly TenantMigration[]) {
  const userId = randomUUID();
  const self = { actor: { type: 'user' as const, id: userId } };
  const tenant = await retryingTransaction(pool, async (client) => {
    const tenant = await provisionTenantInTransaction(client, { displayName: 'Scale Bench' }, migrations, {
      by: self,
    });
    const email = `scale.${tenant.id}@example.com`;
    await client.query(
      usersSql.insertUser({
        email,
        normalized: email,
        displayName: 'Scale Bench',
        passwordHash,
        role: 'user',
        tenantId: tenant.id,
        id: userId,
      }),
    );
    await record(client, self, {
      tenantId: tenant.id,
      action: 'account.register',
      resource: { type: 'user', id: userId },
      outcome: 'success',
      details: { role: 'user' },
    });
    return tenant;
  });
  const { secret } = await createToken(pool, userId, { name: 'scale bench', scope: 'read' }, self);
  return { member: { tenantId: tenant.id, userId, secret }, role: tenant.role_name };
}

/** Tenants made on one set of connections before they are replaced (see fill). */
const FILL_CONNECTION_TENANTS = 500;

/**
 * Adds members until `members` holds `target`, `concurrency` at a time, with
 * progress lines. The connections are replaced every FILL_CONNECTION_TENANTS
 * tenants: a backend keeps a catalog cache entry for everything it created,
 * so one that made thousands of tenants grows by hundreds of MB and slows the
 * fill down (not what a server making a tenant now and then meets).
 */
async function fill(
  scratch: ScratchDatabase,
  members: Member[],
  target: number,
  concurrency: number,
  passwordHash: string,
  migrations: readonly TenantMigration[],
  signal: AbortSignal,
): Promise<number> {
  const started = performance.now();
  const from = members.length;
  let begun = from;
  let failure: unknown;
  let last = { at: started, count: from };
  while (begun < target && failure === undefined && !signal.aborted) {
    const until = Math.min(target, begun + FILL_CONNECTION_TENANTS);
    const pool = createPool(scratch.url, concurrency, 'enclave-bench-fill');
    const worker = async () => {
      while (begun < until && failure === undefined && !signal.aborted) {
        begun++;
        try {
          const made = await member(pool, passwordHash, migrations);
          scratch.roles.add(made.role);
          members.push(made.member);
        } catch (err) {
          failure ??= err;
          return;
        }
        const now = performance.now();
        if (now - last.at >= 10_000 || members.length === target) {
          const recent = (members.length - last.count) / ((now - last.at) / 1000);
          const overall = (members.length - from) / ((now - started) / 1000);
          last = { at: now, count: members.length };
          log(
            `  filled ${members.length}/${target} tenants: ${recent.toFixed(1)} tenants/s lately, ${overall.toFixed(1)} overall, ETA ${Math.round((target - members.length) / recent)} s`,
          );
        }
      }
    };
    // Every worker has stopped before an error goes up, so cleanup never races a provisioning.
    await Promise.all(Array.from({ length: concurrency }, worker));
    await pool.end().catch(() => {});
  }
  if (failure !== undefined) throw failure;
  signal.throwIfAborted();
  return (performance.now() - started) / 1000;
}

// --- the list route under load -------------------------------------------------

type LoadChild = Child<Omit<LoadRequest, 'id'>, LoadReply>;

interface ListRun {
  when: string;
  tenantsInDatabase: number;
  requests: number;
  rps: number;
  latencyMs: LoadResult['latency'];
  statuses: Record<string, number>;
  errors: number;
}

async function listRun(
  load: LoadChild,
  base: string,
  cookie: string,
  opts: Options,
  when: string,
  tenantsInDatabase: number,
): Promise<ListRun> {
  const request = {
    type: 'load' as const,
    base,
    connections: opts.connections,
    headers: { cookie },
    plan: { kind: 'get' as const, path: '/api/v1/notes' },
  };
  const go = async (durationS: number) => {
    const reply = await load.request({ ...request, durationS });
    if (reply.error || !reply.result) throw new Error(`load generator: ${reply.error}`);
    return reply.result;
  };
  if (opts.loadWarmup > 0) await go(opts.loadWarmup);
  const r = await go(opts.duration);
  if (r.ok === 0) throw new Error(`GET /api/v1/notes: no request succeeded (${r.firstError})`);
  const run: ListRun = {
    when,
    tenantsInDatabase,
    requests: r.requests,
    rps: round(r.ok / r.durationS, 1),
    latencyMs: r.latency,
    statuses: r.statuses,
    errors: r.errors,
  };
  log(
    `  list (${when}): ${run.rps} req/s, p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms${r.ok < r.requests ? `, ${r.requests - r.ok} not ok: ${r.firstError}` : ''}`,
  );
  return run;
}

// --- memory and backends ----------------------------------------------------

/** Fields of /proc/<pid>/status in MB (VmRSS, VmHWM, RssAnon...), or undefined once the process is gone. */
function procStatus(pid: number): Record<string, number> | undefined {
  try {
    const out: Record<string, number> = {};
    for (const line of readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
      const m = /^(\w+):\s+(\d+) kB$/.exec(line);
      if (m) out[m[1] as string] = round(Number(m[2]) / 1024, 1);
    }
    return out;
  } catch {
    return undefined;
  }
}

interface MemoryPoint {
  when: string;
  serverRssMB: number;
  serverPeakRssMB: number;
  /** V8's heap in use and reserved, from the server's own /metrics (prom-client's default metrics). */
  heapUsedMB: number;
  heapTotalMB: number;
  /** Memory of C++ objects bound to JavaScript ones (Buffers...), outside the heap. */
  externalMB: number;
  /** Private memory (RssAnon) of the server's PostgreSQL backends: their catalog caches live there. */
  backends: number;
  backendsAnonMBSum: number;
  backendsAnonMBMax: number;
}

/** The server's backends: every client backend of the scratch database but this benchmark's own. */
async function serverBackends(scratch: ScratchDatabase): Promise<{ pid: number; app: string }[]> {
  const { rows } = await scratch.pool.query<{ pid: number; app: string }>(
    `SELECT pid, application_name AS app FROM pg_stat_activity
      WHERE datname = $1 AND backend_type = 'client backend' AND application_name NOT LIKE 'enclave-bench%'`,
    [scratch.name],
  );
  return rows;
}

/** A value of the server's /metrics in MB (METRICS_TOKEN lets the benchmark read it like a scraper). */
async function serverMetricsMB(server: Child, metricsToken: string, names: string[]): Promise<number[]> {
  const res = await fetch(new URL('/metrics', server.url), {
    headers: { authorization: `Bearer ${metricsToken}` },
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`GET /metrics answered ${res.status}: ${text.slice(0, 200)}`);
  return names.map((name) => {
    const m = new RegExp(`^enclave_${name} (\\S+)$`, 'm').exec(text);
    return m ? round(Number(m[1]) / 2 ** 20, 1) : Number.NaN;
  });
}

async function memoryPoint(
  scratch: ScratchDatabase,
  server: Child,
  metricsToken: string,
  when: string,
): Promise<MemoryPoint> {
  const [heapUsedMB = 0, heapTotalMB = 0, externalMB = 0] = await serverMetricsMB(server, metricsToken, [
    'nodejs_heap_size_used_bytes',
    'nodejs_heap_size_total_bytes',
    'nodejs_external_memory_bytes',
  ]);
  const s = procStatus(server.pid);
  const anon = (await serverBackends(scratch))
    .map((b) => procStatus(b.pid)?.RssAnon)
    .filter((v): v is number => v !== undefined);
  const point = {
    when,
    serverRssMB: s?.VmRSS ?? 0,
    serverPeakRssMB: s?.VmHWM ?? 0,
    heapUsedMB,
    heapTotalMB,
    externalMB,
    backends: anon.length,
    backendsAnonMBSum: round(
      anon.reduce((a, b) => a + b, 0),
      1,
    ),
    backendsAnonMBMax: round(Math.max(0, ...anon), 1),
  };
  log(
    `  memory (${when}): server RSS ${point.serverRssMB} MB (peak ${point.serverPeakRssMB}, V8 heap ${heapUsedMB} used of ${heapTotalMB}, external ${externalMB}), ${point.backends} backends, private ${point.backendsAnonMBSum} MB (max ${point.backendsAnonMBMax})`,
  );
  return point;
}

/**
 * Samples pg_stat_activity for the scratch database every `everyMs` until
 * stopped: the most backends seen per application_name, and in all.
 */
function sampleBackends(scratch: ScratchDatabase, everyMs: number) {
  const most: Record<string, number> = {};
  let mostTotal = 0;
  let samples = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      const { rows } = await scratch.pool.query<{ app: string; n: number }>(
        `SELECT coalesce(nullif(application_name, ''), '(none)') AS app, count(*)::int AS n
           FROM pg_stat_activity
          WHERE datname = $1 AND backend_type = 'client backend' AND pid <> pg_backend_pid()
          GROUP BY 1`,
        [scratch.name],
      );
      samples++;
      let total = 0;
      for (const r of rows) {
        most[r.app] = Math.max(most[r.app] ?? 0, r.n);
        if (!r.app.startsWith('enclave-bench')) total += r.n;
      }
      mostTotal = Math.max(mostTotal, total);
      await sleep(everyMs);
    }
  })();
  return async () => {
    running = false;
    await loop;
    return { samples, mostByApplication: most, mostOfServer: mostTotal };
  };
}

// --- a request to every tenant ----------------------------------------------

/** Token requests per loopback address in one pass: below the 1,200 a minute allowed per address. */
const PER_ADDRESS = 500;

interface Pass {
  pass: number;
  requests: number;
  seconds: number;
  rps: number;
  statuses: Record<string, number>;
  errors: number;
  firstError?: string;
  latencyMs: { p50: number; p99: number; max: number };
}

function get(agent: http.Agent, url: URL, secret: string, localAddress: string) {
  return new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = http.request(
      url,
      { agent, localAddress, headers: { authorization: `Bearer ${secret}` }, timeout: 30_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout after 30 s')));
    req.on('error', reject);
    req.end();
  });
}

/** GET /api/v1/notes once for every member, with its own token, `concurrency` at a time. */
async function touchAll(
  base: string,
  members: readonly Member[],
  network: string,
  concurrency: number,
  pass: number,
  signal: AbortSignal,
): Promise<Pass> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const url = new URL('/api/v1/notes', base);
  const statuses: Record<string, number> = {};
  const ms: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  let next = 0;
  let lastLine = performance.now();
  const started = performance.now();
  const worker = async () => {
    while (next < members.length && !signal.aborted) {
      const i = next++;
      const address = `${network}.${1 + Math.floor(i / PER_ADDRESS)}`;
      const t0 = performance.now();
      try {
        const res = await get(agent, url, (members[i] as Member).secret, address);
        ms.push(performance.now() - t0);
        statuses[res.status] = (statuses[res.status] ?? 0) + 1;
        if (res.status !== 200) firstError ??= `${res.status}: ${res.text.slice(0, 300)}`;
      } catch (err) {
        errors++;
        firstError ??= String(err);
      }
      if (performance.now() - lastLine >= 10_000) {
        lastLine = performance.now();
        const rate = ms.length / ((lastLine - started) / 1000);
        log(
          `  pass ${pass}: ${ms.length}/${members.length} tenants, ${rate.toFixed(0)} req/s, ETA ${Math.round((members.length - ms.length) / rate)} s`,
        );
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  agent.destroy();
  signal.throwIfAborted();
  const seconds = (performance.now() - started) / 1000;
  const result: Pass = {
    pass,
    requests: ms.length + errors,
    seconds: round(seconds),
    rps: round(ms.length / seconds, 1),
    statuses,
    errors,
    ...(firstError ? { firstError } : {}),
    latencyMs: ms.length
      ? { p50: round(median(ms)), p99: round(latency(ms).p99), max: round(Math.max(...ms)) }
      : { p50: 0, p99: 0, max: 0 },
  };
  log(
    `  pass ${pass}: ${result.requests} requests in ${result.seconds} s (${result.rps} req/s), statuses ${JSON.stringify(statuses)}${errors ? `, ${errors} errors` : ''}`,
  );
  if (firstError) log(`  first failure: ${firstError}`);
  return result;
}

// --- the catalog --------------------------------------------------------------

const CATALOGS = [
  'pg_class',
  'pg_attribute',
  'pg_depend',
  'pg_index',
  'pg_type',
  'pg_constraint',
  'pg_attrdef',
  'pg_trigger',
  'pg_proc',
  'pg_namespace',
  'pg_statistic',
  'pg_init_privs',
  'pg_shdepend',
  'pg_authid',
  'pg_auth_members',
];

async function catalog(pool: Pool, when: string) {
  // Statistics reach the views a moment after the transactions that made them.
  await sleep(1000);
  const one = async <T>(text: string, values: unknown[] = []) =>
    (await pool.query<T & pg.QueryResultRow>(text, values)).rows;
  const [counts] = await one<{ pg_class: number; schemas: number; db_mb: number; catalog_mb: number }>(
    `SELECT (SELECT count(*)::int FROM pg_class) AS pg_class,
            (SELECT count(*)::int FROM pg_namespace WHERE nspname LIKE 't\\_%') AS schemas,
            round(pg_database_size(current_database()) / 1048576.0, 1)::float AS db_mb,
            round((SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c
                    WHERE c.relnamespace = 'pg_catalog'::regnamespace AND c.relkind = 'r') / 1048576.0, 1)::float AS catalog_mb`,
  );
  const relations = await one<{
    relname: string;
    rows: number;
    total_mb: number;
    n_dead_tup: number;
    last_vacuum: Date | null;
    last_autovacuum: Date | null;
    last_autoanalyze: Date | null;
  }>(
    `SELECT c.relname, s.n_live_tup::int AS rows,
            round(pg_total_relation_size(c.oid) / 1048576.0, 1)::float AS total_mb,
            s.n_dead_tup::int AS n_dead_tup, s.last_vacuum, s.last_autovacuum, s.last_autoanalyze
       FROM pg_class c JOIN pg_stat_sys_tables s ON s.relid = c.oid
      WHERE c.relnamespace = 'pg_catalog'::regnamespace AND c.relname = ANY($1)
      ORDER BY pg_total_relation_size(c.oid) DESC`,
    [CATALOGS],
  );
  const [settings] = await one<{ autovacuum: string }>(`SELECT current_setting('autovacuum') AS autovacuum`);
  return {
    when,
    pgClassRows: counts?.pg_class ?? 0,
    tenantSchemas: counts?.schemas ?? 0,
    databaseMB: counts?.db_mb ?? 0,
    pgCatalogMB: counts?.catalog_mb ?? 0,
    autovacuum: settings?.autovacuum ?? '',
    relations: relations.map((r) => ({
      relname: r.relname,
      rows: r.rows,
      totalMB: r.total_mb,
      deadTuples: r.n_dead_tup,
      lastVacuum: r.last_vacuum?.toISOString() ?? null,
      lastAutovacuum: r.last_autovacuum?.toISOString() ?? null,
      lastAutoanalyze: r.last_autoanalyze?.toISOString() ?? null,
    })),
  };
}
type Catalog = Awaited<ReturnType<typeof catalog>>;

/**
 * What autovacuum would have done during the fill (it may be off on a test
 * cluster): the control plane and the catalogs vacuumed and analysed, so that
 * the measurements at N do not pay for a fill-sized backlog.
 */
async function vacuumAfterFill(pool: Pool): Promise<number> {
  const { rows } = await pool.query<{ name: string }>(
    `SELECT format('%I.%I', n.nspname, c.relname) AS name FROM pg_class c
       JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname IN ('control', 'pg_catalog') AND c.relkind = 'r'`,
  );
  const { ms } = await timed(async () => {
    for (const r of rows) await pool.query(`VACUUM (ANALYZE) ${r.name}`);
  });
  return ms / 1000;
}

// --- fleet migration ----------------------------------------------------------

/** The extra template: a column and an index on notes, as a real feature would add. */
const EXTRA_MIGRATION = `ALTER TABLE {{schema}}.notes ADD COLUMN pinned boolean NOT NULL DEFAULT false;
CREATE INDEX notes_pinned_idx ON {{schema}}.notes (pinned, updated_at DESC);
`;

async function fleet(pool: Pool, migrationsDir: string, opts: Options, signal: AbortSignal) {
  const version = loadTenantMigrations(migrationsDir).length + 1;
  writeFileSync(
    path.join(migrationsDir, `${String(version).padStart(4, '0')}_scale_pinned_notes.sql`),
    EXTRA_MIGRATION,
  );
  const migrations = loadTenantMigrations(migrationsDir);
  await checkpoint(pool, log);
  let lastLine = performance.now();
  const summary = await migrateFleet(pool, migrations, {
    concurrency: opts.fleetConcurrency,
    signal,
    onProgress: (p) => {
      if (performance.now() - lastLine < 10_000 && p.done !== p.total) return;
      lastLine = performance.now();
      log(`  migrated ${p.done}/${p.total} tenants${p.failed ? `, ${p.failed} failed` : ''}`);
    },
  });
  signal.throwIfAborted();
  if (summary.failed !== 0 || summary.migrated !== summary.pending)
    throw new Error(
      `fleet migration: ${summary.migrated} migrated, ${summary.failed} failed of ${summary.pending}: ${summary.outcomes.find((o) => o.error)?.error}`,
    );
  const seconds = summary.durationMs / 1000;
  const noop = await migrateFleet(pool, migrations, { concurrency: opts.fleetConcurrency, signal });
  if (noop.pending !== 0) throw new Error(`nothing-to-apply run found ${noop.pending} pending tenants`);
  const drift = await timed(() => detectDrift(pool, migrations));
  const drifted = drift.result.filter((t) => t.differences.length > 0).length;
  const result = {
    migration: migrations.at(-1)?.name ?? '',
    concurrency: opts.fleetConcurrency,
    tenants: summary.migrated,
    seconds: round(seconds),
    tenantsPerSecond: round(summary.migrated / seconds, 1),
    tenantMsP50: round(median(summary.outcomes.map((o) => o.durationMs))),
    tenantMsP95: latency(summary.outcomes.map((o) => o.durationMs)).p95,
    noopSeconds: round(noop.durationMs / 1000, 3),
    drift: { seconds: round(drift.ms / 1000), checked: drift.result.length, drifted },
    loadAverage1m: round(os.loadavg()[0] ?? 0),
  };
  log(
    `  fleet: ${result.tenants} tenants in ${result.seconds} s (${result.tenantsPerSecond}/s); nothing to apply ${result.noopSeconds} s; drift ${result.drift.seconds} s (${drifted} drifted)`,
  );
  return result;
}

// --- report -------------------------------------------------------------------

interface ProvisionAt {
  tenantsInDatabase: number;
  latencyMs: Partial<Record<Method, Latency>>;
  enclaveToFloor: { p50: number; p95: number } | null;
  loadAverage1m: number;
}

/**
 * Provisioning samples on fresh connections for both sides: a backend that
 * ran the fill carries a catalog cache of every tenant it touched, which
 * would slow whichever side drew it (found by bench/tenancy.bench.ts).
 */
async function sampleProvisioning(
  scratch: ScratchDatabase,
  migrations: readonly TenantMigration[],
  opts: Omit<SampleOptions, 'signal'> & { signal: AbortSignal },
): Promise<Record<Method, number[]>> {
  const pool = createPool(scratch.url, 2, 'enclave-bench-provision');
  const raw = new pg.Client({ connectionString: scratch.url, application_name: 'enclave-bench-raw' });
  try {
    await raw.connect();
    return await provisionSamples({ ...scratch, pool }, raw, migrations, opts);
  } finally {
    await raw.end().catch(() => {});
    await pool.end().catch(() => {});
  }
}

function provisionAt(
  tenantsInDatabase: number,
  samples: Record<Method, number[]>,
  methods: readonly Method[],
) {
  const l: Partial<Record<Method, Latency>> = {};
  for (const m of methods) l[m] = latency(samples[m]);
  const e = l.enclave;
  const f = l.raw;
  const at: ProvisionAt = {
    tenantsInDatabase,
    latencyMs: l,
    enclaveToFloor: e && f ? { p50: round(e.p50 / f.p50), p95: round(e.p95 / f.p95) } : null,
    loadAverage1m: round(os.loadavg()[0] ?? 0),
  };
  log(
    `  provisioning at ${tenantsInDatabase} tenants: ${methods.map((m) => `${m} p50 ${l[m]?.p50} p95 ${l[m]?.p95} ms`).join('; ')}`,
  );
  return at;
}

type Results = {
  options: Omit<Options, 'adminUrl' | 'redisUrl'>;
  timings: Record<string, number>;
  provisioning: ProvisionAt[];
  list: ListRun[];
  memory: MemoryPoint[];
  passes: Pass[];
  backends: Awaited<ReturnType<ReturnType<typeof sampleBackends>>> & { poolBound: number };
  fleet: Awaited<ReturnType<typeof fleet>>;
  catalog: Catalog[];
  machine: Awaited<ReturnType<typeof machine>>;
};

function markdown(r: Results): string {
  const lines: string[] = [];
  const row = (cells: (string | number | null | undefined)[]) => lines.push(`| ${cells.join(' | ')} |`);
  const m = r.machine;
  lines.push(
    `# Scale: ${r.options.tenants} tenants`,
    '',
    `${m.cpus} CPUs, ${m.memoryGiB} GiB, Node ${m.node}, ${String(m.postgres).split(' on ')[0]}; load ${m.loadAverageAtStart.join(' ')} at start, ${m.loadAverageAtEnd.join(' ')} at end; server NODE_OPTIONS: ${r.options.serverNodeOptions || '(none)'}.`,
    '',
    `Fill: ${r.options.tenants} tenants (person, workspace, API token each) at concurrency ${r.options.fillConcurrency} in ${r.timings.fillSeconds} s (${round(r.options.tenants / (r.timings.fillSeconds || 1), 1)} tenants/s); whole run ${r.timings.totalSeconds} s.`,
    '',
    `## Provisioning (ms, ${r.options.samples} samples per method, interleaved)`,
    '',
  );
  row(['tenants in database', 'method', 'p50', 'p95', 'p99', 'max', 'enclave / floor p50', 'p95']);
  row(['---:', '---', '---:', '---:', '---:', '---:', '---:', '---:']);
  for (const p of r.provisioning)
    for (const [method, l] of Object.entries(p.latencyMs) as [Method, Latency][])
      row([
        p.tenantsInDatabase,
        METHOD_LABEL[method],
        l.p50,
        l.p95,
        l.p99,
        l.max,
        method === 'enclave' ? p.enclaveToFloor?.p50 : '',
        method === 'enclave' ? p.enclaveToFloor?.p95 : '',
      ]);
  lines.push(
    '',
    `## GET /api/v1/notes, one tenant, ${r.options.notes} notes (${r.options.connections} connections, ${r.options.duration} s)`,
    '',
  );
  row(['when', 'tenants in database', 'req/s', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'not ok']);
  row(['---', '---:', '---:', '---:', '---:', '---:', '---:', '---:']);
  for (const l of r.list)
    row([
      l.when,
      l.tenantsInDatabase,
      l.rps,
      l.latencyMs.p50,
      l.latencyMs.p90,
      l.latencyMs.p99,
      l.latencyMs.max,
      l.errors + Object.values(l.statuses).reduce((a, b) => a + b, 0),
    ]);
  lines.push('', '## Server memory and PostgreSQL backends', '');
  row([
    'when',
    'server RSS MB',
    'peak RSS MB',
    'V8 heap used MB',
    'heap total MB',
    'external MB',
    'server backends',
    'their private MB (sum)',
    'max',
  ]);
  row(['---', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:']);
  for (const p of r.memory)
    row([
      p.when,
      p.serverRssMB,
      p.serverPeakRssMB,
      p.heapUsedMB,
      p.heapTotalMB,
      p.externalMB,
      p.backends,
      p.backendsAnonMBSum,
      p.backendsAnonMBMax,
    ]);
  const last = r.memory.at(-1);
  lines.push(
    '',
    `Aim: server RSS <= 300 MB after every tenant was served: ${last && Math.max(...r.memory.map((p) => p.serverPeakRssMB)) <= 300 ? 'met' : 'MISSED'} (peak ${Math.max(...r.memory.map((p) => p.serverPeakRssMB))} MB).`,
    '',
  );
  row(['pass over every tenant', 'requests', 'seconds', 'req/s', 'p50 ms', 'p99 ms', 'statuses']);
  row(['---:', '---:', '---:', '---:', '---:', '---:', '---']);
  for (const p of r.passes)
    row([
      p.pass,
      p.requests,
      p.seconds,
      p.rps,
      p.latencyMs.p50,
      p.latencyMs.p99,
      `${JSON.stringify(p.statuses)}${p.errors ? `, ${p.errors} errors` : ''}`,
    ]);
  lines.push(
    '',
    `Backends of the scratch database during the passes (${r.backends.samples} samples, every ${r.options.sampleMs} ms), most at once: ${Object.entries(
      r.backends.mostByApplication,
    )
      .map(([app, n]) => `${app} ${n}`)
      .join(
        ', ',
      )}; the server's in all ${r.backends.mostOfServer} (its pools allow ${r.backends.poolBound}): ${r.backends.mostOfServer <= r.backends.poolBound ? 'bounded' : 'OVER THE POOLS'}.`,
    '',
    `## Fleet migration (${r.fleet.tenants} tenants, ADD COLUMN + CREATE INDEX on notes, concurrency ${r.fleet.concurrency})`,
    '',
  );
  row(['operation', 'seconds', 'tenants/s', 'per tenant p50 ms', 'p95 ms']);
  row(['---', '---:', '---:', '---:', '---:']);
  row([
    r.fleet.migration,
    r.fleet.seconds,
    r.fleet.tenantsPerSecond,
    r.fleet.tenantMsP50,
    r.fleet.tenantMsP95,
  ]);
  row(['nothing to apply', r.fleet.noopSeconds, '', '', '']);
  row([
    `detectDrift (${r.fleet.drift.drifted} of ${r.fleet.drift.checked} drifted)`,
    r.fleet.drift.seconds,
    '',
    '',
    '',
  ]);
  lines.push('', '## Catalog', '');
  row(['when', 'pg_class rows', 'tenant schemas', 'database MB', 'pg_catalog MB', 'autovacuum']);
  row(['---', '---:', '---:', '---:', '---:', '---']);
  for (const c of r.catalog)
    row([c.when, c.pgClassRows, c.tenantSchemas, c.databaseMB, c.pgCatalogMB, c.autovacuum]);
  const before = r.catalog[0];
  const after = r.catalog.at(-1);
  if (after) {
    const deadBefore = new Map(before?.relations.map((c) => [c.relname, c.deadTuples]));
    lines.push('', `${after.when} (autovacuum ${after.autovacuum}):`, '');
    row([
      'catalog',
      'rows',
      'MB',
      'dead tuples before',
      'dead tuples after',
      'last vacuum',
      'last autovacuum',
    ]);
    row(['---', '---:', '---:', '---:', '---:', '---', '---']);
    for (const c of after.relations)
      row([
        c.relname,
        c.rows,
        c.totalMB,
        deadBefore.get(c.relname) ?? '',
        c.deadTuples,
        c.lastVacuum ?? '-',
        c.lastAutovacuum ?? '-',
      ]);
  }
  return `${lines.join('\n')}\n`;
}

// --- main ---------------------------------------------------------------------

async function main(values: Partial<Record<OptionName, string>>): Promise<void> {
  const opts = readOptions(values);
  const children: Child[] = [];
  const { stopped, startedAt, loadAverageAtStart } = beginRun(log, 'step', () => children);
  const began = performance.now();
  const timings: Record<string, number> = {};
  const step = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    stopped.throwIfAborted();
    const { ms, result } = await timed(fn);
    timings[name] = round(ms / 1000, 1);
    return result;
  };
  const scratch = await createBenchDatabase(opts.adminUrl, {
    poolSize: Math.max(4, opts.fleetConcurrency + 1),
    migrate: true,
    log,
  });
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'enclave-bench-scale-'));
  // The templates the server, the fill and the fleet migration read: a copy, so the extra one stays here.
  const migrationsDir = path.join(dataDir, 'tenant-migrations');
  cpSync(DEFAULT_TENANT_MIGRATIONS_DIR, migrationsDir, { recursive: true });
  let probe: { cookie: string; csrf: string } | undefined;
  let serverUrl = '';
  try {
    const migrations = loadTenantMigrations(migrationsDir);
    const metricsToken = randomBytes(32).toString('hex');
    const server = new Child('enclave', [THIS_FILE, '--child', 'enclave'], {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      NODE_ENV: 'production',
      DATABASE_URL: scratch.url,
      REDIS_URL: opts.redisUrl,
      DATA_DIR: dataDir,
      SESSION_SECRET: randomBytes(32).toString('hex'),
      // Only lets this benchmark read the server's /metrics (its heap) like a scraper.
      METRICS_TOKEN: metricsToken,
      TENANT_MIGRATIONS_DIR: migrationsDir,
      ...(opts.serverNodeOptions ? { NODE_OPTIONS: opts.serverNodeOptions } : {}),
    });
    children.push(server);
    await server.ready();
    serverUrl = server.url;
    const load = new Child('load generator', [THIS_FILE, '--child', 'load'], {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
    }) as LoadChild;
    children.push(load);
    await load.ready();
    log(`scratch database ${scratch.name}; server ${server.url} at its default settings`);
    const memory: MemoryPoint[] = [await memoryPoint(scratch, server, metricsToken, 'started, no requests')];

    // The probe: one person signed up over HTTP, whose list is timed at every size.
    log(`registering the probe person and writing ${opts.notes} notes through the API`);
    const person = await registerPerson(server.url, scratch.pool, log);
    probe = person;
    for (let i = 1; i <= opts.notes; i++) {
      const res = await api(server.url, 'POST', '/api/v1/notes', {
        cookie: person.cookie,
        csrf: person.csrf,
        body: {
          title: `Note ${i}`,
          body: `${'Some words in the body of a benchmark note. '.repeat(6)}#${i}`,
        },
      });
      if (res.status !== 201) throw new Error(`POST /api/v1/notes answered ${res.status}: ${res.text}`);
    }
    const { rows: probeUser } = await scratch.pool.query<{ id: string }>(
      'SELECT id FROM control.users WHERE tenant_id = $1',
      [person.tenantId],
    );
    const probeId = probeUser[0]?.id as string;
    const members: Member[] = [
      {
        tenantId: person.tenantId,
        userId: probeId,
        secret: (await createToken(scratch.pool, probeId, { name: 'scale bench', scope: 'read' })).secret,
      },
    ];
    const passwordHash = await hashPassword(randomBytes(18).toString('base64url'));
    timings.fillSmallSeconds = round(
      await fill(scratch, members, opts.small, opts.fillConcurrency, passwordHash, migrations, stopped),
      1,
    );
    await scratch.pool.query(`ANALYZE ${ident(person.schema)}.notes`);
    const workDir = path.join(dataDir, 'provisioning');
    mkdirSync(workDir);
    const sampleOpts = {
      warmup: opts.warmup,
      samples: opts.samples,
      methods: opts.methods,
      workDir,
      signal: stopped,
    };

    log(`at ${members.length} tenants: provisioning samples, then the list under load`);
    const provisioning = [
      provisionAt(
        members.length,
        await step('provisionSmallSeconds', () => sampleProvisioning(scratch, migrations, sampleOpts)),
        opts.methods,
      ),
    ];
    const list = [await listRun(load, server.url, person.cookie, opts, 'few tenants', members.length)];
    memory.push(
      await memoryPoint(scratch, server, metricsToken, `${members.length} tenants, after the list load`),
    );

    log(`filling to ${opts.tenants} tenants at concurrency ${opts.fillConcurrency}`);
    timings.fillSeconds = round(
      await fill(scratch, members, opts.tenants, opts.fillConcurrency, passwordHash, migrations, stopped),
      1,
    );
    timings.vacuumSeconds = round(await vacuumAfterFill(scratch.pool), 1);
    await checkpoint(scratch.pool, log);

    log(`at ${members.length} tenants: provisioning samples, the list, then every tenant twice`);
    provisioning.push(
      provisionAt(
        members.length,
        await step('provisionLargeSeconds', () => sampleProvisioning(scratch, migrations, sampleOpts)),
        opts.methods,
      ),
    );
    list.push(
      await listRun(load, server.url, person.cookie, opts, 'all tenants, most never served', members.length),
    );
    memory.push(await memoryPoint(scratch, server, metricsToken, 'before the passes'));
    const stopSampling = sampleBackends(scratch, opts.sampleMs);
    const network = `127.0.${randomInt(20, 250)}`;
    const passes: Pass[] = [];
    let backends: Awaited<ReturnType<typeof stopSampling>>;
    try {
      passes.push(
        await step('pass1Seconds', () =>
          touchAll(server.url, members, network, opts.touchConcurrency, 1, stopped),
        ),
      );
      memory.push(await memoryPoint(scratch, server, metricsToken, 'after a request to every tenant'));
      passes.push(
        await step('pass2Seconds', () =>
          touchAll(server.url, members, network, opts.touchConcurrency, 2, stopped),
        ),
      );
      memory.push(await memoryPoint(scratch, server, metricsToken, 'after a second pass'));
    } finally {
      backends = await stopSampling();
    }
    list.push(
      await listRun(load, server.url, person.cookie, opts, 'all tenants, every one served', members.length),
    );
    memory.push(await memoryPoint(scratch, server, metricsToken, 'after the last list load'));
    // The server's pools at its defaults (server/start.ts): the ORM's DB_POOL_SIZE (10), the control
    // pool (half of it, at least 2; also the direct pool without DIRECT_DATABASE_URL), pg-boss (3).
    const poolBound = 10 + 5 + 3;
    await signOut(server.url, person).catch(() => {});
    probe = undefined;
    await server.stop();

    // Just before the migration, so that the dead tuples after it are the migration's (and the samples').
    const catalogs: Catalog[] = [
      await catalog(scratch.pool, `${opts.tenants} tenants, before the fleet migration`),
    ];
    log(`fleet migration over ${members.length} tenants at concurrency ${opts.fleetConcurrency}`);
    const fleetResult = await step('fleetSeconds', () => fleet(scratch.pool, migrationsDir, opts, stopped));
    catalogs.push(await catalog(scratch.pool, 'after the fleet migration'));

    timings.totalSeconds = round((performance.now() - began) / 1000, 1);
    const { adminUrl: _a, redisUrl: _r, ...options } = opts;
    const results = {
      startedAt: startedAt.toISOString(),
      machine: await machine(scratch, loadAverageAtStart),
      options,
      timings,
      provisioning,
      list,
      memory,
      passes,
      backends: { ...backends, poolBound },
      fleet: fleetResult,
      catalog: catalogs,
    };
    const saved = saveResults('scale', results.startedAt, results);
    process.stdout.write(markdown(results));
    log(`results written to ${saved}`);
  } finally {
    if (probe && serverUrl) await signOut(serverUrl, probe).catch(() => {});
    const { ms } = await timed(() => cleanUp(children, scratch, dataDir));
    log(`clean-up took ${round(ms / 1000, 1)} s`);
  }
}

await runBench(OPTIONS, serveLoad, main);
