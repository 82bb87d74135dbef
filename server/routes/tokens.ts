// A person's API tokens: create (the secret is in this one answer only), list,
// revoke. Workspace owners only (a token reaches its owner's workspace, and
// auditors and admins have none), and only with a session: a token cannot
// manage tokens (see auth/bearer.ts for why).
import { Router } from 'express';
import { createToken, listTokens, revokeToken } from '../accounts/api-tokens.ts';
import { requireSessionLogin } from '../auth/bearer.ts';
import { requireRole } from '../auth/guards.ts';
import { whoOf } from '../request-audit.ts';
import type { RouteDeps } from './deps.ts';

export function tokenRoutes(deps: RouteDeps): Router {
  const router = Router();
  router.use('/api/v1/tokens', requireSessionLogin, requireRole('user'));

  router.post('/api/v1/tokens', async (req, res) => {
    const created = await createToken(deps.pool, (req.user as Express.User).userId, req.body, whoOf(req));
    // Shown once: no cache (browser, proxy) may keep a copy of the secret.
    res.setHeader('Cache-Control', 'no-store');
    res.status(201).json(created);
  });

  router.get('/api/v1/tokens', async (req, res) => {
    res.json({ tokens: await listTokens(deps.pool, (req.user as Express.User).userId) });
  });

  router.delete('/api/v1/tokens/:id', async (req, res) => {
    await revokeToken(deps.pool, (req.user as Express.User).userId, String(req.params.id), whoOf(req));
    res.status(204).end();
  });

  return router;
}
