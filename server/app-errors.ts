// Typed errors of the HTTP face (accounts, sessions, abuse). Like the tenancy
// errors, they carry no status code: server/http/http-errors.ts maps them once.
import { InvalidInputError } from '../kernel/errors.ts';

export class AppError extends Error {
  override name = 'AppError';
}

/** Wrong email or password, a bad or missing token: always the same words. */
export class AuthenticationError extends AppError {
  override name = 'AuthenticationError';
  constructor(message = 'Email or password is incorrect.') {
    super(message);
  }
}

/** Not signed in at all. */
export class LoginRequiredError extends AppError {
  override name = 'LoginRequiredError';
  constructor(message = 'Please sign in first.') {
    super(message);
  }
}

/** Password accepted; a one-time code (TOTP or recovery code) is needed to finish signing in. */
export class MfaRequiredError extends AppError {
  override name = 'MfaRequiredError';
  constructor(message = 'Enter the code from your authenticator app (or a recovery code).') {
    super(message);
  }
}

/** Signed in, but this account must turn on two-step sign-in before it may do anything else. */
export class MfaEnrolmentRequiredError extends AppError {
  override name = 'MfaEnrolmentRequiredError';
  constructor(
    message = 'Your account must use two-step sign-in. Set it up with an authenticator app to continue.',
  ) {
    super(message);
  }
}

/** Signed in, but this role or token may not do this. */
export class ForbiddenError extends AppError {
  override name = 'ForbiddenError';
}

/** A destructive admin action without a recent password (or MFA code) check: confirm, then retry. */
export class ReauthRequiredError extends AppError {
  override name = 'ReauthRequiredError';
  constructor(
    message = 'Confirm your password first (POST /api/v1/admin/reauth, or the page it sends you to), then try again.',
  ) {
    super(message);
  }
}

export class CsrfError extends AppError {
  override name = 'CsrfError';
  constructor() {
    super('This form has expired or did not come from this site. Reload the page and try again.');
  }
}

export class ConflictError extends AppError {
  override name = 'ConflictError';
}

export class NotFoundError extends AppError {
  override name = 'NotFoundError';
}

/**
 * An edit based on an old version: someone else saved in between. Carries the
 * current state (a plain view, version included) so the client can show it,
 * reload, or keep its own text as a copy: nothing is overwritten silently.
 */
export class VersionConflictError extends ConflictError {
  override name = 'VersionConflictError';
  readonly current: unknown;
  constructor(message: string, current: unknown) {
    super(message);
    this.current = current;
  }
}

/** Input that failed a schema: the message names the first problem, `issues` lists each (path, message). */
export class ValidationError extends InvalidInputError {
  override name = 'ValidationError';
  readonly issues: ReadonlyArray<{ path: string; message: string }>;
  constructor(message: string, issues: ReadonlyArray<{ path: string; message: string }>) {
    super(message);
    this.issues = issues;
  }
}

