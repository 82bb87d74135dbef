// Tenancy benchmark: provisioning latency next to its floor (the same SQL sent
// by psql, and in one query on an open connection), fleet migration over a
// full fleet at several concurrencies, a rollout with nothing to apply, and
// drift detection. Everything runs in a scratch database that is dropped at
// the end, with every tenant role it created, also when a step fails.
//
//   node bench/tenancy.bench.ts [--tenants 2000] [--samples 100] [--warmup 5]
//     [--fill-concurrency 4] [--concurrency 1,2,4,8] [--fleet-rounds 2] [--noop-repeats 5] [--drift-repeats 3]
// Every option can also be set as BENCH_<NAME> (BENCH_TENANTS=500, BENCH_FILL_CONCURRENCY=2...).
// BENCH_DATABASE_URL: an admin URL that may create databases and roles.

import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { createPool, type Pool } from '../kernel/db.ts';
import { detectDrift } from '../tenancy/drift.ts';
import { migrateFleet } from '../tenancy/fleet-migrate.ts';
import { provisionTenant } from '../tenancy/provision.ts';
import {
  DEFAULT_TENANT_MIGRATIONS_DIR,
  loadTenantMigrations,
  type TenantMigration,
} from '../tenancy/templates.ts';
import { createBenchDatabase, type ScratchDatabase } from '../test/helpers/database.ts';
import {
  checkpointCount,
  checkpoint as checkpointWith,
  type Latency,
  latency,
  METHOD_LABEL,
  METHODS,
  type Method,
  median,
  round,
  provisionSamples as sampleProvisioning,
  timed,
} from './provisioning.ts';

// --- options ----------------------------------------------------------------

const OPTIONS = {
  tenants: 2000,
  samples: 100,
  warmup: 5,
  'fill-concurrency': 4,
  concurrency: '1,2,4,8',
  'fleet-rounds': 2,
  'noop-repeats': 5,
  'drift-repeats': 3,
};
type OptionName = keyof typeof OPTIONS;

function readOptions() {
  const { values } = parseArgs({
    options: Object.fromEntries(Object.keys(OPTIONS).map((k) => [k, { type: 'string' as const }])),
  });
  const raw = (name: OptionName) =>
    values[name] ?? process.env[`BENCH_${name.toUpperCase().replaceAll('-', '_')}`] ?? String(OPTIONS[name]);
  const int = (name: OptionName, min: number) => {
    const n = Number(raw(name));
    if (!Number.isInteger(n) || n < min)
      throw new Error(`--${name} must be an integer >= ${min}, got ${raw(name)}`);
    return n;
  };
  const concurrency = raw('concurrency')
    .split(',')
    .map((s) => Number(s.trim()));
  if (concurrency.some((c) => !Number.isInteger(c) || c < 1)) throw new Error('--concurrency: e.g. 1,2,4,8');
  return {
    url: process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
    tenants: int('tenants', 1),
    samples: int('samples', 1),
    warmup: int('warmup', 0),
    fillConcurrency: int('fill-concurrency', 1),
    concurrency,
    fleetRounds: int('fleet-rounds', 1),
    noopRepeats: int('noop-repeats', 1),
    driftRepeats: int('drift-repeats', 1),
  };
}
type Options = ReturnType<typeof readOptions>;

// --- small helpers ----------------------------------------------------------

const log = (line: string) => process.stderr.write(`${line}\n`);

/** Ctrl-C stops at the next step boundary, so that the cleanup in main() still runs. */
const stop = new AbortController();
process.once('SIGINT', () => {
  log('interrupted: stopping after the current step, then cleaning up');
  stop.abort(new Error('interrupted'));
});
// --- provisioning and its floor ---------------------------------------------

/**
 * Provisioning samples at the current fleet size: every method, interleaved (bench/provisioning.ts).
 * Both sides get fresh connections for each size: a backend that ran the fill or VACUUM ANALYZE
 * carries a catalog cache of 100+ MB at 2,000 tenants, which slowed whichever side drew it.
 */
async function provisionSamples(
  scratch: ScratchDatabase,
  migrations: readonly TenantMigration[],
  opts: Options,
  workDir: string,
): Promise<Record<Method, number[]>> {
  const pool = createPool(scratch.url, 2, 'enclave-bench-provision');
  const raw = new pg.Client({ connectionString: scratch.url, application_name: 'enclave-bench-raw' });
  try {
    await raw.connect();
    return await sampleProvisioning({ ...scratch, pool }, raw, migrations, {
      warmup: opts.warmup,
      samples: opts.samples,
      workDir,
      signal: stop.signal,
    });
  } finally {
    await raw.end().catch(() => {});
    await pool.end().catch(() => {});
  }
}

