// The scheduled backup of a fleet of small tenants (jobs/scheduled-backup.ts,
// docs/BACKUP.md "Scheduled backups and restore checks") and what it does to
// the workspace requests of the people using the platform meanwhile, in one
// run, on a scratch database:
//
// - N small tenants (default 2,000) provisioned with tenancy/provision.ts, a
//   few notes each written straight into their schema;
// - the real server in a child process (`--child enclave`, as
//   bench/workspace.bench.ts does), a few people registered through it (each
//   their own workspace, 50 notes each), and a closed-loop load generator in a
//   child of its own (`--child load`): `connections` workers per person, each
//   GET /api/v1/notes with that person's session, one after the other;
// - the backup run as `enclave jobs run backup-fleet` runs it (runJobNow:
//   the fleet job's drift check in batches, then its fan-out inline, at
//   BACKUP_CONCURRENCY, each tenant's backup its own recorded job run, then
//   the prune), in this process, which stands for `enclave worker` (a
//   process apart from the server, on the same database server);
// - the p50/p99 of the workspace requests before the backup (no backup
//   running), during the whole backup, and after it (no backup running
//   again), and their ratios.
//
//   node bench/scheduled-backup.bench.ts [--tenants 2000] [--notes 3] [--concurrency 2]
//     [--people 4] [--connections 1] [--duration 20] [--warmup 3] [--fill-concurrency 8]
// Every option can also be set as BENCH_<NAME>. BENCH_DATABASE_URL: an admin
// URL that may create databases and roles; BENCH_REDIS_URL: the Redis the
// server uses. Everything runs in a scratch database dropped at the end (also
// on failure or Ctrl-C), with every tenant role made.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, statSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { loadSigner } from '../audit/signing.ts';
import { backupDir, createBackups } from '../backup/context.ts';
import type { JobCounts } from '../jobs/job.ts';
import { backupFleetJob } from '../jobs/scheduled-backup.ts';
import { type JobBase, runJobNow } from '../jobs/scheduler.ts';
import { loadConfig } from '../kernel/config.ts';
import { ident } from '../kernel/identifiers.ts';
import { createLogger } from '../kernel/logger.ts';
import { provisionTenant } from '../tenancy/provision.ts';
import { loadTenantMigrations } from '../tenancy/templates.ts';
import { createBenchDatabase, type ScratchDatabase } from '../test/helpers/database.ts';
import { type Registered, registerPerson, signOut } from './api-client.ts';
import { Child } from './children.ts';
import { saveResults } from './results.ts';
import { beginRun, benchUrls, cleanUp, machine, optionReader, runBench } from './run.ts';

const THIS_FILE = fileURLToPath(import.meta.url);
const OPTIONS = {
  tenants: '2000',
  notes: '3',
  concurrency: '2',
  people: '4',
  connections: '1',
  duration: '20',
  warmup: '3',
  'fill-concurrency': '8',
};
type OptionName = keyof typeof OPTIONS;

const log = (line: string) => process.stderr.write(`${line}\n`);
const round = (n: number, digits = 2) => Number(n.toFixed(digits));

function readOptions(values: Partial<Record<OptionName, string>>) {
  const { int } = optionReader(OPTIONS, values);
  return {
    ...benchUrls(),
    tenants: int('tenants', 1),
    notes: int('notes', 0),
    concurrency: int('concurrency', 1),
    people: int('people', 1),
    connections: int('connections', 1),
    duration: int('duration', 1),
    warmup: int('warmup', 0),
    fillConcurrency: int('fill-concurrency', 1),
  };
}
type Options = ReturnType<typeof readOptions>;

// --- the load generator (a child process) ------------------------------------

interface LoadStart {
  type: 'start';
  base: string;
  cookies: string[];
  connections: number;
}
interface LoadStop {
  type: 'stop';
}
export interface Latencies {
  seconds: number;
  requests: number;
  ok: number;
  errors: number;
  perSecond: number;
  /** ms */
  p50: number;
  p90: number;
  p99: number;
  max: number;
  firstError?: string;
}
interface LoadReply {
  type: 'result';
  id: number;
  result?: Latencies;
}

