// The account API: POST /api/v1/account/password (a privilege change: the
// other sessions and every API token end), and POST /api/v1/account/delete: a
// signed-in person deletes their own account and workspace. Browser sessions
// only: an API token (even read-write) gets 403, so a leaked script token can
// never destroy an account. See accounts/account-deletion.ts for the checks
// and the one-transaction order, auth/own-account.ts for the session's end.
import { type Request, type Response, Router } from 'express';
import { changePassword } from '../accounts/accounts.ts';
import { csrfToken } from '../auth/csrf.ts';
import { passwordChanger, requireLogin } from '../auth/guards.ts';
import { deleteOwnAccount } from '../auth/own-account.ts';
import { logIn } from '../auth/session-middleware.ts';
import { whoOf } from '../http/request-audit.ts';
import type { RouteDeps } from '../http/route-deps.ts';

export function accountApiRoutes(deps: RouteDeps): Router {
  const router = Router();
  router.post('/api/v1/account/delete', requireLogin, deps.attempts.guard, (req, res) =>
    deleteAccountApi(deps, req, res),
  );
  router.post('/api/v1/account/password', requireLogin, deps.attempts.guard, (req, res) =>
    changePasswordApi(deps, req, res),
  );
  return router;
}

// The password (and code) checked here count toward the account's sign-in lockout.
async function deleteAccountApi(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  const result = await deleteOwnAccount(deps, req, res, req.body);
  res.json({ deleted: true, tenantId: result.tenantId, sessionsEnded: result.sessionsEnded });
}

// A password change is a privilege change: the other sessions and every API token end, and this
// session gets a new id.
async function changePasswordApi(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  const user = passwordChanger(req);
  const { currentPassword, newPassword } = (req.body ?? {}) as Record<string, unknown>;
  const ended = await changePassword(
    deps.pool,
    user.userId,
    currentPassword,
    newPassword,
    user.sessionId ?? null,
    whoOf(req),
  );
  await logIn(req, user);
  res.json({ csrfToken: csrfToken(req), ...ended });
}
