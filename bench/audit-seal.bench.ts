// Sealing throughput: how many inbox events per second the sealer moves into
// the hash chains (canonical bytes, SHA-256 chain, gapless seq, one signed
// checkpoint per grown chain plus the registry's), batch after batch.
//
//   node bench/audit-seal.bench.ts [--events 200000] [--tenants 100] [--batches 1000,5000,20000]
//     [--without-indexes audit_inbox_seal_order_idx,audit_log_time_idx]
// Every option can also be set as BENCH_<NAME> (BENCH_EVENTS=50000...).
// BENCH_DATABASE_URL: an admin URL that may create databases (default
// postgres://postgres@127.0.0.1:5432/postgres).
//
// Per variant: `--events` events are written into the inbox in one statement
// (spread over `--tenants` tenant chains, 1 in 100 without a tenant: the
// platform chain), shaped like real ones (a user agent, a request id, a
// changed-fields `details`), committed, ANALYZEd; then `seal()` runs until the
// inbox is empty, each call timed. The database is a scratch one, dropped at
// the end. Variants with `--without-indexes` drop the named indexes first (and
// recreate them after), to show what each index costs the sealer.
// Results: bench/results/audit-seal-<time>.json and docs/BENCHMARKS.md.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { seal } from '../audit/sealer.ts';
import { openSigner } from '../audit/signing.ts';
import { ident } from '../kernel/identifiers.ts';
import { createBenchDatabase } from '../test/helpers/database.ts';

const ADMIN = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const log = (line: string) => process.stderr.write(`${line}\n`);
const round = (n: number, digits = 1) => Number(n.toFixed(digits));

const { values: args } = parseArgs({
  options: {
    events: { type: 'string', default: process.env.BENCH_EVENTS ?? '200000' },
    tenants: { type: 'string', default: process.env.BENCH_TENANTS ?? '100' },
    batches: { type: 'string', default: process.env.BENCH_BATCHES ?? '1000,5000,20000' },
    'without-indexes': {
      type: 'string',
      default: process.env.BENCH_WITHOUT_INDEXES ?? 'audit_inbox_seal_order_idx,audit_log_time_idx',
    },
  },
});
const EVENTS = Number(args.events);
const TENANTS = Number(args.tenants);
const BATCHES = args.batches.split(',').map(Number);
const WITHOUT = args['without-indexes'].split(',').filter(Boolean);
if (!Number.isSafeInteger(EVENTS) || EVENTS < 1 || !Number.isSafeInteger(TENANTS) || TENANTS < 1)
  throw new Error('--events and --tenants must be positive whole numbers');

/** One INSERT ... SELECT of `n` inbox rows over `tenants` tenant ids (`bench0000042`) and the platform. */
const FILL = `
  INSERT INTO control.audit_inbox
    (tenant_id, actor_type, actor_id, action, resource_type, resource_id, outcome,
     ip, user_agent, request_id, details)
  SELECT CASE WHEN g % 100 = 0 THEN NULL ELSE 'bench' || lpad((g % $2)::text, 7, '0') END,
         'user', gen_random_uuid()::text, 'note.update', 'note', (g % 5000)::text, 'success',
         '203.0.113.' || (g % 250)::text,
         'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36',
         gen_random_uuid()::text,
         jsonb_build_object('changes', jsonb_build_object(
           'title', jsonb_build_object('from', 'Shopping list ' || g, 'to', 'Shopping list ' || g || ' (done)'),
           'tags', jsonb_build_object('from', jsonb_build_array('home'), 'to', jsonb_build_array('home', 'done'))))
    FROM generate_series(1, $1::int) g`;

interface Variant {
  name: string;
  batchSize: number;
  without: string[];
}

const variants: Variant[] = [
  ...BATCHES.map((b) => ({ name: `batch ${b}`, batchSize: b, without: [] })),
  ...WITHOUT.map((index) => ({ name: `batch 5000 without ${index}`, batchSize: 5000, without: [index] })),
];

