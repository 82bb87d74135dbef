// The one module that owns BEGIN / COMMIT / ROLLBACK, with isolation, read-only
// and always-roll-back as options of transaction() (the unit of work's
// transaction is MikroORM's, opened with the same isolation option).
// A client that saw an error inside a transaction is destroyed, not returned
// to the pool: whatever state it was left in cannot reach the next caller.
import pg from 'pg';
import { translateDbError } from './errors.ts';

export type Client = pg.PoolClient;
export type Pool = pg.Pool;

/** One SQL statement: `$n` placeholders in text, their values in order. Built by small pure functions. */
export interface Statement {
  text: string;
  values: unknown[];
}

// bigint (int8) and numeric come back as strings by default; counts and
// versions we read are small, so map int8 to number where it is safe.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => {
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : v;
});

/**
 * A connection is closed (once idle) after this long and a fresh one opened: a
 * backend keeps a catalog cache entry for every tenant schema it has served and
 * never frees them (about 36 KB per tenant measured at 1,000 tenants), so a
 * long-lived connection of a big fleet would grow without bound.
 */
export const CONNECTION_LIFETIME_SECONDS = 300;

/**
 * `connectTimeoutMs` bounds how long `connect()` waits for a client, a free
 * one or a new connection: without it a request waits forever on a full pool
 * or a database that accepts no connections (0 or unset: no bound).
 */
export function createPool(
  connectionString: string,
  max: number,
  applicationName = 'enclave',
  connectTimeoutMs = 0,
): Pool {
  const pool = new pg.Pool({
    connectionString,
    max,
    application_name: applicationName,
    connectionTimeoutMillis: connectTimeoutMs,
    maxLifetimeSeconds: CONNECTION_LIFETIME_SECONDS,
  });
  // A client dropped by the server (idle or checked out) must not crash the
  // process: the query in flight rejects on its own and the pool discards it.
  pool.on('error', () => {});
  pool.on('connect', (client) => client.on('error', () => {}));
  return pool;
}

export type Isolation = 'read committed' | 'repeatable read' | 'serializable';

/** How a transaction is opened and how it ends; the default is PostgreSQL's: READ COMMITTED, read-write, committed. */
export interface TransactionOptions {
  /**
   * 'repeatable read' reads every statement from one snapshot (taken at the
   * first statement): an export sees all tables as of one moment.
   */
  isolation?: Isolation;
  /** READ ONLY: PostgreSQL refuses any write inside it. */
  readOnly?: boolean;
  /** Always roll back, also when fn succeeds (drift's scratch schemas must never be committed). */
  rollback?: boolean;
}

/** The BEGIN that opens a transaction with these options: the only place isolation and access mode are set. */
export function begin(options: TransactionOptions = {}): string {
  const modes = [
    ...(options.isolation ? [`ISOLATION LEVEL ${options.isolation.toUpperCase()}`] : []),
    ...(options.readOnly ? ['READ ONLY'] : []),
  ];
  return modes.length ? `BEGIN ${modes.join(', ')}` : 'BEGIN';
}

/**
 * Runs fn in one transaction on one client; rolls back and discards the client
 * on any error. With `rollback: true` it rolls back also when fn succeeds, and
 * returns fn's result.
 */
export async function transaction<T>(
  pool: Pool,
  fn: (client: Client) => Promise<T>,
  options: TransactionOptions = {},
): Promise<T> {
  const client = await pool.connect();
  let failed: unknown;
  try {
    await client.query(begin(options));
    const result = await fn(client);
    await client.query(options.rollback ? 'ROLLBACK' : 'COMMIT');
    return result;
  } catch (err) {
    failed = err;
    await client.query('ROLLBACK').catch(() => {});
    throw translateDbError(err);
  } finally {
    client.release(failed instanceof Error ? failed : failed === undefined ? undefined : true);
  }
}

// Deadlocks and serialization failures are transient: the whole transaction
// can run again. Role DDL touches cluster-wide catalogs (pg_authid,
// pg_auth_members), so concurrent provisioning and drops can deadlock.
const TRANSIENT = new Set(['40P01', '40001']);

/** `transaction`, run again (a few times, with a short random pause) after a deadlock or serialization failure. */
export async function retryingTransaction<T>(
  pool: Pool,
  fn: (client: Client) => Promise<T>,
  attempts = 3,
  options: TransactionOptions = {},
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await transaction(pool, fn, options);
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (attempt >= attempts || typeof code !== 'string' || !TRANSIENT.has(code)) throw err;
      await new Promise((resolve) => setTimeout(resolve, 20 + Math.random() * 80 * attempt));
    }
  }
}

/** One statement outside any explicit transaction. */
export async function query<R extends pg.QueryResultRow = pg.QueryResultRow>(
  pool: Pool | Client,
  text: string,
  values: unknown[] = [],
): Promise<pg.QueryResult<R>> {
  try {
    return await pool.query<R>(text, values);
  } catch (err) {
    throw translateDbError(err);
  }
}

/** Runs one `{ text, values }` statement (see tenant-sql.ts) outside any explicit transaction. */
export function run<R extends pg.QueryResultRow = pg.QueryResultRow>(
  pool: Pool | Client,
  statement: Statement,
): Promise<pg.QueryResult<R>> {
  return query<R>(pool, statement.text, statement.values);
}
