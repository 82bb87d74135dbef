// The fleet's backup health for ops (docs/BACKUP.md, "Scheduled backups and
// restore checks"): GET /api/v1/admin/backups/health. A summary over the last
// `withinHours` hours (live tenants without a good backup in that window,
// failed backups, restore checks and failed ones) and, per live tenant, the
// age of its latest good backup, its last failed backup and its last restore
// check, stalest first. Admins only, from a browser session. Read-only: it
// changes nothing, so nothing is audited. Query parameters are checked
// (unknown ones and out-of-range values are a 400).
import { type Request, type Response, Router } from 'express';
import { z } from 'zod';
import { type BackupHealth, backupHealth } from '../../backup/restore-checks.ts';
import { requireRole, requireSessionLogin } from '../auth/guards.ts';
import type { RouteDeps } from '../http/route-deps.ts';
import { parse } from '../workspace/validation.ts';

export const HEALTH_PATH = '/api/v1/admin/backups/health';

const integer = (min: number, max: number) =>
  z
    .string()
    .regex(/^[0-9]{1,6}$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

export const HealthQuery = z.strictObject({
  /** The window: a tenant whose latest good backup is older is counted without one (1 hour to 30 days; default 24). */
  withinHours: integer(1, 720).optional(),
  /** Most tenants listed (1..10,000; default 100); the summary always covers them all. */
  limit: integer(1, 10_000).optional(),
  /** `1`: only tenants that need attention (no good backup in the window, latest attempt failed, or latest check failed). */
  attention: z.enum(['0', '1']).optional(),
});

export function backupJobsApiRoutes(deps: RouteDeps): Router {
  return Router().get(HEALTH_PATH, requireSessionLogin, requireRole('admin'), (req, res) =>
    health(deps, req, res),
  );
}

async function health(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  const query = parse(HealthQuery, req.query, 'query');
  const result = await backupHealth(deps.pool, {
    withinHours: query.withinHours ?? 24,
    limit: query.limit ?? 100,
    attention: query.attention === '1',
  });
  res.setHeader('Cache-Control', 'no-store');
  res.json(healthJson(result));
}

const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);

export function healthJson(h: BackupHealth) {
  return {
    now: h.now.toISOString(),
    withinHours: h.withinHours,
    summary: h.summary,
    tenants: h.tenants.map((t) => ({
      tenantId: t.tenantId,
      name: t.name,
      state: t.state,
      legalHold: t.legalHold,
      latestGoodBackup: t.latestGood
        ? {
            id: t.latestGood.backupId,
            kind: t.latestGood.kind,
            startedAt: iso(t.latestGood.startedAt),
            ageSeconds: t.latestGood.ageSeconds,
          }
        : null,
      lastFailedBackup: t.lastFailed
        ? { id: t.lastFailed.backupId, startedAt: iso(t.lastFailed.startedAt), error: t.lastFailed.error }
        : null,
      lastRestoreCheck: t.lastCheck
        ? {
            backupId: t.lastCheck.backupId,
            checkedAt: iso(t.lastCheck.checkedAt),
            outcome: t.lastCheck.outcome,
            error: t.lastCheck.error,
          }
        : null,
    })),
  };
}
