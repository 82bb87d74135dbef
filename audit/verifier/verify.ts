// The offline verifier: a bundle (.tar.gz) and the auditor's pinned public
// keys in, OK with what was proven or the first failure out. No database, no
// server, no configuration; it trusts only the pinned keys (keys.json in the
// bundle is hashed like any file and otherwise ignored). The checks and their
// order are the "Offline verify" section of docs/AUDIT-FORMAT.md.
//
// One pass over the stream: gunzip -> tar -> lines. The first file decides
// the format: manifest.json is v2 (verify-v2.ts: the signed manifest first,
// everything checked as it streams), entries.jsonl is v1 (verify-archive.ts:
// the unsigned manifest last, chains that do not start at seq 1 spooled to
// disk until it comes). Both share the rules of one entry line
// (verify-entries.ts), of a checkpoint (shapes.ts) and of --prev
// (verify-checkpoints.ts). Memory stays at a few values per chain, whatever
// the number of entries.
import type { KeyObject } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  type BundleKind,
  type ChainStart,
  ENTRIES_FILE,
  MANIFEST_FILE,
  type ManifestChain,
  type SignedCheckpoint,
} from './bundle-format.ts';
import { pinnedKeyId, readPinnedKeys } from './keys.ts';
import { PinnedKeyError, placeOf, VerificationError, type VerifyReason } from './verification-error.ts';
import {
  Archive,
  type BundleSource,
  checkFiles,
  checkRanges,
  parseManifest,
  readArchive,
  type TarFile,
  unreadable,
} from './verify-archive.ts';
import {
  checkCheckpoints,
  checkRegistry,
  hashAtV1,
  PrevCheckpoints,
  type PrevStatus,
} from './verify-checkpoints.ts';
import { EntryChecker, Spool } from './verify-entries.ts';
import { readV2 } from './verify-v2.ts';

export type { BundleSource, PrevStatus };
export { PinnedKeyError, placeOf, readPinnedKeys, VerificationError, type VerifyReason };

/** What an OK of a format v1 bundle adds (docs/AUDIT-FORMAT.md, "Format v1"). */
export const V1_WARNING =
  'format v1: the manifest is not signed and a chain that does not start at seq 1 has an unproven start; export again for format v2';

export interface VerifyOptions {
  /** The auditor's earlier checkpoint(s): the bundle must not have shrunk or changed since. */
  prev?: SignedCheckpoint | readonly SignedCheckpoint[];
  /** The installation the auditor expects the bundle from (`--origin`). */
  origin?: string;
  /** Where v1 lines of chains that start after seq 1 wait for their starting hash (default: the OS temp dir). */
  tmpDir?: string;
  /** Longest accepted line of entries.jsonl (default 16 MiB). */
  maxLineBytes?: number;
  /** Called now and then with the number of entries checked so far. */
  onProgress?: (entries: number) => void;
  /**
   * Threads for the per-line checks of a format v2 entries.jsonl (default: the available
   * cores; 1: the calling thread only). The verdict is the same for any number.
   */
  threads?: number;
  /** Below this size entries.jsonl is checked on the calling thread (default 4 MiB). */
  parallelFromBytes?: number;
  /** Diagnostics (the benchmark): the worker threads' heap in use, summed, in bytes, after each batch. */
  onWorkerHeap?: (bytes: number) => void;
  /** Lines per batch handed to a worker (default 1024; tests use 1 to spread lines over the workers). */
  parallelBatchLines?: number;
}

export interface VerifiedChain {
  chain: string;
  firstSeq: number;
  lastSeq: number;
  /** hex of hash_lastSeq. */
  head: string;
  /** The range starts at a signed checkpoint (v2, not at genesis); a v1 start is never proven. */
  anchored: boolean;
  /** v2: why the range starts where it does (the exporter's word: `from` and `retention` both prove only the anchor). */
  start: ChainStart | null;
  /** The size of the end checkpoint (= lastSeq). */
  size: number;
}

export interface VerifyOk {
  ok: true;
  format: 1 | 2;
  /** null for v1, which has no kind. */
  kind: BundleKind | null;
  origin: string;
  /** The key that signed the manifest (null for v1: unsigned). */
  manifestKeyId: string | null;
  entries: number;
  chains: VerifiedChain[];
  /** Each --prev chain, by name: consistent with the bundle, or out of a tenant export's scope. */
  prev: PrevStatus[];
  warnings: string[];
  /** The bundle's end checkpoints: keep them (--save-checkpoints), and pass them as --prev next time. */
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
  const keys = pinnedById(pinned);
  try {
    return await run(source, keys, options);
  } catch (err) {
    if (!(err instanceof VerificationError)) throw err;
    return failureOf(err);
  }
}

