// The admin console's tenants table (server/admin/tenant-directory.ts) over
// 10,000 tenants: the first page, page 50 (following the cursors from the
// first), a filtered page (state=active&noBackupHours=24&sort=size) and the
// first page of each other sort, timed server-side through tenantDirectory(),
// the function GET /admin/tenants and GET /api/v1/admin/tenants call. The
// issue's aim: under 100 ms each.
//
//   node bench/admin-tenants.bench.ts [--tenants 10000] [--runs 7] [--backups 30] [--samples 30] [--keep]
// Every option can also be set as BENCH_<NAME>. BENCH_DATABASE_URL: an admin URL that may create databases.
//
// The fleet is written straight into the control plane with SQL (tenants,
// their latest statistics and `--samples` history samples each, `--backups`
// backups each, a third of them failed): the table reads the control plane
// only, never a tenant schema, so no schema is made (provisioning 10,000 for
// real takes minutes and changes nothing this query reads). ANALYZEd, then
// each query runs once to warm up and `--runs` times measured; the median is
// reported, with the plan of the filtered page. The scratch database is
// dropped at the end (--keep keeps it).
import { parseArgs } from 'node:util';
import {
  type DirectoryParams,
  PAGE_SIZE,
  parseDirectoryQuery,
  tenantDirectory,
} from '../server/admin/tenant-directory.ts';
import { directoryPage } from '../server/admin/tenant-directory-sql.ts';
import { createBenchDatabase } from '../test/helpers/database.ts';
import { saveResults } from './results.ts';
import { beginRun, benchUrls, machine, optionReader } from './run.ts';

const OPTIONS = { tenants: '10000', runs: '7', backups: '30', samples: '30' };
type OptionName = keyof typeof OPTIONS;

const log = (line: string) => process.stderr.write(`${line}\n`);
const round = (n: number, digits = 2) => Number(n.toFixed(digits));
const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

