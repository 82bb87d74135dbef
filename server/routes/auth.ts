// JSON API for signing up, in and out. Every sign-in regenerates the session
// id (passport's logIn), so a session id known before sign-in is worthless after.
import type { Request } from 'express';
import { Router } from 'express';
import { changePassword, register } from '../accounts/accounts.ts';
import { checkSecondFactor } from '../accounts/mfa.ts';
import type { UserRow } from '../accounts/users-sql.ts';
import { csrfToken } from '../auth/csrf.ts';
import { requireLogin } from '../auth/guards.ts';
import { principalFromRow } from '../auth/passport.ts';
import { type Principal, publicUser } from '../auth/principal.ts';
import { logIn, logOut } from '../auth/session-middleware.ts';
import { AuthenticationError, ForbiddenError, LoginRequiredError } from '../errors.ts';
import type { RouteDeps } from './deps.ts';

/** Opens a registry row and a fresh session for `user`. */
export async function startSession(deps: RouteDeps, req: Request, user: UserRow): Promise<Principal> {
  const sessionId = await deps.registry.open(
    user.id,
    user.tenant_id,
    req.ip ?? null,
    req.get('user-agent') ?? null,
  );
  const principal = principalFromRow(
    {
      user_id: user.id,
      email: user.email,
      display_name: user.display_name,
      role: user.role,
      tenant_id: user.tenant_id,
      mfa_enabled: user.mfa_enabled_at !== null,
      mfa_required: user.mfa_required,
    },
    'session',
    { sessionId },
  );
  await logIn(req, principal);
  return principal;
}

/** passport-local as a promise: the user for the posted email and password. */
export function authenticateLocal(deps: RouteDeps, req: Request): Promise<UserRow> {
  return new Promise((resolve, reject) => {
    deps.passport.authenticate('local', { session: false }, (err: unknown, user: unknown) => {
      if (err) return reject(err);
      if (!user) return reject(new AuthenticationError());
      resolve(user as UserRow);
    })(req, {} as never, reject);
  });
}

export function authRoutes(deps: RouteDeps): Router {
  const router = Router();

  router.get('/api/v1/csrf', (req, res) => {
    res.json({ token: csrfToken(req) });
  });

  router.post('/api/v1/auth/register', async (req, res) => {
    const body = req.body ?? {};
    const { user } = await register(deps.pool, body, deps.migrations);
    const principal = await startSession(deps, req, user);
    res.status(201).json({ user: publicUser(principal), csrfToken: csrfToken(req) });
  });

  router.post('/api/v1/auth/login', async (req, res) => {
    const user = await authenticateLocal(deps, req);
    await checkSecondFactor(deps.pool, user, req.body?.totp);
    const principal = await startSession(deps, req, user);
    res.json({ user: publicUser(principal), csrfToken: csrfToken(req) });
  });

  router.post('/api/v1/auth/logout', async (req, res) => {
    const sessionId = req.user?.sessionId;
    if (sessionId)
      await deps.registry.revoke(sessionId, req.user?.userId ?? null, 'signed out').catch(() => {});
    if (req.session) {
      await logOut(req);
      await new Promise<void>((resolve) => req.session.destroy(() => resolve()));
    }
    res.status(204).end();
  });

  // A password change is a privilege change: the other sessions end and this one gets a new id.
  router.post('/api/v1/account/password', requireLogin, async (req, res) => {
    const user = req.user as Express.User;
    if (user.via !== 'session') throw new ForbiddenError('Sign in with your password to change it.');
    const { currentPassword, newPassword } = (req.body ?? {}) as Record<string, unknown>;
    await changePassword(deps.pool, user.userId, currentPassword, newPassword, user.sessionId ?? null);
    await logIn(req, user);
    res.json({ csrfToken: csrfToken(req) });
  });

  router.get('/api/v1/me', (req, res) => {
    if (!req.user) throw new LoginRequiredError();
    res.json({ user: publicUser(req.user), tenantId: req.user.tenantId, role: req.user.role });
  });

  return router;
}
