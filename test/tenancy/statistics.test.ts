// Per-tenant statistics (tenancy/statistics.ts) on a real PostgreSQL: the one
// catalog pass reports, schema by schema, what PostgreSQL itself reports
// (pg_relation_size, count(*), pg_stat dead tuples) after known inserts and
// deletes; 500 tenants in one run; exact sizes of one tenant; the history is
// downsampled deterministically and idempotently (explicit timestamps); growth
// is measured against the newest sample at least 7 days old.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ident } from '../../kernel/identifiers.ts';
import { provisionTenant } from '../../tenancy/provision.ts';
import {
  type CollectedTenant,
  collectStats,
  downsampleStats,
  exactTenantStats,
  fleetStats,
  recordStats,
  tenantStats,
} from '../../tenancy/statistics.ts';
import { loadTenantMigrations } from '../../tenancy/templates.ts';
import { TenantNotFoundError, TenantUnavailableError } from '../../tenancy/tenancy-errors.ts';
import type { TenantRow } from '../../tenancy/tenant-sql.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';

const migrations = loadTenantMigrations();

/** What PostgreSQL reports for every relation of one schema, measured with its own functions. */
interface Oracle {
  name: string;
  kind: string;
  bytes: number;
  toast_bytes: number;
  exact_bytes: number;
  exact_toast: number;
  reltuples: number;
  dead: number | null;
}

async function oracle(db: TestDatabase, schema: string): Promise<Map<string, Oracle>> {
  const { rows } = await db.pool.query<Oracle>(
    `SELECT c.relname AS name, CASE c.relkind WHEN 'i' THEN 'index' ELSE 'table' END AS kind,
            pg_relation_size(c.oid)::bigint AS bytes,
            CASE WHEN c.reltoastrelid = 0 THEN 0 ELSE pg_relation_size(c.reltoastrelid)
              + (SELECT sum(pg_relation_size(x.indexrelid)) FROM pg_index x WHERE x.indrelid = c.reltoastrelid) END::bigint
              AS toast_bytes,
            (pg_relation_size(c.oid, 'main') + pg_relation_size(c.oid, 'fsm') + pg_relation_size(c.oid, 'vm'))::bigint
              AS exact_bytes,
            CASE WHEN c.reltoastrelid = 0 THEN 0 ELSE pg_total_relation_size(c.reltoastrelid) END::bigint AS exact_toast,
            c.reltuples::float8 AS reltuples,
            (SELECT s.n_dead_tup FROM pg_stat_user_tables s WHERE s.relid = c.oid) AS dead
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = $1 AND c.relkind IN ('r', 'i', 'm', 'p')`,
    [schema],
  );
  return new Map(rows.map((r) => [r.name, r]));
}

const countRows = async (db: TestDatabase, schema: string, table: string) =>
  Number((await db.pool.query(`SELECT count(*)::int AS n FROM ${ident(schema)}.${ident(table)}`)).rows[0].n);

/**
 * Runs a DELETE and flushes its pg_stat counters: they are sent asynchronously
 * (at most once a second), unless the backend is told to report at its next
 * idle moment (pg_stat_force_next_flush, PostgreSQL 15+), which comes before
 * the answer to that call.
 */
async function deleteAndFlush(db: TestDatabase, statement: string): Promise<void> {
  const client = await db.pool.connect();
  try {
    await client.query(statement);
    await client.query('SELECT pg_stat_force_next_flush()');
  } finally {
    client.release();
  }
}

/** Random hex, which pglz cannot shrink: a body this long is stored out of line, in TOAST. */
const incompressible = (chunks: number) =>
  `(SELECT string_agg(md5(random()::text || g::text), '') FROM generate_series(1, ${chunks}) g WHERE i > 0)`;

