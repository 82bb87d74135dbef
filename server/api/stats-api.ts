// The admin's statistics API (docs/STATISTICS.md, docs/HTTP-API.md): what the
// tenant-stats job collected. Admins only, from a browser session, like the
// rest of the admin API. Read only: nothing is changed, so nothing is audited.
//
//   GET /api/v1/admin/stats?limit=20            fleet totals, top tenants by size and by growth
//   GET /api/v1/admin/tenants/:tenantId/stats   history + latest tables and indexes
//       ?exact=1                                 also that tenant's exact sizes, measured now
//
// Unknown query parameters are a 400; an id that is not an existing tenant's a 404.
import { type Request, type Response, Router } from 'express';
import { z } from 'zod';
import {
  exactTenantStats,
  fleetStats,
  type LatestTenantStats,
  type TenantTotals,
  tenantStats,
} from '../../tenancy/statistics.ts';
import { TenantNotFoundError } from '../../tenancy/tenancy-errors.ts';
import { LIVE_STATES } from '../../tenancy/tenant-sql.ts';
import { ConflictError, NotFoundError } from '../app-errors.ts';
import { requireRole, requireSessionLogin } from '../auth/guards.ts';
import type { RouteDeps } from '../http/route-deps.ts';
import { parse } from '../workspace/validation.ts';

export const FleetQuery = z.strictObject({
  limit: z
    .string()
    .regex(/^\d{1,5}$/, 'must be a whole number from 1 to 1000')
    .transform(Number)
    .pipe(z.number().int().min(1, 'must be at least 1').max(1000, 'must be at most 1000'))
    .optional(),
});
export const TenantQuery = z.strictObject({ exact: z.enum(['0', '1']).optional() });

export function statsApiRoutes(deps: RouteDeps): Router {
  const admin = [requireSessionLogin, requireRole('admin')];
  return Router()
    .get('/api/v1/admin/stats', ...admin, (req, res) => fleet(deps, req, res))
    .get('/api/v1/admin/tenants/:tenantId/stats', ...admin, (req, res) => tenant(deps, req, res));
}

const time = (d: Date | null) => d?.toISOString() ?? null;

function totalsJson(t: Omit<TenantTotals, 'lastActiveAt'>) {
  return {
    totalBytes: t.totalBytes,
    tableBytes: t.tableBytes,
    indexBytes: t.indexBytes,
    toastBytes: t.toastBytes,
    rowsEstimate: t.rowsEstimate,
    deadRows: t.deadRows,
  };
}

function latestJson(l: LatestTenantStats) {
  return {
    tenantId: l.tenantId,
    displayName: l.displayName,
    state: l.state,
    sampledAt: l.sampledAt.toISOString(),
    ...totalsJson(l),
    tablesNotAnalyzed: l.tablesNotAnalyzed,
    lastActiveAt: time(l.lastActiveAt),
    weekAgoBytes: l.weekAgoBytes,
    weekAgoAt: time(l.weekAgoAt),
    growthBytes: l.growthBytes,
  };
}

async function fleet(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  const query = parse(FleetQuery, req.query, 'query');
  const limit = query.limit ?? 20;
  const bySize = await fleetStats(deps.pool, { sort: 'size', limit });
  const byGrowth = await fleetStats(deps.pool, { sort: 'growth', limit });
  res.setHeader('Cache-Control', 'no-store');
  res.json({
    collectedAt: time(bySize.collectedAt),
    tenants: bySize.tenants,
    totals: totalsJson(bySize.totals),
    topBySize: bySize.top.map(latestJson),
    topByGrowth: byGrowth.top.map(latestJson),
  });
}

async function tenant(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  const query = parse(TenantQuery, req.query, 'query');
  const id = String(req.params.tenantId);
  let stats: Awaited<ReturnType<typeof tenantStats>>;
  try {
    stats = await tenantStats(deps.pool, id);
  } catch (err) {
    if (err instanceof TenantNotFoundError) throw new NotFoundError('No such workspace.');
    throw err;
  }
  let exact: Awaited<ReturnType<typeof exactTenantStats>> | undefined;
  if (query.exact === '1') {
    if (!(LIVE_STATES as readonly string[]).includes(stats.tenant.state))
      throw new ConflictError(`Workspace ${id} is ${stats.tenant.state}: it has no schema to measure.`);
    exact = await exactTenantStats(deps.pool, id);
  }
  res.setHeader('Cache-Control', 'no-store');
  res.json({
    tenant: { ...stats.tenant, lastActiveAt: time(stats.tenant.lastActiveAt) },
    latest: stats.latest ? { ...latestJson(stats.latest), relations: stats.latest.relations } : null,
    history: stats.history.map((h) => ({
      sampledAt: h.sampledAt.toISOString(),
      resolution: h.resolution,
      ...totalsJson(h),
      lastActiveAt: time(h.lastActiveAt),
    })),
    ...(exact
      ? {
          exact: {
            measuredAt: exact.measuredAt.toISOString(),
            ...totalsJson(exact),
            tablesNotAnalyzed: exact.tablesNotAnalyzed,
            relations: exact.relations,
          },
        }
      : {}),
  });
}
