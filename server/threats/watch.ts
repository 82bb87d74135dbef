// What the threat detector learns from answers (docs/ADMIN.md, "Threats"):
// one middleware, mounted before everything that can refuse a request, that
// looks at each response when it is sent:
//   401 with `error="invalid_token"` on /api/   a rejected API token (per address)
//   403 csrf_failed                              a CSRF failure (per address)
//   404 on a workspace route, signed-in session  a missing id (per session, hashed)
// It also keeps the request in an AsyncLocalStorage while it is handled, so a
// permission-denied error deep in a tenant unit of work (tenancy/ knows no
// requests) is flagged with its user and request id.
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Request, RequestHandler, Response } from 'express';
import { isApiPath } from '../auth/bearer.ts';
import { problemCodeOf } from '../http/http-errors.ts';
import { contextOf } from '../http/request-audit.ts';
import { pathOf } from '../http/request-log.ts';
import { ipSubject, sessionSubject, type ThreatDetector } from './detector.ts';

const requestScope = new AsyncLocalStorage<Request>();

/** The request being handled in this async context, if any. */
export function currentRequest(): Request | undefined {
  return requestScope.getStore();
}

/** Workspace routes whose 404s are missing ids: the notes and tasks API, the workspace pages. */
const WORKSPACE = /^\/(api\/v\d+\/(notes|tasks)|workspace)(\/|$)/i;

export function threatWatch(detector: ThreatDetector): RequestHandler {
  return (req, res, next) => {
    res.once('finish', () => observe(detector, req, res));
    requestScope.run(req, next);
  };
}

function observe(detector: ThreatDetector, req: Request, res: Response): void {
  const status = res.statusCode;
  if (
    status === 401 &&
    isApiPath(pathOf(req)) &&
    /invalid_token/.test(String(res.getHeader('WWW-Authenticate') ?? ''))
  ) {
    detector.hit('rejected_tokens', ipSubject(req), contextOf(req));
  } else if (status === 403 && problemCodeOf(res) === 'csrf_failed') {
    detector.hit('csrf_failures', ipSubject(req), contextOf(req));
  } else if (
    status === 404 &&
    req.user?.via === 'session' &&
    req.user.sessionId &&
    WORKSPACE.test(pathOf(req))
  ) {
    detector.hit('id_enumeration', sessionSubject(req.user.sessionId), contextOf(req), {
      userId: req.user.userId,
      tenantId: req.user.tenantId,
    });
  }
}
