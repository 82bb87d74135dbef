// The Express app, built from its dependencies so tests can build one with a
// pool of their choice. Order matters: headers and request id first (so even a
// 404 carries them), then routes, then the one 404 and the one error handler.
import express, { type Express, type RequestHandler, type Router } from 'express';
import type { Logger } from '../../kernel/logger.ts';
import { ShuttingDownError } from '../app-errors.ts';
import { DEFAULT_CHECK_TIMEOUT_MS, type Draining, healthRouter, type ReadinessCheck } from './health.ts';
import { errorHandler, notFound } from './http-errors.ts';
import { requestId } from './request-id.ts';
import { requestLog } from './request-log.ts';
import { noStore, securityHeaders } from './security-headers.ts';

export interface AppDeps {
  log: Logger;
  /** Readiness checks by name (e.g. `database`, later `redis`); /readyz reports each. */
  checks: Record<string, ReadinessCheck>;
  /** Per-check time limit for /readyz. */
  checkTimeoutMs?: number;
  /** Express "trust proxy": which proxies' X-Forwarded-* to believe (client IP, TLS). */
  trustProxy?: boolean | number | string;
  /** Mounted after health and body parsing, before the routers: sessions, passport, CSRF. */
  middleware?: RequestHandler[];
  /** Routers mounted after the built-in routes and before the 404 and error handlers. */
  routers?: Router[];
  /** Set when the server stops: /readyz says 503 and requests that arrive after it are refused. */
  drain?: Draining;
}

export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', deps.trustProxy ?? false);
  app.use(securityHeaders());
  app.use(noStore());
  app.use(requestId());
  app.use(requestLog(deps.log));
  const drain = deps.drain ?? { draining: false };
  app.use(healthRouter(deps.checks, deps.checkTimeoutMs ?? DEFAULT_CHECK_TIMEOUT_MS, deps.log, drain));
  // Requests in flight when the server began to stop are past this gate and finish; a request
  // that arrives later (on a kept-alive connection) is refused, and its connection closed.
  app.use((_req, res, next) => {
    if (!drain.draining) return next();
    res.set('Connection', 'close');
    next(new ShuttingDownError());
  });
  // Small, strict bodies: JSON objects/arrays only, flat forms (no a[b]=c nesting).
  app.use(express.json({ limit: '100kb', strict: true }));
  // The note editor posts up to 100,000 characters, which form encoding can make
  // ten times as many bytes (%XX per byte of UTF-8): enough room there, so a long
  // note is not refused before its form can be shown again with the text kept.
  app.use('/workspace', express.urlencoded({ extended: false, limit: '1mb', parameterLimit: 100 }));
  app.use(express.urlencoded({ extended: false, limit: '100kb', parameterLimit: 100 }));
  for (const mw of deps.middleware ?? []) app.use(mw);
  for (const router of deps.routers ?? []) app.use(router);
  app.use(notFound());
  app.use(errorHandler(deps.log));
  return app;
}
