// Who may reach what. Workspace routes get `req.workspace`, the tenant unit of
// work bound to the caller's own tenant: the only way a handler reaches tenant
// data. Auditors and admins never get one.
import type { RequestHandler } from 'express';
import type { RunOptions, TenantContext, UnitOfWork } from '../../tenancy/unit-of-work.ts';
import type { Role } from '../accounts/users-sql.ts';
import { ForbiddenError, LoginRequiredError } from '../errors.ts';
import { withReadAudit } from '../read-audit.ts';

declare global {
  namespace Express {
    interface Request {
      workspace?: <T>(fn: (uow: UnitOfWork) => Promise<T>, options?: RunOptions) => Promise<T>;
    }
  }
}

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);

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

/** Only a token with write scope (or a session) may change anything. */
export const requireWriteScope: RequestHandler = (req, _res, next) => {
  if (req.user && req.user.scope !== 'write' && !SAFE.has(req.method)) {
    return next(new ForbiddenError('This API token is read-only.'));
  }
  next();
};

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
