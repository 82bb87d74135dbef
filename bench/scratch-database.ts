// A throwaway database for one benchmark run, dropped at the end together with
// every tenant role made in it (roles are cluster-wide), also after a failure.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createPool, type Pool } from '../kernel/db.ts';
import { ident } from '../kernel/identifiers.ts';
import { migrateControlPlane } from '../tenancy/control-plane.ts';

export interface Scratch {
  name: string;
  url: string;
  pool: Pool;
  /** Tenant roles this run may have created beyond those in control.tenants (dropped at the end too). */
  roles: Set<string>;
  drop(): Promise<void>;
}

export async function withAdmin<T>(adminUrl: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export async function createScratch(
  adminUrl: string,
  options: { poolSize: number; migrate: boolean; log: (line: string) => void },
): Promise<Scratch> {
  const name = `enclave_bench_${randomBytes(5).toString('hex')}`;
  await withAdmin(adminUrl, (c) => c.query(`CREATE DATABASE ${ident(name)}`));
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const pool = createPool(url.toString(), options.poolSize, 'enclave-bench');
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
    await withAdmin(adminUrl, (c) => c.query(`DROP DATABASE ${ident(name)} WITH (FORCE)`));
    options.log(`dropped database ${name} and ${existing.length} tenant role(s)`);
  };
  if (options.migrate) {
    try {
      await migrateControlPlane(pool);
    } catch (err) {
      await drop().catch(() => {});
      throw err;
    }
  }
  return { name, url: url.toString(), pool, roles, drop };
}
