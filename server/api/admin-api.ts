// The admin's API: the sessions of any tenant, listed and ended (one, or all
// of a tenant's at once). Admins only, and only from a browser session; ending
// sessions also needs the admin's password confirmed recently (POST
// /api/v1/admin/reauth, else 403 reauth_required). Every change is audited:
// `session.revoke` by the registry, `session.revoke_all` on the tenant's chain.
import { type Request, type Response, Router } from 'express';
import { z } from 'zod';
import { isTenantId } from '../../kernel/identifiers.ts';
import { findTenant } from '../admin/tenant-overview.ts';
import { endTenantSessions } from '../admin/tenant-sessions.ts';
import { NotFoundError } from '../app-errors.ts';
import { requireRole, requireSessionLogin } from '../auth/guards.ts';
import { requireRecentAuth } from '../auth/recent-auth.ts';
import { whoOf } from '../http/request-audit.ts';
import type { RouteDeps } from '../http/route-deps.ts';
import { parse } from '../workspace/validation.ts';

export const NoQuery = z.strictObject({});
export const NoBody = z.strictObject({});

export function adminApiRoutes(deps: RouteDeps): Router {
  const admin = [requireSessionLogin, requireRole('admin')];
  const recent = requireRecentAuth(deps.config.ADMIN_REAUTH_MINUTES);
  return Router()
    .get('/api/v1/admin/tenants/:tenantId/sessions', ...admin, (req, res) =>
      listTenantSessionsApi(deps, req, res),
    )
    .post('/api/v1/admin/tenants/:tenantId/sessions/revoke-all', ...admin, recent, (req, res) =>
      endTenantSessionsApi(deps, req, res),
    )
    .delete('/api/v1/admin/sessions/:id', ...admin, recent, (req, res) => endSessionAsAdmin(deps, req, res));
}

async function listTenantSessionsApi(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  const tenantId = String(req.params.tenantId);
  if (!isTenantId(tenantId)) throw new NotFoundError('No such workspace.');
  res.json({ sessions: await deps.registry.listForTenant(tenantId, whoOf(req)) });
}

/** POST …/sessions/revoke-all: every active session of the tenant's people ended; `{ sessionsEnded }`. */
async function endTenantSessionsApi(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  parse(NoQuery, req.query, 'query');
  parse(NoBody, req.body ?? {}, 'body');
  const tenant = await findTenant(deps.pool, String(req.params.tenantId));
  const ended = await endTenantSessions(
    deps.pool,
    tenant.id,
    `ended by admin ${(req.user as Express.User).userId}`,
    whoOf(req),
  );
  res.setHeader('Cache-Control', 'no-store');
  res.json({ sessionsEnded: ended });
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
