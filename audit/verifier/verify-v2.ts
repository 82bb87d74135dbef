// Format v2 (docs/AUDIT-FORMAT.md, "Offline verify", steps 1-7): the signed
// manifest comes first, so every file's hash, every chain's range and anchor
// are known before anything else is read. checkpoints.jsonl and
// entries.jsonl are checked line by line as they stream, each line at its
// expected position; nothing is spooled, and memory is a few values per chain.
//
// A file's size and SHA-256 (step 3) come before any check of its content:
// the first content failure is only recorded, the file is hashed to its end,
// and then a hash mismatch wins over it.
//
// Step 5's per-line checks may run on worker threads (parallel-lines.ts):
// this thread still reads, splits and hashes in order, and the verdict is the
// first failure in stream order, whatever the number of threads.
import { createHash, hash, type KeyObject, verify } from 'node:crypto';
import { availableParallelism } from 'node:os';
import {
  CHECKPOINTS_FILE,
  type Checkpoint,
  chainHash,
  ENTRIES_FILE,
  KEYS_FILE,
  MANIFEST_FILE,
  type ManifestChainV2,
  type ManifestV2,
  manifestSigningBytes,
  type SignedCheckpoint,
  V2_FILES,
  ZERO_HASH,
} from './bundle-format.ts';
import { LinePool } from './parallel-lines.ts';
import {
  canonicalValue,
  checkSignature,
  HEX64,
  hasExactly,
  isChainName,
  isObject,
  KEY_ID,
  REGISTRY,
  SIGNATURE,
  signedCheckpointProblem,
  TENANT_ID,
  TIME,
} from './shapes.ts';
import { VerificationError } from './verification-error.ts';
import type { Archive, TarFile } from './verify-archive.ts';
import { byName, checkRegistryV2 } from './verify-checkpoints.ts';
import { checkEntryAt, LineSplitter, type RegistryRecord, recordRegistry } from './verify-entries.ts';

const MANIFEST_LIMIT = 64 << 20;
/** A checkpoint line is a few hundred bytes; a longer one is not a checkpoint. */
const CHECKPOINT_LINE_LIMIT = 1 << 20;
const ZERO_HEX = ZERO_HASH.toString('hex');

export interface V2Options {
  keys: ReadonlyMap<string, KeyObject>;
  /** The origin the auditor expects (`--origin`). */
  origin?: string | undefined;
  /** Per chain, a size whose hash must be kept (the largest --prev). */
  keep: ReadonlyMap<string, number>;
  maxLineBytes: number;
  onProgress?: ((entries: number) => void) | undefined;
  /** Threads for the per-line checks of entries.jsonl (default: the available cores; 1: this thread only). */
  threads?: number | undefined;
  /** Below this size entries.jsonl is checked on this thread, whatever `threads` says (default 4 MiB). */
  parallelFromBytes?: number | undefined;
  /** Diagnostics: called with the workers' heap in use (bytes, summed) after each batch. */
  onWorkerHeap?: ((bytes: number) => void) | undefined;
  /** Lines per batch handed to a worker (default 1024; tests use 1 to spread lines over workers). */
  parallelBatchLines?: number | undefined;
}

const PARALLEL_FROM_BYTES = 4 << 20;

export interface V2Verified {
  manifest: ManifestV2;
  entries: number;
  /** hex of each chain's hash at lastSeq. */
  heads: Map<string, string>;
  /** The end checkpoints, in manifest order. */
  ends: SignedCheckpoint[];
  /** hash_S for the kept sizes. */
  kept: Map<string, Buffer>;
}

