// Who may reach what: every access guard of the HTTP layer, API and pages, in
// one place. Workspace routes get `req.workspace`, the tenant unit of work bound
// to the caller's own tenant: the only way a handler reaches tenant data.
// Auditors and admins never get one.
//
// Two shapes: middleware (RequestHandler, for a route's guard list) and
// `require…(req)` functions that return the principal or throw (for page
// handlers that need the principal in hand).
import type { Request, RequestHandler } from 'express';
import type { RunOptions, TenantContext, UnitOfWork } from '../../tenancy/unit-of-work.ts';
import type { Role } from '../accounts/users-sql.ts';
import { ForbiddenError, LoginRequiredError, MfaEnrolmentRequiredError } from '../app-errors.ts';
import { withReadAudit } from '../http/read-audit.ts';

declare global {
  namespace Express {
    interface Request {
      workspace?: <T>(fn: (uow: UnitOfWork) => Promise<T>, options?: RunOptions) => Promise<T>;
    }
  }
}

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);

// --- Signed in, role, scope -------------------------------------------------

export const requireLogin: RequestHandler = (req, _res, next) => {
  next(req.user ? undefined : new LoginRequiredError());
};

export function requireRole(...roles: Role[]): RequestHandler {
  return (req, _res, next) => {
    if (!req.user) return next(new LoginRequiredError());
    if (!roles.includes(req.user.role)) return next(new ForbiddenError('Your account cannot use this.'));
    next();
  };
}

/** Account management needs a browser session: a token cannot manage the account (see bearer.ts). */
export const requireSessionLogin: RequestHandler = (req, _res, next) => {
  if (!req.user) return next(new LoginRequiredError());
  if (req.user.via !== 'session') {
    return next(new ForbiddenError('API tokens cannot manage the account. Sign in to do this.'));
  }
  next();
};

// --- The workspace ------------------------------------------------------------

export function requireWorkspace(tenants: TenantContext): RequestHandler {
  return (req, _res, next) => {
    const user = req.user;
    if (!user) return next(new LoginRequiredError());
    if (user.role !== 'user' || !user.tenantId) {
      return next(new ForbiddenError('Workspace content is only open to its owner.'));
    }
    if (user.scope !== 'write' && !SAFE.has(req.method))
      return next(new ForbiddenError('This API token is read-only.'));
    const tenantId = user.tenantId;
    // With AUDIT_READS on, a read also records itself in the same unit of work (read-audit.ts).
    req.workspace = (fn, options) => tenants.run(tenantId, withReadAudit(req, fn), options);
    next();
  };
}

/** The unit of work that requireWorkspace attached; a route without that guard fails closed. */
export function workspaceOf(req: Express.Request): NonNullable<Express.Request['workspace']> {
  if (!req.workspace) throw new ForbiddenError('Workspace content is only open to its owner.');
  return req.workspace;
}

/** Workspace pages: anonymous visitors are sent to sign in; tokens, auditors and admins get the usual 401/403. */
export function workspacePageGuard(tenants: TenantContext): RequestHandler[] {
  const workspace = requireWorkspace(tenants);
  return [
    (req, res, next) => {
      if (!req.user && (req.method === 'GET' || req.method === 'HEAD')) return res.redirect(303, '/login');
      requirePageUser(req);
      next();
    },
    workspace,
  ];
}

// --- Pages: browser sessions only ---------------------------------------------

/** The signed-in person, for pages: browser sessions only (API tokens are for /api). */
export function signedIn(req: Request): Express.User | undefined {
  return req.user?.via === 'session' ? req.user : undefined;
}

/** For form posts: the signed-in person, or a 401/403 page. */
export function requirePageUser(req: Request): Express.User {
  const user = signedIn(req);
  if (user) return user;
  throw req.user ? new ForbiddenError('Pages need a signed-in browser session.') : new LoginRequiredError();
}

/** For the account page's token forms: a signed-in workspace owner. */
export function requirePageOwner(req: Request): Express.User {
  const user = requirePageUser(req);
  if (user.role !== 'user') throw new ForbiddenError('Only workspace owners have API tokens.');
  return user;
}

/** Who may change the password over the API: a browser session, never a token (403). */
export function passwordChanger(req: Request): Express.User {
  const user = req.user as Express.User;
  if (user.via !== 'session') throw new ForbiddenError('Sign in with your password to change it.');
  return user;
}