/** Too many attempts; `retryAfterSeconds` says when to try again. */
export class RateLimitedError extends AppError {
  override name = 'RateLimitedError';
  readonly retryAfterSeconds: number;
  constructor(retryAfterSeconds: number, what = 'attempts') {
    const wait =
      retryAfterSeconds >= 120
        ? `${Math.ceil(retryAfterSeconds / 60)} minutes`
        : `${retryAfterSeconds} second${retryAfterSeconds === 1 ? '' : 's'}`;
    super(`Too many ${what}. Try again in ${wait}.`);
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/**
 * This process has no room for the work just now (e.g. the disk budget of
 * exports in progress is spent): nothing is wrong with the request itself.
 */
export class ServerBusyError extends AppError {
  override name = 'ServerBusyError';
  readonly retryAfterSeconds: number;
  constructor(message: string, retryAfterSeconds: number) {
    super(message);
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/** The session store (Redis) cannot be reached: nothing that needs a session can be served. */
export class SessionsUnavailableError extends AppError {
  override name = 'SessionsUnavailableError';
  constructor(cause?: unknown) {
    super('Sign-in is temporarily unavailable. Please try again in a minute.', { cause });
  }
}

/** Registration could not create the workspace; nothing was saved. */
export class ProvisioningFailedError extends AppError {
  override name = 'ProvisioningFailedError';
  constructor(cause?: unknown) {
    super(
      'We could not create your workspace just now, so nothing was saved. Please try again in a minute.',
      { cause },
    );
  }
}

/**
 * A write that would take the workspace over its storage quota (TENANT_QUOTA_MB).
 * Nothing of it was written; deleting notes or tasks makes room at once.
 */
export class QuotaExceededError extends AppError {
  override name = 'QuotaExceededError';
  readonly usedBytes: number;
  readonly quotaBytes: number;
  readonly neededBytes: number;
  constructor(message: string, usage: { usedBytes: number; quotaBytes: number; neededBytes: number }) {
    super(message);
    this.usedBytes = usage.usedBytes;
    this.quotaBytes = usage.quotaBytes;
    this.neededBytes = usage.neededBytes;
  }
}

/**
 * The database cannot be reached or gave no connection in time (DB_CONNECT_TIMEOUT_MS):
 * stopped, restarting, or every pooled connection busy. Clients retry after
 * `retryAfterSeconds`; a write whose answer was this may or may not have been saved.
 */
export class DatabaseUnavailableError extends AppError {
  override name = 'DatabaseUnavailableError';
  readonly retryAfterSeconds: number;
  constructor(cause?: unknown, retryAfterSeconds = 5) {
    super('The database cannot be reached just now. Please try again in a few seconds.', { cause });
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/** The server is stopping (SIGTERM): requests that arrive now are refused; another instance can take them. */
export class ShuttingDownError extends AppError {
  override name = 'ShuttingDownError';
  readonly retryAfterSeconds = 1;
  constructor() {
    super('This server is restarting. Please try again in a moment.');
  }
}

// How node-postgres and PostgreSQL say "no connection": socket errors, SQLSTATE
// class 08 (connection exception), 57P01-57P03 (shutdown, crash, not accepting
// connections yet), 53300 (too many connections), and pg's own error texts
// (a connection lost, a pool wait that timed out), which carry no code.
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  '57P01',
  '57P02',
  '57P03',
  '53300',
]);
const REDIS_ERRORS =
  /^(ClientOfflineError|ClientClosedError|SocketClosedUnexpectedlyError|ConnectionTimeoutError|ReconnectStrategyError)$/;
const UNREACHABLE_TEXT =
  /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Client was closed and is not queryable|Connection ended)/;

/**
 * The DatabaseUnavailableError an error means, if it is one: looks through
 * `cause` chains and AggregateErrors (a refused "localhost" is one per address),
 * since MikroORM and our own typed errors wrap the driver's.
 */
export function databaseUnavailable(err: unknown): DatabaseUnavailableError | undefined {
  if (err instanceof DatabaseUnavailableError) return err;
  const seen = new Set<unknown>();
  const queue: unknown[] = [err];
  while (queue.length > 0) {
    const e = queue.shift();
    if (typeof e !== 'object' || e === null || seen.has(e)) continue;
    seen.add(e);
    const { code, message, cause, errors } = e as {
      code?: unknown;
      message?: unknown;
      cause?: unknown;
      errors?: unknown;
    };
    // node-redis' own errors (the session store): Redis is down, not the database.
    if (REDIS_ERRORS.test((e as Error).name ?? '')) return undefined;
    if (typeof code === 'string' && (UNREACHABLE_CODES.has(code) || /^08[0-9A-Z]{3}$/.test(code)))
      return new DatabaseUnavailableError(err);
    if (typeof message === 'string' && UNREACHABLE_TEXT.test(message))
      return new DatabaseUnavailableError(err);
    queue.push(cause);
    if (Array.isArray(errors)) queue.push(...errors);
  }
  return undefined;
}
