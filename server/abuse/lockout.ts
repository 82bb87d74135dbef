// Per-account sign-in throttling: a growing delay, then a temporary lockout.
//
// The account is the sign-in email, normalised as the accounts code does and
// HMAC'd with the deployment's secret: Redis never holds an email, and a known
// and an unknown email are treated exactly alike (same key shape, same work,
// same answers), so throttling reveals nothing about which accounts exist.
//
// Every attempt is counted when it STARTS, in one atomic step with the check,
// and a success clears the count when the response is sent. Counting failures
// afterwards would let a burst of parallel guesses all pass the check before
// the first one is recorded. While a delay or lockout runs, the attempt is
// refused before the password is even looked at, so a right guess then is
// worth nothing.
//
// The same count holds every other check of the account's password or codes
// (abuse/attempts.ts): a lockout earned at one door holds at all of them.
//
// Redis errors refuse the attempt (503): a guess is never let through unthrottled.
import { createHmac } from 'node:crypto';
import type { Request, RequestHandler, Response } from 'express';
import type { RedisClientType } from 'redis';
import { InvalidInputError } from '../../kernel/errors.ts';
import type { Logger } from '../../kernel/logger.ts';
import { normalizeEmail } from '../accounts/credentials.ts';
import { RateLimitedError, SessionsUnavailableError } from '../app-errors.ts';
import { type SignInCredentials, signInCredentials } from '../auth/sign-in-credentials.ts';
import type { LockoutPolicy } from './options.ts';

export type Attempt = { allowed: true; failures: number } | { allowed: false; retryAfterMs: number };

/** Where attempt counts live: Redis (shared by every instance) or this process (single instance only). */
export interface AttemptCounter {
  /** Refuses while a delay or lockout runs; otherwise counts this attempt and arms the wait after it. */
  attempt(key: string): Promise<Attempt>;
  /** A success: forget the account's failures. */
  reset(key: string): Promise<void>;
  /**
   * Takes back one attempt that turned out not to be a guess (refused for
   * something other than a wrong password or code). A wait it armed stays:
   * taking that back could lift one armed meanwhile by a real failure.
   */
  undo(key: string): Promise<void>;
}

/**
 * The wait armed after the n-th consecutive failure is `schedule[n - 1]`
 * (the last entry repeats): zeros, then doubling delays, then the lockout.
 */
export function lockoutSchedule(policy: LockoutPolicy): number[] {
  const schedule: number[] = [];
  for (let n = 1; n < policy.lockoutAfter; n++) {
    const step = n - policy.freeFailures - 1;
    schedule.push(step < 0 ? 0 : Math.min(policy.baseDelayMs * 2 ** step, policy.maxDelayMs));
  }
  schedule.push(policy.lockoutMs);
  return schedule.map((ms) => Math.round(ms));
}

export function waitAfter(schedule: readonly number[], failures: number): number {
  if (failures < 1) return 0;
  return schedule[Math.min(failures, schedule.length) - 1] ?? 0;
}

// KEYS: count, block. ARGV: forgetAfterMs, then the schedule.
// Returns {failures, 0} when allowed, {0, retryAfterMs} when refused.
const ATTEMPT_SCRIPT = `
local wait = redis.call('PTTL', KEYS[2])
if wait > 0 then return {0, wait} end
local n = redis.call('INCR', KEYS[1])
local delay = tonumber(ARGV[math.min(n, #ARGV - 1) + 1])
redis.call('PEXPIRE', KEYS[1], math.max(tonumber(ARGV[1]), delay))
if delay > 0 then redis.call('SET', KEYS[2], '1', 'PX', delay) end
return {n, 0}
`;

// KEYS: count. One attempt fewer, never below zero; the count keeps its expiry.
const UNDO_SCRIPT = `
if tonumber(redis.call('GET', KEYS[1]) or '0') > 0 then redis.call('DECR', KEYS[1]) end
return 0
`;

