// The restore-check job (jobs/restore-check.ts) on a real database: the
// latest good backup of a sample of tenants is restored into scratch and
// compared with its manifest; a good backup passes, a corrupted latest backup
// (bytes flipped in the archive file in BACKUP_DIR) is reported FAILED (its
// row, the tenant's audit event, an error log, a failed run); the sample takes
// never-checked backups first, then those checked longest ago; no scratch
// schema or role is left behind.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { backupTenant } from '../../backup/backup.ts';
import type { BackupRecord } from '../../backup/catalog.ts';
import { restoreCheckJob } from '../../jobs/restore-check.ts';
import { SYSTEM } from '../../kernel/audit-inbox.ts';
import { ident } from '../../kernel/identifiers.ts';
import { provisionTenant } from '../../tenancy/provision.ts';
import { loadTenantMigrations } from '../../tenancy/templates.ts';
import type { TenantRow } from '../../tenancy/tenant-sql.ts';
import { corruptDataPart } from '../backup/fixture.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';
import { jobContext, type TestJobContext } from '../helpers/jobs.ts';

const migrations = loadTenantMigrations();

interface CheckRow {
  backup_id: string;
  tenant_id: string;
  outcome: string;
  tables: number | null;
  rows: number | null;
  error: string | null;
  duration_ms: number;
}

