// The objects that become entry and checkpoint bytes, and the chain hash
// (docs/AUDIT-FORMAT.md). Pure functions: the sealer, the export and the
// verifier share them, so the format is written down once in code.
import { createHash } from 'node:crypto';
import type { Canonical } from './canonical.ts';
import { numbersAsStrings } from './canonical.ts';

export const FORMAT_VERSION = 1;
export const PLATFORM_CHAIN = 'platform';
export const REGISTRY_CHAIN = 'registry';

/** hash_0: 32 zero bytes. */
export const ZERO_HASH: Buffer = Buffer.alloc(32);

/** hash_n = SHA-256(hash_{n-1} || entry_bytes_n) */
export function chainHash(prev: Uint8Array, entry: Uint8Array): Buffer {
  if (prev.length !== 32) throw new RangeError(`a chain hash is 32 bytes, got ${prev.length}`);
  return createHash('sha256').update(prev).update(entry).digest();
}

/** The chain of a tenant's events: `t_<tenant id>`. The one place this name is made. */
export function tenantChain(tenantId: string): string {
  return `t_${tenantId}`;
}

/** `t_<tenant id>` for a tenant, `platform` for events without one. */
export function chainOf(tenantId: string | null): string {
  return tenantId === null ? PLATFORM_CHAIN : tenantChain(tenantId);
}

/** UTC with microseconds and `Z`, the form of `at` and `time` (a Date has milliseconds: the rest are zeros). */
export function formatTime(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/** One row of control.audit_inbox as the sealer reads it (audit/chain-sql.ts selectSealable). */
export interface InboxRow {
  id: number;
  tenant_id: string | null;
  actor_type: string;
  actor_id: string | null;
  action: string;
  resource_type: string | null;
  resource_id: string | null;
  outcome: string;
  outcome_code: string | null;
  /** occurred_at in the entry's own form: UTC, microseconds, `Z`. */
  at: string;
  ip: string | null;
  user_agent: string | null;
  request_id: string | null;
  /** jsonb as text, so numbers keep their exact source form. */
  details: string;
}

/** The entry of one inbox row, as it will be canonicalised (field list: docs/AUDIT-FORMAT.md). */
export function entryOf(row: InboxRow, chain: string, seq: number, origin: string): Canonical {
  const details = numbersAsStrings(row.details);
  return {
    v: FORMAT_VERSION,
    origin,
    chain,
    seq,
    id: row.id,
    at: row.at,
    tenant: row.tenant_id,
    actor: { type: row.actor_type, id: row.actor_id },
    action: row.action,
    resource: row.resource_type === null ? null : { type: row.resource_type, id: row.resource_id },
    outcome: { result: row.outcome, code: row.outcome_code },
    where: { ip: row.ip, ua: row.user_agent, request: row.request_id },
    details: details as Canonical,
  };
}

export interface Checkpoint {
  v: number;
  origin: string;
  chain: string;
  size: number;
  head: string; // hex of hash_size
  keyId: string;
  time: string;
}

export function checkpointOf(c: Omit<Checkpoint, 'v'>): Checkpoint {
  return { v: FORMAT_VERSION, ...c };
}

/** The registry chain's record of one tenant or platform checkpoint. */
export function registryEntryOf(
  checkpoint: Checkpoint,
  signature: Buffer,
  seq: number,
  origin: string,
): Canonical {
  return {
    v: FORMAT_VERSION,
    origin,
    chain: REGISTRY_CHAIN,
    seq,
    at: checkpoint.time,
    kind: 'checkpoint',
    checkpoint: { ...checkpoint },
    signature: signature.toString('base64'),
  };
}
