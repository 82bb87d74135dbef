// Starting and stopping the whole server, in order, without touching process
// state (signals, exit codes): main.ts owns those, and tests start the real
// thing in-process through startServer. Whatever was started before a failure
// is stopped again before the error reaches the caller.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadSigner, type Signer } from '../audit/signing.ts';
import { JOBS } from '../jobs/registry.ts';
import { startJobRunner } from '../jobs/runner.ts';
import type { JobBase } from '../jobs/scheduler.ts';
import type { Config } from '../kernel/config.ts';
import { createPool, type Pool } from '../kernel/db.ts';
import { type EmbeddedDatabase, startEmbeddedPostgres } from '../kernel/embedded-postgres.ts';
import { createLogger, type Logger } from '../kernel/logger.ts';
import { migrateControlPlane } from '../tenancy/control-plane.ts';
import { countTenantsBehind } from '../tenancy/fleet-migrate.ts';
import { createOrm, type Orm } from '../tenancy/orm.ts';
import { latestVersion, type TenantMigration } from '../tenancy/templates.ts';
import { TenantContext } from '../tenancy/unit-of-work.ts';
import type { AbuseOverrides } from './abuse/options.ts';
import { announceSetup } from './accounts/admin-setup.ts';
import { MetricsPortError, startMetricsListener } from './api/metrics-api.ts';
import { createApp } from './http/app.ts';
import { databaseCheck } from './http/health.ts';
import type { RouteDeps } from './http/route-deps.ts';
import { buildWeb } from './web.ts';

export interface RunningServer {
  /** The base URL the server listens on, e.g. http://127.0.0.1:3000 */
  url: string;
  /** Stops accepting, lets requests in flight finish (within the grace period), then closes the database. */
  stop(): Promise<void>;
}

export interface StartOptions {
  log?: Logger;
  /** How long stop() waits for requests in flight before cutting their connections. */
  shutdownGraceMs?: number;
  /** Rate-limit and lockout numbers; tests pass their own (see server/abuse/options.ts). */
  abuse?: AbuseOverrides;
}

/** A failure to start that is explained by its message alone; no stack trace needed. */
export class StartupError extends Error {
  override name = 'StartupError';
}

