// Retention (docs/BACKUP.md, "Retention") on a real database: by count and by
// age, never the last good backup of a tenant, never anything of a tenant
// under legal hold; a dry run changes nothing; prune also sweeps leftover
// temporary files and drops set-aside schemas whose time is up.
import assert from 'node:assert/strict';
import { existsSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { backupTenant } from '../../backup/backup.ts';
import type { BackupRecord } from '../../backup/catalog.ts';
import { restoreTenant } from '../../backup/restore.ts';
import { pruneBackups, selectForPruning } from '../../backup/retention.ts';
import { DirectoryStorage } from '../../backup/storage.ts';
import { provisionTenant } from '../../tenancy/provision.ts';
import { loadTenantMigrations } from '../../tenancy/templates.ts';
import type { TenantRow } from '../../tenancy/tenant-sql.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';
import { ADMIN, type Fixture, fill, fixture } from './fixture.ts';

const migrations = loadTenantMigrations();
const DAY = 24 * 3600 * 1000;

describe('backup retention', () => {
  let db: TestDatabase;
  let f: Fixture;
  let storage: DirectoryStorage;

  before(async () => {
    db = await createTestDatabase(4);
    f = fixture(db.pool, migrations);
    storage = f.ctx.storage as DirectoryStorage;
  });
  after(async () => {
    await db.drop();
    f.cleanup();
  });

  const tenantWith = async (name: string, backups: number): Promise<[TenantRow, BackupRecord[]]> => {
    const t = await provisionTenant(db.pool, { displayName: name }, migrations);
    await fill(db.pool, t.schema_name, 2);
    const made: BackupRecord[] = [];
    for (let i = 0; i < backups; i++)
      made.push(await backupTenant(f.ctx, t.id, { by: ADMIN, kind: 'manual' }));
    return [t, made];
  };
  /** Makes backup i of `made` (oldest first) `days[i]` days old. */
  const age = async (made: BackupRecord[], days: number[]) => {
    for (const [i, b] of made.entries())
      await db.pool.query(
        "UPDATE control.backups SET started_at = now() - make_interval(secs => $2), finished_at = now() - make_interval(secs => $2) + interval '1 second' WHERE id = $1",
        [b.id, (days[i] as number) * 86400],
      );
  };
  const good = async (tenantId: string) =>
    (
      await db.pool.query<{ id: string }>(
        "SELECT id FROM control.backups WHERE tenant_id = $1 AND outcome = 'succeeded' ORDER BY started_at DESC",
        [tenantId],
      )
    ).rows.map((r) => r.id);
  const prune = (options: { keepCount: number; keepDays: number; dryRun?: boolean; now?: Date }) =>
    pruneBackups(db.pool, storage, { by: ADMIN, ...options });

  /** A tenant restored in place from its one backup: its previous schema is set aside for an hour. */
  const restoredAside = async (name: string): Promise<[TenantRow, string]> => {
    const [t, made] = await tenantWith(name, 1);
    const result = await restoreTenant(
      { ...f.ctx, keepPreviousHours: 1 },
      () => storage.open(made[0]?.location as string),
      { tenantId: t.id },
      { by: ADMIN },
    );
    return [t, result.asideSchema as string];
  };

  test('selectForPruning: count, age, the newest always kept, legal hold untouched (pure)', () => {
    const now = new Date('2026-12-02T00:00:00Z');
    const row = (id: string, tenant: string, daysOld: number, hold = false) => ({
      id,
      tenant_id: tenant,
      location: `/x/${id}`,
      bytes: 10,
      started_at: new Date(now.getTime() - daysOld * DAY),
      legal_hold: hold,
    });
    const plan = selectForPruning(
      [
        row('a1', 'a', 1),
        row('a2', 'a', 2),
        row('a3', 'a', 3),
        row('a4', 'a', 40),
        row('b1', 'b', 100),
        row('b2', 'b', 200),
        row('c1', 'c', 1, true),
        row('c2', 'c', 300, true),
      ],
      2,
      30,
      now,
    );
    assert.deepEqual(
      plan.deleted.map((d) => [d.id, d.reason]),
      [
        ['a3', 'count'],
        ['a4', 'count'],
        ['b2', 'age'],
      ],
    );
    assert.equal(plan.kept, 5);
    assert.deepEqual(plan.held, ['c']);
  });

  test('by count: the newest keepCount stay, the rest go (file and row), each deletion audited', async () => {
    const [t, made] = await tenantWith('Count', 5);
    const dry = await prune({ keepCount: 2, keepDays: 365, dryRun: true });
    const mine = dry.deleted.filter((d) => d.tenantId === t.id);
    assert.deepEqual(
      mine.map((d) => d.id).sort(),
      made
        .slice(0, 3)
        .map((b) => b.id)
        .sort(),
    );
    assert.equal((await good(t.id)).length, 5, 'a dry run deletes nothing');
    for (const b of made) assert.ok(existsSync(b.location as string));

    const done = await prune({ keepCount: 2, keepDays: 365 });
    assert.deepEqual(
      done.deleted
        .filter((d) => d.tenantId === t.id)
        .map((d) => d.id)
        .sort(),
      mine.map((d) => d.id).sort(),
    );
    assert.deepEqual(
      await good(t.id),
      made
        .slice(3)
        .map((b) => b.id)
        .reverse(),
    );
    for (const b of made.slice(0, 3)) assert.equal(existsSync(b.location as string), false);
    for (const b of made.slice(3)) assert.ok(existsSync(b.location as string));
    const { rows } = await db.pool.query(
      "SELECT details FROM control.audit_inbox WHERE tenant_id = $1 AND action = 'tenant.backup.delete'",
      [t.id],
    );
    assert.equal(rows.length, 3);
    assert.ok(rows.every((r) => r.details.reason === 'count'));
  });

  test('by age: older than keepDays go, but the last good backup stays however old it is', async () => {
    const [t, made] = await tenantWith('Age', 3);
    await age(made, [90, 60, 45]);
    // A newer failed attempt does not count as good.
    await db.pool.query(
      "INSERT INTO control.backups (tenant_id, kind, outcome, created_by, finished_at, error) VALUES ($1, 'manual', 'failed', 'test', now(), 'boom')",
      [t.id],
    );
    const done = await prune({ keepCount: 10, keepDays: 30 });
    const mine = done.deleted.filter((d) => d.tenantId === t.id);
    assert.deepEqual(mine.map((d) => d.id).sort(), [made[0]?.id, made[1]?.id].sort());
    assert.ok(mine.every((d) => d.reason === 'age'));
    assert.deepEqual(await good(t.id), [made[2]?.id], 'the newest good one is kept, 45 days old');
    assert.ok(existsSync(made[2]?.location as string));
    const failed = await db.pool.query(
      "SELECT 1 FROM control.backups WHERE tenant_id = $1 AND outcome = 'failed'",
      [t.id],
    );
    assert.equal(failed.rowCount, 1, 'failed attempts stay as history');

    // Again: nothing more to delete for it.
    const again = await prune({ keepCount: 1, keepDays: 1 });
    assert.equal(again.deleted.filter((d) => d.tenantId === t.id).length, 0);
  });

  test('a tenant under legal hold: none of its backups is touched, whatever their count or age', async () => {
    const [t, made] = await tenantWith('Held', 4);
    await age(made, [400, 300, 200, 100]);
    await db.pool.query('UPDATE control.tenants SET legal_hold = true WHERE id = $1', [t.id]);
    const done = await prune({ keepCount: 1, keepDays: 1 });
    assert.ok(done.held.includes(t.id));
    assert.equal(done.deleted.filter((d) => d.tenantId === t.id).length, 0);
    assert.equal((await good(t.id)).length, 4);
    for (const b of made) assert.ok(existsSync(b.location as string));
    // Lifted: now it is pruned like any other.
    await db.pool.query('UPDATE control.tenants SET legal_hold = false WHERE id = $1', [t.id]);
    const lifted = await prune({ keepCount: 1, keepDays: 1 });
    assert.equal(lifted.deleted.filter((d) => d.tenantId === t.id).length, 3);
    assert.deepEqual(await good(t.id), [made[3]?.id]);
  });

  test('leftover temporary files are swept (not in a dry run); set-aside schemas due are dropped', async () => {
    const sweeping = new DirectoryStorage(storage.dir, { staleAfterMs: 0 });
    const leftover = path.join(storage.dir, '.abc.enclave-backup.0123456789abcdef.partial');
    writeFileSync(leftover, 'half an archive');
    const old = new Date(Date.now() - DAY);
    utimesSync(leftover, old, old);

    // An in-place restore sets the previous schema aside for keepPreviousHours.
    const [, aside] = await restoredAside('Aside');
    const exists = async () =>
      (await db.pool.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [aside])).rowCount === 1;
    assert.ok(await exists());

    const notYet = await pruneBackups(db.pool, sweeping, { keepCount: 10, keepDays: 365, dryRun: true });
    assert.equal(notYet.droppedAsides.includes(aside), false, 'not due yet');
    assert.equal(notYet.sweptTempFiles, 0);
    assert.ok(existsSync(leftover), 'a dry run sweeps nothing');

    const later = new Date(Date.now() + 2 * 3600 * 1000);
    const dry = await pruneBackups(db.pool, sweeping, {
      keepCount: 10,
      keepDays: 365,
      dryRun: true,
      now: later,
    });
    assert.ok(dry.droppedAsides.includes(aside));
    assert.ok(await exists(), 'a dry run drops nothing');

    const done = await pruneBackups(db.pool, sweeping, { keepCount: 10, keepDays: 365, now: later });
    assert.ok(done.droppedAsides.includes(aside));
    assert.equal(await exists(), false);
    assert.ok(done.sweptTempFiles >= 1);
    assert.equal(existsSync(leftover), false);
  });

  test("a held tenant's set-aside schema is neither dropped nor listed by a dry run as one it would drop", async () => {
    const [t, aside] = await restoredAside('Held aside');
    await db.pool.query('UPDATE control.tenants SET legal_hold = true WHERE id = $1', [t.id]);
    const later = new Date(Date.now() + 2 * 3600 * 1000);
    const options = { keepCount: 10, keepDays: 365, now: later };
    const dry = await pruneBackups(db.pool, storage, { ...options, dryRun: true });
    assert.equal(dry.droppedAsides.includes(aside), false, 'the dry run says what the real run does');
    const done = await pruneBackups(db.pool, storage, options);
    assert.equal(done.droppedAsides.includes(aside), false);
    const { rowCount } = await db.pool.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [aside]);
    assert.equal(rowCount, 1, 'kept while the hold lasts');
    await db.pool.query('UPDATE control.tenants SET legal_hold = false WHERE id = $1', [t.id]);
    const lifted = await pruneBackups(db.pool, storage, options);
    assert.ok(lifted.droppedAsides.includes(aside), 'dropped once the hold is lifted');
  });
});
