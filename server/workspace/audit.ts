// One audit event per change to workspace content, recorded in the unit of
// work so it commits (or rolls back) with the change itself.
//
// Details say which fields changed, from what to what. Long text (a note body
// can be 100,000 characters) is recorded as its length and SHA-256 instead of
// verbatim: the audit log is append-only and sealed in a hash chain, so a copy
// of every body ever written would make it a second, undeletable copy of the
// workspace. The hash still proves which text was there.
import { createHash } from 'node:crypto';
import { changes } from '../../audit/event.ts';
import type { UnitOfWork } from '../../tenancy/unit-of-work.ts';
import type { Actor } from './actor.ts';

export const VERBATIM_LIMIT = 1000;

function auditValue(value: unknown): unknown {
  if (typeof value !== 'string' || value.length <= VERBATIM_LIMIT) return value;
  return { length: value.length, sha256: createHash('sha256').update(value, 'utf8').digest('hex') };
}

function auditable(row: Record<string, unknown>, fields: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of fields) out[f] = auditValue(row[f]);
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
  uow.audit({
    actor: by.actor,
    action,
    resource,
    outcome: 'success',
    context: by.context,
    details: {
      ...by.details,
      ...extra,
      changes: changes(auditable(before, fields), auditable(after, fields), fields),
    },
  });
}
