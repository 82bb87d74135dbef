// Assembles the signed-in web: session store, registry, passport, CSRF and the
// routers, from the configuration. Kept apart from lifecycle.ts (process-level
// start and stop) and app.ts (Express ordering).
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { RequestHandler, Router } from 'express';
import type { Pool } from '../tenancy/db.ts';
import { DEFAULT_TENANT_MIGRATIONS_DIR, loadTenantMigrations } from '../tenancy/templates.ts';
import type { TenantContext } from '../tenancy/unit-of-work.ts';
import { csrfProtection } from './auth/csrf.ts';
import { createPassport } from './auth/passport.ts';
import { sessionMiddleware } from './auth/session-middleware.ts';
import type { Config } from './config.ts';
import type { ReadinessCheck } from './health.ts';
import type { Logger } from './logger.ts';
import { authRoutes } from './routes/auth.ts';
import type { RouteDeps } from './routes/deps.ts';
import { noteRoutes } from './routes/notes.ts';
import { sessionRoutes } from './routes/sessions.ts';
import { SessionRegistry } from './sessions/registry.ts';
import { createSessionBackend } from './sessions/store.ts';

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
}): Promise<Web> {
  const { config, log, pool, tenants } = options;
  const idleSeconds = config.SESSION_IDLE_MINUTES * 60;
  const backend = createSessionBackend({ redisUrl: config.REDIS_URL, pool, idleSeconds, log });
  const registry = new SessionRegistry(pool, config.SESSION_ABSOLUTE_HOURS * 3600);
  const passport = createPassport(pool, registry);
  const migrations = loadTenantMigrations(config.TENANT_MIGRATIONS_DIR ?? DEFAULT_TENANT_MIGRATIONS_DIR);
  const deps: RouteDeps = { pool, log, tenants, registry, passport, migrations };
  const secret = config.SESSION_SECRET ?? (await generatedSecret(config.DATA_DIR, log));
  return {
    middleware: [
      ...sessionMiddleware({ store: backend.store, secret, idleSeconds, passport }),
      csrfProtection,
    ],
    routers: [authRoutes(deps), sessionRoutes(deps), noteRoutes(deps)],
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
