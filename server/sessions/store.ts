// Where session data lives: Redis (connect-redis) when REDIS_URL is set,
// otherwise PostgreSQL (connect-pg-simple) with a clear warning. Redis holds
// only sessions and rate-limit counters: losing it signs people out, it never
// loses data. Commands fail fast while Redis is down (no offline queue), so a
// request that needs a session gets a 503 instead of hanging, and the client
// reconnects by itself when Redis is back.

import pgSession from 'connect-pg-simple';
import { RedisStore } from 'connect-redis';
import session from 'express-session';
import { createClient, type RedisClientType } from 'redis';
import type { Pool } from '../../kernel/db.ts';
import type { Logger } from '../../kernel/logger.ts';
import { throttleTouch } from './touch-throttle.ts';

export interface SessionBackend {
  store: session.Store;
  /** The Redis client, shared with the rate limiter; undefined on the PostgreSQL fallback. */
  redis: RedisClientType | undefined;
  /** For /readyz. */
  check: () => Promise<void>;
  close(): Promise<void>;
}

export function connectRedis(url: string, log: Logger): RedisClientType {
  const client: RedisClientType = createClient({
    url,
    disableOfflineQueue: true,
    socket: {
      connectTimeout: 2000,
      reconnectStrategy: (retries: number) => Math.min(100 * 2 ** Math.min(retries, 5), 2000),
    },
  });
  let down = false;
  client.on('error', (err: Error) => {
    if (!down)
      log.warn('Redis is unreachable; sessions are unavailable until it is back', { error: err.message });
    down = true;
  });
  client.on('ready', () => {
    if (down) log.info('Redis is reachable again');
    down = false;
  });
  // Not awaited to the end: the server starts (and reports not ready) while Redis is down.
  client.connect().catch(() => {});
  return client;
}

export function createSessionBackend(options: {
  redisUrl: string | undefined;
  pool: Pool;
  idleSeconds: number;
  /** SESSION_TOUCH_CACHE: sessions this process remembers renewing (0: renew on every request). */
  touchCache: number;
  log: Logger;
}): SessionBackend {
  const { redisUrl, pool, idleSeconds, log } = options;
  const throttle = { idleSeconds, maxEntries: options.touchCache };
  if (redisUrl) {
    const redis = connectRedis(redisUrl, log);
    return {
      store: throttleTouch(
        new RedisStore({ client: redis, prefix: 'enclave:sess:', ttl: idleSeconds }),
        throttle,
      ),
      redis,
      check: async () => {
        await redis.ping();
      },
      close: async () => {
        if (redis.isOpen) await redis.close();
        else redis.destroy();
      },
    };
  }
  log.warn(
    'REDIS_URL is not set: sessions are kept in PostgreSQL (fine for one machine; set REDIS_URL in production)',
  );
  const PgStore = pgSession(session);
  const store = throttleTouch(
    new PgStore({
      pool,
      schemaName: 'control',
      tableName: 'http_sessions',
      createTableIfMissing: false,
      ttl: idleSeconds,
      pruneSessionInterval: 15 * 60,
    }),
    throttle,
  );
  return {
    store,
    redis: undefined,
    check: async () => {},
    close: async () => {
      store.close();
    },
  };
}
