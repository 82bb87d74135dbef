// Liveness and readiness. /healthz answers as long as the process serves HTTP
// (a failing database must not get the process restarted); /readyz runs every
// readiness check, each bounded in time, and says which one failed. Reasons
// are short and fixed-form: this endpoint is public, details go to the log.
import { type Request, type Response, Router } from 'express';
import type { Pool } from '../../kernel/db.ts';
import type { Logger } from '../../kernel/logger.ts';

/** Resolves when the dependency can serve; rejects (or never settles) when it cannot. */
export type ReadinessCheck = () => Promise<void>;
export type CheckResult = 'ok' | string;

export const DEFAULT_CHECK_TIMEOUT_MS = 2000;

export function databaseCheck(pool: Pool): ReadinessCheck {
  return async () => {
    await pool.query('SELECT 1');
  };
}

/** A short, non-secret reason: the error's code (ECONNREFUSED, a SQLSTATE) if it has one. */
export function shortReason(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[A-Za-z0-9_]{1,32}$/.test(code) ? `error: ${code}` : 'error';
}

class CheckTimeout extends Error {}

async function withTimeout(check: ReadinessCheck, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new CheckTimeout(`no answer within ${ms} ms`)), ms);
  });
  try {
    await Promise.race([check(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs the checks in parallel. A check still running from an earlier probe is
 * joined, not started again, so probes against a hanging dependency do not
 * pile up connection attempts.
 */
export function readiness(checks: Record<string, ReadinessCheck>, timeoutMs: number, log: Logger) {
  const inFlight = new Map<string, Promise<CheckResult>>();
  const last = new Map<string, CheckResult>();

  // Logs changes only: a load balancer probing a dead database every second should not flood the log.
  const run = async (name: string, check: ReadinessCheck): Promise<CheckResult> => {
    let result: CheckResult = 'ok';
    try {
      await withTimeout(check, timeoutMs);
    } catch (err) {
      result = err instanceof CheckTimeout ? 'timeout' : shortReason(err);
      if (last.get(name) !== result)
        log.warn('readiness check failed', { check: name, reason: result, error: err });
    }
    const before = last.get(name);
    if (result === 'ok' && before !== undefined && before !== 'ok')
      log.info('readiness check recovered', { check: name });
    last.set(name, result);
    return result;
  };

  const runOne = (name: string, check: ReadinessCheck): Promise<CheckResult> => {
    let running = inFlight.get(name);
    if (!running) {
      running = run(name, check).finally(() => inFlight.delete(name));
      inFlight.set(name, running);
    }
    return running;
  };

  return async (): Promise<{ ready: boolean; checks: Record<string, CheckResult> }> => {
    const names = Object.keys(checks);
    const results = await Promise.all(names.map((n) => runOne(n, checks[n] as ReadinessCheck)));
    const out = Object.fromEntries(names.map((n, i) => [n, results[i] as CheckResult]));
    return { ready: results.every((r) => r === 'ok'), checks: out };
  };
}

/** Whether the server is stopping: set by stop(), read by /readyz and the request gate (server/http/app.ts). */
export interface Draining {
  draining: boolean;
}

export function healthRouter(
  checks: Record<string, ReadinessCheck>,
  timeoutMs: number,
  log: Logger,
  drain: Draining = { draining: false },
): Router {
  const ready = readiness(checks, timeoutMs, log);
  const router = Router();
  router.get('/healthz', (_req: Request, res: Response) => {
    res.set('Cache-Control', 'no-store').json({ status: 'ok' });
  });
  router.get('/readyz', async (_req: Request, res: Response) => {
    // A stopping server is not ready whatever its dependencies say: the load balancer should stop sending work.
    if (drain.draining) {
      res
        .status(503)
        .set('Cache-Control', 'no-store')
        .set('Connection', 'close')
        .json({ status: 'draining', checks: {} });
      return;
    }
    const { ready: ok, checks: results } = await ready();
    res
      .status(ok ? 200 : 503)
      .set('Cache-Control', 'no-store')
      .json({ status: ok ? 'ready' : 'unavailable', checks: results });
  });
  return router;
}
