// The one place where errors become HTTP status codes. Handlers and the
// tenancy service throw typed errors and never pick a status themselves.
// Messages of our own typed errors that are written for the user are passed
// on; anything else gets a fixed message, and its details go to the log only.
import { STATUS_CODES } from 'node:http';
import type { ErrorRequestHandler, Request, RequestHandler, Response } from 'express';
import { ArchiveRefusedError } from '../../backup/backup-errors.ts';
import { BackupRefusedError, RestoreRefusedError } from '../../backup/restore-errors.ts';
import { InvalidInputError, PermissionDeniedError, QueryTimeoutError } from '../../kernel/errors.ts';
import type { Logger } from '../../kernel/logger.ts';
import {
  LegalHoldError,
  TenantBusyError,
  TenantNotFoundError,
  TenantSuspendedError,
  TenantUnavailableError,
} from '../../tenancy/tenancy-errors.ts';
import {
  AuthenticationError,
  ConflictError,
  CsrfError,
  databaseUnavailable,
  ForbiddenError,
  LoginRequiredError,
  MfaEnrolmentRequiredError,
  MfaRequiredError,
  NotFoundError,
  ProvisioningFailedError,
  QuotaExceededError,
  RateLimitedError,
  ReauthRequiredError,
  ServerBusyError,
  SessionsUnavailableError,
  ShuttingDownError,
  ValidationError,
  VersionConflictError,
} from '../app-errors.ts';
import { renderErrorPage } from './render.ts';
import { requestIdOf } from './request-id.ts';
import { pathOf } from './request-log.ts';

export interface HttpProblem {
  status: number;
  code: string;
  message: string;
  details?: unknown;
}

export interface ErrorBody {
  error: { code: string; message: string; details?: unknown };
}

/** Maps an error to what the client sees. Subclasses are tested before their parents. */
export function problemFor(err: unknown): HttpProblem {
  if (err instanceof TenantNotFoundError) {
    return { status: 404, code: 'tenant_not_found', message: 'This workspace does not exist.' };
  }
  // 403, not 423: 423 Locked is WebDAV's "this resource is locked", which clients
  // read as a transient lock to retry; a suspension is a decision about access.
  // The distinct code lets the UI show "suspended" rather than "forbidden".
  if (err instanceof TenantSuspendedError) {
    return {
      status: 403,
      code: 'tenant_suspended',
      message:
        'This workspace is suspended: nothing in it can be read or changed until an administrator resumes it. Ask your administrator to reactivate it.',
    };
  }
  if (err instanceof TenantUnavailableError) {
    return {
      status: 403,
      code: 'tenant_unavailable',
      message: 'This workspace is not available.',
      details: { state: err.state },
    };
  }
  if (err instanceof ValidationError) {
    return { status: 400, code: 'invalid_input', message: err.message, details: { issues: err.issues } };
  }
  if (err instanceof InvalidInputError) return { status: 400, code: 'invalid_input', message: err.message };
  if (err instanceof LegalHoldError) return { status: 409, code: 'legal_hold', message: err.message };
  // PostgreSQL's own text names tables and roles: not for the client.
  if (err instanceof PermissionDeniedError) {
    return { status: 403, code: 'permission_denied', message: 'Permission denied.' };
  }
  if (err instanceof TenantBusyError) {
    return {
      status: 429,
      code: 'tenant_busy',
      message: 'This workspace has too much going on at once. Try again in a moment.',
      details: { retryAfterSeconds: err.retryAfterSeconds },
    };
  }
  // statement_timeout / idle_in_transaction_session_timeout: the work was stopped and rolled back.
  if (err instanceof QueryTimeoutError) {
    return {
      status: 503,
      code: 'query_timeout',
      message:
        'This took too long and was stopped; nothing was changed. Try again in a moment, or ask for less (for example a narrower search).',
    };
  }
  // Loading the signed-in person (passport) reads PostgreSQL: a session error caused by the
  // database is the database's, and says so.
  const sessionDb = err instanceof SessionsUnavailableError ? databaseUnavailable(err.cause) : undefined;
  const app = sessionDb ? undefined : (appProblem(err) ?? backupProblem(err));
  if (app) return app;
  // Untyped driver errors that mean "no database just now": a 503 to retry, not a 500.
  const unavailable = databaseUnavailable(err);
  if (unavailable) {
    return {
      status: 503,
      code: 'database_unavailable',
      message: unavailable.message,
      details: { retryAfterSeconds: unavailable.retryAfterSeconds },
    };
  }
  const client = clientError(err);
  if (client) return client;
  return { status: 500, code: 'internal_error', message: 'Something went wrong on our side.' };
}

