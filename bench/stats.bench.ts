// Per-tenant statistics (docs/STATISTICS.md) over a fleet of tenants, beside
// the naive way, in one run on one scratch database:
//
// - one pass: the catalog query of tenancy/statistics.ts for every tenant
//   schema at once (collectStats: read only, the rows parsed in Node), and the
//   whole job (recordStats + downsampleStats: the same pass written to the
//   control plane in one statement, then the history reduced);
// - naive: one query per tenant schema, the way peers collect it:
//   pg_total_relation_size of each table and the pg_stat_user_tables view
//   filtered by schema, on one connection (as a collector loop does), and the
//   same spread over 4 connections.
//
// Methods run in rounds, their order rotating each round; the median of the
// rounds is reported.
//
//   node bench/stats.bench.ts [--tenants 10000] [--rounds 3] [--fill-concurrency 4]
//     [--filled-every 10] [--notes 50] [--keep]
// Every option can also be set as BENCH_<NAME> (BENCH_TENANTS=300 for a quick check).
// BENCH_DATABASE_URL: an admin URL that may create databases and roles.
//
// The fleet is provisioned for real (provisionTenant: role, schema, every
// tenant migration, the audit event), a few at a time; every `--filled-every`th
// tenant gets `--notes` notes, then the database is ANALYZEd (so that relpages
// and reltuples are measured; this does not change what either way costs).
// Everything runs in a scratch database dropped at the end with every tenant
// role made, also on failure or Ctrl-C; --keep keeps it and says how to drop it.
import os from 'node:os';
import { parseArgs } from 'node:util';
import { ident } from '../kernel/identifiers.ts';
import { provisionTenant } from '../tenancy/provision.ts';
import { collectStats, downsampleStats, recordStats } from '../tenancy/statistics.ts';
import { loadTenantMigrations, type TenantMigration } from '../tenancy/templates.ts';
import { LIVE_STATES } from '../tenancy/tenant-sql.ts';
import { createBenchDatabase, type ScratchDatabase } from '../test/helpers/database.ts';
import { saveResults } from './results.ts';
import { beginRun, benchUrls, machine, optionReader } from './run.ts';

const OPTIONS = {
  tenants: '10000',
  rounds: '3',
  'fill-concurrency': '4',
  'filled-every': '10',
  notes: '50',
};
type OptionName = keyof typeof OPTIONS;

function readOptions() {
  const { values } = parseArgs({
    options: {
      ...Object.fromEntries(Object.keys(OPTIONS).map((k) => [k, { type: 'string' as const }])),
      keep: { type: 'boolean' },
    },
  });
  const { int } = optionReader(OPTIONS, values as Partial<Record<OptionName, string>>);
  return {
    ...benchUrls(),
    tenants: int('tenants', 1),
    rounds: int('rounds', 1),
    fillConcurrency: int('fill-concurrency', 1),
    filledEvery: int('filled-every', 1),
    notes: int('notes', 0),
    keep: values.keep === true || /^(1|true|yes)$/i.test(process.env.BENCH_KEEP ?? ''),
  };
}
type Options = ReturnType<typeof readOptions>;

const log = (line: string) => process.stderr.write(`${line}\n`);
const round = (n: number, digits = 2) => Number(n.toFixed(digits));
const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

// --- the fleet ----------------------------------------------------------------

async function fillFleet(
  scratch: ScratchDatabase,
  migrations: readonly TenantMigration[],
  opts: Options,
  stopped: AbortSignal,
): Promise<{ provisionSeconds: number; fillSeconds: number; analyzeSeconds: number }> {
  let started = performance.now();
  let begun = 0;
  let failure: unknown;
  const schemas: string[] = [];
  const worker = async () => {
    while (begun < opts.tenants && failure === undefined && !stopped.aborted) {
      const k = begun++;
      try {
        const row = await provisionTenant(scratch.pool, { displayName: `bench stats ${k}` }, migrations);
        scratch.roles.add(row.role_name);
        if (k % opts.filledEvery === 0) schemas.push(row.schema_name);
        if ((k + 1) % 500 === 0) log(`  provisioned ${k + 1}/${opts.tenants}`);
      } catch (err) {
        failure ??= err;
      }
    }
  };
  // Every worker has stopped before an error goes up, so clean-up never races a provisioning.
  await Promise.all(Array.from({ length: opts.fillConcurrency }, worker));
  if (failure !== undefined) throw failure;
  stopped.throwIfAborted();
  const provisionSeconds = round((performance.now() - started) / 1000, 1);

  started = performance.now();
  const queue = [...schemas];
  const filler = async () => {
    for (let s = queue.shift(); s !== undefined && !stopped.aborted; s = queue.shift())
      if (opts.notes > 0)
        await scratch.pool.query(
          `INSERT INTO ${ident(s)}.notes (title, body, tags)
           SELECT 'note ' || i, repeat('lorem ipsum ', 20 + i % 50), ARRAY['t' || (i % 3)]
           FROM generate_series(1, ${opts.notes}) i`,
        );
  };
  await Promise.all(Array.from({ length: opts.fillConcurrency }, filler));
  stopped.throwIfAborted();
  const fillSeconds = round((performance.now() - started) / 1000, 1);

  started = performance.now();
  await scratch.pool.query('ANALYZE');
  const analyzeSeconds = round((performance.now() - started) / 1000, 1);
  return { provisionSeconds, fillSeconds, analyzeSeconds };
}

