// The admin console as JSON (docs/ADMIN.md): the tenants table with the
// page's query parameters, the /admin cards, and "run now" for a job. Admins
// only, from a browser session; nothing a tenant wrote is in any answer.
//
//   GET  /api/v1/admin/tenants?state=&inactiveDays=&noBackupHours=&behind=1&drift=1&q=&sort=&dir=&cursor=&limit=
//   GET  /api/v1/admin/overview
//   POST /api/v1/admin/jobs/:name/run   202, the run goes on in the background; 409 when already running
import { type Request, type Response, Router } from 'express';
import { z } from 'zod';
import { latestVersion } from '../../tenancy/templates.ts';
import { overview, overviewJson, startJobNow } from '../admin/console.ts';
import { parseDirectoryQuery, tenantDirectory, tenantJson } from '../admin/tenant-directory.ts';
import { requireRole, requireSessionLogin } from '../auth/guards.ts';
import type { RouteDeps } from '../http/route-deps.ts';
import { parse } from '../workspace/validation.ts';

export const NoQuery = z.strictObject({});
export const NoBody = z.union([z.strictObject({}), z.undefined()]);

export function adminTenantsApiRoutes(deps: RouteDeps): Router {
  const admin = [requireSessionLogin, requireRole('admin')];
  return Router()
    .get('/api/v1/admin/tenants', ...admin, (req, res) => listTenants(deps, req, res))
    .get('/api/v1/admin/overview', ...admin, (req, res) => showOverview(deps, req, res))
    .post('/api/v1/admin/jobs/:name/run', ...admin, (req, res) => runJob(deps, req, res));
}

async function listTenants(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  const params = parseDirectoryQuery(req.query);
  const page = await tenantDirectory(deps.pool, params, latestVersion(deps.migrations));
  res.set('Cache-Control', 'no-store').json({
    tenants: page.tenants.map(tenantJson),
    nextCursor: page.nextCursor,
    latestVersion: page.latestVersion,
    sort: params.sort,
    dir: params.dir,
  });
}

async function showOverview(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  parse(NoQuery, req.query, 'query');
  res.set('Cache-Control', 'no-store').json(overviewJson(await overview(deps.pool)));
}

async function runJob(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  parse(NoQuery, req.query, 'query');
  parse(NoBody, req.body && Object.keys(req.body).length ? req.body : undefined);
  const started = await startJobNow(deps, req, String(req.params.name));
  res.status(202).json({
    job: started.job,
    status: 'started',
    history: `/api/v1/admin/jobs/runs?job=${encodeURIComponent(started.job)}`,
  });
}
