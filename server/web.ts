// Assembles the signed-in web: session store, registry, passport, CSRF and the
// routers (the list in routes.ts), from the configuration. Kept apart from start.ts (process-level
// start and stop) and app.ts (Express ordering).

import { createHmac, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { RequestHandler, Router } from 'express';
import type { ManifestSigner } from '../audit/bundle.ts';
import { createBackups } from '../backup/context.ts';
import { JOBS } from '../jobs/registry.ts';
import type { Config } from '../kernel/config.ts';
import type { Pool } from '../kernel/db.ts';
import type { Logger } from '../kernel/logger.ts';
import { DEFAULT_TENANT_MIGRATIONS_DIR, loadTenantMigrations } from '../tenancy/templates.ts';
import type { TenantContext } from '../tenancy/unit-of-work.ts';
import { type AbuseOverrides, resolveAbuseOptions } from './abuse/options.ts';
import { createAbuseProtection } from './abuse/protection.ts';
import { attemptTally } from './accounts/notices.ts';
import { metricsRoutes } from './api/metrics-api.ts';
import { bearerAuth } from './auth/bearer.ts';
import { csrfProtection } from './auth/csrf.ts';
import { requireMfaEnrolment } from './auth/guards.ts';
import { createPassport } from './auth/passport.ts';
import { sessionMiddleware } from './auth/session-middleware.ts';
import { SpoolBudget } from './export/spool-budget.ts';
import type { ReadinessCheck } from './http/health.ts';
import { Metrics } from './http/metrics.ts';
import { auditReads } from './http/read-audit.ts';
import { assetsRouter } from './http/render.ts';
import type { RouteDeps } from './http/route-deps.ts';
import { searchRate } from './load/search-rate.ts';
import { TenantSlots } from './load/tenant-slots.ts';
import { routes } from './routes.ts';
import { SessionRegistry } from './sessions/registry.ts';
import { createSessionBackend } from './sessions/store.ts';
import { ThreatDetector } from './threats/detector.ts';
import { threatRules } from './threats/rules.ts';
import { currentRequest, threatWatch } from './threats/watch.ts';
import { auditContent } from './workspace/change-audit.ts';
import { quotaBytesOf } from './workspace/storage.ts';

export interface Web {
  middleware: RequestHandler[];
  routers: Router[];
  checks: Record<string, ReadinessCheck>;
  deps: RouteDeps;
  /** Prometheus metrics (docs/METRICS.md): start.ts wraps the request handler with metrics.instrument. */
  metrics: Metrics;
  close(): Promise<void>;
}

export async function buildWeb(options: {
  config: Config;
  log: Logger;
  pool: Pool;
  tenants: TenantContext;
  /** The audit signing key: audit exports sign their manifest with it. */
  auditSigner: ManifestSigner;
  /** Rate-limit and lockout numbers (tests pass small ones); the defaults are for production. */
  abuse?: AbuseOverrides;
  /** MikroORM's own pool, reported beside the control pool in /metrics when given. */
  ormPool?: Pool;
  /** DIRECT_DATABASE_URL's pool (backups hold a session lock and stream COPY); default: `pool`. */
  directPool?: Pool;
}): Promise<Web> {
  const { config, log, pool } = options;
  const idleSeconds = config.SESSION_IDLE_MINUTES * 60;
  const backend = createSessionBackend({
    redisUrl: config.REDIS_URL,
    pool,
    idleSeconds,
    touchCache: config.SESSION_TOUCH_CACHE,
    log,
  });
  const registry = new SessionRegistry(pool, config.SESSION_ABSOLUTE_HOURS * 3600);
  const passport = createPassport(pool, registry);
  const migrations = loadTenantMigrations(config.TENANT_MIGRATIONS_DIR ?? DEFAULT_TENANT_MIGRATIONS_DIR);
  const secret = config.SESSION_SECRET ?? (await generatedSecret(config.DATA_DIR, log));
  // Its own key, not the session secret itself: a hash in the audit trail must not help forge a cookie.
  const auditKey = createHmac('sha256', secret).update('enclave audit: email digest').digest();
  // Rate limits and account lockout: before sessions, so a refused guess costs no session lookup;
  // `attempts` takes the same counts to the password and code checks behind a session.
  // Threat flags (server/threats/): burst counts in the abuse counters' Redis, under their prefix.
  const threats = new ThreatDetector({
    pool,
    redis: backend.redis,
    prefix: resolveAbuseOptions(options.abuse).prefix,
    rules: threatRules(config),
    log,
  });
  // SQLSTATE 42501 inside a tenant unit of work: a critical flag, with the request it happened in.
  const stopDenied = options.tenants.onPermissionDenied((info) =>
    threats.permissionDenied(info, currentRequest()),
  );
  const abuse = createAbuseProtection({
    redis: backend.redis,
    secret,
    log,
    overrides: options.abuse,
    tally: attemptTally(pool, log),
    onLockout: (req) => threats.lockout(req),
  });
  const deps = routeDeps(options, {
    registry,
    passport,
    migrations,
    auditKey,
    attempts: abuse.attempts,
    threats,
    redis: backend.redis,
  });
  const metrics = new Metrics({
    pool,
    pools: { control: pool, ...(options.ormPool ? { orm: options.ormPool } : {}) },
    log,
    token: config.METRICS_TOKEN,
  });
  return {
    middleware: [
      // Stylesheet and icon: before sessions, so they cost no session lookup.
      assetsRouter(),
      // Before anything that can refuse a request: it looks at every answer (server/threats/watch.ts).
      threatWatch(threats),
      abuse.middleware,
      ...sessionMiddleware({ store: backend.store, secret, idleSeconds, passport }),
      // GET /metrics: after the session (an admin may read it), before bearerAuth, which refuses
      // bearer headers outside /api/ (the metrics token is not an API token).
      metricsRoutes({ metrics }),
      ...afterSessions(options, secret),
    ],
    routers: routes(deps),
    checks: backend.redis ? { redis: backend.check } : {},
    deps,
    metrics,
    close: async () => {
      stopDenied();
      await threats.settled();
      await backend.close();
    },
  };
}

type WebOptions = Parameters<typeof buildWeb>[0];

/** What the routers are handed (server/http/route-deps.ts), from the configuration and the parts built above. */
function routeDeps(
  options: WebOptions,
  parts: Pick<RouteDeps, 'registry' | 'passport' | 'migrations' | 'auditKey' | 'attempts' | 'threats'> & {
    redis: ReturnType<typeof createSessionBackend>['redis'];
  },
): RouteDeps {
  const { config, log, pool, tenants, auditSigner } = options;
  const { redis, ...rest } = parts;
  return {
    config,
    pool,
    log,
    tenants,
    auditSigner,
    ...rest,
    // Backups sign their manifests with the audit signing key too; BACKUP_* settings (backup/context.ts).
    backups: createBackups(config, options.directPool ?? pool, {
      signer: auditSigner,
      migrations: parts.migrations,
    }),
    tenantQuotaBytes: quotaBytesOf(config.TENANT_QUOTA_MB),
    jobs: JOBS.map((j) => ({
      name: j.name,
      title: j.title,
      schedule: j.schedule(config),
      perTenant: Boolean(j.tenantOf),
    })),
    // Per workspace: exports and searches at once, shared by all instances through Redis when there is one.
    slots: new TenantSlots({
      redis,
      prefix: resolveAbuseOptions(options.abuse).prefix,
      limits: { export: config.TENANT_MAX_EXPORTS, search: config.TENANT_MAX_SEARCHES },
      log,
    }),
    // Per workspace: searches started per 10 seconds (TENANT_SEARCHES_PER_MINUTE / 6), in the same Redis.
    searchRate: searchRate(
      { redis, prefix: resolveAbuseOptions(options.abuse).prefix, log },
      config.TENANT_SEARCHES_PER_MINUTE,
    ),
    exports: {
      spool: new SpoolBudget(config.EXPORT_SPOOL_BUDGET_MB * 1024 * 1024),
      dir: config.EXPORT_SPOOL_DIR ?? tmpdir(),
      deadlineMs: config.EXPORT_DEADLINE_SECONDS * 1000,
      statementTimeoutMs: config.EXPORT_STATEMENT_TIMEOUT_MS,
    },
  };
}

/** The middleware after the session: who the principal is, and what every request then carries. */
function afterSessions(options: WebOptions, secret: string): RequestHandler[] {
  const { config, pool } = options;
  return [
    // After sessions (which skip bearer requests), before CSRF (which exempts them).
    bearerAuth(pool),
    csrfProtection(secret),
    // Once the principal is known: an account that must use MFA may only enrol until it does.
    requireMfaEnrolment,
    // AUDIT_READS: workspace reads record themselves (read-audit.ts).
    auditReads(config.AUDIT_READS),
    // AUDIT_CONTENT: whether workspace text goes into audit events, or only its length and hash.
    auditContent(config.AUDIT_CONTENT),
  ];
}

/** One secret per data directory, made on first start; instances sharing sessions must set SESSION_SECRET. */
async function generatedSecret(dataDir: string, log: Logger): Promise<string> {
  const file = path.join(dataDir, 'session-secret');
  if (existsSync(file)) return (await readFile(file, 'utf8')).trim();
  await mkdir(dataDir, { recursive: true, mode: 0o755 });
  const secret = randomBytes(48).toString('base64url');
  await writeFile(file, secret, { mode: 0o600 });
  log.warn(
    'SESSION_SECRET is not set: generated one in DATA_DIR; set SESSION_SECRET when running more than one instance',
  );
  return secret;
}
