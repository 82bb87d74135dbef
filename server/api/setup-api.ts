// First-admin setup through the one-time link printed in the log at start
// (announceSetup in accounts/admin-setup.ts); the page is in pages/setup-pages.ts.
import { type Request, type Response, Router } from 'express';
import { completeSetup } from '../accounts/admin-setup.ts';
import { whoOf } from '../http/request-audit.ts';
import type { RouteDeps } from '../http/route-deps.ts';

export function setupApiRoutes(deps: RouteDeps): Router {
  return Router().post('/api/v1/setup/admin', (req, res) => createFirstAdmin(deps, req, res));
}

async function createFirstAdmin(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  const { token, email, password, displayName } = (req.body ?? {}) as Record<string, unknown>;
  const admin = await completeSetup(deps.pool, token, { email, password, displayName }, whoOf(req, null));
  deps.log.info('first admin created', { userId: admin.id });
  res.status(201).json({ user: { id: admin.id, email: admin.email, role: admin.role } });
}
