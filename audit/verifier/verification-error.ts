// The one failure the offline verifier reports: which chain, which sequence
// number, why, and (where it helps) what was expected next to what was found.
// Modelled on transparency-dev/merkle's RootMismatchError: the values travel
// with the error so a report can show them without re-deriving anything.

export type VerifyReason =
  // the archive itself
  | 'unreadable' // not gzip, not tar, or cut off
  | 'unexpected-file' // a tar entry out of order, repeated, not a regular file, not a bundle file, or after the last
  | 'missing-file'
  | 'manifest-invalid'
  | 'filter-mismatch' // the content does not match the manifest's kind or filter (v2)
  | 'file-mismatch' // a file's size or SHA-256 differs from the manifest
  // entries.jsonl, line by line
  | 'line-too-long'
  | 'not-canonical' // the line is not byte-for-byte its RFC 8785 form (or not JSON at all)
  | 'invalid-entry' // a required field is missing or of the wrong type
  | 'wrong-origin'
  | 'wrong-tenant' // the `tenant` field does not belong to the chain
  | 'foreign-entry' // an entry of another chain sits inside this chain
  | 'sequence' // a gap, a repeat or a step backwards
  | 'range-mismatch' // the entries do not cover the manifest's firstSeq..lastSeq
  // checkpoints
  | 'missing-checkpoint'
  | 'checkpoint-invalid'
  | 'unknown-key' // signed by a key that is not pinned
  | 'bad-signature'
  | 'checkpoint-size' // v1 only: the signed size is not the chain's last sequence number
  | 'anchor-mismatch' // v2: the anchor's head is not the manifest's prevHash
  | 'head-mismatch' // the recomputed hash is not the signed head
  // against the auditor's earlier checkpoint (--prev)
  | 'prev-invalid'
  | 'truncated' // shorter than the earlier checkpoint: cut, rolled back, or an old export replayed
  | 'forked' // as long, but a different hash at the earlier size: history rewritten
  | 'prev-not-covered' // the bundle starts after the earlier checkpoint, so it cannot be compared
  // against the registry chain (full exports)
  | 'registry-missing-chain'
  | 'registry-shrunk'
  | 'registry-unrecorded' // v2: the chain goes past, or is absent from, what the registry records
  | 'registry-head';

/**
 * Where a failure is: `chain <c> seq <n>`, `chain <c>`, `file <name>` or `bundle`
 * (docs/AUDIT-FORMAT.md, "Verdict lines"). A chain wins over a file.
 */
export function placeOf(detail: { chain: string | null; seq: number | null; file?: string | undefined }) {
  if (detail.chain !== null) return `chain ${detail.chain}${detail.seq === null ? '' : ` seq ${detail.seq}`}`;
  return detail.file === undefined ? 'bundle' : `file ${detail.file}`;
}

export interface VerificationDetail {
  chain?: string | null;
  seq?: number | null;
  file?: string;
  expected?: string | number;
  actual?: string | number;
}

export class VerificationError extends Error {
  override name = 'VerificationError';
  readonly reason: VerifyReason;
  readonly chain: string | null;
  readonly seq: number | null;
  readonly file: string | undefined;
  readonly expected: string | number | undefined;
  readonly actual: string | number | undefined;

  constructor(
    reason: VerifyReason,
    message: string,
    detail: VerificationDetail = {},
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.reason = reason;
    this.chain = detail.chain ?? null;
    this.seq = detail.seq ?? null;
    this.file = detail.file;
    this.expected = detail.expected;
    this.actual = detail.actual;
  }
}

/** A pinned key file that holds no usable Ed25519 public key: the caller's mistake, not the bundle's. */
export class PinnedKeyError extends Error {
  override name = 'PinnedKeyError';
}