/** The signed-in owner who may delete their account, or 403. */
export function deletingOwner(req: Request): Express.User & { tenantId: string } {
  const user = req.user as Express.User;
  if (user.via !== 'session') {
    throw new ForbiddenError(
      'Deleting an account needs a signed-in session and your password; API tokens cannot do it.',
    );
  }
  if (user.role !== 'user' || !user.tenantId) {
    throw new ForbiddenError('Only a workspace owner can delete their account here.');
  }
  return user as Express.User & { tenantId: string };
}

// --- Auditors -----------------------------------------------------------------

const noStore: RequestHandler = (_req, res, next) => {
  res.setHeader('Cache-Control', 'no-store');
  next();
};

/** Auditors only, and nothing they read is kept by a cache. */
export const auditorOnly: RequestHandler[] = [requireLogin, requireRole('auditor'), noStore];

/** The /audit pages: anonymous visitors are sent to sign in, anyone else signed in gets 403. */
export const auditorPageGuard: RequestHandler = (req, res, next) => {
  const user = signedIn(req);
  if (!user) return res.redirect(303, '/login');
  if (user.role !== 'auditor') return next(new ForbiddenError('The audit trail is open to auditors only.'));
  next();
};

// --- Admins ---------------------------------------------------------------------

/**
 * The /admin pages: anonymous visitors are sent to sign in; anyone signed in
 * but not an admin, or signed in with an API token, gets 403. Nothing is
 * kept by a cache.
 */
export const adminPageGuard: RequestHandler = (req, res, next) => {
  const user = signedIn(req);
  if (!user) return res.redirect(303, '/login');
  if (user.role !== 'admin' || user.via !== 'session')
    return next(new ForbiddenError('The admin console is open to admins only.'));
  res.setHeader('Cache-Control', 'no-store');
  next();
};

// --- Two-step sign-in (MFA) ---------------------------------------------------

/** Two-step sign-in is managed from a browser session, never with an API token. */
export const mfaSessionOnly: RequestHandler = (req, _res, next) => {
  next(
    req.user?.via === 'session'
      ? undefined
      : new ForbiddenError(
          'Two-step sign-in is managed from a signed-in browser session, not with an API token.',
        ),
  );
};

// Required MFA (admins and auditors can be made to need it): a signed-in
// principal whose account requires a second factor but has none enrolled may
// only enrol, look at who they are, fetch a CSRF token and sign out. Anything
// else is refused until enrolment is done. Runs after the session middleware,
// before any router; fails closed: a path not on the list is refused.

interface OpenRoute {
  methods: ReadonlySet<string> | 'any';
  path: RegExp;
}

const READ = new Set(['GET', 'HEAD']);
const FORM = new Set(['GET', 'HEAD', 'POST']);
const POST = new Set(['POST']);

/** What a principal who still has to enrol may reach. Express matches paths case-insensitively, so do we. */
export const OPEN_DURING_ENROLMENT: readonly OpenRoute[] = [
  { methods: 'any', path: /^\/api\/v1\/mfa(\/[\w-]*)?\/?$/i },
  { methods: READ, path: /^\/api\/v1\/me\/?$/i },
  { methods: READ, path: /^\/api\/v1\/csrf\/?$/i },
  { methods: READ, path: /^\/api\/v1\/openapi\.json$/i }, // public to everyone anyway
  { methods: POST, path: /^\/api\/v1\/auth\/logout\/?$/i },
  // The pages for the same things, and what those pages load.
  { methods: FORM, path: /^\/account\/mfa(\/[\w-]*)?\/?$/i },
  { methods: POST, path: /^\/logout\/?$/i },
  { methods: READ, path: /^\/(assets|static)\/[\w./-]+$/i },
  { methods: READ, path: /^\/favicon\.ico$/i },
];

export function isOpenDuringEnrolment(method: string, path: string): boolean {
  return OPEN_DURING_ENROLMENT.some(
    (r) => (r.methods === 'any' || r.methods.has(method.toUpperCase())) && r.path.test(path),
  );
}

export const requireMfaEnrolment: RequestHandler = (req, _res, next) => {
  const user = req.user;
  if (!user?.mfaRequired || user.mfaEnabled) return next();
  if (isOpenDuringEnrolment(req.method, req.path)) return next();
  next(new MfaEnrolmentRequiredError());
};