export function failureOf(err: VerificationError): VerifyFailure {
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

function pinnedById(pinned: KeyObject | readonly KeyObject[] | string): Map<string, KeyObject> {
  const keys =
    typeof pinned === 'string' ? readPinnedKeys(pinned) : Array.isArray(pinned) ? pinned : [pinned];
  if (keys.length === 0) throw new PinnedKeyError('no pinned key');
  return new Map(keys.map((k: KeyObject) => [pinnedKeyId(k), k]));
}

async function run(source: BundleSource, keys: Map<string, KeyObject>, options: VerifyOptions) {
  const prevList =
    options.prev === undefined ? [] : Array.isArray(options.prev) ? options.prev : [options.prev];
  const prev = new PrevCheckpoints(prevList, keys);
  const archive = new Archive(source);
  try {
    let first: TarFile | null;
    try {
      first = await archive.next();
    } catch (err) {
      throw unreadable(err);
    }
    if (!first)
      throw new VerificationError('missing-file', `the archive is empty: no ${MANIFEST_FILE}`, {
        file: MANIFEST_FILE,
      });
    if (first.name === MANIFEST_FILE) return await runV2(first, archive, keys, prev, options);
    if (first.name === ENTRIES_FILE) return await runV1(first, archive, keys, prev, options);
    throw new VerificationError(
      'unexpected-file',
      `"${first.name}" is the first file: a bundle starts with ${MANIFEST_FILE} (v2) or ${ENTRIES_FILE} (v1)`,
      { file: first.name },
    );
  } finally {
    archive.close();
  }
}

async function runV2(
  first: TarFile,
  archive: Archive,
  keys: Map<string, KeyObject>,
  prev: PrevCheckpoints,
  options: VerifyOptions,
): Promise<VerifyOk> {
  let read: Awaited<ReturnType<typeof readV2>>;
  try {
    read = await readV2(first, archive, {
      keys,
      origin: options.origin,
      keep: prev.keep,
      maxLineBytes: options.maxLineBytes ?? 16 << 20,
      onProgress: options.onProgress,
      threads: options.threads,
      parallelFromBytes: options.parallelFromBytes,
      onWorkerHeap: options.onWorkerHeap,
      parallelBatchLines: options.parallelBatchLines,
    });
  } catch (err) {
    throw unreadable(err);
  }
  const { manifest, heads, kept } = read;
  const chains = new Map<string, ManifestChain>(manifest.chains.map((c) => [c.chain, c]));
  const prevStatus = prev.check({
    origin: manifest.origin,
    outOfScopeIfAbsent: manifest.kind === 'tenant',
    chains,
    hashAt(chain, size) {
      const c = chains.get(chain) as ManifestChain;
      if (size === c.firstSeq - 1) return Buffer.from(c.prevHash, 'hex');
      if (size === c.lastSeq) return Buffer.from(heads.get(chain) as string, 'hex');
      return prev.keep.get(chain) === size ? kept.get(chain) : undefined;
    },
  });
  return {
    ok: true,
    format: 2,
    kind: manifest.kind,
    origin: manifest.origin,
    manifestKeyId: manifest.keyId,
    entries: read.entries,
    chains: manifest.chains.map((c) => ({
      chain: c.chain,
      firstSeq: c.firstSeq,
      lastSeq: c.lastSeq,
      head: heads.get(c.chain) as string,
      anchored: c.start !== 'genesis',
      start: c.start,
      size: c.lastSeq,
    })),
    prev: prevStatus,
    warnings: [],
    checkpoints: read.ends,
  };
}

async function runV1(
  first: TarFile,
  archive: Archive,
  keys: Map<string, KeyObject>,
  prev: PrevCheckpoints,
  options: VerifyOptions,
): Promise<VerifyOk> {
  const maxLineBytes = options.maxLineBytes ?? 16 << 20;
  const dir = await mkdtemp(path.join(options.tmpDir ?? tmpdir(), 'enclave-verify-'));
  const spool = new Spool(path.join(dir, 'spooled.jsonl'));
  try {
    const checker = new EntryChecker(spool, prev.keep, keys);
    let read: Awaited<ReturnType<typeof readArchive>>;
    try {
      read = await readArchive(first, archive, checker, maxLineBytes, options);
    } catch (err) {
      throw unreadable(err);
    }
    const { files, manifestText, checkpointLines } = read;
    const manifest = parseManifest(manifestText);
    if (options.origin !== undefined && manifest.origin !== options.origin)
      throw new VerificationError(
        'wrong-origin',
        'the bundle comes from another installation than --origin',
        {
          expected: options.origin,
          actual: manifest.origin,
        },
      );
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
    const prevStatus = prev.check({
      origin: manifest.origin,
      outOfScopeIfAbsent: false, // the v1 manifest is unsigned: a filter it claims proves nothing
      chains,
      hashAt: (chain, size) =>
        hashAtV1(size, chains.get(chain) as ManifestChain, checker.runs.get(chain), heads),
    });
    checkRegistry(checker, chains, heads);
    return {
      ok: true,
      format: 1,
      kind: null,
      origin: manifest.origin,
      manifestKeyId: null,
      entries: checker.entries,
      chains: manifest.chains.map((c) => ({
        chain: c.chain,
        firstSeq: c.firstSeq,
        lastSeq: c.lastSeq,
        head: (heads.get(c.chain) as Buffer).toString('hex'),
        anchored: false,
        start: null,
        size: c.lastSeq,
      })),
      prev: prevStatus,
      warnings: [V1_WARNING],
      checkpoints,
    };
  } finally {
    await spool.close().catch(() => {});
    await rm(dir, { recursive: true, force: true });
  }
}