const percentile = (sorted: Float64Array, p: number) =>
  sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0;

function getNotes(agent: http.Agent, url: URL, cookie: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { agent, method: 'GET', headers: { cookie }, timeout: 30_000 }, (res) => {
      res.on('data', () => {});
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout after 30 s')));
    req.on('error', reject);
    req.end();
  });
}

/** `--child load`: on `start`, closed-loop GET /api/v1/notes per session until `stop`, which answers the latencies. */
function serveLoad(): void {
  let running: { stop(): Promise<Latencies> } | undefined;
  process.on('message', (msg: (LoadStart | LoadStop) & { id: number }) => {
    if (msg.type === 'start') {
      const agent = new http.Agent({ keepAlive: true, maxSockets: msg.cookies.length * msg.connections });
      const url = new URL('/api/v1/notes', msg.base);
      const latencies: number[] = [];
      let ok = 0;
      let errors = 0;
      let firstError: string | undefined;
      let stopping = false;
      const started = performance.now();
      const worker = async (cookie: string) => {
        while (!stopping) {
          const t0 = performance.now();
          try {
            const status = await getNotes(agent, url, cookie);
            latencies.push(performance.now() - t0);
            if (status === 200) ok++;
            else {
              errors++;
              firstError ??= `HTTP ${status}`;
            }
          } catch (err) {
            errors++;
            firstError ??= String(err);
          }
        }
      };
      const workers = Promise.all(
        msg.cookies.flatMap((c) => Array.from({ length: msg.connections }, () => worker(c))),
      );
      running = {
        stop: async () => {
          stopping = true;
          await workers;
          const seconds = (performance.now() - started) / 1000;
          agent.destroy();
          const sorted = Float64Array.from(latencies).sort();
          const r3 = (n: number) => Number(n.toFixed(3));
          return {
            seconds: r3(seconds),
            requests: latencies.length,
            ok,
            errors,
            perSecond: r3(latencies.length / seconds),
            p50: r3(percentile(sorted, 50)),
            p90: r3(percentile(sorted, 90)),
            p99: r3(percentile(sorted, 99)),
            max: r3(sorted[sorted.length - 1] ?? 0),
            ...(firstError ? { firstError } : {}),
          };
        },
      };
      process.send?.({ type: 'result', id: msg.id } satisfies LoadReply);
    } else if (msg.type === 'stop') {
      const r = running;
      running = undefined;
      if (!r) process.send?.({ type: 'result', id: msg.id } satisfies LoadReply);
      else
        void r
          .stop()
          .then((result) => process.send?.({ type: 'result', id: msg.id, result } satisfies LoadReply));
    }
  });
  process.once('disconnect', () => process.exit(0));
  process.send?.({ type: 'ready', url: '' });
}

type LoadChild = Child<LoadStart | LoadStop, LoadReply>;

async function startLoad(load: LoadChild, server: string, people: Registered[], opts: Options) {
  await load.request({
    type: 'start',
    base: server,
    cookies: people.map((p) => p.cookie),
    connections: opts.connections,
  });
}
async function stopLoad(load: LoadChild): Promise<Latencies> {
  const reply = await load.request({ type: 'stop' });
  if (!reply.result) throw new Error('the load generator was not running');
  return reply.result;
}
async function timedLoad(
  load: LoadChild,
  server: string,
  people: Registered[],
  opts: Options,
  seconds: number,
) {
  await startLoad(load, server, people, opts);
  await sleep(seconds * 1000);
  return stopLoad(load);
}

// --- set-up -----------------------------------------------------------------

