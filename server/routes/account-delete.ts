// POST /api/v1/account/delete: a signed-in person deletes their own account and
// workspace. Browser sessions only: an API token (even read-write) gets 403, so
// a leaked script token can never destroy an account. See
// accounts/account-deletion.ts for the checks and the one-transaction order.
import type { Request, Response } from 'express';
import { Router } from 'express';
import { deleteAccount } from '../accounts/account-deletion.ts';
import { requireLogin } from '../auth/guards.ts';
import { logOut, SESSION_COOKIE } from '../auth/session-middleware.ts';
import { ForbiddenError } from '../errors.ts';
import { actorOf } from '../workspace/actor.ts';
import type { RouteDeps } from './deps.ts';

/** The signed-in owner who may delete their account, or 403. */
export function deletingOwner(req: Request): Express.User & { tenantId: string } {
  const user = req.user as Express.User;
  if (user.via !== 'session') {
    throw new ForbiddenError(
      'Deleting an account needs a signed-in session and your password; API tokens cannot do it.',
    );
  }
  if (user.role !== 'user' || !user.tenantId) {
    throw new ForbiddenError('Only a workspace owner can delete their account here.');
  }
  return user as Express.User & { tenantId: string };
}

/** Checks, deletes, then ends this browser session (every other one already ended with the user's row). */
export async function deleteOwnAccount(deps: RouteDeps, req: Request, res: Response, body: unknown) {
  const user = deletingOwner(req);
  const { actor, context } = actorOf(req, res);
  const result = await deleteAccount(deps.pool, {
    userId: user.userId,
    tenantId: user.tenantId,
    actor,
    context,
    body,
  });
  deps.tenants.invalidate(user.tenantId);
  deps.log.info('account deleted', { userId: user.userId, tenantId: user.tenantId });
  await endCurrentSession(req, res);
  return result;
}

/**
 * Drops this session from the store and the browser. The account is already
 * gone, so a store failure here changes nothing that matters: the session's
 * registry row went with the user, and the next request is anonymous anyway.
 */
async function endCurrentSession(req: Request, res: Response): Promise<void> {
  if (req.session) {
    try {
      await logOut(req);
      await new Promise<void>((resolve) => req.session.destroy(() => resolve()));
    } catch {
      // see above
    }
  }
  res.clearCookie(SESSION_COOKIE, { path: '/' });
}

export function accountDeleteRoutes(deps: RouteDeps): Router {
  const router = Router();
  // The password (and code) checked here count toward the account's sign-in lockout.
  router.post('/api/v1/account/delete', requireLogin, deps.attempts.guard, async (req, res) => {
    const result = await deleteOwnAccount(deps, req, res, req.body);
    res.json({ deleted: true, tenantId: result.tenantId, sessionsEnded: result.sessionsEnded });
  });
  return router;
}
