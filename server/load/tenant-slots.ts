// How many expensive things one workspace may run at once: exports and
// searches. Each one holds a slot from acquire() until release(); past the
// limit, acquire() throws RateLimitedError (429 with Retry-After). The limit
// is per workspace, so one tenant's burst cannot take every database
// connection and CPU from the others, whatever it sends.
//
// With Redis (REDIS_URL), the slots of a workspace live there, shared by every
// instance: a sorted set per workspace and kind whose members are the slots
// held, scored by when each lapses. A holder renews its slot while it runs, so
// a slot of a process that crashed lapses within TTL_MS instead of leaking.
// The clock is Redis's own (TIME), so instances need not agree on the time.
// Without Redis, or while it cannot be reached, the count is kept in this
// process: the limit then holds per instance, which bounds a tenant's share
// of each instance's database pool just the same.
import { randomBytes } from 'node:crypto';
import type { RedisClientType } from 'redis';
import type { Logger } from '../../kernel/logger.ts';
import { RateLimitedError } from '../app-errors.ts';

export type SlotKind = 'export' | 'search';

export interface Slot {
  /** Gives the slot back; calling it again does nothing. */
  release(): void;
}

export interface TenantSlotOptions {
  /** Shared with the other instances; undefined: count in this process only. */
  redis: RedisClientType | undefined;
  /** Prefix of the Redis keys (each test server has its own). */
  prefix: string;
  limits: Record<SlotKind, number>;
  log: Logger;
  /** How long a slot outlives a holder that stopped renewing it (a crashed process). */
  ttlMs?: number;
}

/** What a refusal says, and the Retry-After it suggests: a search is over in seconds, an export takes longer. */
const REFUSAL: Record<SlotKind, { what: (limit: number) => string; retryAfterSeconds: number }> = {
  export: {
    what: (n) => `exports of this workspace at once (at most ${n} run together)`,
    retryAfterSeconds: 10,
  },
  search: {
    what: (n) => `searches of this workspace at once (at most ${n} run together)`,
    retryAfterSeconds: 1,
  },
};

// KEYS[1]: the set; ARGV: limit, ttl ms, member. 1 if taken, 0 if full.
const ACQUIRE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1`;

// KEYS[1]: the set; ARGV: ttl ms, member. Pushes the member's lapse time on, if it is still there.
const RENEW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if not redis.call('ZSCORE', KEYS[1], ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), ARGV[2])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]))
return 1`;

export const DEFAULT_SLOT_TTL_MS = 30_000;

export class TenantSlots {
  readonly #redis: RedisClientType | undefined;
  readonly #prefix: string;
  readonly #limits: Record<SlotKind, number>;
  readonly #log: Logger;
  readonly #ttlMs: number;
  readonly #local = new Map<string, number>();
  readonly #instance = randomBytes(6).toString('hex');
  #next = 0;
  #redisDown = false;

  constructor(options: TenantSlotOptions) {
    this.#redis = options.redis;
    this.#prefix = options.prefix;
    this.#limits = options.limits;
    this.#log = options.log;
    this.#ttlMs = options.ttlMs ?? DEFAULT_SLOT_TTL_MS;
    for (const [kind, n] of Object.entries(this.#limits)) {
      if (!Number.isInteger(n) || n < 1)
        throw new RangeError(`the ${kind} limit must be a whole number >= 1`);
    }
  }

  /** A slot of `kind` for the workspace, or RateLimitedError when it already runs its limit. */
  async acquire(tenantId: string, kind: SlotKind): Promise<Slot> {
    const limit = this.#limits[kind];
    const shared = this.#redis ? await this.#acquireShared(this.#redis, tenantId, kind, limit) : undefined;
    // undefined: no Redis, or it did not answer; null: Redis says the workspace is at its limit.
    const taken = shared === undefined ? this.#acquireLocal(tenantId, kind, limit) : shared;
    if (taken) return taken;
    const refusal = REFUSAL[kind];
    throw new RateLimitedError(refusal.retryAfterSeconds, refusal.what(limit));
  }

  /** Runs `fn` holding a slot of `kind` (RateLimitedError if none is free); gives it back however fn ends. */
  async hold<T>(tenantId: string, kind: SlotKind, fn: () => Promise<T>): Promise<T> {
    const slot = await this.acquire(tenantId, kind);
    try {
      return await fn();
    } finally {
      slot.release();
    }
  }

  /** The slot, null when the set is full, undefined when Redis could not answer (count locally instead). */
  async #acquireShared(
    redis: RedisClientType,
    tenantId: string,
    kind: SlotKind,
    limit: number,
  ): Promise<Slot | null | undefined> {
    const key = `${this.#prefix}busy:${kind}:${tenantId}`;
    const member = `${this.#instance}:${++this.#next}`;
    const ttl = String(this.#ttlMs);
    let taken: unknown;
    try {
      taken = await redis.sendCommand(['EVAL', ACQUIRE, '1', key, String(limit), ttl, member]);
    } catch (err) {
      this.#redisFailed(err);
      return undefined;
    }
    this.#redisBack();
    if (Number(taken) !== 1) return null;
    // Renewed while held: a long export keeps its slot, a crashed process loses it after the TTL.
    const renew = setInterval(
      () => {
        redis.sendCommand(['EVAL', RENEW, '1', key, ttl, member]).catch(() => {});
      },
      Math.max(100, Math.floor(this.#ttlMs / 3)),
    );
    renew.unref();
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        clearInterval(renew);
        // Should Redis be unreachable now, the slot lapses by itself within the TTL.
        redis.sendCommand(['ZREM', key, member]).catch(() => {});
      },
    };
  }

  #acquireLocal(tenantId: string, kind: SlotKind, limit: number): Slot | null {
    const key = `${kind}:${tenantId}`;
    const held = this.#local.get(key) ?? 0;
    if (held >= limit) return null;
    this.#local.set(key, held + 1);
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        const now = (this.#local.get(key) ?? 1) - 1;
        if (now > 0) this.#local.set(key, now);
        else this.#local.delete(key);
      },
    };
  }

  #redisFailed(err: unknown): void {
    if (this.#redisDown) return;
    this.#redisDown = true;
    this.#log.warn(
      'Redis is unreachable: export and search limits are counted per instance until it is back',
      {
        error: err instanceof Error ? err.message : String(err),
      },
    );
  }

  #redisBack(): void {
    if (!this.#redisDown) return;
    this.#redisDown = false;
    this.#log.info('Redis is reachable again: export and search limits are shared by all instances');
  }
}
