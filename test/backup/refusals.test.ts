import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { ArchiveManifest } from '../../backup/archive-format.ts';
import { checkArchive } from '../../backup/archive-reader.ts';
import { backupTenant } from '../../backup/backup.ts';
import { ArchiveRefusedError } from '../../backup/backup-errors.ts';
import { restoreTenant } from '../../backup/restore.ts';
import { RestoreRefusedError } from '../../backup/restore-errors.ts';
import type { DirectoryStorage } from '../../backup/storage.ts';
import { dropTenant, setLegalHold } from '../../tenancy/lifecycle.ts';
import { createOrm, type Orm } from '../../tenancy/orm.ts';
import { provisionTenant } from '../../tenancy/provision.ts';
import { loadTenantMigrations } from '../../tenancy/templates.ts';
import type { TenantRow } from '../../tenancy/tenant-sql.ts';
import { TenantContext } from '../../tenancy/unit-of-work.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';
import { migrationsDirWith } from '../helpers/migrations.ts';
import {
  ADMIN,
  asides,
  contents,
  entry,
  type Fixture,
  fill,
  fixture,
  rebuiltFrom,
  resigned,
  shape,
  signedOf,
  signingKey,
  tarOf,
} from './fixture.ts';

const migrations = loadTenantMigrations();