export async function startServer(config: Config, options: StartOptions = {}): Promise<RunningServer> {
  const log = options.log ?? createLogger({ level: config.LOG_LEVEL });
  const cleanups: Array<() => Promise<void>> = [];
  const stopAll = async () => {
    for (const cleanup of cleanups.reverse().splice(0)) {
      await cleanup().catch((err: unknown) => log.error('error while stopping', { error: err }));
    }
  };
  try {
    const url = await databaseUrl(config, log, cleanups);
    const { orm, pool } = await connect(url, config.DB_POOL_SIZE, config.DB_CONNECT_TIMEOUT_MS);
    cleanups.push(() => orm.close());
    cleanups.push(() => pool.end());
    // What needs a session of its own (pg-boss, job and backup locks, COPY streams) goes to
    // DIRECT_DATABASE_URL when DATABASE_URL is a transaction pooler (docs/SCALING.md).
    const directUrl = (config.DATABASE_URL && config.DIRECT_DATABASE_URL) || url;
    const direct =
      directUrl === url
        ? pool
        : await connectDirect(directUrl, config.DB_POOL_SIZE, config.DB_CONNECT_TIMEOUT_MS);
    if (direct !== pool) cleanups.push(() => direct.end());
    await migrate(direct);
    const signer = await auditSigner(config, pool);
    const tenants = new TenantContext(orm, pool, {
      cacheMs: config.TENANT_CACHE_MS,
      cacheEntries: config.TENANT_CACHE_SIZE,
      statementTimeoutMs: config.TENANT_STATEMENT_TIMEOUT_MS,
      idleInTransactionMs: config.TENANT_IDLE_IN_TRANSACTION_MS,
      maxConcurrentPerTenant: config.TENANT_MAX_CONCURRENT,
      turnWaitMs: config.TENANT_TURN_WAIT_MS,
    });
    const ormPool = (await orm.em.getConnection().getNativeClient()) as Pool;
    const web = await buildWeb({
      config,
      log,
      pool,
      tenants,
      auditSigner: signer,
      abuse: options.abuse,
      ormPool,
      directPool: direct,
    });
    cleanups.push(web.close);
    if (config.JOBS_IN_SERVER)
      cleanups.push(await startJobs(config, { url: directUrl, pool: direct }, signer, web.deps, log));
    // Temporary files a crashed backup left in BACKUP_DIR (any still being written are skipped).
    void web.deps.backups.storage
      .sweep()
      .catch((err: unknown) => log.warn('could not sweep leftover backup files', { error: err }));
    await warnTenantsBehind(pool, web.deps.migrations, log);
    const drain = { draining: false };
    const app = createApp({
      drain,
      log,
      checks: { database: databaseCheck(pool), ...web.checks },
      trustProxy: config.TRUST_PROXY,
      middleware: web.middleware,
      routers: web.routers,
    });
    // Every request is counted for /metrics, whatever answers it (health checks, body-parser refusals).
    const server = await listen(http.createServer(web.metrics.instrument(app)), config.PORT, config.HOST);
    cleanups.push(() => closeServer(server, options.shutdownGraceMs ?? 10_000));
    if (config.METRICS_PORT > 0) {
      const metricsPort = await startMetricsListener({
        metrics: web.metrics,
        host: config.HOST,
        port: config.METRICS_PORT,
        log,
      }).catch((err: unknown) => {
        throw err instanceof MetricsPortError ? new StartupError(err.message, { cause: err }) : err;
      });
      cleanups.push(metricsPort.stop);
    }
    const address = baseUrl(server.address() as AddressInfo);
    log.info('listening', { url: address });
    await announceSetup(pool, config.PUBLIC_URL ?? address, log);
    let stopping: Promise<void> | undefined;
    // Draining first: /readyz says 503 and late requests are refused while those in flight finish.
    const stop = async () => {
      drain.draining = true;
      log.info('draining: refusing new requests, finishing those in flight', {
        drainMs: config.SHUTDOWN_DRAIN_MS,
      });
      // Still listening, answering "not ready", until the load balancer has seen it.
      if (config.SHUTDOWN_DRAIN_MS > 0) await new Promise((r) => setTimeout(r, config.SHUTDOWN_DRAIN_MS));
      return stopAll();
    };
    return { url: address, stop: () => (stopping ??= stop()) };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/** The sealer and the scheduled jobs, in this process (JOBS_IN_SERVER); `enclave worker` runs the same. */
async function startJobs(
  config: Config,
  direct: { url: string; pool: Pool },
  signer: Signer,
  deps: RouteDeps,
  log: Logger,
): Promise<() => Promise<void>> {
  const base: JobBase = {
    pool: direct.pool,
    log,
    config,
    clock: () => new Date(),
    backups: deps.backups,
    signer,
    migrations: deps.migrations,
  };
  try {
    const runner = await startJobRunner({
      connectionString: direct.url,
      pool: direct.pool,
      signer,
      log,
      sealIntervalSeconds: config.AUDIT_SEAL_INTERVAL_SECONDS,
      scheduled: { jobs: JOBS, base },
    });
    return runner.stop;
  } catch (err) {
    throw new StartupError(`starting the job queue (pg-boss) failed: ${messageOf(err)}`, { cause: err });
  }
}

/** Tenants behind the templates serve old schemas to new code: say so at start, with the fix. */
async function warnTenantsBehind(pool: Pool, migrations: readonly TenantMigration[], log: Logger) {
  const behind = await countTenantsBehind(pool, migrations);
  if (behind === 0) return;
  log.warn('tenants are behind the tenant migrations: run `npx enclave tenants migrate`', {
    tenantsBehind: behind,
    latestVersion: latestVersion(migrations),
  });
}

async function databaseUrl(
  config: Config,
  log: Logger,
  cleanups: Array<() => Promise<void>>,
): Promise<string> {
  if (config.DATABASE_URL) return config.DATABASE_URL;
  log.info('DATABASE_URL is not set: using the embedded PostgreSQL', {
    dataDir: config.DATA_DIR,
    port: config.EMBEDDED_PG_PORT,
  });
  let embedded: EmbeddedDatabase;
  try {
    embedded = await startEmbeddedPostgres(config.DATA_DIR, config.EMBEDDED_PG_PORT, (m) =>
      log.debug(m, { component: 'embedded-postgres' }),
    );
  } catch (err) {
    throw new StartupError(messageOf(err), { cause: err });
  }
  cleanups.push(() => bounded(embedded.stop(), EMBEDDED_STOP_MS, 'the embedded PostgreSQL to stop', log));
  return embedded.url;
}

// A terminal's Ctrl-C reaches PostgreSQL too (same process group), and
// embedded-postgres waits forever for the exit of a server that already exited.
const EMBEDDED_STOP_MS = 5000;

async function bounded(work: Promise<void>, ms: number, what: string, log: Logger): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const gaveUp = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms);
  });
  const outcome = await Promise.race([work, gaveUp]).finally(() => clearTimeout(timer));
  if (outcome === 'timeout') log.warn(`gave up waiting for ${what} after ${ms} ms`);
}