/** Steps 1-7 on a bundle whose first file is manifest.json. */
export async function readV2(first: TarFile, archive: Archive, options: V2Options): Promise<V2Verified> {
  if (first.type !== 'file')
    throw new VerificationError('unexpected-file', `${MANIFEST_FILE} is not a regular file`, {
      file: MANIFEST_FILE,
    });
  const manifest = checkManifest(await readSmall(first), options);
  const checkpoints = new CheckpointLines(manifest, options.keys);
  const entriesBytes = manifest.files.find((f) => f.name === ENTRIES_FILE)?.bytes ?? 0;
  const threads =
    entriesBytes >= (options.parallelFromBytes ?? PARALLEL_FROM_BYTES)
      ? Math.max(1, Math.floor(options.threads ?? availableParallelism()))
      : 1;
  const entries = new EntryLines(manifest, checkpoints, options, threads);
  try {
    return await readFiles(manifest, archive, checkpoints, entries, options);
  } finally {
    entries.stop();
  }
}

async function readFiles(
  manifest: ManifestV2,
  archive: Archive,
  checkpoints: CheckpointLines,
  entries: EntryLines,
  options: V2Options,
): Promise<V2Verified> {
  for (const name of V2_FILES) {
    const file = await archive.next();
    if (!file)
      throw new VerificationError('missing-file', `${name} never comes (the archive ends before it)`, {
        file: name,
      });
    if (file.type !== 'file' || file.name !== name)
      throw new VerificationError(
        'unexpected-file',
        file.type !== 'file'
          ? `"${file.name}" is not a regular file`
          : `"${file.name}" where ${name} is expected (v2 order: ${[MANIFEST_FILE, ...V2_FILES].join(', ')})`,
        { file: file.name },
      );
    const content = name === CHECKPOINTS_FILE ? checkpoints : name === ENTRIES_FILE ? entries : undefined;
    await checkFile(file, manifest, content);
  }
  const extra = await archive.next();
  if (extra)
    throw new VerificationError(
      'unexpected-file',
      `"${extra.name}" comes after ${KEYS_FILE}, the last file`,
      {
        file: extra.name,
      },
    );
  await archive.end();
  options.onProgress?.(entries.count);
  if (manifest.kind === 'full') checkRegistryV2(entries.registry, manifest.chains, entries.heads);
  return {
    manifest,
    entries: entries.count,
    heads: entries.heads,
    ends: manifest.chains.map((c) => checkpoints.ends.get(c.chain) as SignedCheckpoint),
    kept: entries.kept,
  };
}

async function readSmall(file: TarFile): Promise<Buffer> {
  const parts: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of file.body) {
    bytes += chunk.length;
    if (bytes > MANIFEST_LIMIT)
      throw new VerificationError(
        'manifest-invalid',
        `${MANIFEST_FILE} is larger than ${MANIFEST_LIMIT} bytes`,
        {
          file: MANIFEST_FILE,
        },
      );
    parts.push(chunk);
  }
  return Buffer.concat(parts);
}

// --- step 2: the manifest ---------------------------------------------------------

function checkManifest(bytes: Buffer, options: V2Options): ManifestV2 {
  const bad = (why: string): never => {
    throw new VerificationError('manifest-invalid', `${MANIFEST_FILE}: ${why}`, { file: MANIFEST_FILE });
  };
  if (bytes.indexOf(10) !== bytes.length - 1) bad('not one line ending in a newline');
  const value = canonicalValue(bytes.subarray(0, -1));
  if (value === undefined) bad('not canonical JSON');
  if (!isObject(value) || !hasExactly(value, ['manifest', 'signature']))
    bad('not exactly {"manifest", "signature"}');
  const { manifest: m, signature } = value as { manifest: unknown; signature: unknown };
  if (typeof signature !== 'string' || !SIGNATURE.test(signature))
    bad('the signature is not 88 base64 characters');
  if (!isObject(m)) return bad('the manifest is not an object');
  const problem = manifestProblem(m);
  if (problem) bad(problem);
  const manifest = m as unknown as ManifestV2;

  const key = options.keys.get(manifest.keyId);
  if (!key)
    throw new VerificationError(
      'unknown-key',
      `the manifest is signed by key ${manifest.keyId}, which is not a pinned key`,
      { file: MANIFEST_FILE, expected: [...options.keys.keys()].join(','), actual: manifest.keyId },
    );
  if (!verify(null, manifestSigningBytes(manifest), key, Buffer.from(signature as string, 'base64')))
    throw new VerificationError(
      'bad-signature',
      "the manifest's signature does not verify with the pinned key",
      {
        file: MANIFEST_FILE,
      },
    );
  if (options.origin !== undefined && manifest.origin !== options.origin)
    throw new VerificationError('wrong-origin', 'the bundle comes from another installation than --origin', {
      expected: options.origin,
      actual: manifest.origin,
    });
  checkFilter(manifest);
  return manifest;
}

