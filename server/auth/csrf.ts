// CSRF: a synchronizer token kept in the session (csrf-sync), sent back as the
// X-CSRF-Token header (API) or the _csrf form field (pages). Checked on every
// state-changing request that a session cookie could authenticate. Exempt:
// requests with an API token (no cookie is involved), and JSON requests that
// carry no session cookie at all (a first sign-in from a script; a cross-site
// form cannot send JSON without a CORS preflight, which we never grant).
import { csrfSync } from 'csrf-sync';
import type { RequestHandler } from 'express';
import { CsrfError } from '../errors.ts';
import { hasBearer, hasSessionCookie } from './session-middleware.ts';

const sync = csrfSync({
  getTokenFromRequest: (req) => {
    const header = req.headers['x-csrf-token'];
    if (typeof header === 'string') return header;
    const body = req.body as { _csrf?: unknown } | undefined;
    return typeof body?._csrf === 'string' ? body._csrf : undefined;
  },
  skipCsrfProtection: (req) =>
    hasBearer(req) || (!hasSessionCookie(req) && req.is('application/json') === 'application/json'),
});

export const csrfProtection: RequestHandler = (req, res, next) => {
  sync.csrfSynchronisedProtection(req, res, (err?: unknown) => next(err ? new CsrfError() : undefined));
};

/** The session's token, made on first use (the session is then saved). */
export function csrfToken(req: Parameters<typeof sync.generateToken>[0]): string {
  return sync.generateToken(req, false);
}
