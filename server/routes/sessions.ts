// "Where am I signed in?": list, revoke one, revoke all others (and every API
// token). Admins see and end the sessions of any tenant.
import { Router } from 'express';
import { isTenantId } from '../../kernel/identifiers.ts';
import { requireSessionLogin } from '../auth/bearer.ts';
import { requireRole } from '../auth/guards.ts';
import { NotFoundError } from '../errors.ts';
import { whoOf } from '../request-audit.ts';
import { signOutEverywhere } from '../sessions/sign-out-everywhere.ts';
import type { RouteDeps } from './deps.ts';

export function sessionRoutes(deps: RouteDeps): Router {
  const router = Router();

  router.get('/api/v1/sessions', requireSessionLogin, async (req, res) => {
    const user = req.user as Express.User;
    res.json({ sessions: await deps.registry.list(user.userId, user.sessionId) });
  });

  router.delete('/api/v1/sessions/:id', requireSessionLogin, async (req, res) => {
    const user = req.user as Express.User;
    await deps.registry.revoke(String(req.params.id), user.userId, 'revoked by the user', whoOf(req));
    res.status(204).end();
  });

  // Ends the API tokens too (sign-out-everywhere.ts); `ended` counts the sessions.
  router.post('/api/v1/sessions/revoke-all', requireSessionLogin, async (req, res) => {
    const user = req.user as Express.User;
    const { sessionsEnded, tokensEnded } = await signOutEverywhere(
      deps.pool,
      deps.registry,
      user.userId,
      user.sessionId ?? null,
      whoOf(req),
    );
    res.json({ ended: sessionsEnded, tokensEnded });
  });

  router.get(
    '/api/v1/admin/tenants/:tenantId/sessions',
    requireSessionLogin,
    requireRole('admin'),
    async (req, res) => {
      const tenantId = String(req.params.tenantId);
      if (!isTenantId(tenantId)) throw new NotFoundError('No such workspace.');
      res.json({ sessions: await deps.registry.listForTenant(tenantId, whoOf(req)) });
    },
  );

  router.delete('/api/v1/admin/sessions/:id', requireSessionLogin, requireRole('admin'), async (req, res) => {
    await deps.registry.revoke(
      String(req.params.id),
      null,
      `ended by admin ${(req.user as Express.User).userId}`,
      whoOf(req),
    );
    res.status(204).end();
  });

  return router;
}