function appProblem(err: unknown): HttpProblem | undefined {
  if (err instanceof MfaRequiredError) return { status: 401, code: 'mfa_required', message: err.message };
  if (err instanceof AuthenticationError)
    return { status: 401, code: 'unauthenticated', message: err.message };
  if (err instanceof LoginRequiredError) return { status: 401, code: 'login_required', message: err.message };
  if (err instanceof MfaEnrolmentRequiredError) {
    return { status: 403, code: 'mfa_enrolment_required', message: err.message };
  }
  if (err instanceof CsrfError) return { status: 403, code: 'csrf_failed', message: err.message };
  if (err instanceof ReauthRequiredError)
    return { status: 403, code: 'reauth_required', message: err.message };
  if (err instanceof ForbiddenError) return { status: 403, code: 'forbidden', message: err.message };
  if (err instanceof NotFoundError) return { status: 404, code: 'not_found', message: err.message };
  if (err instanceof VersionConflictError) {
    return {
      status: 409,
      code: 'version_conflict',
      message: err.message,
      details: { current: err.current },
    };
  }
  if (err instanceof ConflictError) return { status: 409, code: 'conflict', message: err.message };
  // 413: what the request would store does not fit; a smaller change, or one after a delete, can.
  if (err instanceof QuotaExceededError) {
    return {
      status: 413,
      code: 'quota_exceeded',
      message: err.message,
      details: { usedBytes: err.usedBytes, quotaBytes: err.quotaBytes, neededBytes: err.neededBytes },
    };
  }
  if (err instanceof RateLimitedError) {
    return {
      status: 429,
      code: 'rate_limited',
      message: err.message,
      details: { retryAfterSeconds: err.retryAfterSeconds },
    };
  }
  if (err instanceof ProvisioningFailedError) {
    return { status: 503, code: 'provisioning_failed', message: err.message };
  }
  if (err instanceof ServerBusyError) {
    return {
      status: 503,
      code: 'server_busy',
      message: err.message,
      details: { retryAfterSeconds: err.retryAfterSeconds },
    };
  }
  if (err instanceof SessionsUnavailableError) {
    return {
      status: 503,
      code: 'sessions_unavailable',
      message: err.message,
      details: { retryAfterSeconds: 10 },
    };
  }
  if (err instanceof ShuttingDownError) {
    return {
      status: 503,
      code: 'shutting_down',
      message: err.message,
      details: { retryAfterSeconds: err.retryAfterSeconds },
    };
  }
  return undefined;
}

/**
 * Backups and restores (backup/): refusals are one line written for the
 * operator, and nothing was changed. An archive that cannot be trusted or
 * read is 422; a tenant in the wrong state (legal hold, deleted) 409. Other
 * BackupErrors are failures on our side (500, their text names server paths).
 */
function backupProblem(err: unknown): HttpProblem | undefined {
  if (err instanceof ArchiveRefusedError)
    return { status: 422, code: 'archive_refused', message: err.message, details: { reason: err.reason } };
  if (err instanceof RestoreRefusedError || err instanceof BackupRefusedError) {
    const status =
      err.reason === 'tenant-missing'
        ? 404
        : err.reason === 'bad-name'
          ? 400
          : err.reason === 'legal-hold' || err.reason === 'tenant-deleted'
            ? 409
            : 422;
    const code = err instanceof RestoreRefusedError ? 'restore_refused' : 'backup_refused';
    return { status, code, message: err.message, details: { reason: err.reason } };
  }
  // lock_timeout (BACKUP_LOCK_TIMEOUT_MS): the tenant is busy (a migration, another restore); nothing changed.
  if ((err as { code?: unknown } | null)?.code === '55P03')
    return {
      status: 503,
      code: 'lock_timeout',
      message: 'This workspace is busy with another change; nothing was changed. Try again in a moment.',
      details: { retryAfterSeconds: 5 },
    };
  return undefined;
}

