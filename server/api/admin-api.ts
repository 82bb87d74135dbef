// The admin's API: the sessions of any tenant, listed and ended (the admin console
// will grow here). Admins only, and only from a browser session.
import { type Request, type Response, Router } from 'express';
import { isTenantId } from '../../kernel/identifiers.ts';
import { NotFoundError } from '../app-errors.ts';
import { requireRole, requireSessionLogin } from '../auth/guards.ts';
import { whoOf } from '../http/request-audit.ts';
import type { RouteDeps } from '../http/route-deps.ts';

export function adminApiRoutes(deps: RouteDeps): Router {
  const admin = [requireSessionLogin, requireRole('admin')];
  return Router()
    .get('/api/v1/admin/tenants/:tenantId/sessions', ...admin, (req, res) =>
      listTenantSessionsApi(deps, req, res),
    )
    .delete('/api/v1/admin/sessions/:id', ...admin, (req, res) => endSessionAsAdmin(deps, req, res));
}

async function listTenantSessionsApi(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  const tenantId = String(req.params.tenantId);
  if (!isTenantId(tenantId)) throw new NotFoundError('No such workspace.');
  res.json({ sessions: await deps.registry.listForTenant(tenantId, whoOf(req)) });
}

async function endSessionAsAdmin(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  await deps.registry.revoke(
    String(req.params.id),
    null,
    `ended by admin ${(req.user as Express.User).userId}`,
    whoOf(req),
  );
  res.status(204).end();
}
