// Abuse protection as one middleware, mounted before sessions and routers
// (bodies are parsed by then), so route handlers know nothing of it:
//
//   POST sign-in (API and page)   failed sign-ins per IP; MFA codes per IP when
//                                 a code is sent; the per-account lockout
//   POST registration             registrations per IP
//   unsafe methods on MFA routes  MFA codes per IP; a sign-in finished with a
//                                 code clears the account's failures
//   /api/ with a bearer token     requests per token and per IP
//
// Paths are matched case-insensitively, with or without a trailing slash, as
// Express routes them, so `/API/v1/Auth/Login/` is not a way around.
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { RedisClientType } from 'redis';
import { hasBearer } from '../auth/session-middleware.ts';
import type { Logger } from '../logger.ts';
import { clientAddress, limiter, tokenKey } from './limits.ts';
import {
  type AttemptCounter,
  accountLockout,
  clearOnSignIn,
  MemoryAttemptCounter,
  RedisAttemptCounter,
  signedInAs,
  signInEmail,
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
}

export function abuseProtection(options: AbuseProtectionOptions): RequestHandler {
  const { redis, secret, log } = options;
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
    failedOnly: (req, res) => !signedInAs(req, res, signInEmail(req)),
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
  const lockout = accountLockout({ counter, secret, log });
  const signedInByCode = clearOnSignIn({ counter, secret, log });

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
      steps.push(mfaPerIp, signedInByCode);
    }
    return steps;
  };

  return (req, res, next) => runInTurn(stepsFor(req), req, res, next);
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
