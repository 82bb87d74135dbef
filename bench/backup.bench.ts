// Per-tenant backup and restore (docs/BACKUP.md) beside Debian's pg_dump -n +
// pg_restore, in one run, on a scratch database with a fleet of tenants:
//
// - a small tenant (100 notes) and a large one (1,000,000 notes): backup time
//   (Enclave in-process, as the admin API runs it; Enclave's CLI, a process per
//   backup; `pg_dump -n <schema> -Fc`), restore time (Enclave in place, which
//   takes a safety backup first, and --as-new; `pg_restore` into a fresh
//   database) and archive size, the methods rotated within each round;
// - the peak RSS of this process during the large backup (sampled every 50 ms)
//   beside its RSS at rest, and the peak RSS of the CLI process (small and large);
// - `enclave backup create --all` (the CLI, default concurrency) beside one
//   `pg_dump -Fc` of the whole database. Measured before the large tenant is
//   filled, so it shows the per-tenant cost of a fleet of small tenants.
//
//   node bench/backup.bench.ts [--tenants 2000] [--small-rows 100] [--large-rows 1000000]
//     [--rounds 3] [--large-rounds 1] [--fill-concurrency 4] [--whole-dump auto|yes|no] [--keep]
// Every option can also be set as BENCH_<NAME> (BENCH_LARGE_ROWS=100000, BENCH_KEEP=1...).
// BENCH_DATABASE_URL: an admin URL that may create databases and roles.
//
// The large tenant is filled with INSERT … SELECT generate_series inside its
// schema, committed every 100,000 notes (a long transaction would hold back
// every database's audit sealer on a shared server). A whole-database pg_dump
// locks every table of every tenant: with `--whole-dump auto` it runs only when
// that takes under half of the server's lock table (max_locks_per_transaction ×
// (max_connections + max_prepared_transactions)), as other sessions on a shared
// server would otherwise fail with "out of shared memory".
//
// Everything runs in a scratch database (and one fresh database per pg_restore)
// dropped at the end, with every tenant role made, also on failure or Ctrl-C;
// --keep keeps the scratch database and the files, and says how to drop them.
import { spawnSync } from 'node:child_process';
import {
  createReadStream,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadSigner } from '../audit/signing.ts';
import type { ArchiveManifest } from '../backup/archive-format.ts';
import { type BackupContext, backupTenant, driftOfTenants } from '../backup/backup.ts';
import { createBackups } from '../backup/context.ts';
import { type RestoreContext, restoreTenant } from '../backup/restore.ts';
import { DirectoryStorage } from '../backup/storage.ts';
import type { AuditBy } from '../kernel/audit-inbox.ts';
import type { Pool } from '../kernel/db.ts';
import { ident } from '../kernel/identifiers.ts';
import { provisionTenant } from '../tenancy/provision.ts';
import { loadTenantMigrations, type TenantMigration } from '../tenancy/templates.ts';
import { LIVE_STATES } from '../tenancy/tenant-sql.ts';
import { createBenchDatabase, type ScratchDatabase, withAdmin } from '../test/helpers/database.ts';
import { saveResults } from './results.ts';
import { beginRun, benchUrls, cleanUp, machine, optionReader } from './run.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const OPTIONS = {
  tenants: '2000',
  'small-rows': '100',
  'large-rows': '1000000',
  rounds: '3',
  'large-rounds': '1',
  'fill-concurrency': '4',
  'whole-dump': 'auto',
};
type OptionName = keyof typeof OPTIONS;

function readOptions() {
  const { values } = parseArgs({
    options: {
      ...Object.fromEntries(Object.keys(OPTIONS).map((k) => [k, { type: 'string' as const }])),
      keep: { type: 'boolean' },
    },
  });
  const { raw, int } = optionReader(OPTIONS, values as Partial<Record<OptionName, string>>);
  const wholeDump = raw('whole-dump');
  if (!['auto', 'yes', 'no'].includes(wholeDump)) throw new Error('--whole-dump: auto, yes or no');
  return {
    ...benchUrls(),
    tenants: int('tenants', 2),
    smallRows: int('small-rows', 10),
    largeRows: int('large-rows', 10),
    rounds: int('rounds', 1),
    largeRounds: int('large-rounds', 1),
    fillConcurrency: int('fill-concurrency', 1),
    wholeDump: wholeDump as 'auto' | 'yes' | 'no',
    keep: values.keep === true || /^(1|true|yes)$/i.test(process.env.BENCH_KEEP ?? ''),
  };
}
type Options = ReturnType<typeof readOptions>;

// --- small helpers ----------------------------------------------------------

const log = (line: string) => process.stderr.write(`${line}\n`);
const round = (n: number, digits = 2) => Number(n.toFixed(digits));
const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
const MiB = (bytes: number) => round(bytes / 2 ** 20, 1);
const BY: AuditBy = { actor: { type: 'system', id: 'cli:bench' } };

