// MikroORM for workspace entities, reached only through a unit of work's fork
// bound to one tenant schema (tenancy/unit-of-work.ts). createOrm also hands back
// the ORM's own pg pool, for callers that run raw SQL on the same connections
// (tests, benchmarks); the server keeps a separate control pool (server/start.ts).
import { MikroORM } from '@mikro-orm/postgresql';
import type pg from 'pg';
import { CONNECTION_LIFETIME_SECONDS, type Pool } from '../kernel/db.ts';
import { WORKSPACE_ENTITIES } from './workspace-entities.ts';

export type Orm = MikroORM;

export async function createOrm(
  connectionString: string,
  poolSize: number,
  connectTimeoutMs = 0,
): Promise<{ orm: Orm; pool: Pool }> {
  const orm = await MikroORM.init({
    clientUrl: connectionString,
    entities: WORKSPACE_ENTITIES,
    pool: { min: 0, max: poolSize },
    // Passed on to pg.Pool: a unit of work waits at most this long for a connection (0: no bound).
    driverOptions: {
      connectionTimeoutMillis: connectTimeoutMs,
      maxLifetimeSeconds: CONNECTION_LIFETIME_SECONDS, // see kernel/db.ts
      application_name: 'enclave-orm', // told apart from the control pool in pg_stat_activity
    },
    // Tenant data is only ever reached through a fork bound to one schema.
    allowGlobalContext: false,
    debug: false,
  });
  const pool = (await orm.em.getConnection().getNativeClient()) as Pool;
  pool.on('error', () => {});
  releaseBrokenClients(pool);
  return { orm, pool };
}

/**
 * A connection PostgreSQL ends under a transaction (idle_in_transaction_session_
 * timeout, a terminated backend) must go back to the pool, or the pool loses a
 * slot for good: Kysely (under MikroORM) releases a transaction's connection
 * only after its ROLLBACK succeeded, which on a dead connection it never does.
 * So a checked-out client that reports an error is given back at once, as
 * broken (pg-pool then closes it and opens a fresh one when needed); the
 * release Kysely may still call is made a no-op. Its queries fail as before.
 */
export function releaseBrokenClients(pool: Pool): void {
  const out = new WeakSet<pg.PoolClient>();
  const watched = new WeakSet<pg.PoolClient>();
  pool.on('acquire', (client) => {
    out.add(client);
    if (watched.has(client)) return;
    watched.add(client);
    client.on('error', (err) => {
      if (!out.has(client)) return; // idle in the pool: pg-pool removes it itself
      out.delete(client);
      const release = client.release;
      client.release = () => {};
      release.call(client, err);
    });
  });
  pool.on('release', (_err, client) => {
    out.delete(client as pg.PoolClient);
  });
}