async function fill(
  scratch: ScratchDatabase,
  migrations: readonly TenantMigration[],
  opts: Options,
): Promise<number> {
  const started = performance.now();
  let begun = 0;
  let created = 0;
  let failure: unknown;
  const worker = async () => {
    while (begun < opts.tenants && failure === undefined && !stop.signal.aborted) {
      begun++;
      try {
        const row = await provisionTenant(scratch.pool, { displayName: 'bench fill' }, migrations);
        scratch.roles.add(row.role_name);
      } catch (err) {
        failure ??= err;
        return;
      }
      created++;
      if (created % 250 === 0 || created === opts.tenants) log(`  filled ${created}/${opts.tenants} tenants`);
    }
  };
  // Every worker has stopped before an error goes up, so cleanup never races a provisioning.
  await Promise.all(Array.from({ length: opts.fillConcurrency }, worker));
  if (failure !== undefined) throw failure;
  stop.signal.throwIfAborted();
  return (performance.now() - started) / 1000;
}

interface ProvisionResult {
  existingTenants: number;
  samples: number;
  latencyMs: Record<Method, Latency>;
  /** 1-minute load average when the samples ended: other work on the machine shows here. */
  loadAverage1m: number;
  ratio: {
    enclaveToRaw: { p50: number; p95: number };
    enclaveToRawSame: { p50: number; p95: number };
    enclaveToPsql: { p50: number; p95: number };
  };
}

function summarise(existingTenants: number, samples: Record<Method, number[]>): ProvisionResult {
  const l = {
    enclave: latency(samples.enclave),
    psql: latency(samples.psql),
    raw: latency(samples.raw),
    rawSame: latency(samples.rawSame),
    psqlStart: latency(samples.psqlStart),
  };
  return {
    existingTenants,
    samples: samples.enclave.length,
    latencyMs: l,
    loadAverage1m: round(os.loadavg()[0] ?? 0),
    ratio: {
      enclaveToRaw: { p50: round(l.enclave.p50 / l.raw.p50), p95: round(l.enclave.p95 / l.raw.p95) },
      enclaveToRawSame: {
        p50: round(l.enclave.p50 / l.rawSame.p50),
        p95: round(l.enclave.p95 / l.rawSame.p95),
      },
      enclaveToPsql: { p50: round(l.enclave.p50 / l.psql.p50), p95: round(l.enclave.p95 / l.psql.p95) },
    },
  };
}

// --- fleet migration and drift ----------------------------------------------

const NEW_COLUMNS = [
  'archived boolean NOT NULL DEFAULT false',
  'pinned boolean NOT NULL DEFAULT false',
  'color text',
  'priority smallint NOT NULL DEFAULT 0',
];

/** The shipped migrations plus `extra` new ones (0003, 0004...), each adding one column to notes. */
function migrationsWithExtra(workDir: string, extra: number): TenantMigration[] {
  const dir = mkdtempSync(path.join(workDir, 'migrations-'));
  cpSync(DEFAULT_TENANT_MIGRATIONS_DIR, dir, { recursive: true });
  const shipped = loadTenantMigrations(dir).length;
  for (let i = 0; i < extra; i++) {
    const version = shipped + 1 + i;
    const column = NEW_COLUMNS[i] ?? `extra_${version} integer`;
    const file = `${String(version).padStart(4, '0')}_bench_column_${version}.sql`;
    writeFileSync(path.join(dir, file), `ALTER TABLE {{schema}}.notes ADD COLUMN ${column};\n`);
  }
  return loadTenantMigrations(dir);
}

interface FleetRun {
  round: number;
  concurrency: number;
  migration: string;
  tenants: number;
  seconds: number;
  tenantsPerSecond: number;
  /** Median time of one tenant's transaction. */
  tenantMsP50: number;
  /** Checkpoints that started during the run (ours or another database's, e.g. a DROP DATABASE). */
  checkpoints: number;
  loadAverage1m: number;
}

const checkpoint = (pool: Pool) => checkpointWith(pool, log);

/**
 * Each round runs every concurrency once, the order reversed every other round
 * (1,2,4,8 then 8,4,2,1), so a slow stretch of the machine does not fall on one
 * setting only. Every run adds a new migration, so every run migrates the whole fleet.
 */