function assertMatches(stats: CollectedTenant, o: Map<string, Oracle>): void {
  assert.equal(stats.relations.length, o.size, 'every table and index, nothing else');
  let total = 0;
  for (const r of stats.relations) {
    const want = o.get(r.name);
    assert.ok(want, `unexpected relation ${r.name}`);
    assert.equal(r.kind, want.kind, r.name);
    assert.equal(r.bytes, Number(want.bytes), `${r.name}: bytes`);
    assert.equal(r.toastBytes, Number(want.toast_bytes), `${r.name}: TOAST bytes`);
    assert.equal(r.rows, want.reltuples < 0 ? null : Math.round(want.reltuples), `${r.name}: rows`);
    if (r.kind === 'table') assert.equal(r.deadRows, Number(want.dead), `${r.name}: dead rows`);
    else assert.equal(r.deadRows, null);
    total += Number(want.bytes) + Number(want.toast_bytes);
  }
  assert.equal(stats.totalBytes, total, 'the total is every relation and its TOAST');
  assert.equal(stats.totalBytes, stats.tableBytes + stats.indexBytes + stats.toastBytes);
}

describe('per-tenant statistics', () => {
  let db: TestDatabase;
  let big: TenantRow;
  let small: TenantRow;
  let empty: TenantRow;
  const NOTES = 300;
  const TASKS = 40;

  before(async () => {
    db = await createTestDatabase(6);
    big = await provisionTenant(db.pool, { displayName: 'Big' }, migrations);
    small = await provisionTenant(db.pool, { displayName: 'Small' }, migrations);
    empty = await provisionTenant(db.pool, { displayName: 'Empty' }, migrations);
    const s = ident(big.schema_name);
    await db.pool.query(
      `INSERT INTO ${s}.notes (title, body, tags)
       SELECT 'note ' || i, ${incompressible(120)}, ARRAY['a', 'b' || (i % 5)] FROM generate_series(1, ${NOTES + 1}) i`,
    );
    // One delete, so that VACUUM (INDEX_CLEANUP ON: no skipping for a few dead rows) scans the
    // TOAST index and records its size: a VACUUM with nothing to remove leaves its relpages as
    // they were, and ANALYZE never looks at TOAST. The delete's counters are flushed first, so
    // that VACUUM's report of "no dead rows" comes after them.
    await deleteAndFlush(db, `DELETE FROM ${s}.notes WHERE id = ${NOTES + 1}`);
    await db.pool.query(`VACUUM (INDEX_CLEANUP ON) ${s}.notes`);
    await db.pool.query(
      `INSERT INTO ${s}.tasks (title, note_id) SELECT 'task ' || i, i FROM generate_series(1, ${TASKS}) i`,
    );
    await db.pool.query(
      `INSERT INTO ${ident(small.schema_name)}.notes (title, body) SELECT 'n' || i, 'short' FROM generate_series(1, 7) i`,
    );
    // relpages and reltuples are what VACUUM and ANALYZE last measured (TOAST: VACUUM only).
    await db.pool.query('VACUUM ANALYZE');
  });
  after(async () => {
    await db.drop();
  });

  test('the one catalog pass equals what PostgreSQL reports for each schema after known inserts', async () => {
    const stats = new Map((await collectStats(db.pool)).map((s) => [s.tenantId, s]));
    assert.equal(stats.size, 3);
    for (const t of [big, small, empty]) {
      const s = stats.get(t.id) as CollectedTenant;
      assertMatches(s, await oracle(db, t.schema_name));
      const rows =
        (await countRows(db, t.schema_name, 'notes')) +
        (await countRows(db, t.schema_name, 'tasks')) +
        (await countRows(db, t.schema_name, 'storage_usage'));
      assert.equal(
        s.rowsEstimate,
        rows,
        `${t.display_name}: the row estimate is the row count after ANALYZE`,
      );
      assert.equal(s.tablesNotAnalyzed, 0);
    }
    const b = stats.get(big.id) as CollectedTenant;
    const notes = b.relations.find((r) => r.name === 'notes');
    assert.equal(notes?.rows, NOTES);
    assert.ok((notes?.toastBytes ?? 0) > NOTES * 2000, 'the long bodies are counted in the TOAST bytes');
    assert.ok(b.toastBytes >= (notes?.toastBytes ?? 0));
    assert.ok(notes?.lastVacuum && notes.lastAnalyze, 'the VACUUM ANALYZE is seen');
    assert.equal(notes?.lastAutovacuum, null);
    const idx = b.relations.find((r) => r.name === 'notes_updated_idx');
    assert.equal(idx?.kind, 'index');
    assert.equal(idx?.table, 'notes');
    assert.equal(idx?.rows, NOTES);
    assert.ok(b.totalBytes > (stats.get(small.id) as CollectedTenant).totalBytes);
  });

  test('dead tuples after deletes are the pg_stat counters', async () => {
    await deleteAndFlush(db, `DELETE FROM ${ident(big.schema_name)}.notes WHERE id <= 30`);
    const autovacuum = (await db.pool.query("SELECT current_setting('autovacuum') AS v")).rows[0].v;
    let notes: CollectedTenant['relations'][number] | undefined;
    for (let i = 0; i < 50; i++) {
      const [s] = await collectStats(db.pool, big.id);
      notes = s?.relations.find((r) => r.name === 'notes');
      if ((notes?.deadRows ?? 0) >= 30) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const o = (await oracle(db, big.schema_name)).get('notes');
    assert.equal(notes?.deadRows, Number(o?.dead), 'the same as pg_stat_user_tables.n_dead_tup');
    if (autovacuum === 'off') assert.equal(notes?.deadRows, 30);
    const [s] = await collectStats(db.pool, big.id);
    assert.equal(
      s?.deadRows,
      s?.relations.reduce((n, r) => n + (r.deadRows ?? 0), 0),
      'the tenant total is the sum of its tables',
    );
  });

  test('a table never vacuumed or analyzed has no row estimate (null), and is counted as such', async () => {
    await db.pool.query(`CREATE TABLE ${ident(empty.schema_name)}.extra (x int)`);
    await db.pool.query(`INSERT INTO ${ident(empty.schema_name)}.extra SELECT generate_series(1, 5)`);
    const [s] = await collectStats(db.pool, empty.id);
    const extra = s?.relations.find((r) => r.name === 'extra');
    assert.equal(extra?.rows, null, 'reltuples -1 is reported as null, not as -1 or 0');
    assert.equal(extra?.bytes, 0, 'relpages: not measured yet');
    assert.equal(s?.tablesNotAnalyzed, 1);
    await db.pool.query(`ANALYZE ${ident(empty.schema_name)}.extra`);
    const [again] = await collectStats(db.pool, empty.id);
    assert.equal(again?.relations.find((r) => r.name === 'extra')?.rows, 5);
    assert.equal(again?.tablesNotAnalyzed, 0);
    assertMatches(again as CollectedTenant, await oracle(db, empty.schema_name));
  });

  test('exact sizes of one tenant are measured with every fork, and refused for unknown or dropped tenants', async () => {
    const exact = await exactTenantStats(db.pool, big.id);
    const o = await oracle(db, big.schema_name);
    for (const r of exact.relations) {
      const want = o.get(r.name) as Oracle;
      assert.equal(r.bytes, Number(want.exact_bytes), `${r.name}: main + fsm + vm`);
      assert.equal(r.toastBytes, Number(want.exact_toast), `${r.name}: pg_total_relation_size of its TOAST`);
    }
    const total = Number(
      (
        await db.pool.query(
          `SELECT sum(pg_total_relation_size(c.oid))::bigint AS n FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind IN ('r', 'm')`,
          [big.schema_name],
        )
      ).rows[0].n,
    );
    assert.equal(exact.totalBytes, total, "the exact total is pg_total_relation_size of the tenant's tables");
    await assert.rejects(exactTenantStats(db.pool, 'zzzzzzzzzzzz'), TenantNotFoundError);
    await assert.rejects(exactTenantStats(db.pool, 'NOT AN ID'), TenantNotFoundError);
    const gone = await provisionTenant(db.pool, { displayName: 'Gone' }, migrations);
    await db.pool.query(`DROP SCHEMA ${ident(gone.schema_name)} CASCADE`);
    await db.pool.query("UPDATE control.tenants SET state = 'deleted', deleted_at = now() WHERE id = $1", [
      gone.id,
    ]);
    await assert.rejects(exactTenantStats(db.pool, gone.id), TenantUnavailableError);
    assert.ok(!(await collectStats(db.pool)).some((s) => s.tenantId === gone.id), 'deleted: not collected');
  });

  test('500 tenants in one run: every schema equals what PostgreSQL reports, stored in one statement', async () => {
    const existing = Number(
      (await db.pool.query("SELECT count(*)::int AS n FROM control.tenants WHERE state = 'active'")).rows[0]
        .n,
    );
    const fleet: TenantRow[] = [];
    let next = existing;
    const worker = async () => {
      while (next < 500) {
        next++;
        fleet.push(await provisionTenant(db.pool, { displayName: `fleet ${next}` }, migrations));
      }
    };
    await Promise.all(Array.from({ length: 4 }, worker));
    // Known inserts: tenant k gets k % 7 notes.
    await Promise.all(
      [0, 1, 2, 3].map(async (w) => {
        for (let k = w; k < fleet.length; k += 4) {
          const t = fleet[k] as TenantRow;
          if (k % 7)
            await db.pool.query(
              `INSERT INTO ${ident(t.schema_name)}.notes (title) SELECT 'n' || i FROM generate_series(1, ${k % 7}) i`,
            );
        }
      }),
    );
    // The deletes of the dead-tuple test changed the first tenant's TOAST: measured again as in before().
    await db.pool.query(`VACUUM (INDEX_CLEANUP ON) ${ident(big.schema_name)}.notes`);
    await db.pool.query('ANALYZE');
    const at = new Date('2026-06-15T12:00:00Z');
    const recorded = await recordStats(db.pool, at);
    assert.equal(recorded.tenants, 500);
    const { rows: stored } = await db.pool.query(
      'SELECT tenant_id, total_bytes, rows_estimate FROM control.tenant_stats WHERE sampled_at = $1',
      [at],
    );
    assert.equal(stored.length, 500, 'one history row per live tenant');
    const latestCount = Number(
      (await db.pool.query('SELECT count(*)::int AS n FROM control.tenant_stats_latest')).rows[0].n,
    );
    assert.equal(latestCount, 500);
    // The oracle: PostgreSQL's own sizes of every tenant schema, summed per schema.
    const { rows: truth } = await db.pool.query<{ id: string; bytes: number }>(
      `SELECT t.id, sum(pg_relation_size(c.oid)
               + CASE WHEN c.reltoastrelid = 0 THEN 0 ELSE pg_relation_size(c.reltoastrelid)
                 + (SELECT sum(pg_relation_size(x.indexrelid)) FROM pg_index x WHERE x.indrelid = c.reltoastrelid) END
             )::bigint AS bytes
       FROM control.tenants t JOIN pg_namespace n ON n.nspname = t.schema_name
       JOIN pg_class c ON c.relnamespace = n.oid AND c.relkind IN ('r', 'i', 'm', 'p')
       WHERE t.state = 'active' GROUP BY t.id`,
    );
    const byId = new Map(stored.map((r) => [r.tenant_id as string, r]));
    for (const t of truth) assert.equal(Number(byId.get(t.id)?.total_bytes), Number(t.bytes), t.id);
    fleet.forEach((t, k) => {
      assert.equal(Number(byId.get(t.id)?.rows_estimate), (k % 7) + 1, `${t.id}: notes + the usage row`);
    });
    const one = await tenantStats(db.pool, (fleet[3] as TenantRow).id);
    assert.equal(one.latest?.relations.find((r) => r.name === 'notes')?.rows, 3);
    assert.equal(one.history.length, 1);
  });
});

describe('history: downsampling and growth', () => {
  let db: TestDatabase;
  const ids = ['aaaaaaaaaaa1', 'aaaaaaaaaaa2', 'aaaaaaaaaaa3', 'aaaaaaaaaaa4'];
  const NOW = new Date('2026-06-15T12:00:00Z');

  const sample = (tenant: string, at: string, bytes = 100) =>
    db.pool.query(
      `INSERT INTO control.tenant_stats (tenant_id, sampled_at, total_bytes, table_bytes, index_bytes, toast_bytes,
         rows_estimate, dead_rows) VALUES ($1, $2, $3, $3, 0, 0, 0, 0)`,
      [tenant, at, bytes],
    );
  const kept = async (tenant: string) =>
    (
      await db.pool.query<{ at: Date; resolution: string }>(
        'SELECT sampled_at AS at, resolution FROM control.tenant_stats WHERE tenant_id = $1 ORDER BY sampled_at',
        [tenant],
      )
    ).rows.map((r) => `${r.at.toISOString()} ${r.resolution}`);

  before(async () => {
    db = await createTestDatabase(2);
    for (const id of ids)
      await db.pool.query(
        `INSERT INTO control.tenants (id, display_name, schema_name, role_name, state)
         VALUES ($1, $1, 't_' || $1, 't_' || $1, 'active')`,
        [id],
      );
  });
  after(async () => {
    await db.drop();
  });

  test('older than an hour: the last of each hour; older than 7 days: the last of each UTC day; older than a year: gone', async () => {
    const t = ids[0] as string;
    for (const at of [
      '2026-06-15T11:30:00Z', // within the hour: raw
      '2026-06-15T11:00:00Z', // exactly an hour old: not older, raw
      '2026-06-15T10:50:00Z', // hour 10: the last one, kept
      '2026-06-15T10:20:00Z',
      '2026-06-15T10:05:00Z',
      '2026-06-15T09:59:59Z', // alone in hour 9
      '2026-06-10T23:15:00Z',
      '2026-06-10T23:45:00Z', // the last of 23:00 on June 10
      '2026-06-08T13:00:00Z', // 7 days minus an hour: hourly
      '2026-06-08T12:30:00Z', // 7 days minus 30 min: hourly
      '2026-06-08T11:00:00Z', // older than 7 days: the last of June 8 among those
      '2026-06-08T03:00:00Z',
      '2026-06-01T00:00:00Z',
      '2026-06-01T23:59:59Z', // the last of June 1
      '2025-06-16T00:00:00Z', // 364 days: kept, daily
      '2025-06-15T11:59:00Z', // 365 days and a minute: deleted
    ])
      await sample(t, at);
    const result = await downsampleStats(db.pool, NOW);
    assert.deepEqual(result, { expired: 1, daily: 2, hourly: 3 });
    const expected = [
      '2025-06-16T00:00:00.000Z day',
      '2026-06-01T23:59:59.000Z day',
      '2026-06-08T11:00:00.000Z day',
      '2026-06-08T12:30:00.000Z hour',
      '2026-06-08T13:00:00.000Z hour',
      '2026-06-10T23:45:00.000Z hour',
      '2026-06-15T09:59:59.000Z hour',
      '2026-06-15T10:50:00.000Z hour',
      '2026-06-15T11:00:00.000Z raw',
      '2026-06-15T11:30:00.000Z raw',
    ];
    assert.deepEqual(await kept(t), expected);
    // Idempotent: the same "now" again changes nothing.
    assert.deepEqual(await downsampleStats(db.pool, NOW), { expired: 0, daily: 0, hourly: 0 });
    assert.deepEqual(await kept(t), expected);
    // A day later, June 8 12:30 and 13:00 are older than 7 days: one sample for June 8 (13:00).
    await downsampleStats(db.pool, new Date('2026-06-16T12:00:00Z'));
    const dayLater = await kept(t);
    assert.deepEqual(
      dayLater.filter((s) => s.startsWith('2026-06-08')),
      ['2026-06-08T13:00:00.000Z day'],
    );
    assert.ok(dayLater.includes('2026-06-15T11:30:00.000Z hour'));
  });

  test('reducing every run or once at the end keeps exactly the same samples', async () => {
    const [often, once] = [ids[1] as string, ids[2] as string];
    const start = Date.parse('2026-06-01T00:00:00Z');
    const step = 15 * 60_000;
    const count = 10 * 96; // ten days of a run every 15 minutes
    const times = Array.from({ length: count }, (_, i) => new Date(start + i * step + (i % 3) * 1000));
    const insert = (tenant: string, list: Date[]) =>
      db.pool.query(
        `INSERT INTO control.tenant_stats (tenant_id, sampled_at, total_bytes, table_bytes, index_bytes, toast_bytes,
           rows_estimate, dead_rows)
         SELECT $1, t, 1, 1, 0, 0, 0, 0 FROM unnest($2::timestamptz[]) t`,
        [tenant, list],
      );
    // `often`: eight samples (two hours) at a time, downsampled after each batch as the job would.
    for (let i = 0; i < count; i += 8) {
      const batch = times.slice(i, i + 8);
      await insert(often, batch);
      await downsampleStats(db.pool, new Date((batch.at(-1) as Date).getTime() + 1000));
    }
    const end = new Date((times.at(-1) as Date).getTime() + 1000);
    await insert(once, times);
    await downsampleStats(db.pool, end);
    const a = await kept(often);
    assert.deepEqual(a, await kept(once));
    // 3 days older than 7 days (one each), then hourly, then the last hour raw.
    assert.equal(a.filter((s) => s.endsWith(' day')).length, 3);
    assert.ok(a.filter((s) => s.endsWith(' raw')).length <= 5);
  });

  test('growth is measured against the newest sample at or before 7 days before the latest run', async () => {
    const [grower, fresh] = [ids[3] as string, ids[1] as string];
    const latest = async (tenant: string, bytes: number) => {
      await db.pool.query(
        `INSERT INTO control.tenant_stats_latest (tenant_id, sampled_at, total_bytes, table_bytes, index_bytes,
           toast_bytes, rows_estimate, dead_rows, tables_not_analyzed, relations)
         VALUES ($1, $2, $3, $3, 0, 0, 0, 0, 0, '[]')`,
        [tenant, NOW, bytes],
      );
      await sample(tenant, NOW.toISOString(), bytes);
    };
    await sample(grower, '2026-06-07T12:00:00Z', 1_000); // 8 days before
    await sample(grower, '2026-06-08T12:00:00Z', 2_000); // exactly 7 days before: this one
    await sample(grower, '2026-06-09T12:00:00Z', 9_000); // 6 days before: too recent
    await latest(grower, 50_000);
    await db.pool.query('DELETE FROM control.tenant_stats WHERE tenant_id = $1', [fresh]);
    await latest(fresh, 900_000);

    const bySize = await fleetStats(db.pool, { sort: 'size', limit: 10 });
    assert.equal(bySize.collectedAt?.toISOString(), NOW.toISOString());
    assert.equal(bySize.tenants, 2);
    assert.equal(bySize.totals.totalBytes, 950_000);
    assert.deepEqual(
      bySize.top.map((t) => t.tenantId),
      [fresh, grower],
    );
    const byGrowth = await fleetStats(db.pool, { sort: 'growth', limit: 10 });
    assert.deepEqual(
      byGrowth.top.map((t) => [t.tenantId, t.growthBytes, t.weekAgoBytes]),
      [
        [grower, 48_000, 2_000],
        [fresh, null, null],
      ],
      'a tenant without a sample that old has no growth and comes last',
    );
    assert.equal(byGrowth.top[0]?.weekAgoAt?.toISOString(), '2026-06-08T12:00:00.000Z');
    assert.equal((await fleetStats(db.pool, { sort: 'growth', limit: 1 })).top.length, 1);
  });
});
