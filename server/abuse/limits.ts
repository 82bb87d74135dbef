// Fixed-window request limits per client address or per API token, with
// express-rate-limit. With Redis, the counts live there (rate-limit-redis) and
// every instance shares them. Without REDIS_URL (sessions in PostgreSQL),
// express-rate-limit's memory store counts in this process only: right for the
// single instance that setup is meant for, not for several behind a balancer.
//
// A refusal is a RateLimitedError (429 + Retry-After, through the one error
// handler); a store that cannot be reached is a SessionsUnavailableError (503):
// fail closed, a guess never gets through because Redis is down.
import { createHash } from 'node:crypto';
import type { Request, RequestHandler, Response } from 'express';
import {
  type ClientRateLimitInfo,
  type IncrementResponse,
  ipKeyGenerator,
  type Options,
  rateLimit,
} from 'express-rate-limit';
import { type RedisReply, RedisStore } from 'rate-limit-redis';
import type { RedisClientType } from 'redis';
import type { Logger } from '../../kernel/logger.ts';
import { RateLimitedError, SessionsUnavailableError } from '../app-errors.ts';
import { bearerSecret } from '../auth/bearer.ts';
import type { WindowLimit } from './options.ts';

/**
 * rate-limit-redis loads its Lua scripts once, when the limiter is made. Our
 * client connects in the background and refuses commands until it is ready, so
 * that first load usually fails, and the store would keep the failed load and
 * fail every later call with it, for good. This one loads again, on use, after
 * a failed load (and does not log a start-up error for it).
 */
export class ReconnectingRedisStore extends RedisStore {
  override async init(options: Options): Promise<void> {
    this.windowMs = options.windowMs;
    this.incrementScriptSha = quiet(this.loadIncrementScript());
    this.getScriptSha = quiet(this.loadGetScript());
  }

  override async increment(key: string): Promise<IncrementResponse> {
    if (await failed(this.incrementScriptSha)) this.incrementScriptSha = quiet(this.loadIncrementScript());
    return super.increment(key);
  }

  override async get(key: string): Promise<ClientRateLimitInfo | undefined> {
    if (await failed(this.getScriptSha)) this.getScriptSha = quiet(this.loadGetScript());
    return super.get(key);
  }
}

/** The same promise, marked as handled: a rejection is dealt with by whoever awaits it next. */
function quiet<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => {});
  return promise;
}

const failed = (promise: Promise<unknown>) =>
  promise.then(
    () => false,
    () => true,
  );

export interface LimiterContext {
  redis: RedisClientType | undefined;
  prefix: string;
  log: Logger;
}

export interface LimiterSpec extends WindowLimit {
  /** Part of the Redis key, e.g. `ip:login`. */
  name: string;
  /** How the refusal names what there were too many of ("Too many <what>."). */
  what: string;
  key: (req: Request) => string;
  /** Count only requests that failed by this test (e.g. failed sign-ins); default: count all. */
  failedOnly?: (req: Request, res: Response) => boolean;
}

export function limiter(ctx: LimiterContext, spec: LimiterSpec): RequestHandler {
  const { redis } = ctx;
  const store = redis
    ? new ReconnectingRedisStore({
        prefix: `${ctx.prefix}${spec.name}:`,
        sendCommand: (...args: string[]) => redis.sendCommand(args) as Promise<RedisReply>,
      })
    : undefined; // express-rate-limit's MemoryStore: this process only (see the top of this file)
  const { failedOnly } = spec;
  const limit = rateLimit({
    windowMs: spec.windowMs,
    limit: spec.limit,
    standardHeaders: 'draft-7',
    legacyHeaders: false,
    passOnStoreError: false,
    store,
    keyGenerator: spec.key,
    ...(failedOnly && {
      skipSuccessfulRequests: true,
      requestWasSuccessful: (req: Request, res: Response) => !failedOnly(req, res),
    }),
    handler: (req, _res, next) => {
      const reset = (req as Request & { rateLimit?: { resetTime?: Date } }).rateLimit?.resetTime;
      const ms = reset ? reset.getTime() - Date.now() : spec.windowMs;
      next(new RateLimitedError(Math.max(1, Math.ceil(ms / 1000)), spec.what));
    },
    logger: {
      error: (error, message) => ctx.log.error(message ?? 'rate limiter error', { error }),
      warn: (error, message) => ctx.log.warn(message ?? 'rate limiter warning', { error }),
    },
  });
  return (req, res, next) => {
    limit(req, res, (err?: unknown) => {
      if (err == null || err instanceof RateLimitedError) return next(err ?? undefined);
      next(new SessionsUnavailableError(err));
    });
  };
}

/** The client address; IPv6 clients by their /56, since one host usually holds a whole block. */
export function clientAddress(req: Request): string {
  return ipKeyGenerator(req.ip ?? 'unknown');
}

/** An API token, by a prefix of its SHA-256: the token itself never reaches Redis. */
export function tokenKey(req: Request): string {
  const secret = bearerSecret(req.headers.authorization) ?? req.headers.authorization ?? '';
  return createHash('sha256').update(secret).digest('base64url').slice(0, 24);
}
