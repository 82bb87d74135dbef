// The offline verifier's reading side: the .tar.gz streamed once, file by
// file (`Archive`), and format v1's reading of it: every file hashed as it
// passes, entries.jsonl handed line by line to the EntryChecker; then the
// manifest (the last file) parsed and held against what was read.
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import {
  CHECKPOINTS_FILE,
  CONTENT_FILES,
  ENTRIES_FILE,
  MANIFEST_FILE,
  type Manifest,
  type ManifestChain,
  ZERO_HASH,
} from './bundle-format.ts';
import { VerificationError } from './verification-error.ts';
import { type EntryChecker, LineSplitter } from './verify-entries.ts';

export type BundleSource = Uint8Array | Readable | AsyncIterable<Uint8Array>;

export interface SeenFile {
  bytes: number;
  sha256: string;
}

/** One tar entry: read `body` to its end before asking the archive for the next. */
export interface TarFile {
  name: string;
  /** tar-stream's type: 'file' for a regular file. */
  type: string;
  body: AsyncIterable<Buffer>;
}

/**
 * gunzip -> tar, one file at a time. Anything the stream cannot read (not
 * gzip, not tar, cut off) surfaces as `unreadable` from `next`, `end` or
 * while a body is read (see `unreadable`).
 */
export class Archive {
  private readonly input: Readable;
  private readonly extract: tar.Extract;
  private readonly flowing: Promise<void>;
  private readonly files: AsyncIterator<{ header: tar.Header }>;

  constructor(source: BundleSource) {
    this.input = source instanceof Uint8Array ? Readable.from([source]) : Readable.from(source);
    this.extract = tar.extract();
    this.flowing = pipeline(this.input, createGunzip(), this.extract);
    this.flowing.catch(() => {}); // awaited in end(): a failed check stops the flow first
    this.files = this.extract[Symbol.asyncIterator]();
  }

  /** The next file, or null after the last. */
  async next(): Promise<TarFile | null> {
    const r = await this.files.next();
    if (r.done) return null;
    const entry = r.value;
    return {
      name: entry.header.name,
      type: entry.header.type,
      body: entry as unknown as AsyncIterable<Buffer>,
    };
  }

  /** After the last file: the rest of the stream must read cleanly. */
  async end(): Promise<void> {
    await this.flowing;
  }

  close(): void {
    this.input.destroy();
    this.extract.destroy();
  }
}

/** A reading error as the verdict `unreadable`; a verdict or a programming error passes through. */
export function unreadable(err: unknown): unknown {
  // gunzip, tar and stream failures are plain Errors; anything else (a TypeError, a
  // ReferenceError...) is a bug of ours and must not pass for a broken bundle.
  if (!(err instanceof Error) || err.constructor !== Error) return err;
  return new VerificationError(
    'unreadable',
    `not a readable .tar.gz: ${(err as Error).message}`,
    {},
    { cause: err },
  );
}

const SMALL_FILE_LIMIT = 64 << 20; // manifest.json and checkpoints.jsonl hold a few lines per chain
const HEX64 = /^[0-9a-f]{64}$/;

// --- format v1, 1. the archive: every file hashed, entries.jsonl checked as it streams ----

export async function readArchive(
  first: TarFile,
  archive: Archive,
  checker: EntryChecker,
  maxLineBytes: number,
  options: { onProgress?: ((entries: number) => void) | undefined },
) {
  const files = new Map<string, SeenFile>();
  let manifestText: string | undefined;
  let checkpointLines: Buffer[] = [];
  for (let file: TarFile | null = first; file; file = await archive.next()) {
    const { name, type } = file;
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
    for await (const chunk of file.body) {
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
          throw new VerificationError('unexpected-file', `${name} is larger than ${SMALL_FILE_LIMIT} bytes`, {
            file: name,
          });
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
  await archive.end();
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

// --- format v1, 2. the manifest and the files it lists ----------------------------------

export function parseManifest(text: string): Manifest {
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

export function checkFiles(manifest: Manifest, files: Map<string, SeenFile>): void {
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
export function checkRanges(manifest: Manifest, checker: EntryChecker): Map<string, ManifestChain> {
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