describe('restore: refused before any change', () => {
  let db: TestDatabase;
  let f: Fixture;
  let orm: Orm;
  let uow: TenantContext;
  let a: TenantRow;
  let b: TenantRow;
  let archiveOfA: string;
  let archiveOfB: string;

  before(async () => {
    db = await createTestDatabase(6);
    f = fixture(db.pool, migrations);
    const created = await createOrm(db.url, 2);
    orm = created.orm;
    uow = new TenantContext(orm, created.pool, { cacheMs: 0 });
    a = await provisionTenant(db.pool, { displayName: 'A' }, migrations);
    b = await provisionTenant(db.pool, { displayName: 'B' }, migrations);
    await fill(db.pool, a.schema_name, 8);
    await fill(db.pool, b.schema_name, 5);
    archiveOfA = (await backupTenant(f.ctx, a.id, { by: ADMIN, kind: 'manual' })).location as string;
    archiveOfB = (await backupTenant(f.ctx, b.id, { by: ADMIN, kind: 'manual' })).location as string;
    // Changes after the backups, which a restore would undo.
    await db.pool.query(`DELETE FROM "${a.schema_name}".tasks`);
    await db.pool.query(`DELETE FROM "${b.schema_name}".tasks`);
  });
  after(async () => {
    await orm.close();
    await db.drop();
    f.cleanup();
  });

  /**
   * The tenant's rows, shape (with table oids), version, set-aside schemas and backups, the
   * database's schemas and the files beside the archives: before and after.
   */
  async function state(t: TenantRow) {
    return {
      rows: await contents(db.pool, t.schema_name),
      shape: await shape(db.pool, t.schema_name),
      asides: await asides(db.pool, t.schema_name),
      tenant: (
        await db.pool.query('SELECT schema_version, state, legal_hold FROM control.tenants WHERE id = $1', [
          t.id,
        ])
      ).rows[0],
      backups: (
        await db.pool.query('SELECT count(*)::int AS n FROM control.backups WHERE tenant_id = $1', [t.id])
      ).rows[0].n,
      tenants: (await db.pool.query('SELECT count(*)::int AS n FROM control.tenants')).rows[0].n,
      recordedAsides: (
        await db.pool.query('SELECT count(*)::int AS n FROM control.restore_asides WHERE tenant_id = $1', [
          t.id,
        ])
      ).rows[0].n,
      // No scratch schema left anywhere in the database, and no file left beside the archives
      // (a safety backup's spool, a half-written archive).
      schemas: (await db.pool.query('SELECT nspname FROM pg_namespace ORDER BY 1')).rows.map(
        (r) => r.nspname,
      ),
      files: readdirSync(f.dir, { recursive: true }).map(String).sort(),
    };
  }

  /** The tenant serves its owner: a unit of work reads every row and writes (then takes the write back). */
  async function serving(t: TenantRow, rows: { notes: string[]; tasks: string[] }): Promise<void> {
    const read = await uow.run(t.id, (u) =>
      u.query<{ notes: number; tasks: number }>(
        'SELECT (SELECT count(*) FROM notes)::int AS notes, (SELECT count(*) FROM tasks)::int AS tasks',
      ),
    );
    assert.deepEqual(read, [{ notes: rows.notes.length, tasks: rows.tasks.length }]);
    await uow.run(t.id, (u) => u.query("INSERT INTO notes (title) VALUES ('still serving')"));
    await uow.run(t.id, (u) => u.query("DELETE FROM notes WHERE title = 'still serving'"));
  }

  async function refused(
    t: TenantRow,
    run: () => Promise<unknown>,
    check: (err: unknown) => boolean,
    chain: string = t.id,
  ): Promise<void> {
    const before = await state(t);
    const events = (await db.pool.query('SELECT max(id) AS id FROM control.audit_inbox')).rows[0].id ?? 0;
    await assert.rejects(run, (err: unknown) => {
      assert.ok(check(err), `unexpected error: ${err}`);
      assert.ok(!(err as Error).message.includes('\n'), 'one line');
      return true;
    });
    assert.deepEqual(await state(t), before);
    const audited = (
      await db.pool.query(
        "SELECT tenant_id, outcome, outcome_code FROM control.audit_inbox WHERE id > $1 AND action = 'tenant.restore'",
        [events],
      )
    ).rows;
    assert.deepEqual(audited, [{ tenant_id: chain, outcome: 'failure', outcome_code: 'restore_refused' }]);
  }

  const open = (location: string) => () => f.ctx.storage.open(location);
  /** The storage's directory: it opens no archive from anywhere else. */
  const storageDir = () => (f.ctx.storage as DirectoryStorage).dir;
  const reason = (r: string) => (err: unknown) => err instanceof RestoreRefusedError && err.reason === r;

  test("another tenant's archive, in place", async () => {
    await refused(
      a,
      () => restoreTenant(f.ctx, open(archiveOfB), { tenantId: a.id }, { by: ADMIN }),
      reason('other-tenant'),
    );
  });

  test('an archive whose schema version is beyond the installed templates', async () => {
    const extra = migrationsDirWith({
      future_column: 'ALTER TABLE {{schema}}.notes ADD COLUMN future text;',
    });
    const future = fixture(db.pool, loadTenantMigrations(extra.dir));
    future.ctx.signer = f.ctx.signer;
    const t = await provisionTenant(db.pool, { displayName: 'Future' }, loadTenantMigrations(extra.dir));
    await fill(db.pool, t.schema_name, 3);
    const location = (await backupTenant(future.ctx, t.id, { by: ADMIN, kind: 'manual' })).location as string;
    await refused(
      t,
      () => restoreTenant(f.ctx, () => future.ctx.storage.open(location), { tenantId: t.id }, { by: ADMIN }),
      (err) => reason('future-schema')(err) && /version 5 .* only go to 4/.test((err as Error).message),
    );
    future.cleanup();
  });

  test('an archive made with a template that differs from the installed one', async () => {
    const changed = migrationsDirWith({});
    const file = path.join(changed.dir, '0002_tasks.sql');
    writeFileSync(file, `${readFileSync(file, 'utf8')}\n-- changed by hand\n`);
    const other = fixture(db.pool, loadTenantMigrations(changed.dir));
    other.ctx.signer = f.ctx.signer;
    const location = (await backupTenant(other.ctx, a.id, { by: ADMIN, kind: 'manual' })).location as string;
    await refused(
      a,
      () => restoreTenant(f.ctx, () => other.ctx.storage.open(location), { tenantId: a.id }, { by: ADMIN }),
      (err) => reason('template-mismatch')(err) && (err as Error).message.includes('0002_tasks'),
    );
    other.cleanup();
  });

  test('a tenant under legal hold, in place', async () => {
    await setLegalHold(db.pool, b.id, true, ADMIN);
    try {
      await refused(
        b,
        () => restoreTenant(f.ctx, open(archiveOfB), { tenantId: b.id }, { by: ADMIN }),
        reason('legal-hold'),
      );
    } finally {
      await setLegalHold(db.pool, b.id, false, ADMIN);
    }
  });

  test('a flipped byte in the archive', async () => {
    const bytes = readFileSync(archiveOfA);
    const at = Math.floor(bytes.length / 2); // inside a part
    bytes[at] = (bytes[at] as number) ^ 0x01;
    const flipped = path.join(storageDir(), 'flipped.enclave-backup'); // where the storage opens archives
    writeFileSync(flipped, bytes);
    await refused(
      a,
      () => restoreTenant(f.ctx, open(flipped), { tenantId: a.id }, { by: ADMIN }),
      (err) => err instanceof ArchiveRefusedError && err.reason === 'part-mismatch',
    );
  });

  test('an archive signed by a key this installation has not published', async () => {
    const stranger = fixture(db.pool, migrations); // a key of its own
    const location = (await backupTenant(stranger.ctx, a.id, { by: ADMIN, kind: 'manual' }))
      .location as string;
    await refused(
      a,
      () =>
        restoreTenant(f.ctx, () => stranger.ctx.storage.open(location), { tenantId: a.id }, { by: ADMIN }),
      (err) => err instanceof ArchiveRefusedError && err.reason === 'unknown-key',
    );
    stranger.cleanup();
  });

  test('a clone whose name is refused', async () => {
    await refused(
      a,
      () => restoreTenant(f.ctx, open(archiveOfA), { asNew: '  ' }, { by: ADMIN }),
      reason('bad-name'),
    );
  });

  test('a deleted tenant, in place (a clone of its archive still works)', async () => {
    const t = await provisionTenant(db.pool, { displayName: 'Gone' }, migrations);
    await fill(db.pool, t.schema_name, 3);
    const backup = await backupTenant(f.ctx, t.id, { by: ADMIN, kind: 'manual' });
    await dropTenant(db.pool, t.id, ADMIN);
    const tenants = (await db.pool.query('SELECT count(*)::int AS n FROM control.tenants')).rows[0].n;
    await assert.rejects(
      restoreTenant(f.ctx, open(backup.location as string), { tenantId: t.id }, { by: ADMIN }),
      reason('tenant-deleted'),
    );
    assert.equal((await db.pool.query('SELECT count(*)::int AS n FROM control.tenants')).rows[0].n, tenants);
    assert.deepEqual(await asides(db.pool, t.schema_name), []);
    const clone = await restoreTenant(
      f.ctx,
      open(backup.location as string),
      { asNew: 'Gone, back' },
      { by: ADMIN },
    );
    assert.notEqual(clone.tenantId, t.id);
  });

  test('an archive holding a table no template makes (drift at backup time)', async () => {
    const t = await provisionTenant(db.pool, { displayName: 'Extra table' }, migrations);
    await fill(db.pool, t.schema_name, 3);
    await db.pool.query(`CREATE TABLE "${t.schema_name}".by_hand (id int PRIMARY KEY)`);
    await db.pool.query(`INSERT INTO "${t.schema_name}".by_hand VALUES (1)`);
    const backup = await backupTenant(f.ctx, t.id, { by: ADMIN, kind: 'manual' });
    assert.equal(backup.drift, 1);
    await db.pool.query(`DELETE FROM "${t.schema_name}".notes`);
    await refused(
      t,
      () => restoreTenant(f.ctx, open(backup.location as string), { tenantId: t.id }, { by: ADMIN }),
      (err) => reason('unknown-table')(err) && (err as Error).message.includes('by_hand'),
    );
  });

  // Archives that cannot be trusted or read: refused by the archive check, before the
  // safety backup, with one line naming what is wrong.

  /** Refused with ArchiveRefusedError `r`, whose one-line message matches `text`; the tenant then still serves. */
  async function archiveRefused(t: TenantRow, file: string, r: string, text: RegExp): Promise<void> {
    await refused(
      t,
      () => restoreTenant(f.ctx, open(file), { tenantId: t.id }, { by: ADMIN }),
      (err) => err instanceof ArchiveRefusedError && err.reason === r && text.test(err.message),
    );
    await serving(t, await contents(db.pool, t.schema_name));
  }

  let written = 0;
  const asFile = (bytes: Buffer) => {
    const file = path.join(storageDir(), `made-${++written}.enclave-backup`);
    writeFileSync(file, bytes);
    return file;
  };

  test('a truncated archive, cut inside a part or before the end marker', async () => {
    const bytes = readFileSync(archiveOfA);
    const notes = entry(bytes, 'data/1-notes.copy.zst');
    for (const end of [notes.data + Math.floor(notes.size / 2), bytes.length - 1024]) {
      await archiveRefused(a, asFile(bytes.subarray(0, end)), 'truncated', /cut short/);
    }
  });

  test('an archive of an unknown future format version, properly signed by the trusted key', async () => {
    const bytes = readFileSync(archiveOfA);
    const { manifest } = signedOf(bytes);
    const future = asFile(
      await rebuiltFrom(bytes, resigned({ ...manifest, format: 2 } as unknown as ArchiveManifest, f.ctx)),
    );
    await archiveRefused(a, future, 'unsupported-format', /format 2/);
    // Only the version was wrong: the same manifest signed the same way at format 1 is accepted.
    const same = asFile(await rebuiltFrom(bytes, resigned(manifest, f.ctx)));
    assert.deepEqual(await checkArchive(open(same), { keys: f.ctx.keys }), manifest);
  });

  test("a bad signature under a trusted key id (signed by another key, the manifest naming this installation's)", async () => {
    const bytes = readFileSync(archiveOfA);
    const { manifest } = signedOf(bytes);
    assert.ok(f.ctx.keys.has(manifest.keyId), 'the manifest names a trusted key');
    const impostor = { signer: { keyId: manifest.keyId, sign: signingKey().signer.sign } };
    const forged = asFile(await rebuiltFrom(bytes, resigned(manifest, impostor)));
    await archiveRefused(a, forged, 'bad-signature', new RegExp(manifest.keyId));
  });

  test('a file that is not an archive at all: random bytes, a text file, another tar', async () => {
    const files = [
      asFile(randomBytes(4096)),
      asFile(Buffer.from('id,title\n1,not a backup\n'.repeat(100))),
      asFile(await tarOf([{ name: 'hello.txt', body: Buffer.from('hi') }])),
    ];
    for (const file of files) await archiveRefused(a, file, 'not-an-archive', /^not a backup archive: /);
  });
});
