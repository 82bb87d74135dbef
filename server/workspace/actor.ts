// Who made a change, as the audit trail records it: the person (or their API
// token) and where the request came from. Built once per request by the API
// and the pages alike, handed to every workspace service that writes.
import type { Request, Response } from 'express';
import type { AuditActor, AuditContext } from '../../kernel/audit-inbox.ts';
import { LoginRequiredError } from '../app-errors.ts';
import { requestIdOf } from '../http/request-id.ts';

/** AUDIT_CONTENT: `hash` (the default) or `full`. */
export type AuditContentMode = 'hash' | 'full';

export interface Actor {
  readonly actor: AuditActor;
  readonly context: AuditContext;
  /**
   * Merged into the event's details: the API token's id when the change came
   * through one. Named `credentialId` because the audit writer redacts every
   * key that looks like a secret, `tokenId` included; the id is not a secret
   * (it is shown in the token list and used to revoke it).
   */
  readonly details: { credentialId?: string };
  /** AUDIT_CONTENT: how the writers record content fields (change-audit.ts); absent means `hash`. */
  readonly auditContent?: AuditContentMode;
}

export function actorOf(req: Request, res: Response): Actor {
  const user = req.user;
  if (!user) throw new LoginRequiredError();
  const viaToken = user.via === 'token';
  return {
    actor: { type: viaToken ? 'token' : 'user', id: user.userId },
    context: {
      ip: req.ip ?? null,
      userAgent: req.get('user-agent') ?? null,
      requestId: requestIdOf(res),
    },
    details: viaToken && user.tokenId ? { credentialId: user.tokenId } : {},
    auditContent: res.locals.auditContent ?? 'hash',
  };
}
