// The offline verifier: a bundle (.tar.gz) and the auditor's pinned public
// key in, OK with counts or the first failure out. No database, no server, no
// configuration; it trusts only the pinned key (keys.json in the bundle is
// hashed like any file and otherwise ignored). The steps are the "Offline
// verify" section of docs/AUDIT-FORMAT.md.
//
// One pass over the stream: gunzip -> tar -> lines. entries.jsonl is checked
// line by line as it arrives (verify-entries.ts); every file is hashed as it
// arrives; the manifest comes last, and the checks that need it (file hashes,
// ranges, checkpoints, --prev) run at the end. Memory stays at a few values
// per chain, whatever the number of entries.
import { createHash, createPublicKey, type KeyObject, verify } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import {
  CHECKPOINTS_FILE,
  type Checkpoint,
  CONTENT_FILES,
  canonicalBytes,
  ENTRIES_FILE,
  MANIFEST_FILE,
  type Manifest,
  type ManifestChain,
  pinnedKeyId,
  type SignedCheckpoint,
  ZERO_HASH,
} from './bundle-format.ts';
import { PinnedKeyError, VerificationError, type VerifyReason } from './verification-error.ts';
import { type ChainRun, EntryChecker, LineSplitter, Spool } from './verify-entries.ts';

export { PinnedKeyError, VerificationError, type VerifyReason };

export type BundleSource = Uint8Array | Readable | AsyncIterable<Uint8Array>;

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

const SMALL_FILE_LIMIT = 64 << 20; // manifest.json and checkpoints.jsonl hold a few lines per chain
const HEX64 = /^[0-9a-f]{64}$/;
const KEY_ID = /^[0-9a-f]{16}$/;
const SIGNATURE = /^[A-Za-z0-9+/]{86}==$/; // 64 bytes, strict base64: one spelling per signature