/** Milliseconds since `start` at each named step (the engine's afterStep hooks). */
function stepClock() {
  const started = performance.now();
  const steps: Record<string, number> = {};
  return {
    mark: (step: string) => {
      steps[step] = round(performance.now() - started, 1);
    },
    steps,
    ms: () => performance.now() - started,
  };
}

/** RSS of this process, sampled every 50 ms until stop() (which samples once more). */
function rssSampler() {
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 50);
  return {
    stop: () => {
      clearInterval(timer);
      return Math.max(peak, process.memoryUsage().rss);
    },
  };
}

interface Spawned {
  ms: number;
  /** Peak RSS of the child (GNU time's %M), bytes. */
  maxRss: number;
  stdout: string;
}

/** Runs a command to completion under /usr/bin/time; the time includes its process start. */
function spawnTimed(file: string, args: readonly string[], env?: NodeJS.ProcessEnv): Spawned {
  const timeFile = path.join(os.tmpdir(), `enclave-bench-time-${process.pid}`);
  const started = performance.now();
  const out = spawnSync('/usr/bin/time', ['-f', '%M', '-o', timeFile, file, ...args], {
    cwd: ROOT,
    env: env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 256 << 20,
  });
  const ms = performance.now() - started;
  const maxRss = Number(readFileSync(timeFile, 'utf8').trim().split('\n').at(-1)) * 1024;
  rmSync(timeFile, { force: true });
  if (out.status !== 0)
    throw new Error(
      `${file} ${args.join(' ')} failed (${out.status}): ${out.stderr?.toString() ?? out.error}`,
    );
  return { ms, maxRss, stdout: out.stdout.toString() };
}

const fileBytes = (file: string) => statSync(file).size;
const dirBytes = (dir: string) => readdirSync(dir).reduce((n, f) => n + statSync(path.join(dir, f)).size, 0);

// --- the tenants --------------------------------------------------------------

async function fillFleet(
  scratch: ScratchDatabase,
  migrations: readonly TenantMigration[],
  count: number,
  concurrency: number,
  stopped: AbortSignal,
): Promise<number> {
  const started = performance.now();
  let begun = 0;
  let failure: unknown;
  const worker = async () => {
    while (begun < count && failure === undefined && !stopped.aborted) {
      begun++;
      try {
        const row = await provisionTenant(scratch.pool, { displayName: 'bench fleet' }, migrations);
        scratch.roles.add(row.role_name);
        if (begun % 500 === 0) log(`  provisioned ${begun}/${count}`);
      } catch (err) {
        failure ??= err;
      }
    }
  };
  // Every worker has stopped before an error goes up, so clean-up never races a provisioning.
  await Promise.all(Array.from({ length: concurrency }, worker));
  if (failure !== undefined) throw failure;
  stopped.throwIfAborted();
  return round((performance.now() - started) / 1000, 1);
}

/** Made-up words in rank order (seeded: every run writes the same notes). */
function vocabulary(): string[] {
  let a = 20261202;
  const rng = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const syllables =
    'ba be bi bo da de di do ka ke ki ko la le li lo ma me mi mo na ne ni no ra re ri ro sa se si so ta te ti to va ve vi vo'.split(
      ' ',
    );
  const words = new Set(
    'the and of to a in for is on that with we this it as be at by from or next week team plan call idea draft review notes list today client budget design'.split(
      ' ',
    ),
  );
  while (words.size < 2000) {
    let w = '';
    for (let i = 0, n = 2 + Math.floor(rng() * 3); i < n; i++)
      w += syllables[Math.floor(rng() * syllables.length)];
    words.add(w);
  }
  return [...words];
}

/** Word k of note g, Zipf-like (low ranks common): $1 is the vocabulary. */
const word = (k: string) =>
  `($1::text[])[1 + floor(array_length($1::text[], 1) * power((hashint4(${k}) & 2147483647)::float8 / 2147483648, 3))::int]`;

/**
 * Notes first..last of a tenant (ids are the identity's, from 1): a title of
 * a few words, a body of 40–89 words (about 300–650 bytes), 1–3 tags, times
 * spread over the past; html left NULL (rendered on first read). One statement.
 */
const insertNotes = (schema: string) => `
  INSERT INTO ${ident(schema)}.notes (title, body, tags, created_at, updated_at)
  SELECT 'Note ' || g || ': ' || ${word('g * 7 + 1')} || ' ' || ${word('g * 7 + 2')} || ' ' || ${word('g * 7 + 3')},
         array_to_string(ARRAY(SELECT ${word('g * 97 + i')} FROM generate_series(1, 40 + g % 50) i), ' '),
         (ARRAY['work', 'home', 'idea', 'todo', 'read', 'travel', 'money', 'health', 'work'])[1 + g % 8 : 1 + g % 8 + g % 3],
         now() - (g || ' minutes')::interval, now() - ((g / 2) || ' minutes')::interval
  FROM generate_series($2::int, $3::int) g`;

