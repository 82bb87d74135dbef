// The shape of one audit event and the one statement that writes it to the
// inbox. Details carry changed fields (old and new) but never a secret: the
// writer drops any key that looks like one.
import { type Client, type Pool, run, type Statement } from './db.ts';

export type ActorType = 'user' | 'admin' | 'auditor' | 'token' | 'job' | 'system' | 'anonymous';

export interface AuditActor {
  type: ActorType;
  id?: string | null;
}

export interface AuditContext {
  ip?: string | null;
  userAgent?: string | null;
  requestId?: string | null;
}

/**
 * Who did something, from where: what every audited service is handed by its
 * caller (a request, the CLI, a job). `tenantId` is the actor's own workspace,
 * the chain for events about the actor's own account (null: the platform
 * chain); `details` are merged into every event it writes (an API token's id).
 */
export interface AuditBy {
  actor: AuditActor;
  context?: AuditContext;
  tenantId?: string | null;
  details?: Record<string, unknown>;
}

/** Work the platform does by itself (no person, no command). */
export const SYSTEM: AuditBy = { actor: { type: 'system', id: null } };

/** What a service says happened; who did it and from where come from an AuditBy. */
export type AuditEventOf = Omit<AuditEvent, 'tenantId' | 'actor' | 'context'> & { tenantId?: string | null };

/** An event by `by`: its context and details merged in, its tenant unless the event names one. */
export function eventBy(by: AuditBy, event: AuditEventOf): AuditEvent {
  return {
    ...event,
    tenantId: event.tenantId === undefined ? (by.tenantId ?? null) : event.tenantId,
    actor: by.actor,
    ...(by.context ? { context: by.context } : {}),
    details: { ...by.details, ...event.details },
  };
}

export interface AuditEvent {
  tenantId: string | null;
  actor: AuditActor;
  action: string; // e.g. "note.update", "auth.login", "tenant.drop"
  resource?: { type: string; id?: string | number | null };
  outcome: 'success' | 'failure';
  code?: string | null;
  context?: AuditContext;
  details?: Record<string, unknown>;
}

const SECRET_KEY = /pass(word)?|secret|token|cookie|totp|otp|recovery|authorization|csrf/i;

/** A copy without secret-named keys, at any depth. */
export function scrub(value: unknown, depth = 0): unknown {
  if (depth > 6 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => scrub(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value))
    out[key] = SECRET_KEY.test(key) ? '[redacted]' : scrub(v, depth + 1);
  return out;
}

/** `{ field: { from, to } }` for every field whose value differs. */
export function changes(
  before: Record<string, unknown>,
  after: Record<string, unknown>,
  fields: readonly string[],
) {
  const out: Record<string, { from: unknown; to: unknown }> = {};
  for (const f of fields) {
    const a = before[f] instanceof Date ? (before[f] as Date).toISOString() : before[f];
    const b = after[f] instanceof Date ? (after[f] as Date).toISOString() : after[f];
    if (JSON.stringify(a) !== JSON.stringify(b)) out[f] = { from: a ?? null, to: b ?? null };
  }
  return out;
}

export const insertAuditEvent = (e: AuditEvent): Statement => ({
  text: `INSERT INTO control.audit_inbox
           (tenant_id, actor_type, actor_id, action, resource_type, resource_id, outcome, outcome_code,
            ip, user_agent, request_id, details)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
  values: [
    e.tenantId,
    e.actor.type,
    e.actor.id ?? null,
    e.action,
    e.resource?.type ?? null,
    e.resource?.id == null ? null : String(e.resource.id),
    e.outcome,
    e.code ?? null,
    e.context?.ip ?? null,
    e.context?.userAgent?.slice(0, 400) ?? null,
    e.context?.requestId ?? null,
    JSON.stringify(scrub(e.details ?? {})),
  ],
});

/**
 * Writes one event by `by` to the inbox: on a client, inside its transaction
 * (it commits or rolls back with the change); on a pool, on its own (a refusal
 * that must be recorded although the change never happened).
 */
export async function record(db: Pool | Client, by: AuditBy, event: AuditEventOf): Promise<void> {
  await run(db, insertAuditEvent(eventBy(by, event)));
}
