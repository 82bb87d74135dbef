// One log line per request, written when the connection is done with it
// (finished or aborted). The path is logged without its query string, which
// is where tokens and other secrets tend to travel.
import type { Request, RequestHandler, Response } from 'express';
import type { Logger } from '../../kernel/logger.ts';
import { requestIdOf } from './request-id.ts';

export function pathOf(req: Request): string {
  const url = req.originalUrl;
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

/** The matched route pattern (e.g. `/notes/:id`), or null when no route matched. */
export function routeOf(req: Request): string | null {
  const pattern = (req.route as { path?: unknown } | undefined)?.path;
  return typeof pattern === 'string' ? `${req.baseUrl}${pattern}` : null;
}

export function requestLog(log: Logger): RequestHandler {
  return (req, res, next) => {
    const started = performance.now();
    res.once('close', () => logLine(log, req, res, performance.now() - started));
    next();
  };
}

function logLine(log: Logger, req: Request, res: Response, ms: number): void {
  const status = res.statusCode;
  // A scraper reads /metrics every few seconds: its successful reads are debug, not info.
  const quiet = status < 400 && routeOf(req) === '/metrics';
  log.log(status >= 500 ? 'warn' : quiet ? 'debug' : 'info', 'request', {
    requestId: requestIdOf(res),
    method: req.method,
    route: routeOf(req),
    path: pathOf(req),
    status,
    durationMs: Math.round(ms * 10) / 10,
    ...(req.user ? { userId: req.user.userId, tenantId: req.user.tenantId, via: req.user.via } : {}),
    ...(res.writableFinished ? {} : { aborted: true }),
  });
}
