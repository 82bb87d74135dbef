// Abuse protection as one middleware, mounted before sessions and routers
// (bodies are parsed by then), so route handlers know nothing of it:
//
//   POST sign-in (API and page)   failed sign-ins per IP; MFA codes per IP when
//                                 a code is sent; the per-account lockout
//   POST registration             registrations per IP
//   unsafe methods on MFA routes  MFA codes per IP
//   /api/ with a bearer token     requests per token and per IP
//
// and, for the checks that need the account a session or a pending sign-in
// names, `attempts` (attempts.ts): the same lockout and the same per-IP
// failures, used by the routes that check a password or code after sign-in.
//
// Paths are matched case-insensitively, with or without a trailing slash, as
// Express routes them, so `/API/v1/Auth/Login/` is not a way around.
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { RedisClientType } from 'redis';
import type { Logger } from '../../kernel/logger.ts';
import { hasBearer } from '../auth/session-middleware.ts';
import { signInCredentials } from '../auth/sign-in-credentials.ts';
import { CredentialAttempts, checkPassed } from './attempts.ts';
import { clientAddress, limiter, tokenKey } from './limits.ts';
import {
  type AttemptCounter,
  type AttemptTally,
  accountLockout,
  MemoryAttemptCounter,
  NO_TALLY,
  RedisAttemptCounter,
  signedInAs,
} from './lockout.ts';
import { type AbuseOverrides, resolveAbuseOptions } from './options.ts';

const SIGN_IN = /^\/(api\/v1\/auth\/)?login\/?$/i;
const REGISTER = /^\/(api\/v1\/auth\/)?register\/?$/i;
const MFA = /(^|\/)mfa(\/|$)/i; // /api/v1/mfa/..., /account/mfa/..., /login/mfa
const API = /^\/api(\/|$)/i;
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export interface AbuseProtectionOptions {
  /** The sessions' Redis client; undefined on the PostgreSQL fallback (then: this process only). */
  redis: RedisClientType | undefined;
  /** Keys account hashes (HMAC), so Redis never holds an email and hashes cannot be looked up offline. */
  secret: string;
  log: Logger;
  overrides?: AbuseOverrides;
  /** Where refused and failed attempts on known accounts are counted for their owners. */
  tally?: AttemptTally;
  /** Told when a failed sign-in locks the account it named (the threat detector, server/threats/). */
  onLockout?: (req: Request) => void;
}

export interface AbuseProtection {
  /** Before sessions: the limits and the sign-in lockout. */
  middleware: RequestHandler;
  /** After sessions: the same lockout and per-IP failures for password and code checks. */
  attempts: CredentialAttempts;
}

/** Only the middleware (for an app that has no password checks behind sessions). */
export function abuseProtection(options: AbuseProtectionOptions): RequestHandler {
  return createAbuseProtection(options).middleware;
}

export function createAbuseProtection(options: AbuseProtectionOptions): AbuseProtection {
  const { redis, secret, log } = options;
  const tally = options.tally ?? NO_TALLY;
  const settings = resolveAbuseOptions(options.overrides);
  const ctx = { redis, prefix: settings.prefix, log };
  const counter: AttemptCounter = redis
    ? new RedisAttemptCounter(redis, settings.prefix, settings.lockout)
    : new MemoryAttemptCounter(settings.lockout);

  const signInPerIp = limiter(ctx, {
    ...settings.login,
    name: 'ip:login',
    what: 'failed sign-ins from your network',
    key: clientAddress,
    failedOnly: (req, res) => !(checkPassed(res) ?? signedInAs(req, res, signInEmailOf(req))),
  });
  const registerPerIp = limiter(ctx, {
    ...settings.register,
    name: 'ip:register',
    what: 'sign-ups from your network',
    key: clientAddress,
  });
  const mfaPerIp = limiter(ctx, {
    ...settings.mfa,
    name: 'ip:mfa',
    what: 'codes entered',
    key: clientAddress,
  });
  const perToken = limiter(ctx, {
    ...settings.tokenUse,
    name: 'token',
    what: 'requests with this API token',
    key: tokenKey,
  });
  const tokenPerIp = limiter(ctx, {
    ...settings.tokenIp,
    name: 'ip:token',
    what: 'API requests from your network',
    key: clientAddress,
  });
  const lockout = accountLockout({
    counter,
    secret,
    log,
    tally,
    lockoutAfter: settings.lockout.lockoutAfter,
    onLockout: options.onLockout,
  });
  const attempts = new CredentialAttempts({ counter, secret, perIp: signInPerIp, tally, log });

  const stepsFor = (req: Request): RequestHandler[] => {
    const steps: RequestHandler[] = [];
    if (hasBearer(req) && API.test(req.path)) steps.push(tokenPerIp, perToken);
    if (req.method === 'POST' && SIGN_IN.test(req.path)) {
      steps.push(signInPerIp);
      if (sendsCode(req)) steps.push(mfaPerIp);
      steps.push(lockout);
    } else if (req.method === 'POST' && REGISTER.test(req.path)) {
      steps.push(registerPerIp);
    } else if (!SAFE_METHODS.has(req.method) && MFA.test(req.path)) {
      steps.push(mfaPerIp);
    }
    return steps;
  };

  return { middleware: (req, res, next) => runInTurn(stepsFor(req), req, res, next), attempts };
}

/** The email of a sign-in request, if its credentials can be read at all. */
function signInEmailOf(req: Request): string | undefined {
  try {
    return signInCredentials(req).email;
  } catch {
    return undefined;
  }
}

/** A sign-in that carries a second-factor code. */
function sendsCode(req: Request): boolean {
  const totp = (req.body as Record<string, unknown> | undefined)?.totp;
  return typeof totp === 'string' ? totp.trim() !== '' : totp !== undefined && totp !== null;
}

/** Runs the handlers one after another; the first error (a refusal) ends the run. */
function runInTurn(steps: RequestHandler[], req: Request, res: Response, next: NextFunction): void {
  let i = 0;
  const step = (err?: unknown): void => {
    const handler = steps[i++];
    if (err != null) next(err);
    else if (!handler) next();
    else Promise.resolve(handler(req, res, step)).catch(next);
  };
  step();
}