/** Every Ed25519 public key in a PEM text (one or more `PUBLIC KEY` blocks: old keys stay pinned after a rotation). */
export function readPinnedKeys(pem: string): KeyObject[] {
  const blocks = pem.match(/-----BEGIN PUBLIC KEY-----[\s\S]+?-----END PUBLIC KEY-----/g) ?? [];
  if (blocks.length === 0)
    throw new PinnedKeyError('the key file holds no PEM public key ("BEGIN PUBLIC KEY")');
  return blocks.map((block) => {
    let key: KeyObject;
    try {
      key = createPublicKey(block);
    } catch (err) {
      throw new PinnedKeyError('the key file holds an unreadable public key', { cause: err });
    }
    if (key.asymmetricKeyType !== 'ed25519')
      throw new PinnedKeyError(`the pinned key is ${key.asymmetricKeyType}, not Ed25519`);
    return key;
  });
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

interface SeenFile {
  bytes: number;
  sha256: string;
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

// --- 1. the archive: every file hashed, entries.jsonl checked as it streams ----

async function readArchive(
  source: BundleSource,
  checker: EntryChecker,
  maxLineBytes: number,
  options: VerifyOptions,
) {
  const files = new Map<string, SeenFile>();
  let manifestText: string | undefined;
  let checkpointLines: Buffer[] = [];
  const input = source instanceof Uint8Array ? Readable.from([source]) : Readable.from(source);
  const extract = tar.extract();
  const flowing = pipeline(input, createGunzip(), extract);
  flowing.catch(() => {}); // read below, after the loop: a failed check stops the flow first
  try {
    for await (const entry of extract) {
      const { name, type } = entry.header;
      if (manifestText !== undefined)
        throw new VerificationError(
          'unexpected-file',
          `${name} comes after the manifest, which must be the last file`,
          { file: name },
        );
      if (
        type !== 'file' ||
        files.has(name) ||
        (name !== MANIFEST_FILE && !(CONTENT_FILES as readonly string[]).includes(name))
      )
        throw new VerificationError('unexpected-file', `"${name}" is not a bundle file (or appears twice)`, {
          file: name,
        });
      const sha = createHash('sha256');
      let bytes = 0;
      const small: Buffer[] = [];
      const lines =
        name === ENTRIES_FILE ? new LineSplitter(maxLineBytes, (line) => checker.line(line)) : undefined;
      let lastReport = 0;
      for await (const chunk of entry as AsyncIterable<Buffer>) {
        sha.update(chunk);
        bytes += chunk.length;
        if (lines) {
          lines.push(chunk);
          if (checker.spoolDue) await checker.flush();
          if (options.onProgress && checker.entries - lastReport >= 50_000) {
            lastReport = checker.entries;
            options.onProgress(checker.entries);
          }
        } else if (name === MANIFEST_FILE || name === CHECKPOINTS_FILE) {
          if (bytes > SMALL_FILE_LIMIT)
            throw new VerificationError(
              'unexpected-file',
              `${name} is larger than ${SMALL_FILE_LIMIT} bytes`,
              { file: name },
            );
          small.push(chunk);
        }
      }
      if (lines && lines.pending > 0)
        throw new VerificationError('not-canonical', `the last line of ${ENTRIES_FILE} has no newline`, {
          file: name,
        });
      files.set(name, { bytes, sha256: sha.digest('hex') });
      if (name === MANIFEST_FILE) manifestText = Buffer.concat(small).toString('utf8');
      if (name === CHECKPOINTS_FILE) checkpointLines = splitLines(Buffer.concat(small));
    }
    await flowing;
  } catch (err) {
    input.destroy();
    extract.destroy();
    if (err instanceof VerificationError) throw err;
    await flowing.catch(() => {});
    throw new VerificationError(
      'unreadable',
      `not a readable .tar.gz: ${(err as Error).message}`,
      {},
      { cause: err },
    );
  }
  options.onProgress?.(checker.entries);
  if (manifestText === undefined)
    throw new VerificationError('missing-file', `the bundle has no ${MANIFEST_FILE}`, {
      file: MANIFEST_FILE,
    });
  return { files, manifestText, checkpointLines };
}

function splitLines(data: Buffer): Buffer[] {
  const out: Buffer[] = [];
  const splitter = new LineSplitter(SMALL_FILE_LIMIT, (line) => out.push(line));
  splitter.push(data);
  if (splitter.pending > 0) out.push(data.subarray(data.length - splitter.pending));
  return out;
}

// --- 2. the manifest and the files it lists ----------------------------------

function parseManifest(text: string): Manifest {
  const bad = (why: string): never => {
    throw new VerificationError('manifest-invalid', `${MANIFEST_FILE}: ${why}`, { file: MANIFEST_FILE });
  };
  let m: Manifest;
  try {
    m = JSON.parse(text) as Manifest;
  } catch {
    return bad('not JSON');
  }
  if (m === null || typeof m !== 'object' || m.v !== 1) bad('not a version 1 manifest');
  if (typeof m.origin !== 'string' || !Array.isArray(m.chains) || !Array.isArray(m.files))
    bad('origin, chains or files missing');
  const names = new Set<string>();
  for (const c of m.chains) {
    if (
      c === null ||
      typeof c !== 'object' ||
      typeof c.chain !== 'string' ||
      !Number.isSafeInteger(c.firstSeq) ||
      !Number.isSafeInteger(c.lastSeq) ||
      c.firstSeq < 1 ||
      c.lastSeq < c.firstSeq - 1 ||
      typeof c.prevHash !== 'string' ||
      !HEX64.test(c.prevHash)
    )
      bad('a chain needs chain, firstSeq >= 1, lastSeq >= firstSeq - 1 and a 64-hex prevHash');
    if (c.firstSeq === 1 && c.prevHash !== ZERO_HASH.toString('hex'))
      bad(`chain ${c.chain} starts at seq 1, so its prevHash must be zeros`);
    if (names.has(c.chain)) bad(`chain ${c.chain} is listed twice`);
    names.add(c.chain);
  }
  for (const f of m.files)
    if (
      f === null ||
      typeof f !== 'object' ||
      typeof f.name !== 'string' ||
      !Number.isSafeInteger(f.bytes) ||
      typeof f.sha256 !== 'string'
    )
      bad('a file needs name, bytes and sha256');
  return m;
}

function checkFiles(manifest: Manifest, files: Map<string, SeenFile>): void {
  const listed = new Map(manifest.files.map((f) => [f.name, f]));
  for (const name of CONTENT_FILES)
    if (!listed.has(name) || !files.has(name))
      throw new VerificationError(
        'missing-file',
        `${name} is missing from the ${listed.has(name) ? 'archive' : 'manifest'}`,
        { file: name },
      );
  for (const [name, seen] of files) {
    if (name === MANIFEST_FILE) continue;
    const want = listed.get(name);
    if (!want)
      throw new VerificationError('unexpected-file', `${name} is not listed in the manifest`, { file: name });
    if (want.sha256 !== seen.sha256 || want.bytes !== seen.bytes)
      throw new VerificationError('file-mismatch', `${name} does not match its SHA-256 in the manifest`, {
        file: name,
        expected: want.sha256,
        actual: seen.sha256,
      });
  }
  for (const name of listed.keys())
    if (!files.has(name))
      throw new VerificationError('missing-file', `${name} is listed in the manifest but missing`, {
        file: name,
      });
}

/** Each chain's entries cover exactly the manifest's firstSeq..lastSeq, and the origin is the bundle's. */
function checkRanges(manifest: Manifest, checker: EntryChecker): Map<string, ManifestChain> {
  const chains = new Map(manifest.chains.map((c) => [c.chain, c]));
  if (checker.origin !== null && checker.origin !== manifest.origin)
    throw new VerificationError('wrong-origin', "the entries' origin is not the manifest's", {
      expected: manifest.origin,
      actual: checker.origin,
    });
  for (const run of checker.runs.values())
    if (!chains.has(run.chain))
      throw new VerificationError(
        'range-mismatch',
        `the bundle has entries of chain ${run.chain}, which the manifest does not list`,
        {
          chain: run.chain,
          seq: run.firstSeq,
        },
      );
  for (const c of manifest.chains) {
    const run = checker.runs.get(c.chain);
    const [first, last] = run ? [run.firstSeq, run.lastSeq] : [c.firstSeq, c.firstSeq - 1];
    if (first !== c.firstSeq || last !== c.lastSeq)
      throw new VerificationError(
        'range-mismatch',
        `the entries run ${range(first, last)}, the manifest says ${range(c.firstSeq, c.lastSeq)}`,
        {
          chain: c.chain,
          seq: first !== c.firstSeq ? first : last + 1,
          expected: range(c.firstSeq, c.lastSeq),
          actual: range(first, last),
        },
      );
  }
  return chains;
}

const range = (first: number, last: number) => (last < first ? 'none' : `${first}..${last}`);

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

function checkCheckpoints(
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

function checkPrev(prev: SignedCheckpoint[], keys: Map<string, KeyObject>): Map<string, SignedCheckpoint> {
  const byChain = new Map<string, SignedCheckpoint>();
  for (const p of prev) {
    const sc = checkpointShape(p, 'prev-invalid', 'the earlier checkpoint', null);
    checkSignature(sc, keys, 'the earlier checkpoint', 'prev-invalid');
    const seen = byChain.get(sc.checkpoint.chain);
    if (!seen || seen.checkpoint.size < sc.checkpoint.size) byChain.set(sc.checkpoint.chain, sc);
  }
  return byChain;
}

function checkAgainstPrev(
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

function checkRegistry(
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
