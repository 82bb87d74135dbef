// CSRF: a token sent back as the X-CSRF-Token header (API) or the _csrf form
// field (pages), checked on every state-changing request that a cookie could
// authenticate. Two kinds, by who is asking:
// - signed in: a synchronizer token kept in the session (csrf-sync);
// - anonymous (sign-in, registration, first setup, the MFA code step): an
//   HMAC, under a key derived from the session secret, of a random value in
//   the enclave.csrf cookie (a signed double submit). Nothing is stored on the
//   server, so a visitor who only looks at the sign-in page, or a script that
//   GETs /api/v1/csrf in a loop, costs no session in Redis. A session is
//   stored only once it holds something: a sign-in, or a pending MFA step.
// Exempt: requests with an API token (no cookie is involved), and JSON
// requests that carry no session cookie at all (a first sign-in from a script;
// a cross-site form cannot send JSON without a CORS preflight, which we never grant).
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { csrfSync } from 'csrf-sync';
import type { Request, RequestHandler } from 'express';
import { CsrfError } from '../app-errors.ts';
import { hasBearer, hasSessionCookie } from './session-middleware.ts';

export const CSRF_COOKIE = 'enclave.csrf';
const COOKIE_VALUE = /^[A-Za-z0-9_-]{43}$/;
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

const sync = csrfSync({
  getTokenFromRequest: (req) => {
    const header = req.headers['x-csrf-token'];
    if (typeof header === 'string') return header;
    const body = req.body as { _csrf?: unknown } | undefined;
    return typeof body?._csrf === 'string' ? body._csrf : undefined;
  },
});

const exempt = (req: Request) =>
  hasBearer(req) || (!hasSessionCookie(req) && req.is('application/json') === 'application/json');

/** A signed-in session: its own synchronizer token. Anyone else: the stateless one. */
const signedIn = (req: Request) => Boolean(req.user && req.session);

/** The anonymous-token key and the cookie value of each request being handled. */
interface Anonymous {
  key: Buffer;
  cookie: string | undefined;
}
const anonymous = new WeakMap<Request, Anonymous>();

/** Checks the token of every unsafe request; makes csrfToken() work for the rest of the request. */
export function csrfProtection(secret: string): RequestHandler {
  // Its own key: a form token must not help forge a session cookie, nor the other way round.
  const key = createHmac('sha256', secret).update('enclave csrf: anonymous form token').digest();
  return (req, _res, next) => {
    const state: Anonymous = { key, cookie: cookieValue(req) };
    anonymous.set(req, state);
    if (SAFE_METHODS.has(req.method) || exempt(req)) return next();
    const valid = signedIn(req) ? sync.isRequestValid(req) : anonymousValid(req, state);
    next(valid ? undefined : new CsrfError());
  };
}

/**
 * The form token for this request: the session's (made on first use, and the
 * session is then saved), or for an anonymous visitor a stateless one (its
 * cookie is set if the browser has none yet).
 */
export function csrfToken(req: Request): string {
  if (signedIn(req)) return sync.generateToken(req, false);
  const state = anonymous.get(req);
  if (!state) throw new Error('csrfToken() before csrfProtection');
  if (!state.cookie) {
    state.cookie = randomBytes(32).toString('base64url');
    // Whatever lasts as long as the browser does: the value is worthless without the server's key.
    req.res?.cookie(CSRF_COOKIE, state.cookie, {
      httpOnly: true,
      sameSite: 'lax',
      secure: req.secure,
      path: '/',
    });
  }
  return anonymousToken(state.key, state.cookie);
}

function anonymousToken(key: Buffer, cookie: string): string {
  return createHmac('sha256', key).update(cookie).digest('base64url');
}

function anonymousValid(req: Request, state: Anonymous): boolean {
  const sent = sync.getTokenFromRequest(req);
  if (!state.cookie || typeof sent !== 'string') return false;
  const expected = Buffer.from(anonymousToken(state.key, state.cookie));
  const given = Buffer.from(sent);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

function cookieValue(req: Request): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [name, value] = part.trim().split('=', 2);
    if (name === CSRF_COOKIE && value && COOKIE_VALUE.test(value)) return value;
  }
  return undefined;
}