export class RedisAttemptCounter implements AttemptCounter {
  readonly #redis: RedisClientType;
  readonly #prefix: string;
  readonly #args: string[];

  constructor(redis: RedisClientType, prefix: string, policy: LockoutPolicy) {
    this.#redis = redis;
    this.#prefix = prefix;
    this.#args = [policy.forgetAfterMs, ...lockoutSchedule(policy)].map(String);
  }

  // The hash tag {key} keeps both keys in one slot on a Redis Cluster.
  #keys(key: string): [string, string] {
    return [`${this.#prefix}acct:{${key}}:n`, `${this.#prefix}acct:{${key}}:wait`];
  }

  async attempt(key: string): Promise<Attempt> {
    const reply = await this.#redis.sendCommand([
      'EVAL',
      ATTEMPT_SCRIPT,
      '2',
      ...this.#keys(key),
      ...this.#args,
    ]);
    if (!Array.isArray(reply) || reply.length !== 2)
      throw new Error('unexpected reply from the lockout script');
    const [failures, wait] = reply.map(Number) as [number, number];
    return wait > 0 ? { allowed: false, retryAfterMs: wait } : { allowed: true, failures };
  }

  async reset(key: string): Promise<void> {
    await this.#redis.del(this.#keys(key));
  }

  async undo(key: string): Promise<void> {
    await this.#redis.sendCommand(['EVAL', UNDO_SCRIPT, '1', this.#keys(key)[0]]);
  }
}

/**
 * Without Redis (PostgreSQL sessions): counts in this process only, so only
 * right for a single instance. At most `max` accounts are remembered: past
 * it, forgotten ones go first, then those not waiting out a delay or a
 * lockout, then the oldest. Sign-ins naming new addresses (each one costs a
 * failed sign-in, held to the per-IP limit) can so push an account's
 * early failures out, but not a lockout, unless `max` accounts are locked.
 */
export class MemoryAttemptCounter implements AttemptCounter {
  readonly #entries = new Map<string, { failures: number; waitUntil: number; forgetAt: number }>();
  readonly #schedule: number[];
  readonly #forgetAfterMs: number;
  readonly #now: () => number;
  readonly #max: number;

  constructor(policy: LockoutPolicy, now: () => number = Date.now, max = MEMORY_LOCKOUT_ENTRIES) {
    if (!(Number.isInteger(max) && max >= 1)) throw new RangeError('max must be a whole number >= 1');
    this.#schedule = lockoutSchedule(policy);
    this.#forgetAfterMs = policy.forgetAfterMs;
    this.#now = now;
    this.#max = max;
  }

  /** Accounts remembered now. */
  get size(): number {
    return this.#entries.size;
  }