const scratch = await createBenchDatabase(ADMIN, { poolSize: 4, migrate: true, log });
const { pool } = scratch;
const keyDir = mkdtempSync(path.join(os.tmpdir(), 'enclave-seal-bench-'));
const stop = () => {
  scratch.drop().finally(() => process.exit(130));
};
process.once('SIGINT', stop);
const results = [];
try {
  const signer = await openSigner(path.join(keyDir, 'audit-signing-key.pem'), { create: true });
  for (const v of variants) {
    const defs = await indexDefinitions(v.without);
    for (const name of v.without) await pool.query(`DROP INDEX control.${ident(name)}`);
    const t0 = performance.now();
    await pool.query(FILL, [EVENTS, TENANTS]);
    await pool.query('ANALYZE control.audit_inbox');
    const fillMs = performance.now() - t0;
    const batchMs: number[] = [];
    let sealed = 0;
    let checkpoints = 0;
    const started = performance.now();
    let waitedMs = 0;
    while (sealed < EVENTS) {
      const b0 = performance.now();
      const r = await seal(pool, signer, { batchSize: v.batchSize });
      if (r.sealed === 0) {
        // An older transaction somewhere on the cluster holds the snapshot's xmin back
        // (audit/chain-sql.ts selectSealable): the rows wait for it, as in production.
        await new Promise((resolve) => setTimeout(resolve, 10));
        waitedMs += performance.now() - b0;
        continue;
      }
      batchMs.push(performance.now() - b0);
      sealed += r.sealed;
      checkpoints += r.checkpoints;
    }
    const totalMs = performance.now() - started;
    for (const def of defs) await pool.query(def);
    await pool.query('VACUUM ANALYZE control.audit_inbox');
    const sorted = [...batchMs].sort((a, b) => a - b);
    const row = {
      variant: v.name,
      events: sealed,
      batches: batchMs.length,
      checkpoints,
      sealSeconds: round(totalMs / 1000, 2),
      // Over the time spent in seal() calls that sealed something (waits for xmin left out).
      entriesPerSecond: Math.round(sealed / (batchMs.reduce((a, b) => a + b, 0) / 1000)),
      batchMsMedian: round(sorted[Math.floor(sorted.length / 2)] ?? 0),
      batchMsMax: round(sorted.at(-1) ?? 0),
      fillSeconds: round(fillMs / 1000, 2),
      waitedForXminSeconds: round(waitedMs / 1000, 2),
    };
    log(JSON.stringify(row));
    results.push(row);
  }
  const size = await pool.query<{ entries: number; bytes: string }>(
    `SELECT count(*)::int AS entries, pg_size_pretty(pg_total_relation_size('control.audit_log')) AS bytes
       FROM control.audit_log`,
  );
  const file = writeResults({
    events: EVENTS,
    tenants: TENANTS,
    postgres: (await pool.query('SHOW server_version')).rows[0].server_version,
    node: process.version,
    cpus: os.cpus().length,
    loadavg: os.loadavg(),
    log: size.rows[0],
    results,
  });
  console.log(
    '| variant | entries/s | batches | median ms/batch | max ms/batch | checkpoints | seal s |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  );
  for (const r of results)
    console.log(
      `| ${r.variant} | ${r.entriesPerSecond} | ${r.batches} | ${r.batchMsMedian} | ${r.batchMsMax} | ${r.checkpoints} | ${r.sealSeconds} |`,
    );
  log(`results: ${file}`);
} finally {
  process.off('SIGINT', stop);
  await scratch.drop();
}

async function indexDefinitions(names: string[]): Promise<string[]> {
  if (names.length === 0) return [];
  const { rows } = await pool.query<{ indexdef: string }>(
    "SELECT indexdef FROM pg_indexes WHERE schemaname = 'control' AND indexname = ANY($1)",
    [names],
  );
  if (rows.length !== names.length) throw new Error(`no such index among ${names.join(', ')}`);
  return rows.map((r) => r.indexdef);
}

function writeResults(data: unknown): string {
  const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(
    dir,
    `audit-seal-${new Date().toISOString().replace(/:/g, '-').replace(/\..+/, 'Z')}.json`,
  );
  writeFileSync(file, `${JSON.stringify(data, null, 2)}\n`);
  return file;
}
