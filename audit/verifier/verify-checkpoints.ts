// The offline verifier's signed side, shared by both formats: checkpoint
// signatures with the pinned keys, the auditor's earlier checkpoints (--prev)
// and the registry chain's records, held against the hashes recomputed from
// the entries. (v2's checkpoints.jsonl, with anchors, is read in verify-v2.ts.)
import type { KeyObject } from 'node:crypto';
import {
  CHECKPOINTS_FILE,
  type Checkpoint,
  type Manifest,
  type ManifestChain,
  type SignedCheckpoint,
} from './bundle-format.ts';
import { checkSignature, isObject, REGISTRY, signedCheckpointProblem } from './shapes.ts';
import { VerificationError, type VerifyReason } from './verification-error.ts';
import type { ChainRun, EntryChecker, RegistryRecord } from './verify-entries.ts';

/** Ascending byte order of names (UTF-8), as the manifest lists chains. */
export const byName = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

// --- checkpoints: shape and pinned key ---------------------------------------------

/**
 * The signed checkpoint, or a failure with `reason` at `chain <c> seq <size>`
 * when both can be read, else at `file` (or the bundle).
 */
function checkpointShape(
  value: unknown,
  reason: VerifyReason,
  what: string,
  file?: string,
): SignedCheckpoint {
  const problem = signedCheckpointProblem(value);
  if (problem) {
    const cp = isObject(value) && isObject(value.checkpoint) ? value.checkpoint : {};
    const readable = typeof cp.chain === 'string' && Number.isSafeInteger(cp.size);
    throw new VerificationError(
      reason,
      `${what} is malformed: ${problem}`,
      readable ? { chain: cp.chain as string, seq: cp.size as number } : file === undefined ? {} : { file },
    );
  }
  return value as SignedCheckpoint;
}

// --- format v1: one end checkpoint per chain --------------------------------------

