// `Authorization: Bearer <API token>` for scripts. Runs after the session
// middleware, which skips any request carrying a bearer header (no session is
// loaded, no cookie is set), and before CSRF, which exempts such requests (a
// browser never adds this header to a cross-site request). So a request with
// both a cookie and a token is judged by the token alone: the cookie is not
// even read.
//
// Where a token works, and where it does not:
// - only under /api/: a page is for a person in a browser, and a token sent to
//   one is refused (401) rather than taken as a login;
// - never on account management (signing in or out, CSRF, sessions, tokens,
//   password, MFA, admin): a leaked token must not be able to mint more tokens,
//   outlive its own revocation, end the owner's sessions or lock the owner out.
//   Those need a person signed in with a session, whatever the token's scope.
//   The routes say so too (requireSessionLogin in guards.ts, or a `via` check), so a
//   new account route is covered even before this list learns its name.
// - read-only tokens only read: requireWorkspace (guards.ts) refuses unsafe
//   methods for scope 'read'.
// A token reaches its owner's tenant only: the principal's tenantId comes from
// the owner's row, and requireWorkspace binds the unit of work to it; whether
// that tenant is still active is the unit of work's check, as for sessions.
import type { RequestHandler } from 'express';
import type { Pool } from '../../kernel/db.ts';
import { authenticate } from '../accounts/api-tokens.ts';
import { AuthenticationError, ForbiddenError } from '../app-errors.ts';
import type { Principal } from './principal.ts';

// Case-insensitive like Express's own routing, so `/API/...` cannot slip past.
const API_PATH = /^\/api(\/|$)/i;
const ACCOUNT_PATH = /^\/api\/(v\d+\/)?((auth|csrf|sessions|tokens|account|mfa|admin|setup)(\/|$)|me\/)/i;
const BEARER = /^Bearer[ \t]+(\S+)[ \t]*$/i;
// Wider than session-middleware's hasBearer: a bare `Bearer` (HTTP trims the space after it) also claims
// to be a token, and is refused like any bad one rather than passed on as anonymous.
const CLAIMS_BEARER = /^Bearer(\s|$)/i;

const INVALID = 'This API token is not valid or was revoked.';
const CHALLENGE = 'Bearer realm="enclave", error="invalid_token"';

export function isApiPath(path: string): boolean {
  return API_PATH.test(path);
}

export function isAccountPath(path: string): boolean {
  return ACCOUNT_PATH.test(path);
}

/** The token in an Authorization header, or undefined when the header is not one well-formed bearer credential. */
export function bearerSecret(header: string | undefined): string | undefined {
  return BEARER.exec(header ?? '')?.[1];
}

export function bearerAuth(pool: Pool): RequestHandler {
  return async (req, res, next) => {
    if (!CLAIMS_BEARER.test(req.headers.authorization ?? '')) return next();
    if (!isApiPath(req.path)) {
      return next(
        new AuthenticationError('API tokens only work on /api/ routes. Sign in to use the website.'),
      );
    }
    if (isAccountPath(req.path)) {
      return next(
        new ForbiddenError(
          'API tokens cannot manage the account (sign-in, sessions, tokens, password, MFA). Sign in to do this.',
        ),
      );
    }
    const secret = bearerSecret(req.headers.authorization);
    const found = secret ? await authenticate(pool, secret) : undefined;
    if (!found) {
      res.setHeader('WWW-Authenticate', CHALLENGE);
      return next(new AuthenticationError(INVALID));
    }
    const principal: Principal = {
      userId: found.userId,
      email: found.email,
      displayName: found.displayName,
      role: found.role,
      tenantId: found.tenantId,
      via: 'token',
      tokenId: found.tokenId,
      scope: found.scope,
      mfaEnabled: found.mfaEnabled,
      mfaRequired: found.mfaRequired,
    };
    req.user = principal;
    next();
  };
}
