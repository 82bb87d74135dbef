// The scheduled backup (jobs/scheduled-backup.ts) on a real database, its
// fan-out run inline: every live tenant (active, suspended, archived) is
// backed up and its archive verifies by a restore, deleted tenants are not;
// a tenant whose schema was dropped behind the platform's back, or whose lock
// is held past the lock timeout, fails alone (catalog row, audit event, error
// log, a failed run) while the others succeed; retention runs after the
// backups; a repeated job of the same run does not back a tenant up twice.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createBackups } from '../../backup/context.ts';
import { verifyArchiveByRestore } from '../../backup/restore.ts';
import { backupFleetJob, backupTenantJob } from '../../jobs/scheduled-backup.ts';
import { loadConfig } from '../../kernel/config.ts';
import { ident } from '../../kernel/identifiers.ts';
import { tenantLock } from '../../kernel/locks.ts';
import { provisionTenant } from '../../tenancy/provision.ts';
import { loadTenantMigrations } from '../../tenancy/templates.ts';
import type { TenantRow } from '../../tenancy/tenant-sql.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';
import { jobContext, type TestJobContext } from '../helpers/jobs.ts';

const migrations = loadTenantMigrations();

interface Row {
  id: string;
  tenant_id: string;
  kind: string;
  outcome: string;
  location: string | null;
  rows: number | null;
  drift: number | null;
  error: string | null;
  created_by: string;
}

