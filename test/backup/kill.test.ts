import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync, sign } from 'node:crypto';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { keyIdOf, rawPublicKey } from '../../audit/verifier/keys.ts';
import { backupTenant } from '../../backup/backup.ts';
import { listBackups } from '../../backup/catalog.ts';
import type { DirectoryStorage } from '../../backup/storage.ts';
import { ident } from '../../kernel/identifiers.ts';
import { createOrm, type Orm } from '../../tenancy/orm.ts';
import { provisionTenant } from '../../tenancy/provision.ts';
import { loadTenantMigrations } from '../../tenancy/templates.ts';
import type { TenantRow } from '../../tenancy/tenant-sql.ts';
import { TenantContext } from '../../tenancy/unit-of-work.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';
import { killAtStep } from '../helpers/kill.ts';
import { ADMIN, asides, contents, type Fixture, fill, fixture, shape } from './fixture.ts';

const migrations = loadTenantMigrations();
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CHILD = fileURLToPath(new URL('./restore-child.ts', import.meta.url));

const RESTORE_STEPS = [
  'checked',
  'safety-backup',
  'locked',
  'set-aside',
  'templates',
  'table:notes',
  'table:storage_usage',
  'table:tasks',
  'loaded',
  'migrated',
  'drained',
  'recorded',
];
const BACKUP_STEPS = [
  'registered',
  'locked',
  'snapshot',
  'table:notes',
  'table:storage_usage',
  'table:tasks',
  'copied',
];

describe('kill -9', () => {
  let db: TestDatabase;
  let f: Fixture;
  let orm: Orm;
  let uow: TenantContext;
  let t: TenantRow;
  let privateKeyPem: string;
  let archive: string;
  let run = 0;

  before(async () => {
    db = await createTestDatabase(6);
    f = fixture(db.pool, migrations);
    const { privateKey } = generateKeyPairSync('ed25519');
    privateKeyPem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    const keyId = keyIdOf(rawPublicKey(privateKey));
    f.ctx.signer = { keyId, sign: (bytes) => sign(null, bytes, privateKey) };
    f.ctx.keys = new Map([[keyId, createPublicKey(privateKey)]]);
    const created = await createOrm(db.url, 2);
    orm = created.orm;
    uow = new TenantContext(orm, created.pool, { cacheMs: 0 });
    t = await provisionTenant(db.pool, { displayName: 'Killed' }, migrations);
    await fill(db.pool, t.schema_name, 10);
    archive = (await backupTenant(f.ctx, t.id, { by: ADMIN, kind: 'manual' })).location as string;
    // After the backup: a restore that went through would undo these.
    await db.pool.query(`DELETE FROM ${ident(t.schema_name)}.tasks WHERE id % 2 = 0`);
    await db.pool.query(`INSERT INTO ${ident(t.schema_name)}.notes (title) VALUES ('after the backup')`);
  });
  after(async () => {
    await orm.close();
    await db.drop();
    f.cleanup();
  });

  /** Runs the child until it prints `STEP <stopAt>`, then SIGKILLs it and waits until its sessions are gone. */
  async function killAt(mode: 'restore' | 'backup', stopAt: string): Promise<void> {
    const applicationName = `enclave-kill-${process.pid}-${run++}`;
    await killAtStep({
      script: CHILD,
      cwd: ROOT,
      pool: db.pool,
      stopAt,
      job: {
        url: db.url,
        applicationName,
        mode,
        tenantId: t.id,
        location: archive,
        stopAt,
        privateKeyPem,
        storageDir: (f.ctx.storage as DirectoryStorage).dir,
        tmpDir: f.dir,
      },
    });
  }

  async function state() {
    return {
      rows: await contents(db.pool, t.schema_name),
      shape: await shape(db.pool, t.schema_name),
      asides: await asides(db.pool, t.schema_name),
      recorded: (
        await db.pool.query('SELECT count(*)::int AS n FROM control.restore_asides WHERE tenant_id = $1', [
          t.id,
        ])
      ).rows[0].n,
      tenant: (await db.pool.query('SELECT schema_version, state FROM control.tenants WHERE id = $1', [t.id]))
        .rows[0],
      restored: (
        await db.pool.query(
          "SELECT count(*)::int AS n FROM control.audit_inbox WHERE tenant_id = $1 AND action = 'tenant.restore'",
          [t.id],
        )
      ).rows[0].n,
    };
  }

  for (const step of RESTORE_STEPS) {
    test(`a restore killed after step ${step}: the tenant is as it was, and serving`, async () => {
      const before = await state();
      await killAt('restore', step);
      assert.deepEqual(await state(), before);
      const read = await uow.run(t.id, (u) =>
        u.query<{ n: number; after: boolean }>(
          "SELECT count(*)::int AS n, bool_or(title = 'after the backup') AS after FROM notes",
        ),
      );
      assert.deepEqual(read, [{ n: before.rows.notes.length, after: true }]);
      // Writes work too, and the storage count still follows them.
      await uow.run(t.id, (u) => u.query("INSERT INTO notes (title) VALUES ('x')"));
      await uow.run(t.id, (u) => u.query("DELETE FROM notes WHERE title = 'x'"));
    });
  }

  for (const step of BACKUP_STEPS) {
    test(`a backup killed after step ${step}: no archive under its final name, its row stays running until the next backup fails it`, async () => {
      const storage = f.ctx.storage as DirectoryStorage;
      const archivesBefore = (await storage.list()).map((a) => a.name);
      const rowsBefore = new Set((await listBackups(db.pool, t.id)).map((b) => b.id));
      await killAt('backup', step);
      assert.deepEqual(
        (await storage.list()).map((a) => a.name),
        archivesBefore,
      );
      const killed = (await listBackups(db.pool, t.id)).filter((b) => !rowsBefore.has(b.id));
      assert.equal(killed.length, 1);
      assert.equal(killed[0]?.outcome, 'running');

      // The lock died with the session: the next backup runs, and fails the stale row.
      const next = await backupTenant(f.ctx, t.id, { by: ADMIN, kind: 'manual' });
      assert.equal(next.outcome, 'succeeded');
      const stale = (await listBackups(db.pool, t.id)).find((b) => b.id === killed[0]?.id);
      assert.equal(stale?.outcome, 'failed');
      assert.match(stale?.error ?? '', /interrupted/);
      await storage.remove(next.location as string);
      assert.ok(path.isAbsolute(next.location as string));
    });
  }
});
