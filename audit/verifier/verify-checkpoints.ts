// The offline verifier's signed side: each chain's checkpoint (pinned key,
// size, head), the auditor's earlier checkpoints (--prev) and the registry
// chain's records, held against the hashes recomputed from the entries.
import { type KeyObject, verify } from 'node:crypto';
import {
  CHECKPOINTS_FILE,
  type Checkpoint,
  canonicalBytes,
  type Manifest,
  type ManifestChain,
  type SignedCheckpoint,
} from './bundle-format.ts';
import { VerificationError, type VerifyReason } from './verification-error.ts';
import type { ChainRun, EntryChecker } from './verify-entries.ts';

const HEX64 = /^[0-9a-f]{64}$/;
const KEY_ID = /^[0-9a-f]{16}$/;
const SIGNATURE = /^[A-Za-z0-9+/]{86}==$/; // 64 bytes, strict base64: one spelling per signature

// --- 3. checkpoints: pinned key, size, head ----------------------------------

/** A checkpoint's fields have the right types; `what` names it in the error. */
function checkpointShape(
  value: unknown,
  reason: VerifyReason,
  what: string,
  chain: string | null,
): SignedCheckpoint {
  const sc = value as SignedCheckpoint | null;
  const cp = sc?.checkpoint as Checkpoint | undefined;
  if (
    !sc ||
    typeof sc !== 'object' ||
    !cp ||
    typeof cp !== 'object' ||
    cp.v !== 1 ||
    typeof cp.origin !== 'string' ||
    typeof cp.chain !== 'string' ||
    !Number.isSafeInteger(cp.size) ||
    cp.size < 0 ||
    typeof cp.head !== 'string' ||
    !HEX64.test(cp.head) ||
    typeof cp.keyId !== 'string' ||
    !KEY_ID.test(cp.keyId) ||
    typeof cp.time !== 'string' ||
    typeof sc.signature !== 'string'
  )
    throw new VerificationError(reason, `${what} is malformed`, { chain: cp?.chain ?? chain });
  return sc;
}

/** Fails unless the checkpoint was signed by a pinned key. */
function checkSignature(
  sc: SignedCheckpoint,
  keys: Map<string, KeyObject>,
  what: string,
  prevFailure?: VerifyReason,
): void {
  const cp = sc.checkpoint;
  const at = { chain: cp.chain, seq: cp.size };
  const key = keys.get(cp.keyId);
  if (!key)
    throw new VerificationError(
      prevFailure ?? 'unknown-key',
      `${what} is signed by key ${cp.keyId}, which is not a pinned key`,
      {
        ...at,
        expected: [...keys.keys()].join(','),
        actual: cp.keyId,
      },
    );
  const ok =
    SIGNATURE.test(sc.signature) &&
    verify(null, canonicalBytes(cp), key, Buffer.from(sc.signature, 'base64'));
  if (!ok)
    throw new VerificationError(
      prevFailure ?? 'bad-signature',
      `${what}'s signature does not verify with the pinned key`,
      at,
    );
}

export function checkCheckpoints(
  manifest: Manifest,
  lines: Buffer[],
  heads: Map<string, Buffer>,
  keys: Map<string, KeyObject>,
): SignedCheckpoint[] {
  const byChain = new Map<string, SignedCheckpoint>();
  for (const line of lines) {
    let value: unknown;
    try {
      value = JSON.parse(line.toString('utf8'));
    } catch {
      throw new VerificationError('checkpoint-invalid', `a line of ${CHECKPOINTS_FILE} is not JSON`, {
        file: CHECKPOINTS_FILE,
      });
    }
    const sc = checkpointShape(value, 'checkpoint-invalid', 'a checkpoint', null);
    const chain = sc.checkpoint.chain;
    if (byChain.has(chain) || !heads.has(chain))
      throw new VerificationError(
        'checkpoint-invalid',
        `${CHECKPOINTS_FILE} has ${byChain.has(chain) ? 'a second' : 'an unlisted'} checkpoint for chain ${chain}`,
        { chain },
      );
    byChain.set(chain, sc);
  }
  const out: SignedCheckpoint[] = [];
  for (const c of manifest.chains) {
    const sc = byChain.get(c.chain);
    if (!sc)
      throw new VerificationError('missing-checkpoint', `no checkpoint for chain ${c.chain}`, {
        chain: c.chain,
        seq: c.lastSeq,
      });
    const cp = sc.checkpoint;
    checkSignature(sc, keys, 'the checkpoint');
    if (cp.origin !== manifest.origin)
      throw new VerificationError('checkpoint-invalid', 'the checkpoint belongs to another installation', {
        chain: c.chain,
        expected: manifest.origin,
        actual: cp.origin,
      });
    if (cp.size !== c.lastSeq)
      throw new VerificationError(
        'checkpoint-size',
        `the signed checkpoint covers ${cp.size} entries, the chain ends at seq ${c.lastSeq}`,
        {
          chain: c.chain,
          seq: c.lastSeq,
          expected: cp.size,
          actual: c.lastSeq,
        },
      );
    const head = (heads.get(c.chain) as Buffer).toString('hex');
    if (cp.head !== head)
      throw new VerificationError(
        'head-mismatch',
        `the hash recomputed over seq ${c.firstSeq}..${c.lastSeq} is not the signed head: an entry was changed, added or removed`,
        { chain: c.chain, seq: c.lastSeq, expected: cp.head, actual: head },
      );
    out.push(sc);
  }
  return out;
}