describe('scheduled backup (backup-fleet → backup-tenant)', () => {
  let db: TestDatabase;
  let ctx: TestJobContext;
  const live: TenantRow[] = [];
  let deleted: TenantRow;

  const backupsOf = async (tenantId: string): Promise<Row[]> =>
    (
      await db.pool.query<Row>(
        'SELECT id, tenant_id, kind, outcome, location, rows, drift, error, created_by FROM control.backups WHERE tenant_id = $1 ORDER BY started_at DESC, id DESC',
        [tenantId],
      )
    ).rows;
  /** The same context with other settings (jobContext publishes a key: once per database). */
  const withEnv = (env: Record<string, string>): TestJobContext => {
    const config = loadConfig({
      DATABASE_URL: db.url,
      DATA_DIR: ctx.dir,
      BACKUP_DIR: path.join(ctx.dir, 'backups'),
      ...env,
    });
    const variant: TestJobContext = {
      ...ctx,
      config,
      backups: createBackups(config, db.pool, { signer: ctx.signer, migrations, tmpDir: ctx.dir }),
      fanOut: async (job, items) => {
        const counts = { succeeded: 0, failed: 0 };
        for (const item of items)
          await job.run(variant, item).then(
            () => counts.succeeded++,
            () => counts.failed++,
          );
        return counts;
      },
    };
    return variant;
  };
  const addNotes = async (t: TenantRow, n: number) =>
    db.pool.query(
      `INSERT INTO ${ident(t.schema_name)}.notes (title, body) SELECT 'note ' || i, 'body ' || i FROM generate_series(1, $1) i`,
      [n],
    );

  before(async () => {
    db = await createTestDatabase(6);
    ctx = await jobContext(db);
    for (const [i, state] of (['active', 'active', 'suspended', 'archived'] as const).entries()) {
      const t = await provisionTenant(db.pool, { displayName: `Live ${i}` }, migrations);
      await addNotes(t, 3 + i);
      if (state !== 'active')
        await db.pool.query('UPDATE control.tenants SET state = $2 WHERE id = $1', [t.id, state]);
      live.push(t);
    }
    deleted = await provisionTenant(db.pool, { displayName: 'Gone' }, migrations);
    await db.pool.query(`DROP SCHEMA ${ident(deleted.schema_name)} CASCADE`);
    await db.pool.query("UPDATE control.tenants SET state = 'deleted' WHERE id = $1", [deleted.id]);
  });
  after(async () => {
    await db.drop();
    ctx.cleanup();
  });

  test('a fleet run backs up every live tenant (active, suspended, archived), none deleted, and each archive verifies by a restore', async () => {
    const counts = await backupFleetJob.run(ctx, {});
    assert.equal(counts.tenants, live.length);
    assert.equal(counts.driftChecked, live.length, 'drift checked by the fleet run for every tenant');
    assert.equal(counts.succeeded, live.length);
    assert.equal(counts.failed, 0);
    assert.deepEqual(await backupsOf(deleted.id), [], 'no backup of a deleted tenant');
    const restoreCtx = await ctx.backups.restoreContext();
    for (const [i, t] of live.entries()) {
      const rows = await backupsOf(t.id);
      assert.equal(rows.length, 1);
      const b = rows[0] as Row;
      assert.equal(b.kind, 'scheduled');
      assert.equal(b.outcome, 'succeeded');
      assert.equal(b.created_by, 'system');
      assert.equal(b.drift, 0, 'the drift findings handed over by the fleet run are recorded');
      const result = await verifyArchiveByRestore(restoreCtx, () =>
        ctx.backups.storageAt(b.location as string).open(b.location as string),
      );
      assert.equal(result.manifest.tenant.id, t.id);
      assert.ok(
        result.tables.every((x) => x.ok),
        JSON.stringify(result.tables),
      );
      assert.equal(result.tables.find((x) => x.name === 'notes')?.rows, 3 + i);
    }
    const events = (
      await db.pool.query(
        "SELECT count(*)::int AS n FROM control.audit_inbox WHERE action = 'tenant.backup' AND outcome = 'success' AND actor_type = 'system'",
      )
    ).rows[0].n;
    assert.equal(events, live.length, "one tenant.backup event on each tenant's chain");
  });

  test('a repeated backup-tenant job of the same fleet run skips a tenant already backed up since the run started', async () => {
    const t = live[0] as TenantRow;
    const before = (await backupsOf(t.id)).length;
    const since = new Date(Date.now() - 3600_000).toISOString();
    assert.deepEqual(await backupTenantJob.run(ctx, { tenantId: t.id, since }), { skipped: 1 });
    assert.equal((await backupsOf(t.id)).length, before);
    // A later run (its start after the backup) backs it up again.
    const later = await backupTenantJob.run(ctx, { tenantId: t.id, since: new Date().toISOString() });
    assert.equal(later.backups, 1);
  });

  test('a backup-tenant job of a tenant deleted since the fleet run listed it is skipped, not failed', async () => {
    assert.deepEqual(await backupTenantJob.run(ctx, { tenantId: deleted.id }), { skipped: 1 });
    assert.deepEqual(await backupsOf(deleted.id), []);
  });

  test("a tenant whose schema was dropped behind the platform's back fails alone: failed catalog row, audit failure, error log, failed run", async () => {
    const broken = await provisionTenant(db.pool, { displayName: 'Broken' }, migrations);
    await db.pool.query(`DROP SCHEMA ${ident(broken.schema_name)} CASCADE`);
    const before = new Map(
      await Promise.all(live.map(async (t) => [t.id, (await backupsOf(t.id)).length] as const)),
    );
    const err = (await backupFleetJob.run(ctx, {}).then(
      () => assert.fail('the run should fail'),
      (e: unknown) => e,
    )) as Error & { counts?: Record<string, number> };
    assert.equal(err.name, 'JobRunFailedError');
    assert.match(err.message, /1 of 5 tenant backup\(s\) failed/);
    assert.equal(err.counts?.succeeded, live.length);
    assert.equal(err.counts?.failed, 1);

    for (const t of live) {
      const rows = await backupsOf(t.id);
      assert.equal(rows.length, (before.get(t.id) as number) + 1, `one more backup of ${t.id}`);
      assert.equal(rows[0]?.outcome, 'succeeded');
    }
    const failed = await backupsOf(broken.id);
    assert.equal(failed.length, 1);
    assert.equal(failed[0]?.outcome, 'failed');
    assert.equal(failed[0]?.kind, 'scheduled');
    assert.equal(failed[0]?.location, null, 'no archive');
    assert.match(failed[0]?.error ?? '', /schema .* does not exist/);
    const audit = (
      await db.pool.query(
        "SELECT outcome, outcome_code FROM control.audit_inbox WHERE tenant_id = $1 AND action = 'tenant.backup'",
        [broken.id],
      )
    ).rows;
    assert.deepEqual(audit, [{ outcome: 'failure', outcome_code: 'backup_failed' }]);
    const errors = ctx.captured
      .lines()
      .filter((l) => l.level === 'error' && l.message === 'scheduled backup FAILED');
    assert.equal(errors.length, 1);
    assert.equal(errors[0]?.tenantId, broken.id);
    await db.pool.query("UPDATE control.tenants SET state = 'deleted' WHERE id = $1", [broken.id]);
  });

  test('a tenant whose lock is held past BACKUP_LOCK_TIMEOUT_MS fails (failed catalog row), and the job run throws', async () => {
    const quick = withEnv({ BACKUP_LOCK_TIMEOUT_MS: '200' });
    const t = live[1] as TenantRow;
    const holder = await db.pool.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(tenantLock(t.id)); // a schema change of that tenant in progress
      await assert.rejects(backupTenantJob.run(quick, { tenantId: t.id }), /lock timeout/i);
    } finally {
      await holder.query('ROLLBACK');
      holder.release();
    }
    const latest = (await backupsOf(t.id))[0] as Row;
    assert.equal(latest.outcome, 'failed');
    assert.match(latest.error ?? '', /lock timeout/i);
    // The lock released, the same job succeeds.
    assert.equal((await backupTenantJob.run(ctx, { tenantId: t.id })).backups, 1);
  });

  test('the fleet run prunes after its backups: BACKUP_KEEP_COUNT=1 leaves one good backup per tenant', async () => {
    const counts = await backupFleetJob.run(withEnv({ BACKUP_KEEP_COUNT: '1' }), {});
    assert.equal(counts.failed, 0);
    assert.ok((counts.pruned as number) >= live.length, `pruned ${counts.pruned}`);
    for (const t of live) {
      const good = (await backupsOf(t.id)).filter((b) => b.outcome === 'succeeded');
      assert.equal(good.length, 1, `one good backup of ${t.id}`);
      assert.equal(good[0]?.kind, 'scheduled');
    }
  });

  test('the per-tenant job is wired for the fan-out: no schedule, BACKUP_CONCURRENCY, the tenant as singletonKey', () => {
    assert.equal(backupTenantJob.schedule(ctx.config), null);
    assert.equal(backupTenantJob.concurrency?.(ctx.config), ctx.config.BACKUP_CONCURRENCY);
    assert.equal(backupTenantJob.tenantOf?.({ tenantId: 'abc123def456' }), 'abc123def456');
    assert.equal(backupFleetJob.schedule(ctx.config), ctx.config.BACKUP_SCHEDULE);
  });
});