const MANIFEST_FIELDS = ['v', 'origin', 'createdAt', 'keyId', 'kind', 'filter', 'files', 'chains'];

/** Why the manifest object breaks its own rules (field set, types, file list, chain list), or null. */
function manifestProblem(m: Record<string, unknown>): string | null {
  if (!hasExactly(m, MANIFEST_FIELDS)) return `not exactly the fields ${MANIFEST_FIELDS.join(', ')}`;
  if (m.v !== 2) return 'v is not 2';
  if (typeof m.origin !== 'string') return 'origin is not a string';
  if (typeof m.createdAt !== 'string' || !TIME.test(m.createdAt)) return 'createdAt is not a time';
  if (typeof m.keyId !== 'string' || !KEY_ID.test(m.keyId)) return 'keyId is not 16 hex digits';
  if (m.kind !== 'full' && m.kind !== 'tenant') return 'kind is not "full" or "tenant"';
  const f = m.filter;
  if (!isObject(f) || !hasExactly(f, ['tenant', 'from', 'to'])) return 'filter is not {tenant, from, to}';
  if (f.tenant !== null && (typeof f.tenant !== 'string' || !TENANT_ID.test(f.tenant)))
    return 'filter.tenant is not a tenant id or null';
  for (const k of ['from', 'to'] as const)
    if (f[k] !== null && (typeof f[k] !== 'string' || !TIME.test(f[k] as string)))
      return `filter.${k} is not a time or null`;
  if (!Array.isArray(m.files) || m.files.length !== V2_FILES.length)
    return `files does not list exactly ${V2_FILES.join(', ')}`;
  for (const [i, file] of m.files.entries()) {
    if (
      !isObject(file) ||
      !hasExactly(file, ['name', 'bytes', 'sha256']) ||
      file.name !== V2_FILES[i] ||
      !Number.isSafeInteger(file.bytes) ||
      (file.bytes as number) < 0 ||
      typeof file.sha256 !== 'string' ||
      !HEX64.test(file.sha256)
    )
      return `files[${i}] is not {name: "${V2_FILES[i]}", bytes, sha256}`;
  }
  if (!Array.isArray(m.chains)) return 'chains is not a list';
  let previous: string | null = null;
  for (const c of m.chains as unknown[]) {
    if (
      !isObject(c) ||
      !hasExactly(c, ['chain', 'firstSeq', 'lastSeq', 'prevHash', 'start']) ||
      !isChainName(c.chain) ||
      !Number.isSafeInteger(c.firstSeq) ||
      !Number.isSafeInteger(c.lastSeq) ||
      (c.firstSeq as number) < 1 ||
      (c.lastSeq as number) < (c.firstSeq as number) - 1 ||
      typeof c.prevHash !== 'string' ||
      !HEX64.test(c.prevHash)
    )
      return 'a chain is not {chain, firstSeq >= 1, lastSeq >= firstSeq - 1, prevHash, start}';
    if (previous !== null && byName(previous, c.chain) >= 0)
      return `chain ${c.chain} is out of order or repeated (chains go in ascending byte order of their names)`;
    previous = c.chain;
    if (c.start === 'genesis') {
      if (c.firstSeq !== 1 || c.prevHash !== ZERO_HEX)
        return `chain ${c.chain} starts at genesis, so its firstSeq must be 1 and its prevHash zeros`;
    } else if (c.start === 'from' || c.start === 'retention') {
      if (c.firstSeq === 1) return `chain ${c.chain} starts at seq 1, so its start must be "genesis"`;
      if (c.start === 'retention' && c.chain === REGISTRY) return 'the registry chain is never pruned';
    } else return `chain ${c.chain}'s start is not "genesis", "from" or "retention"`;
  }
  return null;
}

