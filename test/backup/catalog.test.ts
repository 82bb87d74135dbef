import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { backupTenant } from '../../backup/backup.ts';
import { dropExpiredAsides, failStaleBackups, insertRunning, listBackups } from '../../backup/catalog.ts';
import { restoreTenant } from '../../backup/restore.ts';
import { BackupRefusedError } from '../../backup/restore-errors.ts';
import { asideSchemaName, checkAsideSchemaName, InvalidIdentifierError } from '../../kernel/identifiers.ts';
import { dropTenant, setLegalHold } from '../../tenancy/lifecycle.ts';
import { provisionTenant } from '../../tenancy/provision.ts';
import { loadTenantMigrations } from '../../tenancy/templates.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';
import { ADMIN, asides, type Fixture, fill, fixture } from './fixture.ts';

const migrations = loadTenantMigrations();

describe('set-aside schema names', () => {
  test('are the tenant schema, _p, the UTC time and 4 random characters, and nothing else passes the check', () => {
    const name = asideSchemaName('t_abc123def456', new Date('2026-12-02T07:08:09.123Z'));
    assert.match(name, /^t_abc123def456_p20261202070809[a-z0-9]{4}$/);
    assert.equal(checkAsideSchemaName(name), name);
    assert.notEqual(asideSchemaName('t_abc123def456'), asideSchemaName('t_abc123def456'));
    for (const bad of [
      't_abc123def456',
      't_abc123def456_p2026',
      'x_abc123def456_p20261202070809abcd',
      't_abc123def456_p20261202070809ab"d',
    ])
      assert.throws(() => checkAsideSchemaName(bad), InvalidIdentifierError);
    assert.throws(() => asideSchemaName('public'), InvalidIdentifierError);
  });
});

describe('the backup catalog', () => {
  let db: TestDatabase;
  let f: Fixture;

  before(async () => {
    db = await createTestDatabase(6);
    f = fixture(db.pool, migrations);
  });
  after(async () => {
    await db.drop();
    f.cleanup();
  });

  test('lists backups newest first, per tenant or all', async () => {
    const a = await provisionTenant(db.pool, { displayName: 'A' }, migrations);
    const b = await provisionTenant(db.pool, { displayName: 'B' }, migrations);
    const first = await backupTenant(f.ctx, a.id, { by: ADMIN, kind: 'manual' });
    const second = await backupTenant(f.ctx, a.id, { by: ADMIN, kind: 'scheduled' });
    const other = await backupTenant(f.ctx, b.id, { by: ADMIN, kind: 'manual' });
    assert.deepEqual(
      (await listBackups(db.pool, a.id)).map((r) => r.id),
      [second.id, first.id],
    );
    assert.deepEqual(
      (await listBackups(db.pool))
        .map((r) => r.id)
        .filter((id) => [first.id, second.id, other.id].includes(id)),
      [other.id, second.id, first.id],
    );
    assert.equal(first.createdBy, 'admin:ops-1');
    assert.equal(first.encrypted, false);
    assert.equal(first.keyId, f.ctx.signer.keyId);
    assert.equal(first.drift, 0);
    assert.ok((first.durationMs ?? -1) >= 0);
  });

  test('a backup of a deleted or unknown tenant is refused, with no row', async () => {
    const t = await provisionTenant(db.pool, { displayName: 'Dropped' }, migrations);
    await dropTenant(db.pool, t.id, ADMIN);
    await assert.rejects(backupTenant(f.ctx, t.id, { by: ADMIN, kind: 'manual' }), BackupRefusedError);
    await assert.rejects(
      backupTenant(f.ctx, 'zzzzzzzzzzzz', { by: ADMIN, kind: 'manual' }),
      BackupRefusedError,
    );
    await assert.rejects(backupTenant(f.ctx, '../etc', { by: ADMIN, kind: 'manual' }), BackupRefusedError);
    assert.deepEqual(await listBackups(db.pool, t.id), []);
  });

  test("a 'running' row whose backend is alive stays; one whose backend is gone, or too old, is failed", async () => {
    const t = await provisionTenant(db.pool, { displayName: 'Stale' }, migrations);
    const alive = await db.pool.connect();
    try {
      const pid = (await alive.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
      const live = await insertRunning(db.pool, {
        tenantId: t.id,
        kind: 'manual',
        by: ADMIN,
        encrypted: false,
        keyId: null,
        backendPid: pid,
      });
      const gone = await insertRunning(db.pool, {
        tenantId: t.id,
        kind: 'manual',
        by: ADMIN,
        encrypted: false,
        keyId: null,
        backendPid: 2 ** 30,
      });
      const old = await insertRunning(db.pool, {
        tenantId: t.id,
        kind: 'manual',
        by: ADMIN,
        encrypted: false,
        keyId: null,
        backendPid: pid,
      });
      await db.pool.query("UPDATE control.backups SET started_at = now() - interval '2 days' WHERE id = $1", [
        old.id,
      ]);
      const failed = await failStaleBackups(db.pool);
      assert.ok(failed.includes(gone.id));
      assert.ok(failed.includes(old.id));
      assert.ok(!failed.includes(live.id));
      const rows = new Map((await listBackups(db.pool, t.id)).map((r) => [r.id, r]));
      assert.equal(rows.get(live.id)?.outcome, 'running');
      assert.equal(rows.get(gone.id)?.outcome, 'failed');
      assert.match(rows.get(gone.id)?.error ?? '', /interrupted/);
      assert.ok(rows.get(gone.id)?.finishedAt);
    } finally {
      alive.release();
    }
  });

  test('set-aside schemas are dropped once due (never under legal hold), and with their tenant', async () => {
    const t = await provisionTenant(db.pool, { displayName: 'Aside' }, migrations);
    await fill(db.pool, t.schema_name, 3);
    const backup = await backupTenant(f.ctx, t.id, { by: ADMIN, kind: 'manual' });
    const open = () => f.ctx.storage.open(backup.location as string);
    const first = await restoreTenant(
      { ...f.ctx, keepPreviousHours: 1 },
      open,
      { tenantId: t.id },
      { by: ADMIN },
    );
    const second = await restoreTenant(
      { ...f.ctx, keepPreviousHours: 48 },
      open,
      { tenantId: t.id },
      { by: ADMIN },
    );
    assert.deepEqual(await asides(db.pool, t.schema_name), [first.asideSchema, second.asideSchema].sort());

    assert.deepEqual(await dropExpiredAsides(db.pool), []);
    const inTwoHours = new Date(Date.now() + 2 * 3600_000);
    // Under legal hold, nothing of the tenant's goes, even when due.
    await setLegalHold(db.pool, t.id, true, ADMIN);
    assert.deepEqual(await dropExpiredAsides(db.pool, inTwoHours), []);
    await setLegalHold(db.pool, t.id, false, ADMIN);
    assert.deepEqual(await dropExpiredAsides(db.pool, inTwoHours), [first.asideSchema]);
    assert.deepEqual(await asides(db.pool, t.schema_name), [second.asideSchema]);
    assert.deepEqual(await dropExpiredAsides(db.pool, inTwoHours), []);

    await dropTenant(db.pool, t.id, ADMIN);
    assert.deepEqual(await asides(db.pool, t.schema_name), []);
    const left = (
      await db.pool.query(
        'SELECT count(*)::int AS n FROM control.restore_asides WHERE tenant_id = $1 AND dropped_at IS NULL',
        [t.id],
      )
    ).rows[0].n;
    assert.equal(left, 0);
  });
});