describe('restore check (restore-check job)', () => {
  let db: TestDatabase;
  let ctx: TestJobContext;
  const tenants: TenantRow[] = [];
  const backups = new Map<string, BackupRecord>();

  const checks = async (): Promise<CheckRow[]> =>
    (
      await db.pool.query<CheckRow>(
        'SELECT backup_id, tenant_id, outcome, tables, rows, error, duration_ms FROM control.restore_checks ORDER BY id',
      )
    ).rows;
  // Schemas are per database (roles are cluster-wide: other test files make them meanwhile).
  const scratchLeft = async () =>
    (
      await db.pool.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_namespace WHERE nspname LIKE 't\\_%'",
      )
    ).rows[0]?.n;

  before(async () => {
    db = await createTestDatabase(4);
    ctx = await jobContext(db, { env: { RESTORE_CHECK_SAMPLE: '2' } });
    for (let i = 0; i < 3; i++) {
      const t = await provisionTenant(db.pool, { displayName: `Checked ${i}` }, migrations);
      await db.pool.query(
        `INSERT INTO ${ident(t.schema_name)}.notes (title, body) SELECT 'note ' || i, repeat('body ', 50) || i FROM generate_series(1, $1) i`,
        [20 + i],
      );
      tenants.push(t);
      backups.set(
        t.id,
        await backupTenant(ctx.backups.backupContext(), t.id, { by: SYSTEM, kind: 'scheduled' }),
      );
    }
  });
  after(async () => {
    await db.drop();
    ctx.cleanup();
  });

  test('a run checks RESTORE_CHECK_SAMPLE never-checked latest good backups: each passes, is recorded and audited, and no scratch schema is left', async () => {
    const before = await scratchLeft();
    const counts = await restoreCheckJob.run(ctx, {});
    assert.deepEqual(
      { sampled: counts.sampled, checked: counts.checked, ok: counts.ok, failed: counts.failed },
      { sampled: 2, checked: 2, ok: 2, failed: 0 },
    );
    const rows = await checks();
    assert.equal(rows.length, 2);
    for (const r of rows) {
      assert.equal(r.outcome, 'ok');
      assert.equal(r.error, null);
      assert.equal(r.backup_id, backups.get(r.tenant_id)?.id, "the tenant's latest good backup");
      assert.ok((r.tables ?? 0) >= 1);
      assert.equal(r.rows, backups.get(r.tenant_id)?.rows);
      assert.ok(r.duration_ms > 0);
    }
    const events = (
      await db.pool.query(
        "SELECT tenant_id, outcome, actor_type, details FROM control.audit_inbox WHERE action = 'tenant.backup.verify' ORDER BY id",
      )
    ).rows;
    assert.deepEqual(
      events.map((e) => [e.tenant_id, e.outcome, e.actor_type, e.details]),
      rows.map((r) => [r.tenant_id, 'success', 'system', { backupId: r.backup_id, restore: true }]),
      'the same event an admin verify?restore=1 writes',
    );
    assert.equal(await scratchLeft(), before, 'the scratch schema was rolled back');
  });

  test('the sample takes the never-checked tenant first, then the one checked longest ago', async () => {
    const first = await checks();
    const unchecked = tenants.find((t) => !first.some((c) => c.tenant_id === t.id)) as TenantRow;
    // Make the first run's checks an hour and a minute old: the one an hour old is the longest ago.
    const [older, newer] = first;
    await db.pool.query(
      "UPDATE control.restore_checks SET checked_at = now() - interval '1 hour' WHERE tenant_id = $1",
      [newer?.tenant_id],
    );
    await db.pool.query(
      "UPDATE control.restore_checks SET checked_at = now() - interval '1 minute' WHERE tenant_id = $1",
      [older?.tenant_id],
    );
    const counts = await restoreCheckJob.run(ctx, {});
    assert.equal(counts.checked, 2);
    const second = (await checks()).slice(first.length);
    assert.deepEqual(
      second.map((c) => c.tenant_id),
      [unchecked.id, newer?.tenant_id],
      'never checked, then checked an hour ago (not the one a minute ago)',
    );
  });

  test('a new latest backup counts as never checked: it is checked before backups checked before', async () => {
    const t = tenants[0] as TenantRow;
    const fresh = await backupTenant(ctx.backups.backupContext(), t.id, { by: SYSTEM, kind: 'scheduled' });
    backups.set(t.id, fresh);
    const n = (await checks()).length;
    await restoreCheckJob.run(ctx, {});
    const latest = (await checks()).slice(n);
    assert.equal(latest[0]?.backup_id, fresh.id);
  });

  test('a corrupted latest backup (bytes flipped in its archive in BACKUP_DIR) is reported FAILED: row, audit failure, error log, failed run', async () => {
    const t = tenants[1] as TenantRow;
    const bad = await backupTenant(ctx.backups.backupContext(), t.id, { by: SYSTEM, kind: 'scheduled' });
    assert.ok(bad.location?.startsWith(ctx.config.BACKUP_DIR as string));
    corruptDataPart(bad.location as string);
    const n = (await checks()).length;
    const err = (await restoreCheckJob.run(ctx, {}).then(
      () => assert.fail('a run with a failed check must fail'),
      (e: unknown) => e,
    )) as Error & { counts?: Record<string, number> };
    assert.equal(err.name, 'JobRunFailedError');
    assert.match(err.message, /1 of 2 restore check\(s\) failed/);
    assert.deepEqual(
      { checked: err.counts?.checked, ok: err.counts?.ok, failed: err.counts?.failed },
      { checked: 2, ok: 1, failed: 1 },
    );

    const rows = (await checks()).slice(n);
    const failed = rows.find((r) => r.backup_id === bad.id) as CheckRow;
    assert.equal(failed.outcome, 'failed');
    assert.equal(failed.tenant_id, t.id);
    assert.ok(failed.error && failed.error.length > 0, 'the reason is recorded');
    assert.equal(
      rows.find((r) => r.backup_id !== bad.id)?.outcome,
      'ok',
      'the other check still ran and passed',
    );

    const event = (
      await db.pool.query(
        "SELECT outcome, details FROM control.audit_inbox WHERE tenant_id = $1 AND action = 'tenant.backup.verify' ORDER BY id DESC LIMIT 1",
        [t.id],
      )
    ).rows[0];
    assert.equal(event.outcome, 'failure');
    assert.equal(event.details.backupId, bad.id);
    assert.equal(event.details.restore, true);
    assert.equal(event.details.error, failed.error);

    const logged = ctx.captured
      .lines()
      .filter((l) => l.level === 'error' && l.message === 'restore check FAILED');
    assert.equal(logged.length, 1);
    assert.equal(logged[0]?.backupId, bad.id);
  });

  test('with no good backup anywhere the run checks nothing and succeeds', async () => {
    const empty = await createTestDatabase(2);
    const c = await jobContext(empty);
    try {
      assert.deepEqual(await restoreCheckJob.run(c, {}), {
        sampled: 0,
        checked: 0,
        ok: 0,
        failed: 0,
        rows: 0,
      });
    } finally {
      await empty.drop();
      c.cleanup();
    }
  });
});
