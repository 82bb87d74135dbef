// A person's API tokens: create (the secret is in this one answer only), list,
// revoke. Workspace owners only (a token reaches its owner's workspace, and
// auditors and admins have none), and only with a session: a token cannot
// manage tokens (see auth/bearer.ts for why).
import { type Request, type Response, Router } from 'express';
import { createToken, listTokens, revokeToken } from '../accounts/api-tokens.ts';
import { requireRole, requireSessionLogin } from '../auth/guards.ts';
import { whoOf } from '../http/request-audit.ts';
import type { RouteDeps } from '../http/route-deps.ts';

export function tokenRoutes(deps: RouteDeps): Router {
  const router = Router();
  router.use('/api/v1/tokens', requireSessionLogin, requireRole('user'));
  router.post('/api/v1/tokens', (req, res) => createTokenApi(deps, req, res));
  router.get('/api/v1/tokens', (req, res) => listTokensApi(deps, req, res));
  router.delete('/api/v1/tokens/:id', (req, res) => revokeTokenApi(deps, req, res));

  return router;
}

async function createTokenApi(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  const created = await createToken(deps.pool, (req.user as Express.User).userId, req.body, whoOf(req));
  // Shown once: no cache (browser, proxy) may keep a copy of the secret.
  res.setHeader('Cache-Control', 'no-store');
  res.status(201).json(created);
}

async function listTokensApi(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  res.json({ tokens: await listTokens(deps.pool, (req.user as Express.User).userId) });
}

async function revokeTokenApi(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  await revokeToken(deps.pool, (req.user as Express.User).userId, String(req.params.id), whoOf(req));
  res.status(204).end();
}
