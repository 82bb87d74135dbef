// JSON API for signing up, in and out. Every sign-in regenerates the session
// id (passport's logIn), so a session id known before sign-in is worthless after.
// The pages (pages.ts) sign in through the same three functions below, which
// is where sign-ins, failed sign-ins and recovery codes are audited.
import { createHmac } from 'node:crypto';
import type { Request } from 'express';
import { Router } from 'express';
import { eventBy, insertAuditEvent } from '../../kernel/audit-inbox.ts';
import { run } from '../../kernel/db.ts';
import { changePassword, LoginFailedError, register } from '../accounts/accounts.ts';
import { checkSecondFactor, MfaRefusedError } from '../accounts/mfa.ts';
import { countFailedAttempt, type SignInNotices, takeSignInNotices } from '../accounts/notices.ts';
import type { UserRow } from '../accounts/users-sql.ts';
import { csrfToken } from '../auth/csrf.ts';
import { requireLogin } from '../auth/guards.ts';
import { principalFromRow } from '../auth/passport.ts';
import { type Principal, publicUser } from '../auth/principal.ts';
import { logIn, logOut } from '../auth/session-middleware.ts';
import { signInCredentials } from '../auth/sign-in-credentials.ts';
import { AuthenticationError, ForbiddenError, LoginRequiredError } from '../errors.ts';
import { whoOf } from '../request-audit.ts';
import type { RouteDeps } from './deps.ts';

/** How a person proved who they are, as `auth.login` records it. */
export type SignInMethod = 'password' | 'totp' | 'recovery' | 'registration';

const who = (req: Request, user: UserRow) =>
  whoOf(req, { userId: user.id, role: user.role, tenantId: user.tenant_id });

/** Opens a registry row (and its `auth.login` event) and a fresh session for `user`. */
export async function startSession(
  deps: RouteDeps,
  req: Request,
  user: UserRow,
  method: SignInMethod = 'password',
): Promise<Principal> {
  const sessionId = await deps.registry.open(
    user.id,
    user.tenant_id,
    req.ip ?? null,
    req.get('user-agent') ?? null,
    who(req, user),
    { method },
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

/**
 * passport-local as a promise: the user for the posted email and password; a
 * failure is audited. The strategy is handed only the credentials the lockout
 * read (auth/sign-in-credentials.ts), never the request itself: left to its
 * own lookup it would take `?email=` from the query string when the body's
 * email is not a string, and check the password of an account the lockout
 * never counted.
 */
export async function authenticateLocal(deps: RouteDeps, req: Request): Promise<UserRow> {
  const { email, password } = signInCredentials(req);
  const verified = { body: { email, password }, query: {} };
  try {
    return await new Promise<UserRow>((resolve, reject) => {
      deps.passport.authenticate('local', { session: false }, (err: unknown, user: unknown) => {
        if (err) return reject(err);
        if (!user) return reject(new AuthenticationError());
        resolve(user as UserRow);
      })(verified as never, {} as never, reject);
    });
  } catch (err) {
    if (err instanceof LoginFailedError) await recordFailedLogin(deps, req, err);
    throw err;
  }
}

/**
 * What the owner should hear about after a successful sign-in (failed
 * attempts, security changes); nothing if it cannot be read: the sign-in
 * itself has succeeded.
 */
export async function signInNotices(deps: RouteDeps, userId: string): Promise<SignInNotices> {
  try {
    return await takeSignInNotices(deps.pool, userId);
  } catch (err) {
    deps.log.warn('could not read the notices of a sign-in', { error: (err as Error).message });
    return { failedAttemptsSinceLastSignIn: 0, notices: [] };
  }
}

/**
 * The second step of a sign-in: passes for accounts without MFA, else needs a
 * valid code (MfaRequiredError without one). A wrong or reused code is a
 * failed sign-in in the trail; a recovery code used is recorded by the check.
 */
export async function checkSignInCode(
  deps: RouteDeps,
  req: Request,
  user: UserRow,
  code: unknown,
): Promise<SignInMethod> {
  try {
    const kind = await checkSecondFactor(deps.pool, user, code, who(req, user));
    return kind === 'none' ? 'password' : kind;
  } catch (err) {
    if (err instanceof MfaRefusedError) await recordFailedLogin(deps, req, err, user);
    throw err;
  }
}

/**
 * `auth.login` with outcome failure and the reason as its code. A known
 * account is named by its id (and the event goes to its owner's chain); an
 * address that belongs to no account is kept only as a keyed hash, so the
 * trail can show many attempts on one address without storing addresses
 * people mistyped (or never had). Never the password or the code.
 */
async function recordFailedLogin(
  deps: RouteDeps,
  req: Request,
  err: LoginFailedError | MfaRefusedError,
  user?: UserRow,
): Promise<void> {
  const account =
    err instanceof LoginFailedError
      ? err.user
      : user && { userId: user.id, role: user.role, tenantId: user.tenant_id };
  const by = whoOf(req, account ?? null);
  const email = err instanceof LoginFailedError && !account ? err.email : undefined;
  const event = eventBy(by, {
    tenantId: account?.tenantId ?? null,
    action: 'auth.login',
    resource: account ? { type: 'user', id: account.userId } : undefined,
    outcome: 'failure',
    code: err.reason,
    details: email ? { emailHmac: emailDigest(deps.auditKey, email) } : {},
  });
  // The refusal stands even if its audit row cannot be written.
  await run(deps.pool, insertAuditEvent(event)).catch((e: unknown) =>
    deps.log.warn('could not record a failed sign-in', { error: e }),
  );
  // And its owner hears of it at their next sign-in.
  if (account) await countFailedAttempt(deps.pool, account.userId).catch(() => {});
}

/** HMAC-SHA256 of a normalised email under the deployment's audit key (hex, 128 bits). */
export function emailDigest(key: Buffer, normalizedEmail: string): string {
  return createHmac('sha256', key).update(normalizedEmail, 'utf8').digest('hex').slice(0, 32);
}

export function authRoutes(deps: RouteDeps): Router {
  const router = Router();

  router.get('/api/v1/csrf', (req, res) => {
    res.json({ token: csrfToken(req) });
  });

  router.post('/api/v1/auth/register', async (req, res) => {
    const body = req.body ?? {};
    const { user } = await register(deps.pool, body, deps.migrations, whoOf(req));
    const principal = await startSession(deps, req, user, 'registration');
    res.status(201).json({ user: publicUser(principal), csrfToken: csrfToken(req) });
  });

  router.post('/api/v1/auth/login', async (req, res) => {
    const user = await authenticateLocal(deps, req);
    const method = await checkSignInCode(deps, req, user, signInCredentials(req).totp);
    const principal = await startSession(deps, req, user, method);
    const notices = await signInNotices(deps, user.id);
    res.json({ user: publicUser(principal), csrfToken: csrfToken(req), ...notices });
  });

  router.post('/api/v1/auth/logout', async (req, res) => {
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
  });

  // A password change is a privilege change: the other sessions and every API token end, and this
  // session gets a new id.
  router.post('/api/v1/account/password', requireLogin, deps.attempts.guard, async (req, res) => {
    const user = req.user as Express.User;
    if (user.via !== 'session') throw new ForbiddenError('Sign in with your password to change it.');
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
  });

  router.get('/api/v1/me', (req, res) => {
    if (!req.user) throw new LoginRequiredError();
    res.json({ user: publicUser(req.user), tenantId: req.user.tenantId, role: req.user.role });
  });

  return router;
}
