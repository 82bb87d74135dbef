// Destructive admin actions (restore, suspend, deactivate, a role change, an
// MFA reset, ending sessions) ask for the admin's password again, or their
// MFA code: a check within ADMIN_REAUTH_MINUTES is kept in the session
// (`reauthAt`), so a session left open on a desk cannot wreck a tenant. The
// check counts toward the account's lockout like any password check, and is
// audited (`admin.reauth`, success or failure).
import type { Request, RequestHandler, Response } from 'express';
import { record } from '../../kernel/audit-inbox.ts';
import { findUser } from '../accounts/accounts.ts';
import { verifyPassword } from '../accounts/credentials.ts';
import { checkSecondFactor } from '../accounts/mfa.ts';
import { AuthenticationError, ReauthRequiredError } from '../app-errors.ts';
import { whoOf } from '../http/request-audit.ts';
import type { RouteDeps } from '../http/route-deps.ts';

declare module 'express-session' {
  interface SessionData {
    /** When this session's admin last confirmed their password or MFA code (ms since the epoch). */
    reauthAt?: number;
  }
}

export const REAUTH_PAGE = '/admin/reauth';

/** Whether the session confirmed the password within `minutes`. */
export function recentlyConfirmed(req: Request, minutes: number): boolean {
  const at = req.session?.reauthAt;
  return typeof at === 'number' && Date.now() - at < minutes * 60_000 && at <= Date.now();
}

/**
 * Route middleware for a destructive admin action: the API answers 403
 * `reauth_required`; a page form is sent (303) to the confirmation page,
 * which comes back to `returnTo` (the page the form was on).
 */
export function requireRecentAuth(minutes: number): RequestHandler {
  return (req, res, next) => {
    if (recentlyConfirmed(req, minutes)) return next();
    if (req.originalUrl.startsWith('/api/')) return next(new ReauthRequiredError());
    res.redirect(303, `${REAUTH_PAGE}?next=${encodeURIComponent(safeReturn(req))}`);
  };
}

/** Where to come back to: the referring admin page of this site, else /admin. */
function safeReturn(req: Request): string {
  const referer = req.get('referer');
  if (referer) {
    try {
      const url = new URL(referer);
      if (url.host === req.get('host') && url.pathname.startsWith('/admin')) return url.pathname + url.search;
    } catch {
      // not a URL: fall through
    }
  }
  return '/admin';
}

/** A `next` parameter that stays on this site's admin pages. */
export function adminReturnPath(raw: unknown): string {
  return typeof raw === 'string' && /^\/admin(\/[A-Za-z0-9/_\-.?=&%]*)?$/.test(raw) && !raw.includes('//')
    ? raw
    : '/admin';
}

/**
 * Checks the signed-in admin's password (and second factor when enrolled) and
 * stamps the session. Mount behind `deps.attempts.guard` so that wrong
 * passwords count toward the lockout. Throws AuthenticationError (401) or
 * MfaRequiredError (401) on a wrong or missing credential.
 */
export async function confirmRecentAuth(
  deps: RouteDeps,
  req: Request,
  _res: Response,
  input: { password: unknown; totp?: unknown },
): Promise<void> {
  const who = req.user as Express.User;
  const user = await findUser(deps.pool, who.userId);
  const by = whoOf(req);
  const refused = (code: string) =>
    record(deps.pool, by, {
      tenantId: null,
      action: 'admin.reauth',
      resource: { type: 'user', id: who.userId },
      outcome: 'failure',
      details: {},
      code,
    });
  const password = typeof input.password === 'string' ? input.password : '';
  if (
    !user ||
    password === '' ||
    password.length > 256 ||
    !(await verifyPassword(user.password_hash, password))
  ) {
    await refused('wrong_password');
    throw new AuthenticationError('The password is incorrect.');
  }
  await checkSecondFactor(deps.pool, user, input.totp, by);
  req.session.reauthAt = Date.now();
  await record(deps.pool, by, {
    tenantId: null,
    action: 'admin.reauth',
    resource: { type: 'user', id: who.userId },
    outcome: 'success',
    details: {},
  });
}