async function fleetRuns(pool: Pool, opts: Options, workDir: string): Promise<FleetRun[]> {
  const runs: FleetRun[] = [];
  for (let r = 0; r < opts.fleetRounds; r++) {
    const order = r % 2 === 0 ? opts.concurrency : [...opts.concurrency].reverse();
    for (const concurrency of order) {
      stop.signal.throwIfAborted();
      const migrations = migrationsWithExtra(workDir, runs.length + 1);
      await checkpoint(pool);
      const checkpointsBefore = await checkpointCount(pool);
      const summary = await migrateFleet(pool, migrations, { concurrency, signal: stop.signal });
      stop.signal.throwIfAborted();
      if (summary.migrated !== opts.tenants || summary.failed !== 0) {
        throw new Error(
          `fleet run at concurrency ${concurrency}: migrated ${summary.migrated}, failed ${summary.failed}`,
        );
      }
      const seconds = summary.durationMs / 1000;
      runs.push({
        round: r + 1,
        concurrency,
        migration: migrations.at(-1)?.name ?? '',
        tenants: summary.migrated,
        seconds: round(seconds),
        tenantsPerSecond: round(summary.migrated / seconds, 0),
        tenantMsP50: round(median(summary.outcomes.map((o) => o.durationMs))),
        checkpoints: (await checkpointCount(pool)) - checkpointsBefore,
        loadAverage1m: round(os.loadavg()[0] ?? 0),
      });
      log(
        `  round ${r + 1}, concurrency ${concurrency}: ${summary.migrated} tenants in ${seconds.toFixed(2)} s`,
      );
    }
  }
  return runs;
}

// --- report -----------------------------------------------------------------

function markdown(r: Results): string {
  const lines: string[] = [];
  const row = (cells: (string | number)[]) => lines.push(`| ${cells.join(' | ')} |`);
  const m = r.machine;
  lines.push(
    `${m.cpus} CPUs, ${m.memoryGiB} GiB, Node ${m.node}, ${m.postgres.split(' on ')[0]}, load ${m.loadAverage1mAtStart} at start`,
    '',
  );
  lines.push(`## Provisioning latency (ms, ${r.provisioning[0]?.samples} samples each, interleaved)`, '');
  row(['existing tenants', 'method', 'p50', 'p95', 'p99', 'min', 'max']);
  row(['---:', '---', '---:', '---:', '---:', '---:', '---:']);
  for (const p of r.provisioning) {
    for (const m of METHODS) {
      const l = p.latencyMs[m];
      row([p.existingTenants, METHOD_LABEL[m], l.p50, l.p95, l.p99, l.min, l.max]);
    }
  }
  lines.push('');
  row([
    'existing tenants',
    'enclave / raw p50',
    'enclave / raw p95',
    'enclave / own SQL in one query p50',
    'enclave / psql p50',
    'enclave / psql p95',
  ]);
  row(['---:', '---:', '---:', '---:', '---:', '---:']);
  for (const p of r.provisioning) {
    row([
      p.existingTenants,
      p.ratio.enclaveToRaw.p50,
      p.ratio.enclaveToRaw.p95,
      p.ratio.enclaveToRawSame.p50,
      p.ratio.enclaveToPsql.p50,
      p.ratio.enclaveToPsql.p95,
    ]);
  }
  lines.push(
    '',
    `Fill to ${r.options.tenants} tenants at concurrency ${r.options.fillConcurrency}: ${r.fillSeconds} s.`,
    `Load average (1 min) at the end of each sample set: ${r.provisioning.map((p) => p.loadAverage1m).join(', ')}.`,
  );
  lines.push('', `## Fleet migration (${r.options.tenants} tenants, one ADD COLUMN each)`, '');
  row(['concurrency', 'runs (s)', 'best s', 'best tenants/s', 'per-tenant p50 ms']);
  row(['---:', '---', '---:', '---:', '---:']);
  for (const c of r.options.concurrency) {
    const runs = r.fleet.filter((f) => f.concurrency === c);
    const best = Math.min(...runs.map((f) => f.seconds));
    const perTenant = runs.map((f) => f.tenantMsP50).join(', ');
    row([c, runs.map((f) => f.seconds).join(', '), best, round(r.options.tenants / best, 0), perTenant]);
  }
  lines.push('', 'Every run, in order:', '');
  row(['round', 'concurrency', 'migration', 'seconds', 'tenants/s', 'checkpoints during run', 'load avg 1m']);
  row(['---:', '---:', '---', '---:', '---:', '---:', '---:']);
  for (const f of r.fleet) {
    row([f.round, f.concurrency, f.migration, f.seconds, f.tenantsPerSecond, f.checkpoints, f.loadAverage1m]);
  }
  lines.push('', `## Nothing to apply and drift (${r.options.tenants} tenants)`, '');
  row(['operation', 'median s', 'runs (s)']);
  row(['---', '---:', '---']);
  row(['fleet run, nothing to apply', r.noop.medianSeconds, r.noop.seconds.join(', ')]);
  row([`detectDrift (${r.drift.drifted} drifted)`, r.drift.medianSeconds, r.drift.seconds.join(', ')]);
  return `${lines.join('\n')}\n`;
}

