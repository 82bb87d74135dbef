// The offline verifier: a bundle (.tar.gz) and the auditor's pinned public
// key in, OK with counts or the first failure out. No database, no server, no
// configuration; it trusts only the pinned key (keys.json in the bundle is
// hashed like any file and otherwise ignored). The steps are the "Offline
// verify" section of docs/AUDIT-FORMAT.md.
//
// One pass over the stream: gunzip -> tar -> lines. entries.jsonl is checked
// line by line as it arrives (verify-entries.ts); every file is hashed as it
// arrives; the manifest comes last, and the checks that need it (file hashes,
// ranges, checkpoints, --prev, registry) run at the end (verify-archive.ts,
// verify-checkpoints.ts). Memory stays at a few values per chain, whatever
// the number of entries.
import type { KeyObject } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ManifestChain, SignedCheckpoint } from './bundle-format.ts';
import { pinnedKeyId, readPinnedKeys } from './keys.ts';
import { PinnedKeyError, VerificationError, type VerifyReason } from './verification-error.ts';
import { type BundleSource, checkFiles, checkRanges, parseManifest, readArchive } from './verify-archive.ts';
import { checkAgainstPrev, checkCheckpoints, checkPrev, checkRegistry } from './verify-checkpoints.ts';
import { EntryChecker, Spool } from './verify-entries.ts';

export type { BundleSource };
export { PinnedKeyError, readPinnedKeys, VerificationError, type VerifyReason };

export interface VerifyOptions {
  /** The auditor's earlier checkpoint(s): the bundle must not have shrunk or changed since. */
  prev?: SignedCheckpoint | readonly SignedCheckpoint[];
  /** Where lines of chains that start after seq 1 wait for their starting hash (default: the OS temp dir). */
  tmpDir?: string;
  /** Longest accepted line of entries.jsonl (default 16 MiB). */
  maxLineBytes?: number;
  /** Called now and then with the number of entries checked so far. */
  onProgress?: (entries: number) => void;
}

export interface VerifiedChain {
  chain: string;
  firstSeq: number;
  lastSeq: number;
  head: string;
}

export interface VerifyOk {
  ok: true;
  origin: string;
  entries: number;
  chains: VerifiedChain[];
  /** The bundle's verified checkpoints: keep them, and pass them as --prev next time. */
  checkpoints: SignedCheckpoint[];
}

export interface VerifyFailure {
  ok: false;
  reason: VerifyReason;
  chain: string | null;
  seq: number | null;
  message: string;
  expected?: string | number;
  actual?: string | number;
  file?: string;
  error: VerificationError;
}

/** Verifies a bundle against the pinned key(s); never throws for a bad bundle (only for I/O and bad keys). */
export async function verifyBundle(
  source: BundleSource,
  pinned: KeyObject | readonly KeyObject[] | string,
  options: VerifyOptions = {},
): Promise<VerifyOk | VerifyFailure> {
  try {
    return await run(source, pinnedById(pinned), options);
  } catch (err) {
    if (!(err instanceof VerificationError)) throw err;
    return {
      ok: false,
      reason: err.reason,
      chain: err.chain,
      seq: err.seq,
      message: err.message,
      ...(err.expected === undefined ? {} : { expected: err.expected }),
      ...(err.actual === undefined ? {} : { actual: err.actual }),
      ...(err.file === undefined ? {} : { file: err.file }),
      error: err,
    };
  }
}

function pinnedById(pinned: KeyObject | readonly KeyObject[] | string): Map<string, KeyObject> {
  const keys =
    typeof pinned === 'string' ? readPinnedKeys(pinned) : Array.isArray(pinned) ? pinned : [pinned];
  if (keys.length === 0) throw new PinnedKeyError('no pinned key');
  return new Map(keys.map((k: KeyObject) => [pinnedKeyId(k), k]));
}

async function run(
  source: BundleSource,
  keys: Map<string, KeyObject>,
  options: VerifyOptions,
): Promise<VerifyOk> {
  const maxLineBytes = options.maxLineBytes ?? 16 << 20;
  const prev = options.prev === undefined ? [] : Array.isArray(options.prev) ? options.prev : [options.prev];
  const prevByChain = checkPrev(prev as SignedCheckpoint[], keys);
  const dir = await mkdtemp(path.join(options.tmpDir ?? tmpdir(), 'enclave-verify-'));
  const spool = new Spool(path.join(dir, 'spooled.jsonl'));
  try {
    const keep = new Map([...prevByChain].map(([chain, p]) => [chain, p.checkpoint.size]));
    const checker = new EntryChecker(spool, keep);
    const { files, manifestText, checkpointLines } = await readArchive(
      source,
      checker,
      maxLineBytes,
      options,
    );
    const manifest = parseManifest(manifestText);
    checkFiles(manifest, files);
    const chains = checkRanges(manifest, checker);
    await checker.replay(
      (chain) => Buffer.from((chains.get(chain) as ManifestChain).prevHash, 'hex'),
      maxLineBytes,
    );
    const heads = new Map<string, Buffer>();
    for (const mc of manifest.chains)
      heads.set(mc.chain, checker.runs.get(mc.chain)?.hash ?? Buffer.from(mc.prevHash, 'hex'));
    const checkpoints = checkCheckpoints(manifest, checkpointLines, heads, keys);
    for (const [chain, p] of prevByChain)
      checkAgainstPrev(p.checkpoint, chains.get(chain), checker.runs.get(chain), heads, manifest.origin);
    checkRegistry(checker, chains, heads);
    return {
      ok: true,
      origin: manifest.origin,
      entries: checker.entries,
      chains: manifest.chains.map((c) => ({
        chain: c.chain,
        firstSeq: c.firstSeq,
        lastSeq: c.lastSeq,
        head: (heads.get(c.chain) as Buffer).toString('hex'),
      })),
      checkpoints,
    };
  } finally {
    await spool.close().catch(() => {});
    await rm(dir, { recursive: true, force: true });
  }
}
