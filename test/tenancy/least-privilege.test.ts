// The application needs no superuser: a LOGIN role with CREATEROLE that owns
// its database can run the control plane, provision, serve, migrate and drop.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { createPool, type Pool } from '../../kernel/db.ts';
import { PermissionDeniedError } from '../../kernel/errors.ts';
import { ident } from '../../kernel/identifiers.ts';
import { migrateControlPlane } from '../../tenancy/control-plane.ts';
import { detectDrift } from '../../tenancy/drift.ts';
import { migrateFleet } from '../../tenancy/fleet-migrate.ts';
import { dropTenant } from '../../tenancy/lifecycle.ts';
import { createOrm, type Orm } from '../../tenancy/orm.ts';
import { provisionTenant } from '../../tenancy/provision.ts';
import { loadTenantMigrations } from '../../tenancy/templates.ts';
import { TenantContext } from '../../tenancy/unit-of-work.ts';
import { adminUrl } from '../helpers/database.ts';
import { migrationsDirWith } from '../helpers/migrations.ts';

const suffix = randomBytes(4).toString('hex');
const owner = `enclave_app_${suffix}`;
const database = `enclave_test_lp_${suffix}`;
const password = randomBytes(18).toString('base64url');

async function asAdmin(text: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl() });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

describe('least privilege: a CREATEROLE owner, not a superuser', () => {
  let pool: Pool;
  let orm: Orm;
  before(async () => {
    await asAdmin(`CREATE ROLE ${ident(owner)} LOGIN CREATEROLE NOSUPERUSER PASSWORD '${password}'`);
    await asAdmin(`CREATE DATABASE ${ident(database)} OWNER ${ident(owner)}`);
    const url = new URL(adminUrl());
    url.username = owner;
    url.password = password;
    url.pathname = `/${database}`;
    pool = createPool(url.toString(), 3);
    await migrateControlPlane(pool);
    orm = (await createOrm(url.toString(), 2)).orm;
  });
  after(async () => {
    const { rows } = await pool.query("SELECT role_name FROM control.tenants WHERE state <> 'deleted'");
    for (const r of rows) {
      await pool.query(`DROP OWNED BY ${ident(r.role_name)} CASCADE`);
      await pool.query(`DROP ROLE ${ident(r.role_name)}`);
    }
    await orm.close();
    await pool.end();
    await asAdmin(`DROP DATABASE ${ident(database)} WITH (FORCE)`);
    await asAdmin(`DROP ROLE ${ident(owner)}`);
  });

  test('the application role is not a superuser', async () => {
    const { rows } = await pool.query('SELECT rolsuper FROM pg_roles WHERE rolname = current_user');
    assert.equal(rows[0].rolsuper, false);
  });

  test('provisions, serves as the tenant role, migrates, checks drift and drops', async () => {
    const migrations = loadTenantMigrations();
    const a = await provisionTenant(pool, { displayName: 'A' }, migrations);
    const b = await provisionTenant(pool, { displayName: 'B' }, migrations);
    const ctx = new TenantContext(orm, (await orm.em.getConnection().getNativeClient()) as Pool, {
      cacheMs: 0,
    });
    const [row] = await ctx.run(a.id, (uow) => uow.query<{ who: string }>('SELECT current_user AS who'));
    assert.equal(row?.who, a.role_name);
    await assert.rejects(
      ctx.run(a.id, (uow) => uow.query(`SELECT * FROM ${b.schema_name}.notes`)),
      PermissionDeniedError,
    );
    const v3 = loadTenantMigrations(
      migrationsDirWith({
        flag: 'ALTER TABLE {{schema}}.notes ADD COLUMN flag boolean NOT NULL DEFAULT false;\n',
      }).dir,
    );
    const summary = await migrateFleet(pool, v3, { concurrency: 2 });
    assert.equal(summary.migrated, 2);
    const drift = await detectDrift(pool, v3);
    assert.deepEqual(
      drift.map((d) => d.differences),
      [[], []],
    );
    const dropped = await dropTenant(pool, b.id);
    assert.equal(dropped.state, 'deleted');
    const role = await pool.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [b.role_name]);
    assert.equal(role.rowCount, 0);
  });
});