// --- the methods -------------------------------------------------------------------

interface Measured {
  ms: number;
  tenants: number;
  relations: number;
  totalBytes: number;
}

/** The naive collector: per schema, pg_total_relation_size per table + pg_stat_user_tables. */
const NAIVE = `SELECT relname, pg_total_relation_size(relid) AS total_bytes, n_live_tup, n_dead_tup,
         last_vacuum, last_autovacuum, last_analyze, last_autoanalyze
  FROM pg_stat_user_tables WHERE schemaname = $1`;

async function naive(scratch: ScratchDatabase, connections: number): Promise<Measured> {
  const started = performance.now();
  const schemas = (
    await scratch.pool.query<{ schema_name: string }>(
      'SELECT schema_name FROM control.tenants WHERE state = ANY($1) ORDER BY id',
      [LIVE_STATES],
    )
  ).rows.map((r) => r.schema_name);
  let relations = 0;
  let totalBytes = 0;
  const queue = [...schemas];
  const worker = async () => {
    const client = await scratch.pool.connect();
    try {
      for (let s = queue.shift(); s !== undefined; s = queue.shift()) {
        const { rows } = await client.query<{ total_bytes: string | number }>(NAIVE, [s]);
        relations += rows.length;
        for (const r of rows) totalBytes += Number(r.total_bytes);
      }
    } finally {
      client.release();
    }
  };
  await Promise.all(Array.from({ length: connections }, worker));
  return { ms: round(performance.now() - started, 1), tenants: schemas.length, relations, totalBytes };
}

async function onePassRead(scratch: ScratchDatabase): Promise<Measured> {
  const started = performance.now();
  const stats = await collectStats(scratch.pool);
  const ms = round(performance.now() - started, 1);
  return {
    ms,
    tenants: stats.length,
    relations: stats.reduce((n, s) => n + s.relations.length, 0),
    totalBytes: stats.reduce((n, s) => n + s.totalBytes, 0),
  };
}

let jobClock = Date.parse('2026-06-15T12:00:00Z');

async function onePassJob(
  scratch: ScratchDatabase,
): Promise<Measured & { recordMs: number; downsampleMs: number }> {
  // Each run is 75 minutes after the last: the previous run's samples are then older than an
  // hour, so every run's downsampling has one sample per tenant to reduce, as a run at steady
  // state has (the samples that aged past the hour since the last run).
  jobClock += 75 * 60_000;
  const now = new Date(jobClock);
  const started = performance.now();
  const recorded = await recordStats(scratch.pool, now);
  const recordMs = performance.now() - started;
  await downsampleStats(scratch.pool, now);
  const ms = performance.now() - started;
  return {
    ms: round(ms, 1),
    recordMs: round(recordMs, 1),
    downsampleMs: round(ms - recordMs, 1),
    tenants: recorded.tenants,
    relations: recorded.relations,
    totalBytes: recorded.totalBytes,
  };
}

const METHODS = {
  'one pass, read (collectStats)': onePassRead,
  'one pass, the whole job (record + downsample)': onePassJob,
  'naive, 1 connection': (s: ScratchDatabase) => naive(s, 1),
  'naive, 4 connections': (s: ScratchDatabase) => naive(s, 4),
} as const;
type Method = keyof typeof METHODS;

// --- main -----------------------------------------------------------------------------

