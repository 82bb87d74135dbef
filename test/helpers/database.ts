// A scratch database on the real PostgreSQL, for a test file or a benchmark
// run, with the control plane applied. Tenant roles are cluster-wide, so drop()
// removes the roles of the database's tenants (and any the caller noted in
// `roles`) before the database itself, also after a setup that failed early.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createPool, type Pool } from '../../kernel/db.ts';
import { ident } from '../../kernel/identifiers.ts';
import { migrateControlPlane } from '../../tenancy/control-plane.ts';

export interface ScratchDatabase {
  name: string;
  /** The URL the application's request path uses (through PgBouncer under TEST_VIA_PGBOUNCER). */
  url: string;
  /** The same database without a pooler in between (`pool` is on it). */
  directUrl: string;
  pool: Pool;
  /** Tenant roles made beyond those in control.tenants (dropped at the end too). */
  roles: Set<string>;
  drop(): Promise<void>;
}

/** A test file's database. */
export type TestDatabase = ScratchDatabase;

export interface ScratchOptions {
  /** A superuser URL of the cluster (default: TEST_DATABASE_URL). */
  adminUrl?: string;
  poolSize?: number;
  /** Apply the control plane (default: yes). */
  migrate?: boolean;
  /** The database name starts with it (default: enclave_test). */
  prefix?: string;
  /** The pool's application_name (default: the kernel's). */
  applicationName?: string;
  /** Told what drop() removed. */
  log?: (line: string) => void;
  /** A transaction pooler ("host:port") that `url` goes through; created, migrated and dropped directly. */
  viaPgBouncer?: string;
}

export function adminUrl(): string {
  const url = process.env.TEST_DATABASE_URL;
  if (!url)
    throw new Error(
      'TEST_DATABASE_URL is not set: run the tests with `npm test` (it starts a database) or set it',
    );
  return url;
}

export async function withAdmin<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  try {
    await client.connect();
  } catch (err) {
    throw new Error(`PostgreSQL is not reachable at the admin URL: ${(err as Error).message}`);
  }
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export async function createScratchDatabase(options: ScratchOptions = {}): Promise<ScratchDatabase> {
  const admin = options.adminUrl ?? adminUrl();
  const name = `${options.prefix ?? 'enclave_test'}_${randomBytes(5).toString('hex')}`;
  await withAdmin(admin, (c) => c.query(`CREATE DATABASE ${ident(name)}`));
  const url = new URL(admin);
  url.pathname = `/${name}`;
  const pool = createPool(url.toString(), options.poolSize ?? 4, options.applicationName);
  const roles = new Set<string>();
  const drop = async () => {
    try {
      const { rows } = await pool.query<{ role_name: string }>('SELECT role_name FROM control.tenants');
      for (const r of rows) roles.add(r.role_name);
    } catch {} // no control plane if setup failed early
    const existing = (
      await pool.query<{ rolname: string }>('SELECT rolname FROM pg_roles WHERE rolname = ANY($1)', [
        [...roles],
      ])
    ).rows.map((r) => r.rolname);
    // Batches keep the number of locks per transaction small.
    for (let i = 0; i < existing.length; i += 50) {
      const batch = existing
        .slice(i, i + 50)
        .map(ident)
        .join(', ');
      await pool.query(`DROP OWNED BY ${batch} CASCADE`);
      await pool.query(`DROP ROLE ${batch}`);
    }
    await pool.end();
    await withAdmin(admin, (c) => c.query(`DROP DATABASE ${ident(name)} WITH (FORCE)`));
    options.log?.(`dropped database ${name} and ${existing.length} tenant role(s)`);
  };
  if (options.migrate ?? true) {
    try {
      await migrateControlPlane(pool);
    } catch (err) {
      await drop().catch(() => {});
      throw err;
    }
  }
  const appUrl = new URL(url);
  if (options.viaPgBouncer) appUrl.host = options.viaPgBouncer;
  return { name, url: appUrl.toString(), directUrl: url.toString(), pool, roles, drop };
}

/**
 * A test file's own database (TEST_DATABASE_URL's cluster), control plane
 * applied. With TEST_VIA_PGBOUNCER=host:port (test/pgbouncer/suites.test.ts)
 * its `url` goes through that PgBouncer in transaction mode; `pool` stays direct.
 */
export function createTestDatabase(poolSize = 4): Promise<TestDatabase> {
  return createScratchDatabase({ poolSize, viaPgBouncer: process.env.TEST_VIA_PGBOUNCER || undefined });
}

/** A benchmark run's database (`enclave_bench_…`, application name enclave-bench). */
export function createBenchDatabase(
  adminUrl: string,
  options: Omit<ScratchOptions, 'adminUrl' | 'prefix' | 'applicationName'>,
): Promise<ScratchDatabase> {
  return createScratchDatabase({
    ...options,
    adminUrl,
    prefix: 'enclave_bench',
    applicationName: 'enclave-bench',
  });
}
