// Signing in, for the JSON API (api/auth-api.ts) and the pages (pages/sign-in-pages.ts)
// alike: this is where sign-ins, failed sign-ins and recovery codes are audited.
// Every sign-in regenerates the session id (passport's logIn), so a session id
// known before sign-in is worthless after.
import { createHmac } from 'node:crypto';
import type { Request } from 'express';
import { record } from '../../kernel/audit-inbox.ts';
import { recordSignIn } from '../../tenancy/inactivity.ts';
import { LoginFailedError } from '../accounts/accounts.ts';
import { checkSecondFactor, MfaRefusedError } from '../accounts/mfa.ts';
import {
  countFailedAttempt,
  inactivityNotice,
  type SignInNotices,
  takeSignInNotices,
} from '../accounts/notices.ts';
import type { UserRow } from '../accounts/users-sql.ts';
import { AuthenticationError } from '../app-errors.ts';
import { whoOf } from '../http/request-audit.ts';
import type { RouteDeps } from '../http/route-deps.ts';
import { principalFromRow } from './passport.ts';
import type { Principal } from './principal.ts';
import { logIn } from './session-middleware.ts';
import { signInCredentials } from './sign-in-credentials.ts';

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
  // Admins and auditors: a sign-in from an address this account has not used lately is a threat flag.
  deps.threats.signedIn(req, { id: user.id, role: user.role }, sessionId);
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
  let found: SignInNotices;
  try {
    found = await takeSignInNotices(deps.pool, userId);
  } catch (err) {
    deps.log.warn('could not read the notices of a sign-in', { error: (err as Error).message });
    found = { failedAttemptsSinceLastSignIn: 0, notices: [] };
  }
  // A sign-in is activity of the person's workspace, and clears its inactivity warning (docs/LIFECYCLE.md).
  const inactive = await recordSignIn(deps.pool, userId, { actor: { type: 'user', id: userId } }).catch(
    (err: unknown) => {
      deps.log.warn('could not record a sign-in as workspace activity', { error: (err as Error).message });
      return null;
    },
  );
  if (inactive) found.notices.unshift(inactivityNotice(inactive.inactiveSince));
  return found;
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
  // The refusal stands even if its audit row cannot be written.
  await record(deps.pool, by, {
    tenantId: account?.tenantId ?? null,
    action: 'auth.login',
    resource: account ? { type: 'user', id: account.userId } : undefined,
    outcome: 'failure',
    code: err.reason,
    details: email ? { emailHmac: emailDigest(deps.auditKey, email) } : {},
  }).catch((e: unknown) => deps.log.warn('could not record a failed sign-in', { error: e }));
  // And its owner hears of it at their next sign-in.
  if (account) await countFailedAttempt(deps.pool, account.userId).catch(() => {});
  // Bursts per account and per address raise threat flags (server/threats/).
  deps.threats.failedSignIn(req, account?.userId);
}

/** HMAC-SHA256 of a normalised email under the deployment's audit key (hex, 128 bits). */
export function emailDigest(key: Buffer, normalizedEmail: string): string {
  return createHmac('sha256', key).update(normalizedEmail, 'utf8').digest('hex').slice(0, 32);
}
