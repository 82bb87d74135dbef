// Who a request speaks for and where it came from, as the audit trail records
// it: handed by the routes to every audited service (accounts, sessions, MFA,
// tokens, the auditor's own searches). Workspace services get the same through
// server/workspace/actor.ts.
import type { Request } from 'express';
import type { AuditActor, AuditBy, AuditContext } from '../../kernel/audit-inbox.ts';
import type { Role } from '../accounts/users-sql.ts';

/** Where the request came from: client address (per TRUST_PROXY), user agent, request id. */
export function contextOf(req: Request): AuditContext {
  return {
    ip: req.ip ?? null,
    userAgent: req.get('user-agent') ?? null,
    requestId: req.res?.locals.requestId ?? null,
  };
}

/** The actor type of a person by their role: owners are `user`s, the others their role. */
export function auditActorOf(user: { userId: string; role: Role; via?: 'session' | 'token' }): AuditActor {
  if (user.via === 'token') return { type: 'token', id: user.userId };
  return { type: user.role === 'user' ? 'user' : user.role, id: user.userId };
}

/**
 * The signed-in person behind the request (or `user`, e.g. someone signing in
 * right now; null: nobody yet), with their own workspace as the chain;
 * anonymous without one.
 */
export function whoOf(
  req: Request,
  user?: { userId: string; role: Role; tenantId: string | null; via?: 'session' | 'token' } | null,
): AuditBy {
  const principal = user === undefined ? req.user : user;
  const context = contextOf(req);
  if (!principal) return { actor: { type: 'anonymous', id: null }, context, tenantId: null };
  const tokenId = principal === req.user ? req.user?.tokenId : undefined;
  return {
    actor: auditActorOf(principal),
    context,
    tenantId: principal.tenantId,
    // Not `tokenId`: the audit writer redacts keys that look like secrets (see workspace/actor.ts).
    ...(tokenId ? { details: { credentialId: tokenId } } : {}),
  };
}