interface Results {
  startedAt: string;
  machine: { cpus: number; memoryGiB: number; node: string; postgres: string; loadAverage1mAtStart: number };
  options: Omit<Options, 'url'>;
  provisioning: ProvisionResult[];
  fillSeconds: number;
  fleet: FleetRun[];
  noop: { seconds: number[]; medianSeconds: number };
  drift: { seconds: number[]; medianSeconds: number; drifted: number };
}

// --- main -------------------------------------------------------------------

async function main() {
  const opts = readOptions();
  const loadAverage1mAtStart = round(os.loadavg()[0] ?? 0);
  const startedAt = new Date();
  const workDir = mkdtempSync(path.join(os.tmpdir(), 'enclave-bench-'));
  const shipped = loadTenantMigrations();
  const scratch = await createBenchDatabase(opts.url, {
    poolSize: Math.max(8, opts.fillConcurrency, ...opts.concurrency),
    migrate: true,
    log,
  });
  try {
    const postgres =
      (await scratch.pool.query<{ version: string }>('SELECT version()')).rows[0]?.version ?? '';
    const provisioning: ProvisionResult[] = [];

    log(`provisioning: ${opts.warmup} + ${opts.samples} rounds at 0 tenants`);
    provisioning.push(summarise(0, await provisionSamples(scratch, shipped, opts, workDir)));
    log(`filling to ${opts.tenants} tenants at concurrency ${opts.fillConcurrency}`);
    const fillSeconds = round(await fill(scratch, shipped, opts));
    // What autovacuum would do after a burst of 2,000 provisionings (it may be off on a
    // test server): hint bits set, statistics fresh, so the next run does not pay for the fill.
    await scratch.pool.query('VACUUM ANALYZE');
    await checkpoint(scratch.pool);
    log(`provisioning: ${opts.warmup} + ${opts.samples} rounds at ${opts.tenants} tenants`);
    provisioning.push(summarise(opts.tenants, await provisionSamples(scratch, shipped, opts, workDir)));

    log('fleet migration');
    const fleet = await fleetRuns(scratch.pool, opts, workDir);
    const latest = migrationsWithExtra(workDir, fleet.length);
    const noopSeconds: number[] = [];
    for (let i = 0; i < opts.noopRepeats; i++) {
      stop.signal.throwIfAborted();
      const summary = await migrateFleet(scratch.pool, latest, { concurrency: 4 });
      if (summary.pending !== 0)
        throw new Error(`nothing-to-apply run found ${summary.pending} pending tenants`);
      noopSeconds.push(summary.durationMs / 1000);
    }
    log('drift detection');
    const driftSeconds: number[] = [];
    let drifted = 0;
    for (let i = 0; i < opts.driftRepeats; i++) {
      stop.signal.throwIfAborted();
      const { ms, result } = await timed(() => detectDrift(scratch.pool, latest));
      if (result.length !== opts.tenants) throw new Error(`detectDrift checked ${result.length} tenants`);
      drifted = result.filter((t) => t.differences.length > 0).length;
      driftSeconds.push(ms / 1000);
    }

    const { url: _url, ...options } = opts;
    const results: Results = {
      startedAt: startedAt.toISOString(),
      machine: {
        cpus: os.availableParallelism(),
        memoryGiB: round(os.totalmem() / 2 ** 30, 1),
        node: process.version,
        postgres,
        loadAverage1mAtStart,
      },
      options,
      provisioning,
      fillSeconds,
      fleet,
      noop: { seconds: noopSeconds.map((s) => round(s, 4)), medianSeconds: round(median(noopSeconds), 4) },
      drift: {
        seconds: driftSeconds.map((s) => round(s)),
        medianSeconds: round(median(driftSeconds)),
        drifted,
      },
    };
    const dir = new URL('./results/', import.meta.url);
    mkdirSync(dir, { recursive: true });
    const file = new URL(
      `tenancy-${results.startedAt.replaceAll(':', '-').replace(/\.\d+Z$/, 'Z')}.json`,
      dir,
    );
    writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
    process.stdout.write(markdown(results));
    log(`results written to ${path.relative(process.cwd(), fileURLToPath(file))}`);
  } finally {
    await scratch.drop();
    rmSync(workDir, { recursive: true, force: true });
  }
}

await main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