async function main(): Promise<void> {
  const opts = readOptions();
  const { stopped, startedAt, loadAverageAtStart } = beginRun(log, 'step', () => []);
  const migrations = loadTenantMigrations();
  const scratch = await createBenchDatabase(opts.adminUrl, {
    poolSize: Math.max(6, opts.fillConcurrency + 2),
    migrate: true,
    log,
  });
  let failed = true;
  try {
    log(
      `scratch database ${scratch.name}: ${opts.tenants} tenants, ${opts.fillConcurrency} provisioned at a time`,
    );
    const setup = await fillFleet(scratch, migrations, opts, stopped);
    log(
      `  provisioned in ${setup.provisionSeconds} s, filled in ${setup.fillSeconds} s, ANALYZE ${setup.analyzeSeconds} s`,
    );
    const catalog = (
      await scratch.pool.query<{ relations: number; tables: number }>(
        `SELECT count(*)::int AS relations, count(*) FILTER (WHERE c.relkind = 'r')::int AS tables
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname LIKE 't\\_%' AND c.relkind IN ('r', 'i', 'm', 'p')`,
      )
    ).rows[0];
    log(`  tenant schemas hold ${catalog?.relations} tables and indexes (${catalog?.tables} tables)`);

    const names = Object.keys(METHODS) as Method[];
    const runs: Record<string, Measured[]> = Object.fromEntries(names.map((n) => [n, []]));
    for (let r = 0; r < opts.rounds; r++) {
      const order = names.map((_, i) => names[(i + r) % names.length] as Method);
      for (const name of order) {
        stopped.throwIfAborted();
        const m = await METHODS[name](scratch);
        (runs[name] as Measured[]).push(m);
        log(`  round ${r + 1}: ${name}: ${m.ms} ms (${m.tenants} tenants, ${m.relations} relations)`);
      }
    }
    const summary = Object.fromEntries(
      names.map((n) => [
        n,
        { medianMs: round(median((runs[n] as Measured[]).map((m) => m.ms)), 1), runs: runs[n] },
      ]),
    );
    const med = (n: Method) => (summary[n] as { medianMs: number }).medianMs;
    const ratios = {
      naive1OverRead: round(med('naive, 1 connection') / med('one pass, read (collectStats)'), 1),
      naive1OverJob: round(
        med('naive, 1 connection') / med('one pass, the whole job (record + downsample)'),
        1,
      ),
      naive4OverRead: round(med('naive, 4 connections') / med('one pass, read (collectStats)'), 1),
      naive4OverJob: round(
        med('naive, 4 connections') / med('one pass, the whole job (record + downsample)'),
        1,
      ),
    };
    const storage = (
      await scratch.pool.query(
        `SELECT pg_total_relation_size('control.tenant_stats')::bigint AS history_bytes,
                (SELECT count(*) FROM control.tenant_stats)::int AS history_rows,
                pg_total_relation_size('control.tenant_stats_latest')::bigint AS latest_bytes,
                (SELECT avg(pg_column_size(relations))::int FROM control.tenant_stats_latest) AS relations_json_bytes`,
      )
    ).rows[0];
    log(`  control plane after the runs: ${JSON.stringify(storage)}`);
    // Where the naive way spends its time: the plan of one of its queries.
    const oneSchema = (await scratch.pool.query('SELECT schema_name FROM control.tenants LIMIT 1')).rows[0]
      ?.schema_name as string;
    const naivePlan = (
      await scratch.pool.query<{ 'QUERY PLAN': string }>(
        `EXPLAIN (ANALYZE, BUFFERS) ${NAIVE.replace('$1', `'${oneSchema}'`)}`,
      )
    ).rows.map((r) => r['QUERY PLAN']);
    const { adminUrl: _a, redisUrl: _r, ...options } = opts;
    const results = {
      startedAt: startedAt.toISOString(),
      machine: await machine(scratch, loadAverageAtStart, {
        cpus: os.availableParallelism(),
      }),
      options,
      setup: { ...setup, ...catalog },
      storage,
      naivePlan,
      summary,
      ratios,
    };
    const saved = saveResults('stats', results.startedAt, results);
    const lines = [
      `| method (${opts.tenants.toLocaleString('en-US')} tenants, ${catalog?.relations.toLocaleString('en-US')} relations) | median | runs (ms) |`,
      '| --- | ---: | --- |',
      ...names.map(
        (n) =>
          `| ${n} | ${(med(n) / 1000).toFixed(2)} s | ${(runs[n] as Measured[]).map((m) => m.ms.toLocaleString('en-US')).join(', ')} |`,
      ),
      '',
      `naive (1 connection) ÷ one-pass read: ${ratios.naive1OverRead}×; ÷ whole job: ${ratios.naive1OverJob}×`,
      `naive (4 connections) ÷ one-pass read: ${ratios.naive4OverRead}×; ÷ whole job: ${ratios.naive4OverJob}×`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    log(`results written to ${saved}`);
    failed = false;
  } finally {
    if (opts.keep) {
      await scratch.pool.end().catch(() => {});
      log(
        `kept (--keep${failed ? ', after a failure' : ''}): database ${scratch.name}. ` +
          'Drop it with: DROP OWNED BY / DROP ROLE for every role_name in its control.tenants, then DROP DATABASE.',
      );
    } else {
      log('dropping the scratch database and its tenant roles');
      await scratch.drop();
    }
  }
}

await main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