/** Kind and filter agree with the chains (`filter-mismatch`). */
function checkFilter(m: ManifestV2): void {
  const mismatch = (why: string, chain?: string) =>
    new VerificationError('filter-mismatch', why, chain === undefined ? {} : { chain });
  if (m.kind === 'tenant') {
    const tenant = m.filter.tenant;
    if (tenant === null) throw mismatch('a tenant export without a tenant in its filter');
    const only = `t_${tenant}`;
    if (!m.chains.some((c) => c.chain === only))
      throw mismatch(`the tenant export of ${tenant} lacks chain ${only}`);
    for (const c of m.chains)
      if (c.chain !== only) throw mismatch(`a tenant export of ${tenant} holds chain ${c.chain}`, c.chain);
  } else {
    if (m.filter.tenant !== null) throw mismatch('a full export with a tenant in its filter');
    const registry = m.chains.find((c) => c.chain === REGISTRY);
    if (!registry) throw mismatch('a full export without the registry chain');
    // Only a registry from genesis names every chain; anchored, a quiet chain could be left out unseen.
    if (registry.start !== 'genesis')
      throw mismatch(
        `a full export whose registry chain starts at seq ${registry.firstSeq}, not at genesis`,
        REGISTRY,
      );
  }
  for (const c of m.chains)
    if (c.start === 'from' && m.filter.from === null)
      throw mismatch(`chain ${c.chain} starts "from" a time, but the filter has none`, c.chain);
}

// --- step 3: each later file against its manifest line ---------------------------------

interface Content {
  /** Checks a chunk; keeps the first failure (later chunks are then only hashed). May ask to wait. */
  push(chunk: Buffer): Promise<void> | undefined;
  end(): Promise<void> | undefined;
  readonly failure: VerificationError | null;
}

async function checkFile(file: TarFile, manifest: ManifestV2, content: Content | undefined): Promise<void> {
  const listed = manifest.files.find((f) => f.name === file.name) as ManifestV2['files'][number];
  const sha = createHash('sha256');
  let bytes = 0;
  for await (const chunk of file.body) {
    sha.update(chunk);
    bytes += chunk.length;
    // Past the listed size the file fails step 3 whatever it holds: only hash it.
    if (content && bytes <= listed.bytes) {
      const wait = content.push(chunk);
      if (wait) await wait;
    }
  }
  if (content && bytes <= listed.bytes) await content.end();
  const sha256 = sha.digest('hex');
  if (bytes !== listed.bytes || sha256 !== listed.sha256)
    throw new VerificationError(
      'file-mismatch',
      bytes !== listed.bytes
        ? `${file.name} is ${bytes} bytes, the manifest says ${listed.bytes}`
        : `${file.name} does not match its SHA-256 in the manifest`,
      bytes !== listed.bytes
        ? { file: file.name, expected: listed.bytes, actual: bytes }
        : { file: file.name, expected: listed.sha256, actual: sha256 },
    );
  if (content?.failure) throw content.failure;
}

/** Runs checks until the first failure, which it keeps (step 3 decides whether it is the verdict). */
abstract class Recording implements Content {
  failure: VerificationError | null = null;

  protected abstract pushChecked(chunk: Buffer): void;
  protected abstract endChecked(): void;

  push(chunk: Buffer): undefined {
    this.record(() => this.pushChecked(chunk));
  }