async function fillTenants(scratch: ScratchDatabase, opts: Options, signal: AbortSignal): Promise<number> {
  const migrations = loadTenantMigrations();
  const started = performance.now();
  let begun = 0;
  let created = 0;
  let failure: unknown;
  const worker = async () => {
    while (begun < opts.tenants && failure === undefined && !signal.aborted) {
      begun++;
      try {
        const row = await provisionTenant(scratch.pool, { displayName: `bench tenant ${begun}` }, migrations);
        scratch.roles.add(row.role_name);
        if (opts.notes > 0)
          await scratch.pool.query(
            `INSERT INTO ${ident(row.schema_name)}.notes (title, body)
             SELECT 'note ' || i, 'a small note, number ' || i FROM generate_series(1, $1) i`,
            [opts.notes],
          );
      } catch (err) {
        failure ??= err;
        return;
      }
      if (++created % 250 === 0) log(`  ${created}/${opts.tenants} tenants`);
    }
  };
  await Promise.all(Array.from({ length: opts.fillConcurrency }, worker));
  if (failure !== undefined) throw failure;
  signal.throwIfAborted();
  return round((performance.now() - started) / 1000, 1);
}

function dirBytes(dir: string): { files: number; bytes: number } {
  let files = 0;
  let bytes = 0;
  for (const name of readdirSync(dir)) {
    if (!name.endsWith('.enclave-backup')) continue;
    files++;
    bytes += statSync(path.join(dir, name)).size;
  }
  return { files, bytes };
}

// --- report -------------------------------------------------------------------

function markdown(r: {
  tenants: number;
  backup: { seconds: number; perTenantMs: number; counts: JobCounts; archives: number; mib: number };
  before: Latencies;
  during: Latencies;
  after: Latencies;
  opts: Options;
}): string {
  const row = (name: string, l: Latencies) =>
    `| ${name} | ${l.requests} | ${l.perSecond} | ${l.p50} | ${l.p90} | ${l.p99} | ${l.max} | ${l.errors} |`;
  return [
    `Scheduled backup of ${r.tenants} tenants (BACKUP_CONCURRENCY ${r.opts.concurrency}): **${r.backup.seconds} s** ` +
      `(${r.backup.perTenantMs} ms per tenant), ${r.backup.archives} archives, ${r.backup.mib} MiB; counts ${JSON.stringify(r.backup.counts)}`,
    '',
    `GET /api/v1/notes, ${r.opts.people} signed-in people × ${r.opts.connections} connection(s), closed loop:`,
    '',
    '| phase | requests | req/s | p50 ms | p90 ms | p99 ms | max ms | errors |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    row('no backup (before)', r.before),
    row('during the scheduled backup', r.during),
    row('no backup (after)', r.after),
    '',
    `Ratio during ÷ before: p50 ${round(r.during.p50 / r.before.p50)}×, p99 ${round(r.during.p99 / r.before.p99)}×, ` +
      `throughput ${round(r.during.perSecond / r.before.perSecond)}×`,
    '',
  ].join('\n');
}

// --- main -------------------------------------------------------------------

