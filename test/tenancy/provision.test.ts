import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PROVISION_STEPS, provisionTenant } from '../../tenancy/provision.ts';
import { loadTenantMigrations } from '../../tenancy/templates.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';

const migrations = loadTenantMigrations();

// Roles are cluster-wide and other test files provision at the same time, so
// the failed tenant's own role is looked up by name (`attempted`).
async function leftovers(db: TestDatabase, attempted: string[] = []) {
  const q = async (text: string, values: unknown[] = []) =>
    Number((await db.pool.query(text, values)).rows[0].n);
  return {
    tenants: await q('SELECT count(*) AS n FROM control.tenants'),
    ledger: await q('SELECT count(*) AS n FROM control.tenant_migrations'),
    schemas: await q("SELECT count(*) AS n FROM pg_namespace WHERE nspname LIKE 't\\_%'"),
    roles: await q('SELECT count(*) AS n FROM pg_roles WHERE rolname = ANY($1)', [
      attempted.map((id) => `t_${id}`),
    ]),
  };
}

describe('provisionTenant', () => {
  let db: TestDatabase;
  before(async () => {
    db = await createTestDatabase();
  });
  after(async () => {
    await db.drop();
  });

  test('makes an active tenant with its own schema, NOLOGIN role and every workspace table', async () => {
    const t = await provisionTenant(db.pool, { displayName: '  Acme Ltd ' }, migrations);
    assert.equal(t.state, 'active');
    assert.equal(t.display_name, 'Acme Ltd');
    assert.equal(t.schema_version, migrations.length);
    assert.match(t.schema_name, /^t_[a-z0-9]{12}$/);
    const role = await db.pool.query(
      'SELECT rolcanlogin, rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = $1',
      [t.role_name],
    );
    assert.deepEqual(role.rows[0], {
      rolcanlogin: false,
      rolsuper: false,
      rolcreaterole: false,
      rolcreatedb: false,
    });
    const tables = await db.pool.query(
      'SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1',
      [t.schema_name],
    );
    assert.deepEqual(
      tables.rows.map((r) => r.table_name),
      ['notes', 'storage_usage', 'tasks'],
    );
    const ledger = await db.pool.query(
      "SELECT migration FROM control.tenant_migrations WHERE tenant_id = $1 AND outcome = 'applied' ORDER BY version",
      [t.id],
    );
    assert.deepEqual(
      ledger.rows.map((r) => r.migration),
      migrations.map((m) => m.name),
    );
  });

  test('the tenant role is granted its own schema and the read-only reference data, nothing else', async () => {
    const t = await provisionTenant(db.pool, { displayName: 'Grants' }, migrations);
    const usable = await db.pool.query(
      `SELECT nspname FROM pg_namespace
        WHERE has_schema_privilege($1, oid, 'USAGE') AND nspname NOT IN ('pg_catalog', 'information_schema')
          AND nspname NOT LIKE 'pg\\_toast%' AND nspname NOT LIKE 'pg\\_temp%' ORDER BY nspname`,
      [t.role_name],
    );
    assert.deepEqual(
      usable.rows.map((r) => r.nspname),
      ['reference', t.schema_name],
    );
    const creatable = await db.pool.query(
      "SELECT nspname FROM pg_namespace WHERE has_schema_privilege($1, oid, 'CREATE')",
      [t.role_name],
    );
    assert.deepEqual(creatable.rows, [], 'a tenant role creates nothing, not even in its own schema');
    const writable = await db.pool.query(
      `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'reference' AND c.relkind = 'r'
          AND (has_table_privilege($1, c.oid, 'INSERT') OR has_table_privilege($1, c.oid, 'UPDATE')
               OR has_table_privilege($1, c.oid, 'DELETE') OR has_table_privilege($1, c.oid, 'TRUNCATE'))`,
      [t.role_name],
    );
    assert.deepEqual(writable.rows, [], 'reference data is read-only to tenants');
  });

  test('refuses a blank or oversized display name and creates nothing', async () => {
    const before = await leftovers(db);
    await assert.rejects(provisionTenant(db.pool, { displayName: '   ' }, migrations), /name is required/);
    await assert.rejects(
      provisionTenant(db.pool, { displayName: 'x'.repeat(201) }, migrations),
      /at most 200/,
    );
    assert.deepEqual(await leftovers(db), before);
  });

  const steps = [...PROVISION_STEPS.slice(0, 3), ...migrations.map((m) => `migration:${m.name}`), 'activate'];
  for (const failAt of steps) {
    test(`a failure after step "${failAt}" leaves no row, role, schema or ledger entry`, async () => {
      const before = await leftovers(db);
      const attempted: string[] = [];
      await assert.rejects(
        provisionTenant(db.pool, { displayName: 'Doomed' }, migrations, {
          afterStep: (step, tenantId) => {
            attempted.push(tenantId);
            if (step === failAt) throw new Error(`injected after ${step}`);
          },
        }),
        new RegExp(`injected after ${failAt}`),
      );
      assert.ok(attempted.length > 0);
      assert.deepEqual(await leftovers(db, attempted), before);
    });
  }

  test('a connection killed mid-provisioning (a crash) leaves nothing behind', async () => {
    const before = await leftovers(db);
    const attempted: string[] = [];
    await assert.rejects(
      provisionTenant(db.pool, { displayName: 'Crash' }, migrations, {
        afterStep: async (step, tenantId) => {
          attempted.push(tenantId);
          if (step !== 'schema') return;
          // Another session terminates this backend, as a crash of the app or a kill -9 would.
          await db.pool.query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND state = 'idle in transaction'",
          );
        },
      }),
    );
    assert.ok(attempted.length > 0);
    assert.deepEqual(await leftovers(db, attempted), before);
  });
});
