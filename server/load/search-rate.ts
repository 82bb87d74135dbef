// How many searches one workspace may start: TENANT_SEARCHES_PER_MINUTE, as a
// fixed window of 10 seconds allowing a sixth of it (rounded up) per
// workspace, so a tenant that loops on expensive searches is held to a steady
// pace instead of a minute's worth in one burst. TENANT_MAX_SEARCHES (the
// slots, tenant-slots.ts) bounds how many run at once; this bounds how many
// start. The count is express-rate-limit's (server/abuse/limits.ts): in Redis,
// shared by every instance, when REDIS_URL is set; in the process otherwise.
//
// The routes call it once the principal is known (the key is its tenant) and
// the query has been checked (a 400 is no search), before they take a slot: a
// refused search (RateLimitedError: 429 with Retry-After) holds no slot and
// never reaches the database.
import type { Request, Response } from 'express';
import { type LimiterContext, limiter } from '../abuse/limits.ts';

/** Admits one search of the signed-in principal's workspace, or rejects with RateLimitedError. */
export type SearchRate = (req: Request, res: Response) => Promise<void>;

/** A sixth of a minute: the window's limit is a sixth of the per-minute rate. */
export const SEARCH_RATE_WINDOW_MS = 10_000;

/** The searches a workspace may start per 10-second window at `perMinute` a minute. */
export function searchesPerWindow(perMinute: number): number {
  return Math.ceil(perMinute / 6);
}

export function searchRate(ctx: LimiterContext, perMinute: number): SearchRate {
  if (perMinute === 0) return async () => {};
  const limit = searchesPerWindow(perMinute);
  const check = limiter(ctx, {
    name: 'tenant:search',
    what: `searches in this workspace (at most ${limit} every ${SEARCH_RATE_WINDOW_MS / 1000} seconds)`,
    limit,
    windowMs: SEARCH_RATE_WINDOW_MS,
    key: (req) => (req.user as Express.User).tenantId as string,
  });
  return (req, res) =>
    new Promise<void>((resolve, reject) => {
      check(req, res, (err?: unknown) => (err == null ? resolve() : reject(err)));
    });
}
