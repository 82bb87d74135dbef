// Two-step sign-in for a signed-in person: status, enrol (setup, then enable
// with the password and a first code), turn off, new recovery codes (both with
// the password and a code). Turning it on or off is a privilege change: the
// session gets a new id and a new CSRF token. Only a browser session may do
// this, never an API token. Every password or code checked here counts toward
// the account's sign-in lockout (abuse/attempts.ts).
import { type Request, type RequestHandler, type Response, Router } from 'express';
import {
  confirmEnrolment,
  disableMfa,
  mfaStatus,
  regenerateRecoveryCodes,
  startEnrolment,
} from '../accounts/mfa.ts';
import { csrfToken } from '../auth/csrf.ts';
import { mfaSessionOnly, requireLogin } from '../auth/guards.ts';
import { publicUser } from '../auth/principal.ts';
import { logIn } from '../auth/session-middleware.ts';
import { whoOf } from '../http/request-audit.ts';
import type { RouteDeps } from '../http/route-deps.ts';

/** Secrets and recovery codes must not be kept by any cache. */
const noStore: RequestHandler = (_req, res, next) => {
  res.set('Cache-Control', 'no-store');
  next();
};

function body(req: Request): Record<string, unknown> {
  return (req.body ?? {}) as Record<string, unknown>;
}

/** Same login, new session id (passport regenerates it), principal updated; answers the new CSRF token. */
async function renewSession(req: Request, res: Response, mfaEnabled: boolean, extra: object = {}) {
  const principal = { ...(req.user as Express.User), mfaEnabled };
  await logIn(req, principal);
  res.json({ ...extra, user: publicUser(principal), csrfToken: csrfToken(req) });
}

export function mfaRoutes(deps: RouteDeps): Router {
  const router = Router();
  const guard = [requireLogin, mfaSessionOnly, noStore];
  // Routes that check the password or a code: counted with sign-ins by the account lockout.
  const checked = [...guard, deps.attempts.guard];
  router.get('/api/v1/mfa', ...guard, (req, res) => showMfaStatus(deps, req, res));
  router.post('/api/v1/mfa/setup', ...guard, (req, res) => startMfaEnrolment(deps, req, res));
  router.post('/api/v1/mfa/enable', ...checked, (req, res) => enableMfaApi(deps, req, res));
  router.post('/api/v1/mfa/disable', ...checked, (req, res) => disableMfaApi(deps, req, res));
  router.post('/api/v1/mfa/recovery-codes', ...checked, (req, res) => regenerateCodesApi(deps, req, res));

  return router;
}

async function showMfaStatus(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  res.json(await mfaStatus(deps.pool, (req.user as Express.User).userId));
}

async function startMfaEnrolment(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  res.json(await startEnrolment(deps.pool, (req.user as Express.User).userId));
}

async function enableMfaApi(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  const user = req.user as Express.User;
  const { password, code } = body(req);
  const recoveryCodes = await confirmEnrolment(
    deps.pool,
    user.userId,
    password,
    code,
    user.sessionId ?? null,
    whoOf(req),
  );
  deps.log.info('mfa enabled', { userId: user.userId });
  await renewSession(req, res, true, { recoveryCodes });
}

async function disableMfaApi(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  const user = req.user as Express.User;
  const { password, code } = body(req);
  await disableMfa(deps.pool, user.userId, password, code, whoOf(req));
  deps.log.info('mfa disabled', { userId: user.userId });
  await renewSession(req, res, false);
}

async function regenerateCodesApi(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  const user = req.user as Express.User;
  const { password, code } = body(req);
  const recoveryCodes = await regenerateRecoveryCodes(deps.pool, user.userId, password, code, whoOf(req));
  deps.log.info('mfa recovery codes regenerated', { userId: user.userId });
  res.json({ recoveryCodes });
}
