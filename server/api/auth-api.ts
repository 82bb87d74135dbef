// JSON API for signing up, in and out, the CSRF token and "who am I". Every
// sign-in regenerates the session id (passport's logIn), so a session id known
// before sign-in is worthless after. The pages (pages/sign-in-pages.ts) sign in
// through the same functions, in auth/sign-in.ts.
import { type Request, type Response, Router } from 'express';
import { register } from '../accounts/accounts.ts';
import { csrfToken } from '../auth/csrf.ts';
import { requireLogin } from '../auth/guards.ts';
import { publicUser } from '../auth/principal.ts';
import { logOut } from '../auth/session-middleware.ts';
import { authenticateLocal, checkSignInCode, signInNotices, startSession } from '../auth/sign-in.ts';
import { signInCredentials } from '../auth/sign-in-credentials.ts';
import { whoOf } from '../http/request-audit.ts';
import type { RouteDeps } from '../http/route-deps.ts';

export function authRoutes(deps: RouteDeps): Router {
  const router = Router();
  router.get('/api/v1/csrf', sendCsrfToken);
  router.post('/api/v1/auth/register', (req, res) => registerApi(deps, req, res));
  router.post('/api/v1/auth/login', (req, res) => signInApi(deps, req, res));
  router.post('/api/v1/auth/logout', (req, res) => signOutApi(deps, req, res));
  router.get('/api/v1/me', requireLogin, showMe);

  return router;
}

function sendCsrfToken(req: Request, res: Response): void {
  res.json({ token: csrfToken(req) });
}

async function registerApi(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  const body = req.body ?? {};
  const { user } = await register(deps.pool, body, deps.migrations, whoOf(req));
  const principal = await startSession(deps, req, user, 'registration');
  res.status(201).json({ user: publicUser(principal), csrfToken: csrfToken(req) });
}

async function signInApi(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  const user = await authenticateLocal(deps, req);
  const method = await checkSignInCode(deps, req, user, signInCredentials(req).totp);
  const principal = await startSession(deps, req, user, method);
  const notices = await signInNotices(deps, user.id);
  res.json({ user: publicUser(principal), csrfToken: csrfToken(req), ...notices });
}

async function signOutApi(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  const sessionId = req.user?.sessionId;
  if (sessionId)
    await deps.registry
      .revoke(sessionId, req.user?.userId ?? null, 'signed out', whoOf(req), 'auth.logout')
      .catch(() => {});
  if (req.session) {
    await logOut(req);
    await new Promise<void>((resolve) => req.session.destroy(() => resolve()));
  }
  res.status(204).end();
}

function showMe(req: Request, res: Response): void {
  const user = req.user as Express.User;
  res.json({ user: publicUser(user), tenantId: user.tenantId, role: user.role });
}