  end(): undefined {
    this.record(() => this.endChecked());
  }

  private record(check: () => void): void {
    if (this.failure) return;
    try {
      check();
    } catch (err) {
      if (!(err instanceof VerificationError)) throw err;
      this.failure = err;
    }
  }
}

// --- step 4: checkpoints.jsonl ----------------------------------------------------------

interface ExpectedCheckpoint {
  chain: ManifestChainV2;
  size: number;
  anchor: boolean;
  end: boolean;
}

class CheckpointLines extends Recording {
  readonly ends = new Map<string, SignedCheckpoint>();
  private readonly expected: ExpectedCheckpoint[] = [];
  private next = 0;
  private readonly splitter: LineSplitter;
  private readonly manifest: ManifestV2;
  private readonly keys: ReadonlyMap<string, KeyObject>;

  constructor(manifest: ManifestV2, keys: ReadonlyMap<string, KeyObject>) {
    super();
    this.manifest = manifest;
    this.keys = keys;
    for (const c of manifest.chains) {
      const anchored = c.start !== 'genesis';
      if (anchored) this.expected.push({ chain: c, size: c.firstSeq - 1, anchor: true, end: false });
      const last = this.expected.at(-1);
      if (anchored && last?.size === c.lastSeq) last.end = true;
      else this.expected.push({ chain: c, size: c.lastSeq, anchor: false, end: true });
    }
    this.splitter = new LineSplitter(CHECKPOINT_LINE_LIMIT, (line) => this.line(line));
  }

  protected pushChecked(chunk: Buffer): void {
    try {
      this.splitter.push(chunk);
    } catch (err) {
      if (err instanceof VerificationError && err.reason === 'line-too-long')
        throw notACheckpoint('too long');
      throw err;
    }
  }

  protected endChecked(): void {
    if (this.splitter.pending > 0) throw notACheckpoint('the last line has no newline');
    const missing = this.expected[this.next];
    if (missing) throw missingCheckpoint(missing);
  }

  private line(bytes: Buffer): void {
    const value = canonicalValue(bytes);
    if (value === undefined) throw notACheckpoint('not canonical JSON');
    const problem = signedCheckpointProblem(value);
    if (problem) throw notACheckpoint(problem);
    const sc = value as SignedCheckpoint;
    const cp = sc.checkpoint;
    const at = { chain: cp.chain, seq: cp.size };
    const want = this.expected[this.next];
    if (!want || want.chain.chain !== cp.chain || want.size !== cp.size) {
      const later = this.expected.findIndex(
        (e, i) => i > this.next && e.chain.chain === cp.chain && e.size === cp.size,
      );
      if (want && later !== -1) throw missingCheckpoint(want);
      throw new VerificationError(
        'checkpoint-invalid',
        `an unexpected checkpoint of chain ${cp.chain} at size ${cp.size}`,
        want
          ? {
              ...at,
              expected: `${want.chain.chain} size ${want.size}`,
              actual: `${cp.chain} size ${cp.size}`,
            }
          : at,
      );
    }
    this.next++;
    this.checkSigned(sc, at);
    if (want.anchor && cp.head !== want.chain.prevHash)
      throw new VerificationError('anchor-mismatch', "the anchor's head is not the manifest's prevHash", {
        ...at,
        expected: want.chain.prevHash,
        actual: cp.head,
      });
    if (want.end) this.ends.set(cp.chain, sc);
  }

  private checkSigned(sc: SignedCheckpoint, at: { chain: string; seq: number }): void {
    const cp = sc.checkpoint;
    if (cp.origin !== this.manifest.origin)
      throw new VerificationError('wrong-origin', 'the checkpoint belongs to another installation', {
        ...at,
        expected: this.manifest.origin,
        actual: cp.origin,
      });
    checkSignature(sc, this.keys, 'the checkpoint');
    const to = this.manifest.filter.to;
    if (to !== null && cp.time > to)
      throw new VerificationError('filter-mismatch', `the checkpoint was signed after the filter's "to"`, {
        ...at,
        expected: `at most ${to}`,
        actual: cp.time,
      });
  }
}

