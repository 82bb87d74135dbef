// Statements on the sealed audit trail (migrations/control/0006_audit_log.sql),
// as small pure functions: values in, { text, values } out.
import type { Statement } from '../kernel/db.ts';

// --- keys and origin ---------------------------------------------------------

export const currentKey = (): Statement => ({
  text: 'SELECT key_id FROM control.audit_keys WHERE retired_at IS NULL',
  values: [],
});

export const listKeys = (): Statement => ({
  text: `SELECT key_id, public_key, created_at, retired_at FROM control.audit_keys
         ORDER BY retired_at IS NULL DESC, created_at DESC, key_id`,
  values: [],
});

export const insertKey = (keyId: string, publicKey: Buffer): Statement => ({
  text: 'INSERT INTO control.audit_keys (key_id, public_key) VALUES ($1, $2)',
  values: [keyId, publicKey],
});

export const retireCurrentKey = (): Statement => ({
  text: 'UPDATE control.audit_keys SET retired_at = now() WHERE retired_at IS NULL',
  values: [],
});

export const selectOrigin = (): Statement => ({
  text: 'SELECT origin FROM control.audit_origin',
  values: [],
});

// --- sealing -----------------------------------------------------------------

/**
 * Inbox rows that are safe to seal, in the order they are sealed.
 *
 * Ids (and even txids) are handed out before commit, so "the rows I can see,
 * by id" is not a safe order: a transaction that took id 5 may commit after
 * the one that took id 6 has been sealed, and 5 would then have to go *before*
 * something already in the chain. The rule used instead: only rows whose
 * transaction id is below the xmin of this statement's snapshot. Every
 * transaction below xmin has finished (committed or rolled back), so their
 * rows are all visible now and no such transaction can ever add another. Any
 * row that appears later has a txid >= this xmin, i.e. it sorts after every
 * row taken now. Ordered by (txid, id) the chain is therefore append-only in
 * a fixed order, and no committed event is ever skipped or left behind.
 *
 * The price: a long-running transaction (anywhere in the cluster) holds xmin
 * back and sealing waits for it, however old the rows behind it are. Request
 * transactions are short; a long migration delays sealing, never loses events.
 *
 * Must run in READ COMMITTED after the audit lock is held, so the snapshot
 * already sees the previous sealer's commit.
 *
 * The xmin is a sub-select (computed once, an InitPlan) so that the bound is
 * an index condition on audit_inbox_seal_order_idx (txid, id): a batch then
 * reads its own rows only, not the whole inbox (0007_audit_indexes.sql).
 */
export const selectSealable = (limit: number): Statement => ({
  text: `SELECT id, tenant_id, actor_type, actor_id, action, resource_type, resource_id, outcome, outcome_code,
                to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS at,
                ip, user_agent, request_id, details::text AS details
           FROM control.audit_inbox
          WHERE txid < (SELECT pg_snapshot_xmin(pg_current_snapshot()))
          ORDER BY txid, id
          LIMIT $1`,
  values: [limit],
});

/** The last (seq, hash) of each named chain that has entries. */
export const selectHeads = (chains: string[]): Statement => ({
  text: `SELECT h.chain, h.seq, h.hash
           FROM unnest($1::text[]) AS c(chain)
           CROSS JOIN LATERAL (
             SELECT chain, seq, hash FROM control.audit_log l
              WHERE l.chain = c.chain ORDER BY seq DESC LIMIT 1) h`,
  values: [chains],
});

export interface NewEntry {
  chain: string;
  seq: number;
  entry: Buffer;
  hash: Buffer;
  occurredAt: string;
  inboxId: number | null;
}

export const insertEntries = (rows: NewEntry[]): Statement => ({
  text: `INSERT INTO control.audit_log (chain, seq, entry, hash, occurred_at, inbox_id)
         SELECT * FROM unnest($1::text[], $2::bigint[], $3::bytea[], $4::bytea[], $5::timestamptz[], $6::bigint[])`,
  values: [
    rows.map((r) => r.chain),
    rows.map((r) => r.seq),
    rows.map((r) => r.entry),
    rows.map((r) => r.hash),
    rows.map((r) => r.occurredAt),
    rows.map((r) => r.inboxId),
  ],
});

/** The inbox is a queue: a sealed row moves into the chain and leaves the inbox. */
export const deleteInbox = (ids: number[]): Statement => ({
  text: 'DELETE FROM control.audit_inbox WHERE id = ANY($1::bigint[])',
  values: [ids],
});

export const insertCheckpoint = (c: {
  chain: string;
  size: number;
  head: Buffer;
  checkpoint: Buffer;
  signature: Buffer;
  keyId: string;
}): Statement => ({
  text: `INSERT INTO control.audit_checkpoints (chain, size, head, checkpoint, signature, key_id)
         VALUES ($1, $2, $3, $4, $5, $6)`,
  values: [c.chain, c.size, c.head, c.checkpoint, c.signature, c.keyId],
});

// --- retention ---------------------------------------------------------------

/** Makes the append-only trigger accept payload pruning, for this transaction only. */
export const allowRetention = (): Statement => ({
  text: "SELECT set_config('enclave.audit_retention', 'on', true)",
  values: [],
});

/**
 * Prunes, per tenant or platform chain, the longest prefix whose entries all
 * happened before the cutoff: payload to NULL, hash kept. A prefix (rather
 * than every old entry) keeps the rule simple for export and verify: a chain
 * has its payloads from some seq on. The prefix ends at a signed checkpoint,
 * so an export of what is left starts anchored at that checkpoint
 * (docs/AUDIT-FORMAT.md, manifest `start` = retention). Tenants under legal hold are skipped
 * here, and the trigger refuses them anyway. The registry chain is never pruned.
 */
export const prunePayloads = (cutoff: Date): Statement => ({
  text: `WITH old AS (
           SELECT chain, coalesce(min(seq) FILTER (WHERE occurred_at >= $1), max(seq) + 1) AS keep_from
             FROM control.audit_log
            WHERE chain <> 'registry'
              AND chain NOT IN (SELECT 't_' || id FROM control.tenants WHERE legal_hold)
            GROUP BY chain),
         keep AS (
           SELECT old.chain,
                  coalesce((SELECT max(k.size) FROM control.audit_checkpoints k
                             WHERE k.chain = old.chain AND k.size < old.keep_from), 0) + 1 AS keep_from
             FROM old)
         UPDATE control.audit_log l SET entry = NULL
           FROM keep
          WHERE l.chain = keep.chain AND l.seq < keep.keep_from AND l.entry IS NOT NULL`,
  values: [cutoff],
});
