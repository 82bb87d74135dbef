// One audit event per change to workspace content, recorded in the unit of
// work so it commits (or rolls back) with the change itself.
//
// Details say which fields changed, from what to what. Auditors read these
// events, and the trail is append-only and sealed in a hash chain: whatever
// text goes in stays there, after the note and even the account are deleted.
// So content fields (a note's title, body and tags, a task's title: every
// field but the few named in NOT_CONTENT) are recorded as their length and
// SHA-256 by default (AUDIT_CONTENT=hash): an auditor sees that the title
// changed, and how long it is, not what it says; the hash still proves which
// text was there to anyone who has the text. AUDIT_CONTENT=full records text
// verbatim, as a deliberate choice, except text over 1,000 characters (a note
// body may be 100,000), which is still its length and SHA-256 so the trail
// does not become a second, undeletable copy of every workspace.
import { createHash } from 'node:crypto';
import type { RequestHandler } from 'express';
import { changes } from '../../kernel/audit-inbox.ts';
import type { UnitOfWork } from '../../tenancy/unit-of-work.ts';
import type { Actor, AuditContentMode } from './actor.ts';

declare global {
  namespace Express {
    interface Locals {
      /** AUDIT_CONTENT, for the writers of this request (see actorOf in actor.ts). */
      auditContent?: AuditContentMode;
    }
  }
}

/** Hands AUDIT_CONTENT to every request (server/web.ts), as auditReads does AUDIT_READS. */
export function auditContent(mode: AuditContentMode): RequestHandler {
  return (_req, res, next) => {
    res.locals.auditContent = mode;
    next();
  };
}

/** With AUDIT_CONTENT=full, text up to this many characters is recorded verbatim. */
export const VERBATIM_LIMIT = 1000;

/**
 * Fields that say nothing of what the person wrote: always verbatim. Any other
 * field (title, body, tags, and whatever a later change adds) is content.
 */
export const NOT_CONTENT: ReadonlySet<string> = new Set(['status', 'dueDate', 'noteId', 'version']);

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

/** Text as { length (characters), sha256 (of its UTF-8) }; a list (tags) as { length (items), sha256 (of its JSON) }. */
export function contentDigest(value: unknown): unknown {
  if (typeof value === 'string') return { length: value.length, sha256: sha256(value) };
  if (Array.isArray(value)) return { length: value.length, sha256: sha256(JSON.stringify(value)) };
  if (value === null || value === undefined) return value;
  return { sha256: sha256(JSON.stringify(value)) };
}

function auditValue(field: string, value: unknown, mode: AuditContentMode): unknown {
  if (NOT_CONTENT.has(field) || value === null || value === undefined) return value;
  if (mode === 'hash') return contentDigest(value);
  if (typeof value !== 'string' || value.length <= VERBATIM_LIMIT) return value;
  return contentDigest(value);
}

function auditable(
  row: Record<string, unknown>,
  fields: readonly string[],
  mode: AuditContentMode,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of fields) out[f] = auditValue(f, row[f], mode);
  return out;
}

export function recordChange(
  uow: UnitOfWork,
  by: Actor,
  action: string,
  resource: { type: 'note' | 'task'; id: number },
  before: Record<string, unknown>,
  after: Record<string, unknown>,
  fields: readonly string[],
  extra: Record<string, unknown> = {},
): void {
  const mode = by.auditContent ?? 'hash';
  uow.audit({
    actor: by.actor,
    action,
    resource,
    outcome: 'success',
    context: by.context,
    details: {
      ...by.details,
      ...extra,
      changes: changes(auditable(before, fields, mode), auditable(after, fields, mode), fields),
    },
  });
}
