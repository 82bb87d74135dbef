// The tenant-stats job body (jobs/tenant-stats.ts) run by hand with a test
// context and a controllable clock: each run appends one history row per live
// tenant and replaces the latest relations, a tenant no longer live leaves the
// latest table, the history is downsampled by every run, and the counts the
// scheduler records say what happened.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { tenantStatsJob } from '../../jobs/tenant-stats.ts';
import { loadConfig } from '../../kernel/config.ts';
import { ident } from '../../kernel/identifiers.ts';
import { provisionTenant } from '../../tenancy/provision.ts';
import { loadTenantMigrations } from '../../tenancy/templates.ts';
import type { TenantRow } from '../../tenancy/tenant-sql.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';
import { jobContext, type TestJobContext } from '../helpers/jobs.ts';

const migrations = loadTenantMigrations();

describe('tenant-stats job', () => {
  let db: TestDatabase;
  let ctx: TestJobContext;
  let now = new Date('2026-06-15T12:00:00Z');
  let a: TenantRow;
  let b: TenantRow;

  const historyOf = async (tenant: string) =>
    (
      await db.pool.query<{ at: Date; resolution: string; total: number }>(
        `SELECT sampled_at AS at, resolution, total_bytes AS total FROM control.tenant_stats
         WHERE tenant_id = $1 ORDER BY sampled_at`,
        [tenant],
      )
    ).rows;

  before(async () => {
    db = await createTestDatabase(4);
    ctx = await jobContext(db, { clock: () => now });
    a = await provisionTenant(db.pool, { displayName: 'A' }, migrations);
    b = await provisionTenant(db.pool, { displayName: 'B' }, migrations);
  });
  after(async () => {
    ctx.cleanup();
    await db.drop();
  });

  test('is named tenant-stats, scheduled by STATS_SCHEDULE (every 15 minutes by default, "off" = null)', () => {
    assert.equal(tenantStatsJob.name, 'tenant-stats');
    assert.equal(tenantStatsJob.schedule(loadConfig({ DATABASE_URL: db.url })), '*/15 * * * *');
    assert.equal(tenantStatsJob.schedule(loadConfig({ DATABASE_URL: db.url, STATS_SCHEDULE: 'off' })), null);
    assert.ok(tenantStatsJob.expireInSeconds >= 600);
  });

  test('a run records one history row per live tenant and the latest relations, and says so in its counts', async () => {
    const counts = await tenantStatsJob.run(ctx, {});
    assert.equal(counts.tenants, 2);
    assert.ok((counts.relations ?? 0) >= 2 * 10, 'tables and indexes of both tenants');
    assert.ok((counts.totalBytes ?? 0) > 0);
    assert.equal(counts.removed, 0);
    for (const t of [a, b]) {
      const h = await historyOf(t.id);
      assert.deepEqual(
        h.map((r) => [r.at.toISOString(), r.resolution]),
        [[now.toISOString(), 'raw']],
      );
    }
    const line = ctx.captured.lines().find((l) => l.message === 'tenant statistics collected');
    assert.equal(line?.tenants, 2);
  });

  test('later runs append history, replace the latest rows, and downsample with the clock', async () => {
    await db.pool.query(
      `INSERT INTO ${ident(a.schema_name)}.notes (title, body) SELECT 'n' || i, repeat('x', 500) FROM generate_series(1, 200) i`,
    );
    await db.pool.query(`ANALYZE ${ident(a.schema_name)}.notes`);
    const before = (await historyOf(a.id))[0]?.total ?? 0;
    // Every 15 minutes for an hour and a half.
    for (let i = 1; i <= 6; i++) {
      now = new Date(Date.parse('2026-06-15T12:00:00Z') + i * 15 * 60_000);
      await tenantStatsJob.run(ctx, {});
    }
    const h = await historyOf(a.id);
    // At 13:30, 12:00 and 12:15 are older than an hour: hour 12 keeps its last of those, 12:15
    // (12:30 is exactly an hour old: not older, still raw).
    assert.deepEqual(
      h.map((r) => `${r.at.toISOString().slice(11, 16)} ${r.resolution}`),
      ['12:15 hour', '12:30 raw', '12:45 raw', '13:00 raw', '13:15 raw', '13:30 raw'],
    );
    assert.ok(Number(h.at(-1)?.total) > Number(before), 'the notes are counted');
    const latest = await db.pool.query(
      'SELECT tenant_id, sampled_at, jsonb_array_length(relations) AS n FROM control.tenant_stats_latest ORDER BY tenant_id',
    );
    assert.equal(latest.rows.length, 2, 'one latest row per tenant, replaced');
    for (const r of latest.rows) assert.equal(r.sampled_at.toISOString(), now.toISOString());
  });

  test('a tenant that is no longer live leaves the latest table and gets no new history', async () => {
    await db.pool.query("UPDATE control.tenants SET state = 'deleted', deleted_at = now() WHERE id = $1", [
      b.id,
    ]);
    await db.pool.query(`DROP SCHEMA ${ident(b.schema_name)} CASCADE`);
    now = new Date(now.getTime() + 15 * 60_000);
    const counts = await tenantStatsJob.run(ctx, {});
    assert.equal(counts.tenants, 1);
    assert.equal(counts.removed, 1);
    const h = await historyOf(b.id);
    assert.ok(h.length > 0, 'its history stays until it ages out');
    assert.ok(
      h.every((r) => r.at < now),
      'no sample of this run',
    );
    const ids = (await db.pool.query('SELECT tenant_id FROM control.tenant_stats_latest')).rows.map(
      (r) => r.tenant_id,
    );
    assert.deepEqual(ids, [a.id]);
  });

  test('an aborted run stops before downsampling', async () => {
    const stop = new AbortController();
    stop.abort(new Error('stopping'));
    now = new Date(now.getTime() + 15 * 60_000);
    await assert.rejects(tenantStatsJob.run({ ...ctx, signal: stop.signal }, {}), /stopping/);
  });
});
