// Statements the auditor's search reads with (control.audit_log, the sealed
// trail; control.audit_checkpoints; control.audit_inbox for what is not sealed
// yet), as small pure functions: values in, { text, values } out.
import type { Statement } from '../kernel/db.ts';

export interface EntryFilter {
  /** One chain (`t_<id>` or `platform`), or every tenant and platform chain. */
  chain: string | null;
  /** Matches actor.type when `actorIsType`, else actor.id. */
  actor: string | null;
  actorIsType: boolean;
  /** Exact action, or a prefix when `actionIsPrefix`. */
  action: string | null;
  actionIsPrefix: boolean;
  outcome: 'success' | 'failure' | null;
  /** occurred_at >= from, <= to (ISO 8601 text, cast by PostgreSQL with its microseconds). */
  from: string | null;
  to: string | null;
}

/** Keyset position: the (occurred_at, chain, seq) of the last entry shown. */
export interface EntryCursor {
  at: string;
  chain: string;
  seq: number;
}

export interface EntryRow {
  chain: string;
  seq: number;
  at: string;
  entry: Buffer;
  hash: Buffer;
}

/**
 * One page of sealed entries, newest first, by (occurred_at, chain, seq)
 * through audit_log_time_idx (0007): the scan stops once `limit` rows match.
 * Each visited row's bytes are parsed once (a lateral), only for the filters
 * on fields inside the entry. Pruned entries (payload gone) cannot match and
 * are left out; the registry chain holds checkpoints, not events.
 */
export const selectEntries = (f: EntryFilter, cursor: EntryCursor | null, limit: number): Statement => ({
  text: `SELECT l.chain, l.seq, l.entry, l.hash,
                to_char(l.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS at
           FROM control.audit_log l
           CROSS JOIN LATERAL (SELECT convert_from(l.entry, 'UTF8')::jsonb AS j) e
          WHERE l.chain <> 'registry' AND l.entry IS NOT NULL
            AND ($1::text IS NULL OR l.chain = $1::text)
            AND ($2::timestamptz IS NULL OR l.occurred_at >= $2::timestamptz)
            AND ($3::timestamptz IS NULL OR l.occurred_at <= $3::timestamptz)
            AND ($4::timestamptz IS NULL OR (l.occurred_at, l.chain, l.seq) < ($4::timestamptz, $5::text, $6::bigint))
            AND ($7::text IS NULL OR (CASE WHEN $8::boolean THEN e.j -> 'actor' ->> 'type' ELSE e.j -> 'actor' ->> 'id' END) = $7::text)
            AND ($9::text IS NULL OR (CASE WHEN $10::boolean THEN starts_with(e.j ->> 'action', $9::text) ELSE e.j ->> 'action' = $9::text END))
            AND ($11::text IS NULL OR e.j -> 'outcome' ->> 'result' = $11::text)
          ORDER BY l.occurred_at DESC, l.chain DESC, l.seq DESC
          LIMIT $12`,
  values: [
    f.chain,
    f.from,
    f.to,
    cursor?.at ?? null,
    cursor?.chain ?? null,
    cursor?.seq ?? null,
    f.actor,
    f.actorIsType,
    f.action,
    f.actionIsPrefix,
    f.outcome,
    limit,
  ],
});

/** Events written but not sealed yet (the inbox is a queue), for one chain or all. */
export const countPending = (chain: string | null): Statement => ({
  text: `SELECT count(*)::int AS n FROM control.audit_inbox
          WHERE $1::text IS NULL
             OR ($1::text = 'platform' AND tenant_id IS NULL)
             OR ('t_' || tenant_id) = $1::text`,
  values: [chain],
});

export interface CheckpointRow {
  chain: string;
  size: number;
  checkpoint: Buffer;
  signature: Buffer;
}

/**
 * The latest checkpoint of each chain (or of one), chains in order after
 * `after`, at most `limit`: a skip scan over the primary key finds the
 * chains (one probe each), then one probe per chain for its newest checkpoint.
 */
export const selectLatestCheckpoints = (
  chain: string | null,
  after: string | null,
  limit: number,
): Statement => ({
  text: `WITH RECURSIVE c(chain) AS (
           (SELECT chain FROM control.audit_checkpoints
             WHERE ($1::text IS NULL OR chain = $1::text) AND ($2::text IS NULL OR chain > $2::text)
             ORDER BY chain LIMIT 1)
           UNION ALL
           SELECT (SELECT k.chain FROM control.audit_checkpoints k
                    WHERE k.chain > c.chain AND ($1::text IS NULL OR k.chain = $1::text)
                    ORDER BY k.chain LIMIT 1)
             FROM c WHERE c.chain IS NOT NULL)
         SELECT k.chain, k.size, k.checkpoint, k.signature
           FROM (SELECT chain FROM c WHERE chain IS NOT NULL LIMIT $3) c
           CROSS JOIN LATERAL (
             SELECT chain, size, checkpoint, signature FROM control.audit_checkpoints x
              WHERE x.chain = c.chain ORDER BY size DESC LIMIT 1) k
          ORDER BY k.chain`,
  values: [chain, after, limit],
});

/** Whether a tenant id names a tenant (deleted ones included: their trail outlives them). */
export const tenantKnown = (tenantId: string): Statement => ({
  text: 'SELECT 1 FROM control.tenants WHERE id = $1',
  values: [tenantId],
});
