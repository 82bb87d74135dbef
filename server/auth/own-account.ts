// Deleting one's own account from a browser session, for the JSON API
// (api/account-api.ts) and the account page alike: the checks and the
// one-transaction order are in accounts/account-deletion.ts; this adds who may
// (deletingOwner) and ends the browser session afterwards.
import type { Request, Response } from 'express';
import { deleteAccount } from '../accounts/account-deletion.ts';
import type { RouteDeps } from '../http/route-deps.ts';
import { actorOf } from '../workspace/actor.ts';
import { deletingOwner } from './guards.ts';
import { logOut, SESSION_COOKIE } from './session-middleware.ts';

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
