// Assembles the signed-in web: session store, registry, passport, CSRF and the
// routers, from the configuration. Kept apart from lifecycle.ts (process-level
// start and stop) and app.ts (Express ordering).
import { createHmac, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { RequestHandler, Router } from 'express';
import type { Pool } from '../tenancy/db.ts';
import { DEFAULT_TENANT_MIGRATIONS_DIR, loadTenantMigrations } from '../tenancy/templates.ts';
import type { TenantContext } from '../tenancy/unit-of-work.ts';
import type { AbuseOverrides } from './abuse/options.ts';
import { abuseProtection } from './abuse/protection.ts';
import { bearerAuth } from './auth/bearer.ts';
import { csrfProtection } from './auth/csrf.ts';
import { requireMfaEnrolment } from './auth/mfa-gate.ts';
import { createPassport } from './auth/passport.ts';
import { sessionMiddleware } from './auth/session-middleware.ts';
import type { Config } from './config.ts';
import type { ReadinessCheck } from './health.ts';
import type { Logger } from './logger.ts';
import { auditReads } from './read-audit.ts';
import { accountDeleteRoutes } from './routes/account-delete.ts';
import { auditApiRoutes } from './routes/audit-api.ts';
import { auditPages } from './routes/audit-pages.ts';
import { authRoutes } from './routes/auth.ts';
import type { RouteDeps } from './routes/deps.ts';
import { exportRoutes } from './routes/export.ts';
import { mfaRoutes } from './routes/mfa.ts';
import { pageRoutes } from './routes/pages.ts';
import { sessionRoutes } from './routes/sessions.ts';
import { setupRoutes } from './routes/setup.ts';
import { tokenRoutes } from './routes/tokens.ts';
import { workspaceApiRoutes } from './routes/workspace-api.ts';
import { workspacePages } from './routes/workspace-pages.ts';
import { SessionRegistry } from './sessions/registry.ts';
import { createSessionBackend } from './sessions/store.ts';
import { assetsRouter } from './views.ts';

export interface Web {
  middleware: RequestHandler[];
  routers: Router[];
  checks: Record<string, ReadinessCheck>;
  deps: RouteDeps;
  close(): Promise<void>;
}

export async function buildWeb(options: {
  config: Config;
  log: Logger;
  pool: Pool;
  tenants: TenantContext;
  /** Rate-limit and lockout numbers (tests pass small ones); the defaults are for production. */
  abuse?: AbuseOverrides;
}): Promise<Web> {
  const { config, log, pool, tenants } = options;
  const idleSeconds = config.SESSION_IDLE_MINUTES * 60;
  const backend = createSessionBackend({ redisUrl: config.REDIS_URL, pool, idleSeconds, log });
  const registry = new SessionRegistry(pool, config.SESSION_ABSOLUTE_HOURS * 3600);
  const passport = createPassport(pool, registry);
  const migrations = loadTenantMigrations(config.TENANT_MIGRATIONS_DIR ?? DEFAULT_TENANT_MIGRATIONS_DIR);
  const secret = config.SESSION_SECRET ?? (await generatedSecret(config.DATA_DIR, log));
  // Its own key, not the session secret itself: a hash in the audit trail must not help forge a cookie.
  const auditKey = createHmac('sha256', secret).update('enclave audit: email digest').digest();
  const deps: RouteDeps = { pool, log, tenants, registry, passport, migrations, auditKey };
  return {
    middleware: [
      // Stylesheet and icon: before sessions, so they cost no session lookup.
      assetsRouter(),
      // Rate limits and account lockout: before sessions, so a refused guess costs no session lookup.
      abuseProtection({ redis: backend.redis, secret, log, overrides: options.abuse }),
      ...sessionMiddleware({ store: backend.store, secret, idleSeconds, passport }),
      // After sessions (which skip bearer requests), before CSRF (which exempts them).
      bearerAuth(pool),
      csrfProtection,
      // Once the principal is known: an account that must use MFA may only enrol until it does.
      requireMfaEnrolment,
      // AUDIT_READS: workspace reads record themselves (read-audit.ts).
      auditReads(config.AUDIT_READS),
    ],
    routers: [
      authRoutes(deps),
      sessionRoutes(deps),
      workspaceApiRoutes(deps),
      exportRoutes(deps),
      accountDeleteRoutes(deps),
      tokenRoutes(deps),
      mfaRoutes(deps),
      pageRoutes(deps),
      workspacePages(deps),
      setupRoutes(deps),
      auditApiRoutes(deps),
      auditPages(deps),
    ],
    checks: backend.redis ? { redis: backend.check } : {},
    deps,
    close: backend.close,
  };
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