/** Tasks first..last: one per 10 notes, two in three linked to note 10·g. */
const insertTasks = (schema: string) => `
  INSERT INTO ${ident(schema)}.tasks (title, status, due_date, note_id)
  SELECT 'Task ' || g || ': ' || ${word('g * 5 + 1')} || ' ' || ${word('g * 5 + 2')},
         (ARRAY['open', 'doing', 'done'])[1 + g % 3],
         CASE WHEN g % 2 = 0 THEN date '2027-01-01' + g % 365 END,
         CASE WHEN g % 3 <> 0 THEN g * 10 END
  FROM generate_series($2::int, $3::int) g`;

const CHUNK = 100_000;

/**
 * `notes` notes and notes/10 tasks, committed every CHUNK notes. The storage
 * triggers are off while filling (one row updated once per note would make a
 * 100,000-row statement quadratic) and the count is set once at the end, as
 * the migration that made it does; then VACUUM ANALYZE (autovacuum may be off).
 */
async function fillTenant(pool: Pool, schema: string, notes: number, stopped: AbortSignal): Promise<number> {
  const started = performance.now();
  const s = ident(schema);
  const words = vocabulary();
  await pool.query(`ALTER TABLE ${s}.notes DISABLE TRIGGER notes_count_storage`);
  await pool.query(`ALTER TABLE ${s}.tasks DISABLE TRIGGER tasks_count_storage`);
  for (let first = 1; first <= notes; first += CHUNK) {
    stopped.throwIfAborted();
    const last = Math.min(notes, first + CHUNK - 1);
    await pool.query(insertNotes(schema), [words, first, last]);
    const tFirst = Math.ceil(first / 10);
    const tLast = Math.floor(last / 10);
    if (tLast >= tFirst) await pool.query(insertTasks(schema), [words, tFirst, tLast]);
    if (notes > CHUNK) log(`  ${last}/${notes} notes`);
  }
  await pool.query(
    `UPDATE ${s}.storage_usage SET bytes =
       (SELECT coalesce(sum(${s}.note_bytes(n.title, n.body, n.html, n.tags)), 0) FROM ${s}.notes n)
     + (SELECT coalesce(sum(${s}.task_bytes(t.title)), 0) FROM ${s}.tasks t) WHERE id = 1`,
  );
  await pool.query(`ALTER TABLE ${s}.notes ENABLE TRIGGER notes_count_storage`);
  await pool.query(`ALTER TABLE ${s}.tasks ENABLE TRIGGER tasks_count_storage`);
  await pool.query(`VACUUM ANALYZE ${s}.notes, ${s}.tasks, ${s}.storage_usage`);
  return round((performance.now() - started) / 1000, 1);
}

async function tenantFacts(pool: Pool, schema: string) {
  const { rows } = await pool.query<{ notes: number; tasks: number; bytes: string; body: number }>(
    `SELECT (SELECT count(*)::int FROM ${ident(schema)}.notes) AS notes,
            (SELECT count(*)::int FROM ${ident(schema)}.tasks) AS tasks,
            (SELECT round(avg(octet_length(body)))::int FROM ${ident(schema)}.notes) AS body,
            (SELECT sum(pg_total_relation_size(c.oid))::text FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'r') AS bytes`,
    [schema],
  );
  const r = rows[0] as { notes: number; tasks: number; bytes: string; body: number };
  return { notes: r.notes, tasks: r.tasks, avgBodyBytes: r.body, onDiskMiB: MiB(Number(r.bytes)) };
}

async function checkpoint(pool: Pool): Promise<void> {
  await pool.query('CHECKPOINT').catch((err) => log(`  CHECKPOINT refused (${err.message})`));
}

// --- one tenant: backup and restore, side by side ----------------------------

type BackupMethod = 'enclave' | 'enclavePrechecked' | 'enclaveCli' | 'pgDump';
type RestoreMethod = 'inPlace' | 'asNew' | 'pgRestore';
const BACKUP_METHODS: readonly BackupMethod[] = ['enclave', 'enclavePrechecked', 'enclaveCli', 'pgDump'];
const RESTORE_METHODS: readonly RestoreMethod[] = ['inPlace', 'asNew', 'pgRestore'];

interface Sample {
  round: number;
  ms: number;
  bytes?: number;
  /** Peak RSS of the child process (CLI, pg_dump, pg_restore), bytes. */
  maxRss?: number;
  /** Milliseconds from the start at each engine step (in-process only). */
  steps?: Record<string, number>;
}

interface TenantRun {
  size: 'small' | 'large';
  tenantId: string;
  schema: string;
  facts: Awaited<ReturnType<typeof tenantFacts>>;
  fillSeconds: number;
  backup: Record<BackupMethod, Sample[]>;
  restore: Record<RestoreMethod, Sample[]>;
  /** This process during the first in-process backup of the tenant. */
  rss: { atRest: number; peakDuringBackup: number; peakDuringRestore: number };
}

