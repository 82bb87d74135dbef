// The cookie session (express-session) and passport's view of it. Requests
// that carry an API token skip all of this: they never get a cookie.
import type { RequestHandler } from 'express';
import session from 'express-session';
import { SessionsUnavailableError } from '../app-errors.ts';
import type { createPassport } from './passport.ts';

export const SESSION_COOKIE = 'enclave.sid';

export interface SessionOptions {
  store: session.Store;
  secret: string;
  idleSeconds: number;
  passport: ReturnType<typeof createPassport>;
}

export function hasBearer(req: { headers: { authorization?: string | undefined } }): boolean {
  return /^Bearer\s/i.test(req.headers.authorization ?? '');
}

export function hasSessionCookie(req: { headers: { cookie?: string | undefined } }): boolean {
  return (req.headers.cookie ?? '').split(';').some((c) => c.trim().startsWith(`${SESSION_COOKIE}=`));
}

export function sessionMiddleware(options: SessionOptions): RequestHandler[] {
  const cookieSession = session({
    name: SESSION_COOKIE,
    store: options.store,
    secret: options.secret,
    resave: false,
    saveUninitialized: false,
    rolling: true, // the idle timeout restarts with each request
    unset: 'destroy',
    cookie: {
      httpOnly: true,
      sameSite: 'lax',
      secure: 'auto', // Secure whenever the request came over TLS (see TRUST_PROXY)
      maxAge: options.idleSeconds * 1000,
      path: '/',
    },
  });
  // A store failure (Redis down) is one typed error, answered with 503.
  const withStore: RequestHandler = (req, res, next) => {
    if (hasBearer(req)) return next();
    cookieSession(req, res, (err?: unknown) => next(err ? new SessionsUnavailableError(err) : undefined));
  };
  const passportSession = options.passport.session();
  const withLogin: RequestHandler = (req, res, next) => {
    if (hasBearer(req)) return next();
    passportSession(req, res, (err?: unknown) => next(err ? new SessionsUnavailableError(err) : undefined));
  };
  return [withStore, options.passport.initialize(), withLogin];
}

/** passport's callback APIs as promises: logIn and logOut both regenerate the session id. */
export function logIn(req: Express.Request, user: Express.User): Promise<void> {
  return new Promise((resolve, reject) =>
    req.logIn(user, { session: true, keepSessionInfo: false }, (err) =>
      err ? reject(new SessionsUnavailableError(err)) : resolve(),
    ),
  );
}

export function logOut(req: Express.Request): Promise<void> {
  return new Promise((resolve, reject) =>
    req.logOut({ keepSessionInfo: false }, (err) =>
      err ? reject(new SessionsUnavailableError(err)) : resolve(),
    ),
  );
}
