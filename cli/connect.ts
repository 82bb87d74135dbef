// The CLI reaches the same database as the server: DATABASE_URL, or the
// embedded PostgreSQL in DATA_DIR (joined if the server runs, started for the
// command's duration otherwise), or DIRECT_DATABASE_URL when that is set. The
// control plane is brought up to date first.
import { type Config, loadConfig } from '../kernel/config.ts';
import { createPool, type Pool } from '../kernel/db.ts';
import { startEmbeddedPostgres } from '../kernel/embedded-postgres.ts';
import { migrateControlPlane } from '../tenancy/control-plane.ts';
import {
  DEFAULT_TENANT_MIGRATIONS_DIR,
  loadTenantMigrations,
  type TenantMigration,
} from '../tenancy/templates.ts';

export interface CliContext {
  config: Config;
  /** The database's URL (for pg-boss in `enclave worker`); never printed: it may hold a password. */
  url: string;
  pool: Pool;
  migrations: TenantMigration[];
  close(): Promise<void>;
}

export async function connect(poolSize: number): Promise<CliContext> {
  const config = loadConfig();
  const migrations = loadTenantMigrations(config.TENANT_MIGRATIONS_DIR ?? DEFAULT_TENANT_MIGRATIONS_DIR);
  const embedded = config.DATABASE_URL
    ? undefined
    : await startEmbeddedPostgres(config.DATA_DIR, config.EMBEDDED_PG_PORT);
  // Every command works on a session of its own (fleet migrations, backups, restores, the worker's
  // pg-boss): DIRECT_DATABASE_URL when DATABASE_URL is a transaction pooler.
  const url = config.DATABASE_URL
    ? (config.DIRECT_DATABASE_URL ?? config.DATABASE_URL)
    : (embedded?.url as string);
  const pool = createPool(url, poolSize, 'enclave-cli');
  try {
    await migrateControlPlane(pool);
  } catch (err) {
    await pool.end().catch(() => {});
    await embedded?.stop();
    throw err;
  }
  return {
    config,
    url,
    pool,
    migrations,
    close: async () => {
      await pool.end();
      await embedded?.stop();
    },
  };
}
