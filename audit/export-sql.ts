// Statements the export reads with (migrations/control/0006_audit_log.sql),
// as small pure functions: values in, { text, values } out.
import type { Statement } from '../kernel/db.ts';

/** Every chain that has a checkpoint, by a skip scan over the primary key (one probe per chain, not per row). */
export const selectChains = (): Statement => ({
  text: `WITH RECURSIVE c(chain) AS (
           (SELECT chain FROM control.audit_checkpoints ORDER BY chain LIMIT 1)
           UNION ALL
           SELECT (SELECT k.chain FROM control.audit_checkpoints k WHERE k.chain > c.chain ORDER BY k.chain LIMIT 1)
             FROM c WHERE c.chain IS NOT NULL)
         SELECT chain FROM c WHERE chain IS NOT NULL ORDER BY chain COLLATE "C"`,
  values: [],
});

/** Whether a chain has been sealed at all. */
export const selectHasChain = (chain: string): Statement => ({
  text: 'SELECT 1 FROM control.audit_checkpoints WHERE chain = $1 LIMIT 1',
  values: [chain],
});

export interface CheckpointRow {
  size: number;
  checkpoint: Buffer;
  signature: Buffer;
}

/**
 * The chain's latest checkpoint, or its latest with a signed `time` at or
 * before `to` (both are fixed-width UTC strings, so text order is time order).
 */
export const selectLatestCheckpoint = (chain: string, to: string | null): Statement => ({
  text: `SELECT size, checkpoint, signature FROM control.audit_checkpoints
          WHERE chain = $1
            AND ($2::text IS NULL OR convert_from(checkpoint, 'UTF8')::jsonb ->> 'time' <= $2::text)
          ORDER BY size DESC LIMIT 1`,
  values: [chain, to],
});

/** The newest checkpoint of at most `size` entries: a partial chain's anchor. */
export const selectCheckpointAtOrBelow = (chain: string, size: number): Statement => ({
  text: `SELECT size, checkpoint, signature FROM control.audit_checkpoints
          WHERE chain = $1 AND size <= $2 ORDER BY size DESC LIMIT 1`,
  values: [chain, size],
});

/** The oldest checkpoint of at least `size` entries (an anchor after a prune older than format v2). */
export const selectCheckpointAtOrAbove = (chain: string, size: number): Statement => ({
  text: `SELECT size, checkpoint, signature FROM control.audit_checkpoints
          WHERE chain = $1 AND size >= $2 ORDER BY size LIMIT 1`,
  values: [chain, size],
});

/** The first seq at or before `size` whose entry happened at or after `from` (null: none). */
export const selectFirstSeqFrom = (chain: string, size: number, from: Date): Statement => ({
  text: `SELECT min(seq) AS seq FROM control.audit_log WHERE chain = $1 AND seq <= $2 AND occurred_at >= $3`,
  values: [chain, size, from],
});

/** The first seq whose payload is still there: retention prunes a prefix of each chain. */
export const selectFirstKeptSeq = (chain: string): Statement => ({
  text: 'SELECT min(seq) AS seq FROM control.audit_log WHERE chain = $1 AND entry IS NOT NULL',
  values: [chain],
});

export const selectHash = (chain: string, seq: number): Statement => ({
  text: 'SELECT hash FROM control.audit_log WHERE chain = $1 AND seq = $2',
  values: [chain, seq],
});

/** A server-side cursor over one chain's entries, fetched in batches (see FETCH below). */
export const declareEntryCursor = (
  cursor: string,
  chain: string,
  firstSeq: number,
  lastSeq: number,
): Statement => ({
  text: `DECLARE ${cursor} NO SCROLL CURSOR FOR
           SELECT seq, entry FROM control.audit_log WHERE chain = $1 AND seq BETWEEN $2 AND $3 ORDER BY seq`,
  values: [chain, firstSeq, lastSeq],
});

export const fetchCursor = (cursor: string, rows: number): Statement => ({
  text: `FETCH FORWARD ${Math.trunc(rows)} FROM ${cursor}`,
  values: [],
});

export const closeCursor = (cursor: string): Statement => ({ text: `CLOSE ${cursor}`, values: [] });