async function main(values: Partial<Record<OptionName, string>>): Promise<void> {
  const opts = readOptions(values);
  const children: Child[] = [];
  const { stopped, startedAt, loadAverageAtStart } = beginRun(log, 'step', () => children);
  const scratch = await createBenchDatabase(opts.adminUrl, {
    poolSize: Math.max(opts.fillConcurrency, opts.concurrency * 2) + 4,
    migrate: true,
    log,
  });
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'enclave-bench-scheduled-backup-'));
  const people: Registered[] = [];
  let serverUrl = '';
  try {
    log(`scratch database ${scratch.name}: provisioning ${opts.tenants} tenants (${opts.notes} notes each)`);
    const fillSeconds = await fillTenants(scratch, opts, stopped);
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
      JOBS_IN_SERVER: 'false',
    });
    children.push(server);
    await server.ready();
    serverUrl = server.url;
    for (let i = 0; i < opts.people; i++) {
      const p = await registerPerson(server.url, scratch.pool, log);
      await scratch.pool.query(
        `INSERT INTO ${ident(p.schema)}.notes (title, body)
         SELECT 'note ' || i, repeat('words in a note ', 20) || i FROM generate_series(1, 50) i`,
      );
      people.push(p);
    }
    await scratch.pool.query('VACUUM ANALYZE');

    const load = new Child('load generator', [THIS_FILE, '--child', 'load'], {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
    }) as LoadChild;
    children.push(load);
    await load.ready();

    // The worker side: what `enclave jobs run backup-fleet` builds.
    const config = loadConfig({
      DATABASE_URL: scratch.url,
      DATA_DIR: dataDir,
      BACKUP_CONCURRENCY: String(opts.concurrency),
      LOG_LEVEL: 'warn',
    });
    const signer = await loadSigner(config, scratch.pool);
    const migrations = loadTenantMigrations(config.TENANT_MIGRATIONS_DIR);
    const base: JobBase = {
      pool: scratch.pool,
      log: createLogger({ level: 'error', stream: process.stderr }),
      config,
      clock: () => new Date(),
      backups: createBackups(config, scratch.pool, { signer, migrations }),
      signer,
      migrations,
    };

    if (opts.warmup > 0) {
      log(`warm-up ${opts.warmup} s`);
      await timedLoad(load, server.url, people, opts, opts.warmup);
    }
    log(`no backup: ${opts.duration} s of GET /api/v1/notes`);
    const before = await timedLoad(load, server.url, people, opts, opts.duration);
    log(`  p50 ${before.p50} ms, p99 ${before.p99} ms, ${before.perSecond} req/s`);
    stopped.throwIfAborted();

    const tenants = Number(
      (await scratch.pool.query("SELECT count(*)::int AS n FROM control.tenants WHERE state <> 'deleted'"))
        .rows[0].n,
    );
    log(`scheduled backup of ${tenants} tenants at BACKUP_CONCURRENCY ${opts.concurrency}, under load`);
    await startLoad(load, server.url, people, opts);
    const t0 = performance.now();
    // The load stops with the backup, whatever happened to it.
    const outcome = await runJobNow(backupFleetJob, base, stopped).then(
      (c) => ({ counts: c }),
      (error: unknown) => ({ error }),
    );
    const during = await stopLoad(load);
    if ('error' in outcome) throw outcome.error;
    const counts = outcome.counts;
    const seconds = round((performance.now() - t0) / 1000, 1);
    const archives = dirBytes(backupDir(config));
    log(`  ${seconds} s, ${JSON.stringify(counts)}; p50 ${during.p50} ms, p99 ${during.p99} ms`);
    if (counts.failed) throw new Error(`${counts.failed} backups failed`);

    log(`no backup again: ${opts.duration} s`);
    const after = await timedLoad(load, server.url, people, opts, opts.duration);
    log(`  p50 ${after.p50} ms, p99 ${after.p99} ms`);

    const runs = Number(
      (
        await scratch.pool.query(
          "SELECT count(*)::int AS n FROM control.job_runs WHERE job = 'backup-tenant' AND outcome = 'succeeded'",
        )
      ).rows[0].n,
    );
    const report = {
      tenants,
      backup: {
        seconds,
        perTenantMs: round((seconds * 1000) / Math.max(1, tenants), 1),
        counts,
        archives: archives.files,
        mib: round(archives.bytes / 2 ** 20, 1),
        recordedTenantRuns: runs,
      },
      before,
      during,
      after,
      opts,
    };
    const { adminUrl: _a, redisUrl: _r, ...options } = opts;
    const file = saveResults('scheduled-backup', startedAt.toISOString(), {
      startedAt: startedAt.toISOString(),
      machine: await machine(scratch, loadAverageAtStart),
      options,
      setup: { fillSeconds },
      ...report,
      opts: undefined,
    });
    log(`results: ${file}`);
    process.stdout.write(markdown(report));
  } finally {
    for (const p of people) await signOut(serverUrl, p).catch(() => {});
    await cleanUp(children, scratch, dataDir);
    log(`dropped ${scratch.name}`);
  }
}

await runBench(OPTIONS, serveLoad, main);