/** The latest tenant migration version the bench pretends to have (a tenth of the fleet is behind). */
const LATEST = 5;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      ...Object.fromEntries(Object.keys(OPTIONS).map((k) => [k, { type: 'string' as const }])),
      keep: { type: 'boolean' },
    },
  });
  const { int } = optionReader(OPTIONS, values as Partial<Record<OptionName, string>>);
  const opts = {
    ...benchUrls(),
    tenants: int('tenants', 1),
    runs: int('runs', 5),
    backups: int('backups', 1),
    samples: int('samples', 2),
    keep: values.keep === true,
  };
  const { startedAt, loadAverageAtStart } = beginRun(log, 'step', () => []);
  const scratch = await createBenchDatabase(opts.adminUrl, { poolSize: 4, migrate: true, log });
  try {
    log(`scratch database ${scratch.name}: ${opts.tenants} tenants (control plane only)`);
    const fillStarted = performance.now();
    const pool = scratch.pool;
    await pool.query(
      `INSERT INTO control.tenants (id, display_name, schema_name, role_name, state, schema_version, created_at, last_active_at, legal_hold, deleted_at)
       SELECT id, 'Bench tenant ' || lpad(g::text, 6, '0') || ' ' || md5(g::text), 't_' || id, 't_' || id,
              CASE WHEN g % 20 = 0 THEN 'suspended' WHEN g % 50 = 1 THEN 'deleted' WHEN g % 97 = 0 THEN 'archived' ELSE 'active' END,
              CASE WHEN g % 10 = 0 THEN $2 - 1 ELSE $2 END,
              now() - interval '400 days',
              CASE WHEN g % 13 = 0 THEN NULL ELSE now() - make_interval(mins => (g * 7919) % 525600) END,
              g % 101 = 0,
              CASE WHEN g % 50 = 1 THEN now() END
       FROM generate_series(1, $1) g, LATERAL (SELECT substr(md5('bench' || g), 1, 12) AS id) i`,
      [opts.tenants, LATEST],
    );
    // History: one sample a day for `samples` days (the downsampled shape), the newest now.
    await pool.query(
      `INSERT INTO control.tenant_stats (tenant_id, sampled_at, resolution, total_bytes, table_bytes, index_bytes, toast_bytes, rows_estimate, dead_rows)
       SELECT t.id, date_trunc('minute', now()) - make_interval(days => d), CASE WHEN d = 0 THEN 'raw' ELSE 'day' END,
              s.b, s.b / 2, s.b / 2, 0, s.b / 100, 0
       FROM control.tenants t
       CROSS JOIN generate_series(0, $1 - 1) d
       CROSS JOIN LATERAL (SELECT ((hashtext(t.id) & 65535) * 1024 + (($1 - d) * (hashtext(t.id) & 255) * 512))::bigint AS b) s
       WHERE t.state <> 'deleted'`,
      [opts.samples],
    );
    await pool.query(
      `INSERT INTO control.tenant_stats_latest (tenant_id, sampled_at, total_bytes, table_bytes, index_bytes, toast_bytes,
         rows_estimate, dead_rows, tables_not_analyzed, relations)
       SELECT tenant_id, sampled_at, total_bytes, table_bytes, index_bytes, toast_bytes, rows_estimate, 0, 0, '[]'
       FROM control.tenant_stats WHERE resolution = 'raw'`,
    );
    // Backups: one a day, every third one failed; the newest good one's age spread over ~3 days.
    await pool.query(
      `INSERT INTO control.backups (tenant_id, kind, outcome, started_at, finished_at, created_by, error, drift)
       SELECT t.id, 'scheduled', CASE WHEN k % 3 = 0 THEN 'failed' ELSE 'succeeded' END,
              now() - make_interval(hours => k * 24 + (hashtext(t.id) & 63)),
              now() - make_interval(hours => k * 24 + (hashtext(t.id) & 63)) + interval '2 seconds',
              'bench', CASE WHEN k % 3 = 0 THEN 'bench failure' END,
              CASE WHEN k % 3 = 0 THEN NULL WHEN hashtext(t.id) % 40 = 0 THEN 3 ELSE 0 END
       FROM control.tenants t CROSS JOIN generate_series(0, $1 - 1) k
       WHERE t.state <> 'deleted' AND hashtext(t.id) % 25 <> 0`,
      [opts.backups],
    );
    await pool.query('VACUUM ANALYZE');
    const counts = (
      await pool.query<{ tenants: number; samples: number; backups: number }>(
        `SELECT (SELECT count(*)::int FROM control.tenants) AS tenants,
                (SELECT count(*)::int FROM control.tenant_stats) AS samples,
                (SELECT count(*)::int FROM control.backups) AS backups`,
      )
    ).rows[0] as { tenants: number; samples: number; backups: number };
    const fillSeconds = round((performance.now() - fillStarted) / 1000, 1);
    log(
      `  ${counts.tenants} tenants, ${counts.samples} history samples, ${counts.backups} backups in ${fillSeconds} s`,
    );

    const time = async (params: DirectoryParams) => {
      const t0 = performance.now();
      const page = await tenantDirectory(pool, params, LATEST);
      return { ms: performance.now() - t0, page };
    };
    const measure = async (name: string, params: () => Promise<DirectoryParams> | DirectoryParams) => {
      const p = await params();
      await time(p); // warm-up
      const runs: number[] = [];
      let rows = 0;
      for (let i = 0; i < opts.runs; i++) {
        const r = await time(p);
        runs.push(r.ms);
        rows = r.page.tenants.length;
      }
      const result = { name, medianMs: round(median(runs)), runsMs: runs.map((x) => round(x)), rows };
      log(`  ${name}: median ${result.medianMs} ms (${result.runsMs.join(', ')}), ${rows} rows`);
      return result;
    };
    /** The params of page `n` of a query: the cursors followed from the first page. */
    const pageN = async (query: Record<string, string>, n: number): Promise<DirectoryParams> => {
      let params = parseDirectoryQuery(query);
      for (let i = 1; i < n; i++) {
        const page = await tenantDirectory(pool, params, LATEST);
        if (!page.nextCursor) throw new Error(`only ${i} pages`);
        params = { ...params, cursor: page.nextCursor };
      }
      return params;
    };
    const filtered = { state: 'active', noBackupHours: '24', sort: 'size' };
    const results = [
      await measure('first page (by name)', () => parseDirectoryQuery({})),
      await measure('page 50 (by name)', () => pageN({}, 50)),
      await measure('filtered: state=active&noBackupHours=24&sort=size', () => parseDirectoryQuery(filtered)),
      await measure('first page by size', () => parseDirectoryQuery({ sort: 'size' })),
      await measure('page 50 by size', () => pageN({ sort: 'size' }, 50)),
      await measure('first page by growth', () => parseDirectoryQuery({ sort: 'growth' })),
      await measure('first page by backup age (oldest first)', () => parseDirectoryQuery({ sort: 'backup' })),
      await measure('first page by last activity', () => parseDirectoryQuery({ sort: 'activity' })),
      await measure('search q=0042', () => parseDirectoryQuery({ q: '0042' })),
      await measure('behind=1&drift=1', () => parseDirectoryQuery({ behind: '1', drift: '1' })),
    ];
    const explain = async (query: Record<string, string>) => {
      const p = parseDirectoryQuery(query);
      const st = directoryPage({ ...p, after: null, latestVersion: LATEST, limit: PAGE_SIZE + 1 });
      const { rows } = await pool.query<{ 'QUERY PLAN': string }>(
        `EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) ${st.text}`,
        st.values,
      );
      return rows.map((r) => r['QUERY PLAN']);
    };
    const plans = { filtered: await explain(filtered), firstPage: await explain({}) };
    log(`\nplan of the filtered page:\n${plans.filtered.join('\n')}\n`);
    const saved = saveResults('admin-tenants', startedAt.toISOString(), {
      startedAt: startedAt.toISOString(),
      machine: await machine(scratch, loadAverageAtStart),
      options: opts,
      setup: { ...counts, fillSeconds },
      results,
      plans,
    });
    const lines = [
      `| query (${counts.tenants.toLocaleString('en-US')} tenants, ${counts.backups.toLocaleString('en-US')} backups, ${counts.samples.toLocaleString('en-US')} samples) | median | runs (ms) |`,
      '| --- | ---: | --- |',
      ...results.map((r) => `| ${r.name} | ${r.medianMs} ms | ${r.runsMs.join(', ')} |`),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    log(`results written to ${saved}`);
  } finally {
    if (opts.keep) {
      await scratch.pool.end().catch(() => {});
      log(`kept (--keep): database ${scratch.name}; drop it with DROP DATABASE (it has no tenant roles).`);
    } else {
      log('dropping the scratch database');
      await scratch.drop();
    }
  }
}

await main();