interface Env {
  scratch: ScratchDatabase;
  opts: Options;
  ctx: BackupContext;
  rctx: RestoreContext;
  dataDir: string;
  dumpDir: string;
  cliEnv: NodeJS.ProcessEnv;
  /** Fresh databases made for pg_restore, dropped after each use (and at the end). */
  restoreDbs: Set<string>;
  stopped: AbortSignal;
}

async function measureTenant(
  env: Env,
  size: 'small' | 'large',
  tenant: { id: string; schema: string },
  fillSeconds: number,
  rounds: number,
): Promise<TenantRun> {
  const { scratch, ctx, rctx } = env;
  const facts = await tenantFacts(scratch.pool, tenant.schema);
  log(`${size} tenant ${tenant.id}: ${JSON.stringify(facts)}`);
  await checkpoint(scratch.pool);
  const run: TenantRun = {
    size,
    tenantId: tenant.id,
    schema: tenant.schema,
    facts,
    fillSeconds,
    backup: { enclave: [], enclavePrechecked: [], enclaveCli: [], pgDump: [] },
    restore: { inPlace: [], asNew: [], pgRestore: [] },
    rss: { atRest: 0, peakDuringBackup: 0, peakDuringRestore: 0 },
  };
  const cliOut = path.join(env.dataDir, `cli-${size}`);
  mkdirSync(cliOut, { recursive: true });
  let archive = '';
  let dump = '';
  let drift: ArchiveManifest['drift'] | undefined;

  const backup: Record<BackupMethod, (r: number) => Promise<Sample>> = {
    enclave: async (r) => {
      let sampler: ReturnType<typeof rssSampler> | undefined;
      if (!run.rss.atRest) {
        await sleep(500);
        run.rss.atRest = process.memoryUsage().rss;
        sampler = rssSampler();
      }
      const clock = stepClock();
      const rec = await backupTenant(ctx, tenant.id, {
        by: BY,
        kind: 'manual',
        hooks: { afterStep: clock.mark },
      });
      const ms = clock.ms();
      if (sampler) run.rss.peakDuringBackup = sampler.stop();
      archive ||= rec.location as string;
      return { round: r, ms, bytes: rec.bytes ?? 0, steps: clock.steps };
    },
    // The same, with the drift check done beforehand (untimed), as backupTenant's `drift` option allows.
    enclavePrechecked: async (r) => {
      drift ??= (await driftOfTenants(scratch.pool, ctx.migrations, [tenant.id])).get(tenant.id);
      const clock = stepClock();
      const rec = await backupTenant(ctx, tenant.id, {
        by: BY,
        kind: 'manual',
        ...(drift ? { drift } : {}),
        hooks: { afterStep: clock.mark },
      });
      return { round: r, ms: clock.ms(), bytes: rec.bytes ?? 0, steps: clock.steps };
    },
    enclaveCli: async (r) => {
      const out = spawnTimed(
        process.execPath,
        ['bin/enclave.js', 'backup', 'create', tenant.id, '--out', cliOut, '--json'],
        env.cliEnv,
      );
      const made = (JSON.parse(out.stdout) as { backups: { bytes: number }[] }).backups[0];
      return { round: r, ms: out.ms, bytes: made?.bytes ?? 0, maxRss: out.maxRss };
    },
    pgDump: async (r) => {
      const file = path.join(env.dumpDir, `${size}-${r}.dump`);
      const out = spawnTimed('pg_dump', ['-Fc', '-n', tenant.schema, '-f', file, '-d', scratch.url]);
      dump ||= file;
      return { round: r, ms: out.ms, bytes: fileBytes(file), maxRss: out.maxRss };
    },
  };
  for (let r = 1; r <= rounds; r++) {
    for (let k = 0; k < BACKUP_METHODS.length; k++) {
      env.stopped.throwIfAborted();
      // Rotated, but the first in-process backup comes first (it is the RSS sample from rest).
      const method = BACKUP_METHODS[(r - 1 + k) % BACKUP_METHODS.length] as BackupMethod;
      const sample = await backup[method](r);
      run.backup[method].push(sample);
      log(
        `  backup round ${r} ${method.padEnd(10)} ${round(sample.ms).toString().padStart(10)} ms  ${sample.bytes} bytes`,
      );
    }
  }

  let clone = 0;
  const restore: Record<RestoreMethod, (r: number) => Promise<Sample>> = {
    inPlace: async (r) => {
      const clock = stepClock();
      const sampler = run.rss.peakDuringRestore ? undefined : rssSampler();
      await restoreTenant(
        rctx,
        () => createReadStream(archive),
        { tenantId: tenant.id },
        {
          by: BY,
          hooks: { afterStep: clock.mark },
        },
      );
      const ms = clock.ms();
      if (sampler) run.rss.peakDuringRestore = sampler.stop();
      return { round: r, ms, steps: clock.steps };
    },
    asNew: async (r) => {
      const clock = stepClock();
      const result = await restoreTenant(
        rctx,
        () => createReadStream(archive),
        { asNew: `bench clone ${size} ${++clone}` },
        {
          by: BY,
          hooks: { afterStep: clock.mark },
        },
      );
      const ms = clock.ms();
      // The clone is not needed: its schema goes now (untimed; its role goes with the scratch database).
      const schema = (
        await scratch.pool.query<{ s: string }>(
          'SELECT schema_name AS s FROM control.tenants WHERE id = $1',
          [result.tenantId],
        )
      ).rows[0]?.s;
      if (schema) await scratch.pool.query(`DROP SCHEMA ${ident(schema)} CASCADE`);
      return { round: r, ms, steps: clock.steps };
    },
    pgRestore: async (r) => {
      const db = `${scratch.name}_restore`;
      await withAdmin(env.opts.adminUrl, (c) => c.query(`CREATE DATABASE ${ident(db)}`));
      env.restoreDbs.add(db);
      const url = new URL(scratch.url);
      url.pathname = `/${db}`;
      try {
        const out = spawnTimed('pg_restore', ['--exit-on-error', '-d', url.toString(), dump]);
        return { round: r, ms: out.ms, maxRss: out.maxRss };
      } finally {
        await dropDatabase(env, db);
      }
    },
  };
  for (let r = 1; r <= rounds; r++) {
    for (let k = 0; k < RESTORE_METHODS.length; k++) {
      env.stopped.throwIfAborted();
      const method = RESTORE_METHODS[(r - 1 + k) % RESTORE_METHODS.length] as RestoreMethod;
      await checkpoint(scratch.pool);
      const sample = await restore[method](r);
      run.restore[method].push(sample);
      log(`  restore round ${r} ${method.padEnd(10)} ${round(sample.ms).toString().padStart(10)} ms`);
    }
  }
  return run;
}

