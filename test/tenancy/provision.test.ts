import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Client } from '../../kernel/db.ts';
import {
  PROVISION_STEPS,
  provisionScript,
  provisionTenant,
  provisionTenantInTransaction,
} from '../../tenancy/provision.ts';
import { loadTenantMigrations, type TenantMigration } from '../../tenancy/templates.ts';
import { MigrationError } from '../../tenancy/tenancy-errors.ts';
import { generatedLiteral } from '../../tenancy/tenant-sql.ts';
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

  /** Counts client.query calls (one call = one round trip) while fn runs on a checked-out client. */
  async function counted<T>(fn: (client: Client) => Promise<T>): Promise<{ calls: number; result: T }> {
    const client = await db.pool.connect();
    const original = client.query;
    let calls = 0;
    client.query = ((...args: unknown[]) => {
      calls++;
      return (original as (...a: unknown[]) => unknown).apply(client, args);
    }) as typeof client.query;
    try {
      const result = await fn(client);
      return { calls, result };
    } finally {
      client.query = original;
      client.release();
    }
  }

  test('provisioning inside a transaction takes exactly 2 round trips, whatever the number of migrations', async () => {
    const { calls, result } = await counted(async (client) => {
      await client.query('BEGIN');
      const t = await provisionTenantInTransaction(client, { displayName: 'Counted' }, migrations);
      await client.query('COMMIT');
      return t;
    });
    // BEGIN + 2 + COMMIT; it was 5 + 3 + 2 per migration + 2 before.
    assert.equal(calls, 4);
    assert.equal(result.state, 'active');
    assert.equal(result.schema_version, migrations.length);
  });

  test('the ledger has one applied row per migration, with its checksum and a measured duration', async () => {
    const t = await provisionTenant(db.pool, { displayName: 'Ledger' }, migrations);
    const { rows } = await db.pool.query(
      'SELECT migration, version, checksum, duration_ms, outcome, error FROM control.tenant_migrations WHERE tenant_id = $1 ORDER BY version',
      [t.id],
    );
    assert.deepEqual(
      rows.map((r) => [r.migration, r.version, r.checksum, r.outcome, r.error]),
      migrations.map((m) => [m.name, m.version, m.checksum, 'applied', null]),
    );
    for (const r of rows) assert.ok(r.duration_ms > 0 && r.duration_ms < 60_000, `duration ${r.duration_ms}`);
  });

  test('the tenant.provision event and the advisory lock come with the tenant row, in its transaction', async () => {
    const client = await db.pool.connect();
    try {
      await client.query('BEGIN');
      const t = await provisionTenantInTransaction(client, { displayName: 'Audited' }, migrations, {
        by: { actor: { type: 'admin', id: 'admin-1' }, context: { userAgent: "ua 'quoted' \\ $1" } },
      });
      const locks = await client.query(
        "SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted",
      );
      assert.equal(locks.rows[0].n, 1, 'the tenant advisory lock is held until commit');
      const outside = await db.pool.query(
        "SELECT count(*)::int AS n FROM control.audit_inbox WHERE tenant_id = $1 AND action = 'tenant.provision'",
        [t.id],
      );
      assert.equal(outside.rows[0].n, 0, 'not visible before commit');
      await client.query('COMMIT');
      const { rows } = await db.pool.query(
        "SELECT actor_type, actor_id, user_agent, details FROM control.audit_inbox WHERE tenant_id = $1 AND action = 'tenant.provision'",
        [t.id],
      );
      assert.deepEqual(rows, [
        {
          actor_type: 'admin',
          actor_id: 'admin-1',
          user_agent: "ua 'quoted' \\ $1",
          details: { schemaVersion: migrations.length },
        },
      ]);
    } finally {
      client.release();
    }
  });

  test('a display name with quotes, backslashes and $n is stored exactly as given (it is never inlined)', async () => {
    const name = "O'Brien \\ $1 $2 -- ; DROP ROLE x";
    const t = await provisionTenant(db.pool, { displayName: name }, migrations);
    assert.equal(t.display_name, name);
  });

  test('inside a caller transaction that rolls back, nothing is left; the caller sees the tenant before that', async () => {
    const before = await leftovers(db);
    const client = await db.pool.connect();
    let id = '';
    try {
      await client.query('BEGIN');
      const t = await provisionTenantInTransaction(client, { displayName: 'Caller' }, migrations);
      id = t.id;
      const seen = await client.query(`SELECT count(*)::int AS n FROM ${t.schema_name}.notes`);
      assert.equal(seen.rows[0].n, 0);
      await client.query('ROLLBACK');
    } finally {
      client.release();
    }
    assert.deepEqual(await leftovers(db, [id]), before);
  });

  const broken = (at: number): TenantMigration[] =>
    migrations.map((m, i) =>
      i === at ? { ...m, template: `${m.template}\nSELECT 1 / 0;\n-- a comment at the end` } : m,
    );
  for (const at of [0, migrations.length - 1]) {
    test(`a failing migration (${migrations[at]?.name}) is named in a MigrationError and leaves nothing`, async () => {
      const before = await leftovers(db);
      const attempted: string[] = [];
      const err = await provisionTenant(db.pool, { displayName: 'Broken' }, broken(at), {
        afterStep: (_step, tenantId) => {
          attempted.push(tenantId);
        },
      }).then(
        () => assert.fail('provisioning a broken migration succeeded'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof MigrationError, String(err));
      assert.equal(err.migration, migrations[at]?.name);
      assert.match(err.message, /division by zero/);
      assert.deepEqual(attempted, [], 'no step hook runs after a failed script');
      assert.deepEqual(await leftovers(db), before);
    });
  }

  test('the script run again for an existing tenant fails at CREATE ROLE, and the rollback leaves nothing', async () => {
    const before = await leftovers(db);
    const client = await db.pool.connect();
    try {
      await client.query('BEGIN');
      const t = await provisionTenantInTransaction(client, { displayName: 'First' }, migrations);
      // The same script again for the same tenant: CREATE ROLE fails first.
      const err = await client
        .query(provisionScript(t.id, { schema: t.schema_name, role: t.role_name }, migrations))
        .then(
          () => assert.fail('ran twice'),
          (e: unknown) => e,
        );
      assert.match(String(err), /already exists/);
      await client.query('ROLLBACK');
    } finally {
      client.release();
    }
    assert.deepEqual(await leftovers(db), before);
  });

  test('only generated values can be written into the provisioning script', () => {
    assert.equal(generatedLiteral('abc_123'), "'abc_123'");
    assert.equal(generatedLiteral(4), '4');
    for (const bad of ["a'b", 'a b', 'a\\b', '', '$1', 'é']) assert.throws(() => generatedLiteral(bad));
    assert.throws(() => generatedLiteral(1.5));
  });
});
