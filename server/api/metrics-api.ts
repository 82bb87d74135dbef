// GET /metrics (docs/METRICS.md): the Prometheus text of this server, for a
// signed-in admin (browser session) or a scraper sending METRICS_TOKEN as
// `Authorization: Bearer …`; anyone else gets a 401/403 and no metrics.
//
// On the main listener this router is mounted among the middleware, after the
// session and BEFORE bearerAuth (server/auth/bearer.ts): that one refuses any
// bearer header outside /api/, and the metrics token is not an API token.
// Sessions skip bearer requests, so a scrape costs no session lookup.
//
// METRICS_PORT: a listener of its own serving /metrics only, token required.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Request, type RequestHandler, Router } from 'express';
import type { Logger } from '../../kernel/logger.ts';
import {
  AuthenticationError,
  ForbiddenError,
  LoginRequiredError,
  MfaEnrolmentRequiredError,
} from '../app-errors.ts';
import { bearerSecret } from '../auth/bearer.ts';
import { createApp } from '../http/app.ts';
import type { Metrics } from '../http/metrics.ts';

const CLAIMS_BEARER = /^Bearer(\s|$)/i;
const CHALLENGE = 'Bearer realm="enclave-metrics"';

/** The main listener's /metrics: an admin's session, or the metrics token. */
export function metricsRoutes(deps: { metrics: Metrics }): Router {
  const router = Router();
  router.get('/metrics', allow(deps.metrics, { sessions: true }), serve(deps.metrics));
  return router;
}

/** Who may read: a well-formed bearer header is judged by the token alone; otherwise the session's role. */
function allow(metrics: Metrics, options: { sessions: boolean }): RequestHandler {
  return (req, res, next) => {
    if (CLAIMS_BEARER.test(req.headers.authorization ?? '')) {
      if (metrics.tokenMatches(bearerSecret(req.headers.authorization))) return next();
      res.setHeader('WWW-Authenticate', `${CHALLENGE}, error="invalid_token"`);
      return next(
        new AuthenticationError(
          metrics.acceptsToken
            ? 'This metrics token is not valid: send METRICS_TOKEN as `Authorization: Bearer <token>`.'
            : 'METRICS_TOKEN is not set on this server, so no token can read /metrics.',
        ),
      );
    }
    if (!options.sessions) {
      res.setHeader('WWW-Authenticate', CHALLENGE);
      return next(
        new AuthenticationError('Send METRICS_TOKEN as `Authorization: Bearer <token>` to read /metrics.'),
      );
    }
    const user = sessionUser(req);
    if (!user) {
      res.setHeader('WWW-Authenticate', CHALLENGE);
      return next(
        new LoginRequiredError(
          metrics.acceptsToken
            ? 'Sign in as an admin, or send METRICS_TOKEN as `Authorization: Bearer <token>`, to read /metrics.'
            : 'Sign in as an admin to read /metrics (METRICS_TOKEN is not set, so scrapers cannot).',
        ),
      );
    }
    if (user.role !== 'admin') return next(new ForbiddenError('Only admins can read /metrics.'));
    // This router runs before requireMfaEnrolment (guards.ts): apply the same rule here.
    if (user.mfaRequired && !user.mfaEnabled) return next(new MfaEnrolmentRequiredError());
    next();
  };
}

function sessionUser(req: Request): Express.User | undefined {
  return req.user?.via === 'session' ? req.user : undefined;
}

function serve(metrics: Metrics): RequestHandler {
  return async (_req, res, next) => {
    try {
      const { contentType, body } = await metrics.render();
      res.status(200).setHeader('Content-Type', contentType);
      res.send(body);
    } catch (err) {
      next(err);
    }
  };
}

export interface MetricsListener {
  url: string;
  stop(): Promise<void>;
}

/** METRICS_TOKEN must be set for METRICS_PORT: that port serves scrapers with the token and nobody else. */
export class MetricsPortError extends Error {
  override name = 'MetricsPortError';
}

/**
 * METRICS_PORT on HOST: /metrics with the token only (no sessions, no other
 * route; /healthz and /readyz answer too, from createApp). Errors come back
 * as the same JSON bodies as on the main listener.
 */
export async function startMetricsListener(options: {
  metrics: Metrics;
  host: string;
  port: number;
  log: Logger;
}): Promise<MetricsListener> {
  const { metrics, host, port, log } = options;
  if (!metrics.acceptsToken) {
    throw new MetricsPortError(
      'METRICS_PORT is set but METRICS_TOKEN is not: the metrics port only serves scrapers with the token; set METRICS_TOKEN (or METRICS_PORT=0)',
    );
  }
  const router = Router();
  router.get('/metrics', allow(metrics, { sessions: false }), serve(metrics));
  const app = createApp({ log, checks: {}, routers: [router] });
  const server = http.createServer(app);
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) =>
      reject(
        new MetricsPortError(`cannot listen on ${host}:${port} for metrics (${err.code}); set METRICS_PORT`),
      );
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const url = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
  log.info('metrics listening', { url: `${url}/metrics` });
  return {
    url,
    stop: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}