export function checkCheckpoints(
  manifest: Manifest,
  lines: Buffer[],
  heads: Map<string, Buffer>,
  keys: ReadonlyMap<string, KeyObject>,
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
    const sc = checkpointShape(value, 'checkpoint-invalid', 'a checkpoint', CHECKPOINTS_FILE);
    const chain = sc.checkpoint.chain;
    if (byChain.has(chain) || !heads.has(chain))
      throw new VerificationError(
        'checkpoint-invalid',
        `${CHECKPOINTS_FILE} has ${byChain.has(chain) ? 'a second' : 'an unlisted'} checkpoint for chain ${chain}`,
        { chain, seq: sc.checkpoint.size },
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
        seq: cp.size,
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

// --- the auditor's earlier checkpoints (--prev), both formats -----------------------

export interface PrevStatus {
  chain: string;
  size: number;
  status: 'consistent' | 'out-of-scope';
}

/** What step 8 needs of the verified bundle. */
export interface BundleChains {
  origin: string;
  /** Chains absent from the bundle are out of scope (a tenant export), not truncated. */
  outOfScopeIfAbsent: boolean;
  chains: ReadonlyMap<string, ManifestChain>;
  /** hash_size of a chain, if the bundle lets us know it. */
  hashAt(chain: string, size: number): Buffer | undefined;
}

/**
 * The auditor's earlier checkpoints. Read before the bundle, so that the
 * hash at each chain's largest kept size can be kept as the entries stream
 * (`keep`); judged after it (`check`, step 8), since a bundle's own failure
 * comes first.
 */
export class PrevCheckpoints {
  readonly keep = new Map<string, number>();
  private readonly prev: readonly unknown[];
  private readonly keys: ReadonlyMap<string, KeyObject>;

  constructor(prev: readonly unknown[], keys: ReadonlyMap<string, KeyObject>) {
    this.prev = prev;
    this.keys = keys;
    for (const p of prev) {
      if (signedCheckpointProblem(p) !== null) continue;
      const { chain, size } = (p as SignedCheckpoint).checkpoint;
      if ((this.keep.get(chain) ?? 0) < size) this.keep.set(chain, size);
    }
  }

  /** Step 8: each earlier checkpoint valid, none forked, and every chain's largest one covered by the bundle. */
  check(bundle: BundleChains): PrevStatus[] {
    const largest = new Map<string, SignedCheckpoint>();
    for (const p of this.prev) {
      const sc = checkpointShape(p, 'prev-invalid', 'the earlier checkpoint');
      checkSignature(sc, this.keys, 'the earlier checkpoint', { prevFailure: 'prev-invalid' });
      const cp = sc.checkpoint;
      if (cp.origin !== bundle.origin)
        throw new VerificationError(
          'prev-invalid',
          'the earlier checkpoint belongs to another installation',
          {
            chain: cp.chain,
            seq: cp.size,
            expected: bundle.origin,
            actual: cp.origin,
          },
        );
    }
    const heads = new Map<string, string>();
    for (const p of this.prev as SignedCheckpoint[]) {
      const cp = p.checkpoint;
      const key = `${cp.size} ${cp.chain}`;
      const seen = heads.get(key);
      if (seen !== undefined && seen !== cp.head)
        throw new VerificationError(
          'forked',
          'two earlier checkpoints sign different heads for one size: history was rewritten',
          { chain: cp.chain, seq: cp.size, expected: seen, actual: cp.head },
        );
      heads.set(key, cp.head);
      const before = largest.get(cp.chain);
      if (!before || before.checkpoint.size < cp.size) largest.set(cp.chain, p);
    }
    const out: PrevStatus[] = [];
    for (const name of [...largest.keys()].sort(byName)) {
      const cp = (largest.get(name) as SignedCheckpoint).checkpoint;
      const chain = bundle.chains.get(name);
      if (!chain && bundle.outOfScopeIfAbsent) {
        out.push({ chain: name, size: cp.size, status: 'out-of-scope' });
        continue;
      }
      checkAgainstPrev(cp, chain, bundle);
      out.push({ chain: name, size: cp.size, status: 'consistent' });
    }
    return out;
  }
}

function checkAgainstPrev(prev: Checkpoint, chain: ManifestChain | undefined, bundle: BundleChains): void {
  const at = { chain: prev.chain, seq: prev.size };
  if (!chain || chain.lastSeq < prev.size)
    throw new VerificationError(
      'truncated',
      chain
        ? `the chain ends at seq ${chain.lastSeq}, before the ${prev.size} entries of the earlier checkpoint: cut off, rolled back, or an old export replayed`
        : 'the bundle lacks the chain of an earlier checkpoint: dropped?',
      { ...at, expected: prev.size, actual: chain?.lastSeq ?? 0 },
    );
  const hash = prev.size >= chain.firstSeq - 1 ? bundle.hashAt(chain.chain, prev.size) : undefined;
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
      { ...at, expected: prev.head, actual: hash.toString('hex') },
    );
}

/** hash_size of a v1 chain, if the bundle lets us know it. */
export function hashAtV1(
  size: number,
  chain: ManifestChain,
  run: ChainRun | undefined,
  heads: Map<string, Buffer>,
): Buffer | undefined {
  if (size === chain.firstSeq - 1) return Buffer.from(chain.prevHash, 'hex');
  if (size === chain.lastSeq) return heads.get(chain.chain);
  return run?.kept.get(size);
}

// --- the registry chain: no chain dropped or rolled back --------------------------

/** Format v1: when the bundle holds the registry, what it records must be in the bundle. */
export function checkRegistry(
  checker: EntryChecker,
  chains: Map<string, ManifestChain>,
  heads: Map<string, Buffer>,
): void {
  if (!checker.runs.has(REGISTRY)) return;
  for (const [name, record] of checker.registry) {
    const chain = chains.get(name);
    // No exception for a filtered manifest: the manifest is not signed, and a one-tenant export has no registry chain.
    if (!chain) throw missingChain(name, record);
    if (chain.lastSeq < record.size) throw shrunk(name, record, chain.lastSeq);
    const hash = hashAtV1(record.size, chain, checker.runs.get(name), heads);
    if (hash && hash.toString('hex') !== record.head) throw registryHead(name, record, hash.toString('hex'));
  }
}

/**
 * Format v2, kind `full` (step 7; step 2 made sure the registry starts at
 * genesis, so it records every chain up to its signed size): per recorded
 * chain, by name, the record of the largest size is the chain's end, so every
 * chain the registry names is in the bundle up to that size; then every other
 * chain of the bundle is recorded.
 */
export function checkRegistryV2(
  registry: ReadonlyMap<string, RegistryRecord>,
  chains: readonly ManifestChain[],
  heads: ReadonlyMap<string, string>,
): void {
  const byChain = new Map(chains.map((c) => [c.chain, c]));
  for (const name of [...registry.keys()].sort(byName)) {
    const record = registry.get(name) as RegistryRecord;
    const chain = byChain.get(name);
    if (!chain) throw missingChain(name, record);
    if (chain.lastSeq < record.size) throw shrunk(name, record, chain.lastSeq);
    if (chain.lastSeq > record.size)
      throw new VerificationError(
        'registry-unrecorded',
        `the chain ends at seq ${chain.lastSeq}, past the ${record.size} entries the registry records (entry ${record.registrySeq})`,
        { chain: name, seq: chain.lastSeq, expected: record.size, actual: chain.lastSeq },
      );
    const head = heads.get(name) as string;
    if (head !== record.head) throw registryHead(name, record, head);
  }
  for (const chain of chains)
    if (chain.chain !== REGISTRY && !registry.has(chain.chain))
      throw new VerificationError(
        'registry-unrecorded',
        `the registry never records chain ${chain.chain}: added behind its back?`,
        { chain: chain.chain, seq: chain.lastSeq },
      );
}

function missingChain(name: string, record: RegistryRecord) {
  return new VerificationError(
    'registry-missing-chain',
    `registry entry ${record.registrySeq} records chain ${name}, which the bundle lacks: dropped?`,
    { chain: name, seq: record.size },
  );
}

function shrunk(name: string, record: RegistryRecord, lastSeq: number) {
  return new VerificationError(
    'registry-shrunk',
    `registry entry ${record.registrySeq} records ${record.size} entries, the chain ends at seq ${lastSeq}: rolled back?`,
    { chain: name, seq: record.size, expected: record.size, actual: lastSeq },
  );
}

function registryHead(name: string, record: RegistryRecord, actual: string) {
  return new VerificationError(
    'registry-head',
    `the chain differs at seq ${record.size} from what registry entry ${record.registrySeq} records`,
    { chain: name, seq: record.size, expected: record.head, actual },
  );
}