async function dropDatabase(env: Env, db: string): Promise<void> {
  await withAdmin(env.opts.adminUrl, (c) => c.query(`DROP DATABASE IF EXISTS ${ident(db)} WITH (FORCE)`));
  env.restoreDbs.delete(db);
}

// --- the whole fleet ----------------------------------------------------------

interface FleetRun {
  tenants: number;
  enclaveAll: { ms: number; archives: number; failed: number; bytes: number; maxRss: number };
  /** In-process: drift checked once for every tenant (batches of 500), then the CLI's loop. */
  enclaveAllPrechecked: { ms: number; driftMs: number; archives: number; bytes: number };
  pgDumpWhole: { ms: number; bytes: number; maxRss: number } | { skipped: string };
  /** Tables a whole-database pg_dump locks, and the server's lock table. */
  locks: { tables: number; lockTableSlots: number };
}

async function measureFleet(env: Env, tenants: number): Promise<FleetRun> {
  const { scratch } = env;
  const { rows } = await scratch.pool.query<{ tables: number; slots: number }>(
    `SELECT (SELECT count(*)::int FROM pg_class WHERE relkind IN ('r', 'p')
               AND relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)) AS tables,
            current_setting('max_locks_per_transaction')::int
              * (current_setting('max_connections')::int + current_setting('max_prepared_transactions')::int) AS slots`,
  );
  const locks = { tables: rows[0]?.tables ?? 0, lockTableSlots: rows[0]?.slots ?? 0 };
  await checkpoint(scratch.pool);
  const out = path.join(env.dataDir, 'all');
  mkdirSync(out, { recursive: true });
  log(`backup create --all (${tenants} tenants, the CLI's default concurrency)`);
  const all = spawnTimed(
    process.execPath,
    ['bin/enclave.js', 'backup', 'create', '--all', '--out', out, '--json'],
    env.cliEnv,
  );
  const answer = JSON.parse(all.stdout) as { backups: unknown[]; failed: unknown[] };
  const enclaveAll = {
    ms: all.ms,
    archives: answer.backups.length,
    failed: answer.failed.length,
    bytes: dirBytes(out),
    maxRss: all.maxRss,
  };
  log(`  ${round(all.ms)} ms, ${enclaveAll.archives} archives, ${enclaveAll.failed} failed`);
  rmSync(out, { recursive: true, force: true });
  env.stopped.throwIfAborted();

  // What --all would cost with the drift check done once for the fleet (driftOfTenants), not per backup.
  log('--all in-process, drift checked once (batches of 500), concurrency 4');
  const out2 = path.join(env.dataDir, 'all-prechecked');
  const ctx2: BackupContext = { ...env.ctx, storage: new DirectoryStorage(out2) };
  const ids = (
    await scratch.pool.query<{ id: string }>(
      'SELECT id FROM control.tenants WHERE state = ANY($1) ORDER BY id',
      [LIVE_STATES],
    )
  ).rows.map((r) => r.id);
  const started = performance.now();
  const drifts = new Map<string, ArchiveManifest['drift']>();
  for (let i = 0; i < ids.length; i += 500)
    for (const [id, d] of await driftOfTenants(scratch.pool, env.ctx.migrations, ids.slice(i, i + 500)))
      drifts.set(id, d);
  const driftMs = performance.now() - started;
  const queue = [...ids];
  let made = 0;
  const worker = async () => {
    for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
      const d = drifts.get(id);
      await backupTenant(ctx2, id, { by: BY, kind: 'manual', ...(d ? { drift: d } : {}) });
      made++;
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
  const enclaveAllPrechecked = {
    ms: performance.now() - started,
    driftMs: round(driftMs),
    archives: made,
    bytes: dirBytes(out2),
  };
  log(`  ${round(enclaveAllPrechecked.ms)} ms (drift ${enclaveAllPrechecked.driftMs} ms), ${made} archives`);
  rmSync(out2, { recursive: true, force: true });
  env.stopped.throwIfAborted();

  let pgDumpWhole: FleetRun['pgDumpWhole'];
  const share = locks.tables / Math.max(1, locks.lockTableSlots);
  if (env.opts.wholeDump === 'no' || (env.opts.wholeDump === 'auto' && share > 0.5)) {
    pgDumpWhole = {
      skipped: `a whole-database pg_dump would lock ${locks.tables} tables, ${Math.round(share * 100)}% of this server's lock table (${locks.lockTableSlots} slots): other sessions could fail with "out of shared memory". Run it on a server of your own with --whole-dump yes.`,
    };
    log(`  pg_dump of the whole database skipped: ${pgDumpWhole.skipped}`);
  } else {
    await checkpoint(scratch.pool);
    log(
      `pg_dump -Fc of the whole database (${locks.tables} tables, lock table ${locks.lockTableSlots} slots)`,
    );
    const file = path.join(env.dumpDir, 'whole.dump');
    const dumped = spawnTimed('pg_dump', ['-Fc', '-f', file, '-d', scratch.url]);
    pgDumpWhole = { ms: dumped.ms, bytes: fileBytes(file), maxRss: dumped.maxRss };
    rmSync(file, { force: true });
    log(`  ${round(dumped.ms)} ms`);
  }
  return { tenants, enclaveAll, enclaveAllPrechecked, pgDumpWhole, locks };
}

// --- report -----------------------------------------------------------------

const med = (samples: readonly Sample[], pick: (s: Sample) => number = (s) => s.ms) =>
  samples.length ? median(samples.map(pick)) : Number.NaN;

function summarise(t: TenantRun) {
  const b = {
    enclave: med(t.backup.enclave),
    enclavePrechecked: med(t.backup.enclavePrechecked),
    enclaveCli: med(t.backup.enclaveCli),
    pgDump: med(t.backup.pgDump),
  };
  const r = {
    inPlace: med(t.restore.inPlace),
    asNew: med(t.restore.asNew),
    pgRestore: med(t.restore.pgRestore),
  };
  const bytes = {
    enclave: med(t.backup.enclave, (s) => s.bytes ?? 0),
    pgDump: med(t.backup.pgDump, (s) => s.bytes ?? 0),
  };
  const steps = (samples: Sample[]) => {
    const keys = Object.keys(samples[0]?.steps ?? {});
    return Object.fromEntries(
      keys.map((k) => [k, round(median(samples.map((s) => s.steps?.[k] ?? Number.NaN)), 1)]),
    );
  };
  return {
    size: t.size,
    rounds: t.backup.enclave.length,
    medianMs: {
      backup: {
        enclave: round(b.enclave),
        enclavePrechecked: round(b.enclavePrechecked),
        enclaveCli: round(b.enclaveCli),
        pgDump: round(b.pgDump),
      },
      restore: { inPlace: round(r.inPlace), asNew: round(r.asNew), pgRestore: round(r.pgRestore) },
    },
    bytes,
    /** pg_dump's time ÷ Enclave's: above 1, Enclave is faster. */
    speedup: {
      backup: round(b.pgDump / b.enclave),
      backupPrechecked: round(b.pgDump / b.enclavePrechecked),
      backupCli: round(b.pgDump / b.enclaveCli),
      restoreInPlace: round(r.pgRestore / r.inPlace),
      restoreAsNew: round(r.pgRestore / r.asNew),
      roundTripInPlace: round((b.pgDump + r.pgRestore) / (b.enclave + r.inPlace)),
      roundTripAsNew: round((b.pgDump + r.pgRestore) / (b.enclave + r.asNew)),
    },
    /** Enclave's archive ÷ pg_dump's dump. */
    sizeRatio: round(bytes.enclave / bytes.pgDump),
    maxRssMiB: {
      cli: MiB(med(t.backup.enclaveCli, (s) => s.maxRss ?? 0)),
      pgDump: MiB(med(t.backup.pgDump, (s) => s.maxRss ?? 0)),
      pgRestore: MiB(med(t.restore.pgRestore, (s) => s.maxRss ?? 0)),
    },
    steps: {
      backup: steps(t.backup.enclave),
      backupPrechecked: steps(t.backup.enclavePrechecked),
      inPlace: steps(t.restore.inPlace),
      asNew: steps(t.restore.asNew),
    },
  };
}

function markdown(tenants: TenantRun[], fleet: FleetRun): string {
  const lines: string[] = [];
  const row = (cells: (string | number)[]) => lines.push(`| ${cells.join(' | ')} |`);
  const sums = tenants.map(summarise);
  row([
    '',
    ...sums.map(
      (s, i) => `${s.size} (${tenants[i]?.facts.notes} notes, ${s.rounds} round${s.rounds > 1 ? 's' : ''})`,
    ),
  ]);
  row(['---', ...sums.map(() => '---:')]);
  const ms = (n: number) => (n >= 10_000 ? `${round(n / 1000, 1)} s` : `${round(n, 0)} ms`);
  row(['backup: Enclave, in-process (API path)', ...sums.map((s) => ms(s.medianMs.backup.enclave))]);
  row([
    'backup: Enclave, in-process, drift checked beforehand',
    ...sums.map((s) => ms(s.medianMs.backup.enclavePrechecked)),
  ]);
  row([
    'backup: `enclave backup create` (CLI process)',
    ...sums.map((s) => ms(s.medianMs.backup.enclaveCli)),
  ]);
  row(['backup: `pg_dump -Fc -n`', ...sums.map((s) => ms(s.medianMs.backup.pgDump))]);
  row(['**pg_dump ÷ Enclave in-process**', ...sums.map((s) => `**${s.speedup.backup}×**`)]);
  row([
    '**pg_dump ÷ Enclave in-process, drift checked beforehand**',
    ...sums.map((s) => `**${s.speedup.backupPrechecked}×**`),
  ]);
  row(['**pg_dump ÷ Enclave CLI**', ...sums.map((s) => `**${s.speedup.backupCli}×**`)]);
  row([
    'restore: Enclave in place (incl. safety backup)',
    ...sums.map((s) => ms(s.medianMs.restore.inPlace)),
  ]);
  row(['restore: Enclave --as-new', ...sums.map((s) => ms(s.medianMs.restore.asNew))]);
  row(['restore: `pg_restore` into a fresh database', ...sums.map((s) => ms(s.medianMs.restore.pgRestore))]);
  row(['**pg_restore ÷ Enclave in place**', ...sums.map((s) => `**${s.speedup.restoreInPlace}×**`)]);
  row(['**pg_restore ÷ Enclave --as-new**', ...sums.map((s) => `**${s.speedup.restoreAsNew}×**`)]);
  row([
    'round trip (pg_dump + pg_restore) ÷ (backup + in place)',
    ...sums.map((s) => `${s.speedup.roundTripInPlace}×`),
  ]);
  row([
    'archive / dump bytes',
    ...sums.map((s) => `${s.bytes.enclave} / ${s.bytes.pgDump} = **${s.sizeRatio}**`),
  ]);
  row([
    'peak RSS MiB: CLI backup / pg_dump / pg_restore',
    ...sums.map((s) => `${s.maxRssMiB.cli} / ${s.maxRssMiB.pgDump} / ${s.maxRssMiB.pgRestore}`),
  ]);
  row([
    'this process, RSS MiB at rest → peak in backup → peak in restore',
    ...tenants.map(
      (t) => `${MiB(t.rss.atRest)} → ${MiB(t.rss.peakDuringBackup)} → ${MiB(t.rss.peakDuringRestore)}`,
    ),
  ]);
  lines.push('', 'Engine steps (median ms from the start):', '');
  for (const s of sums)
    for (const [what, steps] of Object.entries(s.steps))
      lines.push(
        `- ${s.size} ${what}: ${Object.entries(steps)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')}`,
      );
  lines.push('', `Fleet (${fleet.tenants} tenants):`, '');
  row(['', 'time', 'bytes', 'peak RSS MiB']);
  row(['---', '---:', '---:', '---:']);
  const a = fleet.enclaveAll;
  row([
    `\`enclave backup create --all\` (${a.archives} archives, ${a.failed} failed)`,
    ms(a.ms),
    a.bytes,
    MiB(a.maxRss),
  ]);
  const p = fleet.enclaveAllPrechecked;
  row([
    `in-process --all loop, drift checked once (${round(p.driftMs / 1000, 1)} s of it) (${p.archives} archives)`,
    ms(p.ms),
    p.bytes,
    '',
  ]);
  const w = fleet.pgDumpWhole;
  if ('skipped' in w) row(['`pg_dump -Fc` of the whole database', `skipped: ${w.skipped}`, '', '']);
  else {
    row(['`pg_dump -Fc` of the whole database', ms(w.ms), w.bytes, MiB(w.maxRss)]);
    row(['**pg_dump ÷ Enclave --all**', `**${round(w.ms / a.ms)}×**`, round(a.bytes / w.bytes), '']);
    row(['**pg_dump ÷ in-process, drift once**', `**${round(w.ms / p.ms)}×**`, '', '']);
  }
  lines.push(
    '',
    `Tables a whole-database pg_dump locks: ${fleet.locks.tables}; lock table: ${fleet.locks.lockTableSlots} slots.`,
  );
  return `${lines.join('\n')}\n`;
}

// --- main -------------------------------------------------------------------

async function main(): Promise<void> {
  const opts = readOptions();
  const { stopped, startedAt, loadAverageAtStart } = beginRun(log, 'step', () => []);
  const migrations = loadTenantMigrations();
  const scratch = await createBenchDatabase(opts.adminUrl, {
    poolSize: Math.max(9, opts.fillConcurrency + 2),
    migrate: true,
    log,
  });
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'enclave-bench-backup-'));
  const restoreDbs = new Set<string>();
  const envOf = (ctx: BackupContext, rctx: RestoreContext): Env => ({
    scratch,
    opts,
    ctx,
    rctx,
    dataDir,
    dumpDir: path.join(dataDir, 'dumps'),
    cliEnv: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      NODE_ENV: 'production',
      LOG_LEVEL: 'warn',
      DATABASE_URL: scratch.url,
      DATA_DIR: dataDir,
    },
    restoreDbs,
    stopped,
  });
  let failed = true;
  try {
    mkdirSync(path.join(dataDir, 'dumps'));
    // The CLI opens the same key file (DATA_DIR/audit-signing-key.pem): one published key for both.
    const signer = await loadSigner({ DATA_DIR: dataDir }, scratch.pool);
    const backups = createBackups(
      {
        DATA_DIR: dataDir,
        BACKUP_DIR: path.join(dataDir, 'archives'),
        BACKUP_LOCK_TIMEOUT_MS: 5000,
        BACKUP_KEEP_COUNT: 7,
        BACKUP_KEEP_DAYS: 30,
        BACKUP_AGE_RECIPIENTS: [],
        BACKUP_AGE_IDENTITY_FILE: undefined,
        RESTORE_KEEP_PREVIOUS_HOURS: 24,
      },
      scratch.pool,
      { signer, migrations, tmpDir: dataDir },
    );
    const env = envOf(backups.backupContext(), await backups.restoreContext());

    log(
      `scratch database ${scratch.name}: ${opts.tenants} tenants, ${opts.fillConcurrency} provisioned at a time`,
    );
    const small = await provisionTenant(scratch.pool, { displayName: 'bench small' }, migrations);
    const large = await provisionTenant(scratch.pool, { displayName: 'bench large' }, migrations);
    const fleetSeconds = await fillFleet(
      scratch,
      migrations,
      opts.tenants - 2,
      opts.fillConcurrency,
      stopped,
    );
    log(`  ${fleetSeconds} s`);
    const smallFill = await fillTenant(scratch.pool, small.schema_name, opts.smallRows, stopped);
    await scratch.pool.query('VACUUM ANALYZE');

    const fleet = await measureFleet(env, opts.tenants);
    const runs: TenantRun[] = [];
    runs.push(
      await measureTenant(env, 'small', { id: small.id, schema: small.schema_name }, smallFill, opts.rounds),
    );

    log(`filling the large tenant with ${opts.largeRows} notes, ${CHUNK} per transaction`);
    const largeFill = await fillTenant(scratch.pool, large.schema_name, opts.largeRows, stopped);
    log(`  ${largeFill} s`);
    runs.push(
      await measureTenant(
        env,
        'large',
        { id: large.id, schema: large.schema_name },
        largeFill,
        opts.largeRounds,
      ),
    );

    const { adminUrl: _a, redisUrl: _r, ...options } = opts;
    const results = {
      startedAt: startedAt.toISOString(),
      machine: await machine(scratch, loadAverageAtStart, {
        pgDump: spawnSync('pg_dump', ['--version']).stdout.toString().trim(),
      }),
      options,
      setup: { fleetSeconds },
      summary: runs.map(summarise),
      fleet,
      tenants: runs,
    };
    const saved = saveResults('backup', results.startedAt, results);
    process.stdout.write(markdown(runs, fleet));
    log(`results written to ${saved}`);
    failed = false;
  } finally {
    for (const db of [...restoreDbs])
      await dropDatabase(envOf({} as BackupContext, {} as RestoreContext), db).catch((err) =>
        log(`could not drop ${db}: ${err.message}`),
      );
    if (opts.keep) {
      await scratch.pool.end().catch(() => {});
      log(
        `kept (--keep${failed ? ', after a failure' : ''}): database ${scratch.name} and files in ${dataDir}. ` +
          'Drop them with: DROP OWNED BY / DROP ROLE for every role_name in its control.tenants, DROP DATABASE, rm -r the folder.',
      );
    } else await cleanUp([], scratch, dataDir);
  }
}

await main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