  async attempt(key: string): Promise<Attempt> {
    const now = this.#now();
    const live = this.#entries.get(key);
    const entry = live && live.forgetAt > now ? live : { failures: 0, waitUntil: 0, forgetAt: 0 };
    if (entry.waitUntil > now) return { allowed: false, retryAfterMs: entry.waitUntil - now };
    entry.failures += 1;
    const delay = waitAfter(this.#schedule, entry.failures);
    entry.waitUntil = now + delay;
    entry.forgetAt = now + Math.max(this.#forgetAfterMs, delay);
    this.#entries.delete(key); // the most recent last (a Map iterates in insertion order)
    if (this.#entries.size >= this.#max) this.#evict(now);
    this.#entries.set(key, entry);
    return { allowed: true, failures: entry.failures };
  }

  async reset(key: string): Promise<void> {
    this.#entries.delete(key);
  }

  async undo(key: string): Promise<void> {
    const entry = this.#entries.get(key);
    if (entry && entry.failures > 0) entry.failures -= 1;
  }

  /** Makes room for one: the forgotten, then those not waiting, then the oldest. */
  #evict(now: number): void {
    for (const [key, e] of this.#entries) if (e.forgetAt <= now) this.#entries.delete(key);
    for (const [key, e] of this.#entries) {
      if (this.#entries.size < this.#max) return;
      if (e.waitUntil <= now) this.#entries.delete(key);
    }
    for (const key of this.#entries.keys()) {
      if (this.#entries.size < this.#max) return;
      this.#entries.delete(key);
    }
  }
}

/** Accounts the in-process lockout remembers (the Redis one keeps each for forgetAfterMs, with a TTL). */
export const MEMORY_LOCKOUT_ENTRIES = 100_000;

/** The Redis-safe key of an account: HMAC of the normalised email; undefined if it is not an email at all. */
export function accountKey(secret: string, rawEmail: unknown): string | undefined {
  let normalized: string;
  try {
    normalized = normalizeEmail(rawEmail).normalized;
  } catch {
    return undefined; // no account can match it: the sign-in fails whatever the password
  }
  return createHmac('sha256', secret).update(normalized).digest('base64url').slice(0, 32);
}

/**
 * A sign-in succeeded when the request ended signed in as the account it
 * named. The status alone is not enough: a page may answer a failed form with
 * 200, and a person already signed in keeps `req.user` through a failed attempt
 * on another account.
 */
export function signedInAs(req: Request, res: Response, rawEmail: unknown): boolean {
  if (res.statusCode >= 400 || !req.user || typeof rawEmail !== 'string') return false;
  return req.user.email.trim().toLowerCase() === rawEmail.trim().toLowerCase();
}

/**
 * Where refused and failed attempts on known accounts are tallied, for their
 * owner to hear about at the next sign-in (accounts/notices.ts). Never
 * awaited: it must neither slow a refusal nor make the answer for a known
 * account differ from the answer for an unknown one.
 */
export interface AttemptTally {
  /** A sign-in refused unchecked: counted for the account with this normalised email, if one has it. */
  refusedSignIn(normalizedEmail: string): void;
  /** A password or code check on this account refused or failed. */
  refusedOrFailed(userId: string): void;
}

export const NO_TALLY: AttemptTally = { refusedSignIn: () => {}, refusedOrFailed: () => {} };

/** Seconds to wait, for a RateLimitedError: at least one. */
export const retryAfterSeconds = (ms: number) => Math.max(1, Math.ceil(ms / 1000));

/**
 * The sign-in lockout. The credentials are read by the same parser the
 * password check uses (auth/sign-in-credentials.ts), and a request it refuses
 * ends here with 400: no request reaches the password check without being
 * counted against the account it names.
 */
export function accountLockout(options: {
  counter: AttemptCounter;
  secret: string;
  log: Logger;
  tally: AttemptTally;
  /** The failure that arms the lockout (LockoutPolicy.lockoutAfter); with onLockout. */
  lockoutAfter?: number;
  /** Told when a failed sign-in has just locked the account it named (the threat detector). */
  onLockout?: (req: Request) => void;
}): RequestHandler {
  const { counter, secret, log, tally, lockoutAfter, onLockout } = options;
  return async (req, res, next) => {
    let credentials: SignInCredentials;
    try {
      credentials = signInCredentials(req);
    } catch (err) {
      return next(err);
    }
    const key = accountKey(secret, credentials.normalizedEmail);
    if (!key) return next(new InvalidInputError('that does not look like an email address'));
    let attempt: Attempt;
    try {
      attempt = await counter.attempt(key);
    } catch (err) {
      return next(new SessionsUnavailableError(err));
    }
    if (!attempt.allowed) {
      tally.refusedSignIn(credentials.normalizedEmail);
      return next(new RateLimitedError(retryAfterSeconds(attempt.retryAfterMs), 'failed sign-ins'));
    }
    const locks = lockoutAfter !== undefined && attempt.failures >= lockoutAfter;
    res.once('finish', () => {
      if (!signedInAs(req, res, credentials.email)) {
        if (locks) onLockout?.(req);
        return;
      }
      counter.reset(key).catch((err: unknown) => {
        log.warn('could not clear the sign-in failures of an account', { error: (err as Error).message });
      });
    });
    next();
  };
}
