import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { generateIdentity, identityToRecipient } from 'age-encryption';
import { checkArchive } from '../../backup/archive-reader.ts';
import { backupTenant } from '../../backup/backup.ts';
import { ArchiveRefusedError } from '../../backup/backup-errors.ts';
import { listBackups } from '../../backup/catalog.ts';
import { restoreTenant, verifyArchiveByRestore } from '../../backup/restore.ts';
import type { Pool } from '../../kernel/db.ts';
import { ident } from '../../kernel/identifiers.ts';
import { detectDrift } from '../../tenancy/drift.ts';
import { migrateFleet } from '../../tenancy/fleet-migrate.ts';
import { provisionTenant } from '../../tenancy/provision.ts';
import { loadTenantMigrations } from '../../tenancy/templates.ts';
import type { TenantRow } from '../../tenancy/tenant-sql.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';
import { ADMIN, asides, contents, type Fixture, fill, fixture, storageUsed } from './fixture.ts';

const migrations = loadTenantMigrations();

describe('backup and restore: round trip', () => {
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

  const open = (location: string) => () => f.ctx.storage.open(location);
  const schemaNames = async () =>
    (await db.pool.query<{ n: string }>('SELECT nspname AS n FROM pg_namespace ORDER BY 1')).rows.map(
      (r) => r.n,
    );
  const roleNames = async () =>
    (await db.pool.query<{ n: string }>('SELECT rolname AS n FROM pg_roles ORDER BY 1')).rows.map((r) => r.n);

  /** `pool`, recording the text of every statement sent on a connection it hands out (nothing else changed). */
  function recording(pool: Pool, statements: string[]): Pool {
    return new Proxy(pool, {
      get(target, prop) {
        if (prop === 'connect')
          return async () => {
            const client = await target.connect();
            return new Proxy(client, {
              get(c, p) {
                const value = Reflect.get(c, p, c);
                if (p === 'query')
                  return (q: unknown, ...rest: unknown[]) => {
                    statements.push(
                      typeof q === 'string' ? q : String((q as { text?: unknown })?.text ?? ''),
                    );
                    return (value as (...a: unknown[]) => unknown).call(c, q, ...rest);
                  };
                return typeof value === 'function' ? value.bind(c) : value;
              },
            });
          };
        const value = Reflect.get(target, prop, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
  }

  test('in place: every row of every table equal, storage_usage equal, fresh ids after, the old schema set aside out of the role’s reach', async () => {
    const t = await provisionTenant(db.pool, { displayName: 'Acme' }, migrations);
    const s = ident(t.schema_name);
    await fill(db.pool, t.schema_name);
    const before = await contents(db.pool, t.schema_name);
    const usedBefore = await storageUsed(db.pool, t.schema_name);
    const maxNote = Number((await db.pool.query(`SELECT max(id) AS m FROM ${s}.notes`)).rows[0].m);
    const backup = await backupTenant(f.ctx, t.id, { by: ADMIN, kind: 'manual' });
    assert.equal(backup.outcome, 'succeeded');
    assert.equal(backup.rows, before.notes.length + before.tasks.length + 1);

    // Change, delete and add after the backup.
    await db.pool.query(`UPDATE ${s}.notes SET title = 'changed', html = NULL WHERE id % 2 = 0`);
    await db.pool.query(`DELETE FROM ${s}.tasks WHERE id % 3 = 0`);
    await db.pool.query(`DELETE FROM ${s}.notes WHERE id % 5 = 0`);
    await db.pool.query(`INSERT INTO ${s}.notes (title) VALUES ('after the backup')`);
    assert.notDeepEqual(await contents(db.pool, t.schema_name), before);

    const result = await restoreTenant(
      f.ctx,
      open(backup.location as string),
      { tenantId: t.id },
      { by: ADMIN },
    );
    assert.equal(result.tenantId, t.id);
    assert.equal(result.fromVersion, 4);
    assert.equal(result.toVersion, 4);
    assert.equal(result.rows, backup.rows);
    assert.equal(result.safetyBackup?.kind, 'safety');
    assert.equal(result.safetyBackup?.outcome, 'succeeded');

    assert.deepEqual(await contents(db.pool, t.schema_name), before);
    assert.equal(await storageUsed(db.pool, t.schema_name), usedBefore);
    // The structure is the templates' exactly: tables, columns, indexes, constraints.
    assert.deepEqual(await detectDrift(db.pool, migrations, { tenantIds: [t.id] }), [
      { tenantId: t.id, schema: t.schema_name, version: 4, differences: [] },
    ]);
    // The count is kept by the triggers again after the load.
    const fresh = (await db.pool.query(`INSERT INTO ${s}.notes (title) VALUES ('fresh') RETURNING id`))
      .rows[0];
    assert.ok(
      Number(fresh.id) > maxNote + 1,
      `new id ${fresh.id} after the restore must pass ${maxNote + 1}`,
    );
    assert.equal(
      Number(await storageUsed(db.pool, t.schema_name)),
      Number(usedBefore) + 100 + 'fresh'.length,
    );
    const task = (await db.pool.query(`INSERT INTO ${s}.tasks (title) VALUES ('fresh') RETURNING id`))
      .rows[0];
    assert.ok(Number(task.id) > Math.max(...before.tasks.map((r) => Number(r.slice(1, r.indexOf(','))))));

    // The previous schema is set aside, with the role's access revoked, and recorded.
    assert.ok(result.asideSchema);
    assert.deepEqual(await asides(db.pool, t.schema_name), [result.asideSchema]);
    const reach = (
      await db.pool.query('SELECT has_schema_privilege($1, $2, $3) AS usage', [
        t.role_name,
        result.asideSchema,
        'USAGE',
      ])
    ).rows[0];
    assert.equal(reach.usage, false);
    const kept = await contents(db.pool, result.asideSchema as string);
    assert.ok(
      kept.notes.some((r) => r.includes('after the backup')),
      'the set-aside schema holds the data it had',
    );
    const recorded = (
      await db.pool.query(
        'SELECT tenant_id, drop_after > now() + interval $$23 hours$$ AS later FROM control.restore_asides WHERE schema_name = $1',
        [result.asideSchema],
      )
    ).rows[0];
    assert.deepEqual(recorded, { tenant_id: t.id, later: true });
    assert.equal(
      (await db.pool.query('SELECT schema_version FROM control.tenants WHERE id = $1', [t.id])).rows[0]
        .schema_version,
      4,
    );

    // Audited: the backups and the restore, with the archive's checksum.
    const events = (
      await db.pool.query<{ action: string; outcome: string; details: Record<string, unknown> }>(
        'SELECT action, outcome, details FROM control.audit_inbox WHERE tenant_id = $1 ORDER BY id',
        [t.id],
      )
    ).rows;
    assert.deepEqual(
      events.map((e) => `${e.action}:${e.outcome}`),
      [
        'tenant.provision:success',
        'tenant.backup:success',
        'tenant.backup:success',
        'tenant.restore:success',
      ],
    );
    const restored = events.at(-1)?.details ?? {};
    assert.equal(restored.from, 4);
    assert.equal(restored.to, 4);
    assert.equal(restored.sha256, backup.sha256);
    assert.equal(restored.safetyBackupId, result.safetyBackup?.id);
    assert.deepEqual((await listBackups(db.pool, t.id)).map((b) => b.kind).sort(), ['manual', 'safety']);
  });

  test('as new: a clone with the same rows, its own id, role and schema, independent of its source', async () => {
    const t = await provisionTenant(db.pool, { displayName: 'Source' }, migrations);
    await fill(db.pool, t.schema_name, 12);
    const backup = await backupTenant(f.ctx, t.id, { by: ADMIN, kind: 'manual' });
    const result = await restoreTenant(
      f.ctx,
      open(backup.location as string),
      { asNew: 'Source (copy)' },
      { by: ADMIN },
    );
    assert.notEqual(result.tenantId, t.id);
    assert.equal(result.safetyBackup, null);
    assert.equal(result.asideSchema, null);
    const clone = (
      await db.pool.query<TenantRow>('SELECT * FROM control.tenants WHERE id = $1', [result.tenantId])
    ).rows[0] as TenantRow;
    assert.equal(clone.state, 'active');
    assert.equal(clone.display_name, 'Source (copy)');
    assert.equal(clone.schema_version, 4);
    assert.notEqual(clone.role_name, t.role_name);
    assert.deepEqual(await contents(db.pool, clone.schema_name), await contents(db.pool, t.schema_name));
    assert.equal(await storageUsed(db.pool, clone.schema_name), await storageUsed(db.pool, t.schema_name));
    assert.deepEqual((await detectDrift(db.pool, migrations, { tenantIds: [clone.id] }))[0]?.differences, []);

    // Independent: writes to one do not change the other.
    const source = await contents(db.pool, t.schema_name);
    await db.pool.query(`INSERT INTO ${ident(clone.schema_name)}.notes (title) VALUES ('only in the clone')`);
    await db.pool.query(`DELETE FROM ${ident(clone.schema_name)}.tasks`);
    assert.deepEqual(await contents(db.pool, t.schema_name), source);
    await db.pool.query(`UPDATE ${ident(t.schema_name)}.notes SET title = 'only in the source'`);
    const cloned = await contents(db.pool, clone.schema_name);
    assert.ok(!cloned.notes.some((r) => r.includes('only in the source')));
    // The clone's role reaches the clone's schema only.
    const reach = (
      await db.pool.query(
        'SELECT has_schema_privilege($1, $2, $3) AS own, has_schema_privilege($1, $4, $3) AS other',
        [clone.role_name, clone.schema_name, 'USAGE', t.schema_name],
      )
    ).rows[0];
    assert.deepEqual(reach, { own: true, other: false });
    const provisioned = (
      await db.pool.query(
        "SELECT action FROM control.audit_inbox WHERE tenant_id = $1 AND action IN ('tenant.provision', 'tenant.restore') ORDER BY id",
        [clone.id],
      )
    ).rows.map((r) => r.action);
    assert.deepEqual(provisioned, ['tenant.provision', 'tenant.restore']);
    const ledger = (
      await db.pool.query(
        "SELECT array_agg(version ORDER BY version) AS v FROM control.tenant_migrations WHERE tenant_id = $1 AND outcome = 'applied'",
        [clone.id],
      )
    ).rows[0].v;
    assert.deepEqual(ledger, [1, 2, 3, 4]);
  });

  test('an archive made at schema version 3 restores into the tenant now at 4, migrated forward (storage usage backfilled)', async () => {
    const t = await provisionTenant(db.pool, { displayName: 'Old' }, migrations.slice(0, 3));
    await fill(db.pool, t.schema_name, 10);
    const before = await contents(db.pool, t.schema_name);
    const backup = await backupTenant(f.ctx, t.id, { by: ADMIN, kind: 'manual' });
    assert.equal(backup.schemaVersion, 3);

    const fleet = await migrateFleet(db.pool, migrations, { concurrency: 1, tenantIds: [t.id] });
    assert.equal(fleet.migrated, 1);
    await db.pool.query(`DELETE FROM ${ident(t.schema_name)}.notes`);

    const result = await restoreTenant(
      f.ctx,
      open(backup.location as string),
      { tenantId: t.id },
      { by: ADMIN },
    );
    assert.equal(result.fromVersion, 3);
    assert.equal(result.toVersion, 4);
    const after = await contents(db.pool, t.schema_name);
    assert.deepEqual(after.notes, before.notes);
    assert.deepEqual(after.tasks, before.tasks);
    const s = ident(t.schema_name);
    const expected = (
      await db.pool.query(
        `SELECT ((SELECT coalesce(sum(${s}.note_bytes(title, body, html, tags)), 0) FROM ${s}.notes)
               + (SELECT coalesce(sum(${s}.task_bytes(title)), 0) FROM ${s}.tasks))::text AS bytes`,
      )
    ).rows[0].bytes;
    assert.ok(Number(expected) > 0);
    assert.equal(await storageUsed(db.pool, t.schema_name), expected);
    assert.equal(
      (await db.pool.query('SELECT schema_version FROM control.tenants WHERE id = $1', [t.id])).rows[0]
        .schema_version,
      4,
    );
    // Version 4 was already in the ledger (the fleet migration): recorded once.
    const applied = (
      await db.pool.query(
        "SELECT count(*)::int AS n FROM control.tenant_migrations WHERE tenant_id = $1 AND version = 4 AND outcome = 'applied'",
        [t.id],
      )
    ).rows[0].n;
    assert.equal(applied, 1);
  });

  test('verify by restore: every table reloaded matches its row count and content checksum, and nothing is left behind', async () => {
    const t = await provisionTenant(db.pool, { displayName: 'Verify' }, migrations);
    await fill(db.pool, t.schema_name, 15);
    const backup = await backupTenant(f.ctx, t.id, { by: ADMIN, kind: 'manual' });
    const schemasBefore = await schemaNames();
    const rolesBefore = await roleNames();
    const statements: string[] = [];
    const result = await verifyArchiveByRestore(
      { ...f.ctx, pool: recording(db.pool, statements) },
      open(backup.location as string),
    );
    assert.equal(result.manifest.tenant.id, t.id);
    assert.deepEqual(
      result.tables.map((x) => x.name),
      ['notes', 'storage_usage', 'tasks'],
    );
    for (const table of result.tables) {
      assert.ok(table.ok, `table ${table.name} verified`);
      assert.equal(table.rows, table.expectedRows);
    }
    assert.equal(result.tables.find((x) => x.name === 'tasks')?.rows, 29);

    // The scratch role and schema the verify made (named by its own CREATE statements) are gone.
    const made = (what: string) =>
      statements
        .flatMap((q) => [...q.matchAll(new RegExp(`^CREATE ${what} "(t_[a-z0-9]{12})"`, 'g'))])
        .map((m) => m[1]);
    const [scratchRole] = made('ROLE');
    assert.ok(scratchRole, 'the verify made a scratch role');
    const [scratchSchema] = made('SCHEMA');
    assert.ok(scratchSchema, 'the verify made a scratch schema');
    const schemasAfter = await schemaNames();
    const rolesAfter = await roleNames();
    // Schemas are this database's own: exactly the same set.
    assert.deepEqual(schemasAfter, schemasBefore);
    assert.ok(!schemasAfter.includes(scratchSchema));
    // Roles are cluster-wide, and other test files make and drop tenant roles meanwhile:
    // no count, but no name that was not there before may be the scratch role, or be a
    // role this database knows (granted or owning anything here, or one of its tenants).
    assert.ok(!rolesBefore.includes(scratchRole));
    assert.ok(!rolesAfter.includes(scratchRole), `scratch role ${scratchRole} left behind`);
    const added = rolesAfter.filter((r) => !rolesBefore.includes(r));
    const tied = (
      await db.pool.query<{ rolname: string }>(
        `SELECT r.rolname FROM pg_roles r
          WHERE r.rolname = ANY($1)
            AND (EXISTS (SELECT 1 FROM pg_shdepend d JOIN pg_database db ON db.oid = d.dbid
                          WHERE db.datname = current_database() AND d.refclassid = 'pg_authid'::regclass AND d.refobjid = r.oid)
                 OR EXISTS (SELECT 1 FROM control.tenants t WHERE t.role_name = r.rolname))`,
        [added],
      )
    ).rows.map((r) => r.rolname);
    assert.deepEqual(tied, [], 'a role made by the verify, left behind');
  });

  test('encrypted: a backup to an age recipient restores with its identity, and is refused without it before any change', async () => {
    const identity = await generateIdentity();
    const encrypting = { ...f.ctx, recipients: [await identityToRecipient(identity)] };
    const t = await provisionTenant(db.pool, { displayName: 'Sealed' }, migrations);
    await fill(db.pool, t.schema_name, 6);
    const before = await contents(db.pool, t.schema_name);
    const backup = await backupTenant(encrypting, t.id, { by: ADMIN, kind: 'manual' });
    assert.equal(backup.encrypted, true);
    await db.pool.query(`DELETE FROM ${ident(t.schema_name)}.tasks`);
    const changed = await contents(db.pool, t.schema_name);

    await assert.rejects(
      restoreTenant(f.ctx, open(backup.location as string), { tenantId: t.id }, { by: ADMIN }),
      (err: unknown) => err instanceof ArchiveRefusedError && err.reason === 'encrypted-no-identity',
    );
    assert.deepEqual(await contents(db.pool, t.schema_name), changed);
    assert.deepEqual(await asides(db.pool, t.schema_name), []);

    const result = await restoreTenant(
      { ...encrypting, identities: [identity] },
      open(backup.location as string),
      { tenantId: t.id },
      { by: ADMIN },
    );
    assert.equal(result.safetyBackup?.encrypted, true);
    assert.deepEqual(await contents(db.pool, t.schema_name), before);
  });

  test('drift: reported in the manifest and the catalog, and a restore rebuilds what the templates make', async () => {
    const t = await provisionTenant(db.pool, { displayName: 'Drifted' }, migrations);
    await fill(db.pool, t.schema_name, 4);
    await db.pool.query(`CREATE INDEX by_hand_idx ON ${ident(t.schema_name)}.notes (title)`);
    const backup = await backupTenant(f.ctx, t.id, { by: ADMIN, kind: 'manual' });
    assert.equal(backup.drift, 1);
    const manifest = await checkArchive(open(backup.location as string), { keys: f.ctx.keys });
    assert.equal(manifest.drift.checked, true);
    assert.deepEqual(
      manifest.drift.differences.map((d) => `${d.kind} ${d.object} ${d.problem}`),
      ['index notes.by_hand_idx unexpected'],
    );
    const before = await contents(db.pool, t.schema_name);
    await restoreTenant(f.ctx, open(backup.location as string), { tenantId: t.id }, { by: ADMIN });
    assert.deepEqual(await contents(db.pool, t.schema_name), before);
    const index = await db.pool.query('SELECT 1 FROM pg_indexes WHERE schemaname = $1 AND indexname = $2', [
      t.schema_name,
      'by_hand_idx',
    ]);
    assert.equal(index.rowCount, 0);
  });
});