const notACheckpoint = (why: string) =>
  new VerificationError(
    'checkpoint-invalid',
    `a line of ${CHECKPOINTS_FILE} is not a signed checkpoint: ${why}`,
    {
      file: CHECKPOINTS_FILE,
    },
  );

const missingCheckpoint = (e: ExpectedCheckpoint) =>
  new VerificationError(
    'missing-checkpoint',
    `the ${e.anchor ? 'anchor' : 'end'} checkpoint of chain ${e.chain.chain} at size ${e.size} is missing`,
    { chain: e.chain.chain, seq: e.size },
  );

// --- step 5: entries.jsonl ---------------------------------------------------------------

class EntryLines implements Content {
  count = 0;
  readonly registry = new Map<string, RegistryRecord>();
  readonly heads = new Map<string, string>();
  readonly kept = new Map<string, Buffer>();
  private readonly chains: ManifestChainV2[];
  /** The expected position: chains[index], seq. */
  private index = -1;
  private seq = 0;
  private hash: Buffer = ZERO_HASH;
  private lastReport = 0;
  private readonly splitter: LineSplitter;
  private readonly checkpoints: CheckpointLines;
  private readonly options: V2Options;
  private readonly origin: string;
  /** Lines read so far, and where a failure found on this thread sits in stream order (see `key`). */
  private lines = 0;
  private key = -1;
  /** The first failure found on this thread, with its key; lines are not read past it. */
  private own: { key: number; error: VerificationError } | null = null;
  private settled: VerificationError | null = null;
  /** Workers for the per-line checks; none: checked here, in order. */
  private readonly pool: LinePool | null;

  constructor(manifest: ManifestV2, checkpoints: CheckpointLines, options: V2Options, threads: number) {
    this.chains = manifest.chains;
    this.origin = manifest.origin;
    this.checkpoints = checkpoints;
    this.options = options;
    this.splitter = new LineSplitter(options.maxLineBytes, (line) => this.line(line));
    this.pool =
      threads > 1
        ? new LinePool(
            threads,
            { origin: manifest.origin, chains: manifest.chains.map((c) => c.chain), keys: options.keys },
            (r) => recordRegistry(this.registry, { checkpoint: r.checkpoint, signature: r.signature }, r.seq),
            options.onWorkerHeap,
            options.parallelBatchLines,
          )
        : null;
  }

  /**
   * The first failure in stream order. Keys order failures as one thread
   * checking the lines in turn would meet them: 2i for line i's own checks,
   * 2i - 1 for what is found before line i (a chain closed, a line too many).
   */
  get failure(): VerificationError | null {
    return this.settled;
  }

  /** Waits for the workers, then settles the verdict of the file's content. */
  async end(): Promise<void> {
    if (!this.own) this.guard(() => this.endChecked());
    if (this.pool) {
      try {
        await this.pool.finish();
      } finally {
        this.pool.close();
      }
      const theirs = this.pool.failure();
      if (theirs && (!this.own || 2 * theirs.index < this.own.key)) {
        this.settled = theirs.error;
        return;
      }
    }
    this.settled = this.own?.error ?? null;
  }

  /** Ends the workers (on any way out). */
  stop(): void {
    this.pool?.close();
  }

  push(chunk: Buffer): Promise<void> | undefined {
    if (this.own || this.pool?.first) return undefined;
    this.guard(() => this.pushChecked(chunk));
    return this.pool?.pushed();
  }

  private guard(check: () => void): void {
    try {
      check();
    } catch (err) {
      if (!(err instanceof VerificationError)) throw err;
      this.own = { key: this.key, error: err };
    }
  }