// --- 4. the auditor's earlier checkpoint (--prev) ----------------------------

export function checkPrev(
  prev: SignedCheckpoint[],
  keys: Map<string, KeyObject>,
): Map<string, SignedCheckpoint> {
  const byChain = new Map<string, SignedCheckpoint>();
  for (const p of prev) {
    const sc = checkpointShape(p, 'prev-invalid', 'the earlier checkpoint', null);
    checkSignature(sc, keys, 'the earlier checkpoint', 'prev-invalid');
    const seen = byChain.get(sc.checkpoint.chain);
    if (!seen || seen.checkpoint.size < sc.checkpoint.size) byChain.set(sc.checkpoint.chain, sc);
  }
  return byChain;
}

export function checkAgainstPrev(
  prev: Checkpoint,
  chain: ManifestChain | undefined,
  run: ChainRun | undefined,
  heads: Map<string, Buffer>,
  origin: string,
): void {
  const at = { chain: prev.chain, seq: prev.size };
  if (prev.origin !== origin)
    throw new VerificationError('prev-invalid', 'the earlier checkpoint belongs to another installation', {
      ...at,
      expected: origin,
      actual: prev.origin,
    });
  if (!chain || chain.lastSeq < prev.size)
    throw new VerificationError(
      'truncated',
      `the chain ends at seq ${chain?.lastSeq ?? 0}, before the ${prev.size} entries of the earlier checkpoint: cut off, rolled back, or an old export replayed`,
      { ...at, expected: prev.size, actual: chain?.lastSeq ?? 0 },
    );
  const hash = hashAt(prev.size, chain, run, heads);
  if (!hash)
    throw new VerificationError(
      'prev-not-covered',
      `the bundle starts at seq ${chain.firstSeq}, after the earlier checkpoint's seq ${prev.size}: export from an earlier time to compare`,
      at,
    );
  if (hash.toString('hex') !== prev.head)
    throw new VerificationError(
      'forked',
      'the chain differs from the earlier checkpoint at its size: history was rewritten',
      {
        ...at,
        expected: prev.head,
        actual: hash.toString('hex'),
      },
    );
}

/** hash_size of a chain, if the bundle lets us know it. */
function hashAt(
  size: number,
  chain: ManifestChain,
  run: ChainRun | undefined,
  heads: Map<string, Buffer>,
): Buffer | undefined {
  if (size === chain.firstSeq - 1) return Buffer.from(chain.prevHash, 'hex');
  if (size === chain.lastSeq) return heads.get(chain.chain);
  return run?.kept.get(size);
}

// --- 5. the registry chain (full exports): no chain dropped or rolled back ---

export function checkRegistry(
  checker: EntryChecker,
  chains: Map<string, ManifestChain>,
  heads: Map<string, Buffer>,
): void {
  if (!checker.runs.has('registry')) return;
  for (const [name, record] of checker.registry) {
    const at = { chain: name, seq: record.size };
    const chain = chains.get(name);
    // No exception for a filtered manifest: the manifest is not signed, and a one-tenant export has no registry chain.
    if (!chain) {
      throw new VerificationError(
        'registry-missing-chain',
        `registry entry ${record.registrySeq} records chain ${name}, which the bundle lacks: dropped?`,
        at,
      );
    }
    if (chain.lastSeq < record.size)
      throw new VerificationError(
        'registry-shrunk',
        `registry entry ${record.registrySeq} records ${record.size} entries, the chain ends at seq ${chain.lastSeq}: rolled back?`,
        {
          ...at,
          expected: record.size,
          actual: chain.lastSeq,
        },
      );
    const hash = hashAt(record.size, chain, checker.runs.get(name), heads);
    if (hash && hash.toString('hex') !== record.head)
      throw new VerificationError(
        'registry-head',
        `the chain differs at seq ${record.size} from what registry entry ${record.registrySeq} records`,
        {
          ...at,
          expected: record.head,
          actual: hash.toString('hex'),
        },
      );
  }
}