/** host:port/database, without user or password: safe for a log line. */
export function describeDatabase(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || '5432'}${u.pathname}`;
  } catch {
    return '(unparsable DATABASE_URL)';
  }
}

// Two pools: MikroORM's serves units of work (its type parsers hand back
// strings for timestamps); the control pool serves the tenancy service and
// accounts with node-postgres' own types (Dates).
async function connect(
  url: string,
  poolSize: number,
  connectTimeoutMs: number,
): Promise<{ orm: Orm; pool: Pool }> {
  try {
    const { orm } = await createOrm(url, poolSize, connectTimeoutMs);
    const pool = createPool(url, Math.max(2, Math.ceil(poolSize / 2)), 'enclave-control', connectTimeoutMs);
    try {
      await pool.query('SELECT 1');
    } catch (err) {
      await orm.close();
      await pool.end();
      throw err;
    }
    return { orm, pool };
  } catch (err) {
    throw new StartupError(`cannot connect to the database at ${describeDatabase(url)}: ${messageOf(err)}`, {
      cause: err,
    });
  }
}

async function connectDirect(url: string, poolSize: number, connectTimeoutMs: number): Promise<Pool> {
  const pool = createPool(url, Math.max(2, Math.ceil(poolSize / 2)), 'enclave-direct', connectTimeoutMs);
  try {
    await pool.query('SELECT 1');
    return pool;
  } catch (err) {
    await pool.end().catch(() => {});
    throw new StartupError(
      `cannot connect to DIRECT_DATABASE_URL at ${describeDatabase(url)}: ${messageOf(err)}`,
      { cause: err },
    );
  }
}

async function migrate(pool: Pool): Promise<void> {
  try {
    await migrateControlPlane(pool);
  } catch (err) {
    throw new StartupError(`applying the control-plane migrations failed: ${messageOf(err)}`, { cause: err });
  }
}

async function auditSigner(config: Config, pool: Pool): Promise<Signer> {
  try {
    return await loadSigner(config, pool);
  } catch (err) {
    throw new StartupError(messageOf(err), { cause: err });
  }
}

function messageOf(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  // A refused connection to "localhost" is an AggregateError (one per address) with an empty message.
  const code = (err as { code?: unknown }).code;
  return err.message || (typeof code === 'string' ? code : err.name);
}

function listen(server: http.Server, port: number, host: string): Promise<http.Server> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      const taken = err.code === 'EADDRINUSE' || err.code === 'EACCES';
      reject(
        taken ? new StartupError(`cannot listen on ${host}:${port} (${err.code}); set PORT or HOST`) : err,
      );
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve(server);
    });
  });
}

function baseUrl(address: AddressInfo): string {
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `http://${host}:${address.port}`;
}

/** Stops accepting at once; idle keep-alive connections close now, busy ones after the grace period. */
function closeServer(server: http.Server, graceMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const force = setTimeout(() => server.closeAllConnections(), graceMs);
    force.unref();
    server.close((err) => {
      clearTimeout(force);
      if (err) reject(err);
      else resolve();
    });
    server.closeIdleConnections();
  });
}
