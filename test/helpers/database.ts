// Each test file gets its own database on the real PostgreSQL, with the
// control plane applied. Tenant roles are cluster-wide, so drop() removes the
// roles of the database's tenants before the database itself.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createPool, type Pool } from '../../kernel/db.ts';
import { ident } from '../../kernel/identifiers.ts';
import { migrateControlPlane } from '../../tenancy/control-plane.ts';

export interface TestDatabase {
  name: string;
  url: string;
  pool: Pool;
  drop(): Promise<void>;
}

export function adminUrl(): string {
  const url = process.env.TEST_DATABASE_URL;
  if (!url)
    throw new Error(
      'TEST_DATABASE_URL is not set: run the tests with `npm test` (it starts a database) or set it',
    );
  return url;
}

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl() });
  try {
    await client.connect();
  } catch (err) {
    throw new Error(`PostgreSQL is not reachable for tests at TEST_DATABASE_URL: ${(err as Error).message}`);
  }
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export async function createTestDatabase(poolSize = 4): Promise<TestDatabase> {
  const name = `enclave_test_${randomBytes(5).toString('hex')}`;
  await admin((c) => c.query(`CREATE DATABASE ${ident(name)}`));
  const url = new URL(adminUrl());
  url.pathname = `/${name}`;
  const pool = createPool(url.toString(), poolSize);
  await migrateControlPlane(pool);
  return {
    name,
    url: url.toString(),
    pool,
    drop: async () => {
      const { rows } = await pool.query<{ role_name: string }>('SELECT role_name FROM control.tenants');
      for (const { role_name } of rows) {
        const exists = await pool.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role_name]);
        if (exists.rowCount) {
          await pool.query(`DROP OWNED BY ${ident(role_name)} CASCADE`);
          await pool.query(`DROP ROLE ${ident(role_name)}`);
        }
      }
      await pool.end();
      await admin((c) => c.query(`DROP DATABASE ${ident(name)} WITH (FORCE)`));
    },
  };
}