  /** The expected chain, having passed (and closed) every chain that is complete; undefined after the last. */
  private position(): ManifestChainV2 | undefined {
    let chain = this.chains[this.index];
    while (!chain || this.seq > chain.lastSeq) {
      if (chain) this.close(chain);
      chain = this.chains[++this.index];
      if (!chain) return undefined;
      this.seq = chain.firstSeq;
      this.hash = Buffer.from(chain.prevHash, 'hex');
    }
    return chain;
  }

  /** A chain's end: the recomputed hash is the end checkpoint's head. */
  private close(chain: ManifestChainV2): void {
    const head = this.hash.toString('hex');
    this.heads.set(chain.chain, head);
    const end = this.checkpoints.ends.get(chain.chain) as SignedCheckpoint;
    if (end.checkpoint.head !== head)
      throw new VerificationError(
        'head-mismatch',
        `the hash recomputed over seq ${chain.firstSeq}..${chain.lastSeq} is not the signed head: an entry was changed, added or removed`,
        { chain: chain.chain, seq: chain.lastSeq, expected: end.checkpoint.head, actual: head },
      );
  }

  private pushChecked(chunk: Buffer): void {
    try {
      this.splitter.push(chunk);
    } catch (err) {
      // An over-long line where no line may be at all is a line too many.
      if (err instanceof VerificationError && err.reason === 'line-too-long') {
        this.key = 2 * this.lines - 1;
        const chain = this.position();
        this.key = 2 * this.lines;
        if (!chain) throw this.tooMany();
      }
      throw err;
    }
    if (this.options.onProgress && this.count - this.lastReport >= 50_000) {
      this.lastReport = this.count;
      this.options.onProgress(this.count);
    }
  }

  private endChecked(): void {
    this.key = 2 * this.lines - 1;
    const chain = this.position();
    this.key = 2 * this.lines;
    if (this.splitter.pending > 0) {
      if (!chain) throw this.tooMany();
      throw new VerificationError('not-canonical', `the last line of ${ENTRIES_FILE} has no newline`, {
        chain: chain.chain,
        seq: this.seq,
      });
    }
    if (chain)
      throw new VerificationError(
        'range-mismatch',
        `${ENTRIES_FILE} ends before seq ${this.seq} of chain ${chain.chain}; the manifest says ${chain.firstSeq}..${chain.lastSeq}`,
        { chain: chain.chain, seq: this.seq, expected: chain.lastSeq, actual: this.seq - 1 },
      );
  }

  private tooMany(): VerificationError {
    return new VerificationError(
      'range-mismatch',
      `${ENTRIES_FILE} has lines after the last expected entry`,
      {
        file: ENTRIES_FILE,
      },
    );
  }

  private line(bytes: Buffer): void {
    this.key = 2 * this.lines - 1;
    const chain = this.position();
    this.key = 2 * this.lines;
    if (!chain) throw this.tooMany();
    const here = { chain: chain.chain, seq: this.seq };
    if (this.pool) this.pool.add(bytes, this.lines, this.index, here.seq);
    else {
      const entry = checkEntryAt(bytes, here, this.origin, this.options.keys);
      if (here.chain === REGISTRY) recordRegistry(this.registry, entry, here.seq);
    }
    this.hash = nextHash(this.hash, bytes);
    if (this.options.keep.get(here.chain) === here.seq) this.kept.set(here.chain, this.hash);
    this.seq++;
    this.count++;
    this.lines++;
    this.key = 2 * this.lines - 1;
    this.position(); // closes the chain at its last entry
  }
}

/** chainHash with one-shot SHA-256 over a reused buffer (no Hash object per line). */
const scratch = Buffer.alloc(32 + (64 << 10));
function nextHash(prev: Buffer, line: Buffer): Buffer {
  if (line.length > scratch.length - 32) return chainHash(prev, line);
  prev.copy(scratch, 0);
  line.copy(scratch, 32);
  return hash('sha256', scratch.subarray(0, 32 + line.length), 'buffer');
}

export type { Checkpoint };
