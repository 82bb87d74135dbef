// "Where am I signed in?": list, revoke one, revoke all others (and every API
// token). An admin's view of every tenant's sessions is api/admin-api.ts.
import { type Request, type Response, Router } from 'express';
import { requireSessionLogin } from '../auth/guards.ts';
import { whoOf } from '../http/request-audit.ts';
import type { RouteDeps } from '../http/route-deps.ts';
import { signOutEverywhere } from '../sessions/sign-out-everywhere.ts';

export function sessionRoutes(deps: RouteDeps): Router {
  const router = Router();
  router.get('/api/v1/sessions', requireSessionLogin, (req, res) => listSessionsApi(deps, req, res));
  router.delete('/api/v1/sessions/:id', requireSessionLogin, (req, res) => revokeSessionApi(deps, req, res));
  router.post('/api/v1/sessions/revoke-all', requireSessionLogin, (req, res) =>
    revokeOtherSessionsApi(deps, req, res),
  );

  return router;
}

async function listSessionsApi(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  const user = req.user as Express.User;
  res.json({ sessions: await deps.registry.list(user.userId, user.sessionId) });
}

async function revokeSessionApi(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  const user = req.user as Express.User;
  await deps.registry.revoke(String(req.params.id), user.userId, 'revoked by the user', whoOf(req));
  res.status(204).end();
}

// Ends the API tokens too (sign-out-everywhere.ts); `ended` counts the sessions.
async function revokeOtherSessionsApi(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  const user = req.user as Express.User;
  const { sessionsEnded, tokensEnded } = await signOutEverywhere(
    deps.pool,
    deps.registry,
    user.userId,
    user.sessionId ?? null,
    whoOf(req),
  );
  res.json({ ended: sessionsEnded, tokensEnded });
}