// The body parser's own words ("request entity too large", a JSON.parse
// message with a position) say little to an API client; these say what to fix.
function bodyParserProblem(status: number, code: string, limit: unknown): HttpProblem | undefined {
  if (code === 'entity_too_large') {
    const size = typeof limit === 'number' ? `${Math.floor(limit / 1024)} kB` : 'the limit';
    const details = typeof limit === 'number' ? { limitBytes: limit } : undefined;
    return { status, code, message: `The request body is too large: send at most ${size}.`, details };
  }
  if (code === 'entity_parse_failed') return { status, code, message: 'The request body is not valid JSON.' };
  return undefined;
}

// Errors from Express itself and body parsers (the http-errors convention):
// a 4xx with `expose` set is the client's fault and safe to describe.
function clientError(err: unknown): HttpProblem | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const { status, expose, message, type } = err as {
    status?: unknown;
    expose?: unknown;
    message?: unknown;
    type?: unknown;
  };
  if (typeof status !== 'number' || status < 400 || status > 499) return undefined;
  const code = typeof type === 'string' ? type.replace(/\W+/g, '_') : 'bad_request';
  const parser = bodyParserProblem(status, code, (err as { limit?: unknown }).limit);
  if (parser) return parser;
  const text =
    expose === true && typeof message === 'string' ? message : (STATUS_CODES[status] ?? 'Bad request');
  return { status, code, message: text };
}

export function sendProblem(res: Response, problem: HttpProblem): void {
  const body: ErrorBody = { error: { code: problem.code, message: problem.message } };
  if (problem.details !== undefined) body.error.details = problem.details;
  res.status(problem.status).json(body);
}

/**
 * Pages (anything outside /api/ asked for by a browser) get the error page with
 * the same status and message; everything else gets the JSON body.
 */
export function wantsHtml(req: Request): boolean {
  return !pathOf(req).startsWith('/api/') && req.accepts(['json', 'html']) === 'html';
}

function answer(req: Request, res: Response, problem: HttpProblem): void {
  if (wantsHtml(req)) {
    try {
      renderErrorPage(res, problem);
      return;
    } catch {
      // A broken template must not hide the original error: fall back to JSON.
    }
  }
  sendProblem(res, problem);
}

/** For requests no route matched; same body shape as every other error. */
export function notFound(): RequestHandler {
  return (req, res) => {
    answer(req, res, { status: 404, code: 'not_found', message: 'No such page or endpoint.' });
  };
}

const OVERLOAD = new Set(['query_timeout', 'server_busy', 'database_unavailable', 'shutting_down']);

// The code each response was answered with by errorHandler (the threat watch reads it when the response is sent).
const answeredWith = new WeakMap<Response, string>();

/** The problem code errorHandler answered this response with (e.g. `csrf_failed`); undefined if it did not. */
export function problemCodeOf(res: Response): string | undefined {
  return answeredWith.get(res);
}

export function errorHandler(log: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const problem = problemFor(err);
    answeredWith.set(res, problem.code);
    const fields = {
      requestId: requestIdOf(res),
      method: req.method,
      path: pathOf(req),
      status: problem.status,
    };
    // A timeout or a spent budget is the server protecting itself, not a fault: a warning, no stack.
    if (OVERLOAD.has(problem.code)) log.warn('request stopped', { ...fields, code: problem.code });
    else if (problem.status >= 500) log.error('request failed', { ...fields, error: err });
    else log.debug('request refused', { ...fields, code: problem.code });
    // Too late to send a body (e.g. the session store failed while saving after
    // the response): it is logged above; cut the connection if still open.
    if (res.headersSent) {
      if (!res.writableEnded) res.destroy();
      return;
    }
    // The session store just failed: express-session would ask it again, on the way out, to
    // drop or save this session, fail again and hand that error to Express's final handler,
    // which cuts the connection (and the client's next request on it). No session here.
    if (err instanceof SessionsUnavailableError) (req as { sessionID?: string }).sessionID = undefined;
    // Every "try again later" problem carries its wait; the header says the same.
    const retryAfter = (problem.details as { retryAfterSeconds?: unknown } | undefined)?.retryAfterSeconds;
    if (typeof retryAfter === 'number') res.setHeader('Retry-After', String(retryAfter));
    answer(req, res, problem);
  };
}
