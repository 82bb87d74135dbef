// Writes a tenant backup archive, format 1 (docs/BACKUP.md), in two phases,
// like the audit bundle (audit/bundle.ts):
//
// 1. spoolTables, while the database snapshot is open: each table's COPY text
//    is counted (rows), hashed (contentSha256), zstd-compressed, hashed again
//    (sha256) and written to a temporary file. Memory stays at a few stream
//    buffers however big the table.
// 2. writeArchive, after the snapshot is released: the manifest is built and
//    signed, and the tar (manifest.json, then the parts in manifest order),
//    age-encrypted when there are recipients, is written through the storage,
//    which makes it visible only once it is complete and on disk.
import { createHash, type Hash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Duplex, Transform, type TransformCallback, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadable } from 'node:stream/web';
import { createZstdCompress, constants as zlib } from 'node:zlib';
import type { Encrypter } from 'age-encryption';
import { canonicalBytes } from '../audit/verifier/canonical.ts';
import { writeTar } from '../kernel/archive.ts';
import {
  ARCHIVE_FORMAT,
  type ArchiveManifest,
  type ArchiveTable,
  MANIFEST_ENTRY,
  manifestEntryBytes,
  manifestSigningBytes,
  partName,
  type SignedArchiveManifest,
} from './archive-format.ts';
import { BackupError } from './backup-errors.ts';
import type { BackupStorage } from './storage.ts';

/** What signs the manifest: the audit signing key (audit/signing.ts Signer fits). */
export interface ManifestSigner {
  readonly keyId: string;
  sign(bytes: Uint8Array): Buffer;
}

export interface TableSource {
  name: string;
  columns: string[];
  /** Writes the table's COPY text into `sink` and resolves when done (ends nothing). */
  copyTo(sink: Writable): Promise<void>;
}

export interface ArchiveProgress {
  table: string;
  /** Rows spooled so far (the table's count on the last call for it). */
  rows: number;
  /** Compressed bytes spooled so far. */
  bytes: number;
}

export interface ArchiveWriterOptions {
  /** Where phase 1 spools (default: the OS temporary directory). */
  tmpDir?: string;
  /** age recipients (age1…): the whole tar is encrypted to them when there is at least one. */
  recipients?: string[];
  /** Called after every PROGRESS_BYTES of COPY text, and once at the end of each table. */
  onProgress?: (p: ArchiveProgress) => void;
  /** zstd level (default 3, zstd's own default). */
  compressionLevel?: number;
}

export interface SpooledTables {
  /** In manifest order, with their parts' names, sizes and hashes. */
  tables: ArchiveTable[];
  /** The spooled part of each table, same order. */
  files: string[];
  /** Removes the spooled files (writeArchive does not). */
  dispose(): Promise<void>;
}

const PROGRESS_BYTES = 16 << 20;

/** Phase 1: every table spooled, in the order given, to a compressed, hashed temporary file. */
export async function spoolTables(
  tables: Iterable<TableSource> | AsyncIterable<TableSource>,
  options: ArchiveWriterOptions = {},
): Promise<SpooledTables> {
  const dir = await mkdtemp(path.join(options.tmpDir ?? tmpdir(), 'enclave-backup-'));
  const spooled: SpooledTables = {
    tables: [],
    files: [],
    dispose: () => rm(dir, { recursive: true, force: true }),
  };
  try {
    const names = new Set<string>();
    for await (const source of tables) {
      if (names.has(source.name)) throw new BackupError(`table ${source.name} is listed twice`);
      names.add(source.name);
      const n = spooled.tables.length;
      const file = path.join(dir, `${n + 1}.copy.zst`);
      spooled.tables.push(await spoolTable(source, partName(n, source.name), file, options));
      spooled.files.push(file);
    }
  } catch (err) {
    await spooled.dispose();
    throw err;
  }
  return spooled;
}

async function spoolTable(
  source: TableSource,
  part: string,
  file: string,
  options: ArchiveWriterOptions,
): Promise<ArchiveTable> {
  const compressed = new Counter();
  const content = new CopyTextCounter((rows) =>
    options.onProgress?.({ table: source.name, rows, bytes: compressed.bytes }),
  );
  const zstd = createZstdCompress({
    params: {
      [zlib.ZSTD_c_compressionLevel]: options.compressionLevel ?? 3,
      [zlib.ZSTD_c_checksumFlag]: 1,
    },
  });
  const written = pipeline(content, zstd, compressed, createWriteStream(file, { flags: 'wx', mode: 0o600 }));
  written.catch(() => {}); // awaited below, or the copy's own failure wins
  try {
    // A failing sink (a full disk) stops the wait even if copyTo is stuck on a full buffer.
    const copying = source.copyTo(content);
    copying.catch(() => {}); // when the sink fails first, the copy's own failure comes after and is moot
    await Promise.race([copying, written.then(() => never)]);
  } catch (err) {
    content.destroy(err instanceof Error ? err : new Error(String(err)));
    await written.catch(() => {});
    throw err;
  }
  content.end();
  await written;
  if (content.bytes > 0 && content.lastByte !== NEWLINE)
    throw new BackupError(`the COPY text of table ${source.name} does not end with a newline`);
  options.onProgress?.({ table: source.name, rows: content.rows, bytes: compressed.bytes });
  return {
    name: source.name,
    columns: [...source.columns],
    rows: content.rows,
    part,
    bytes: compressed.bytes,
    sha256: compressed.digest(),
    contentSha256: content.digest(),
  };
}

const never = new Promise<never>(() => {});
const NEWLINE = 0x0a;

/** Passes bytes through, hashing and counting them. */
class Counter extends Transform {
  bytes = 0;
  protected readonly sha: Hash = createHash('sha256');
  private hex: string | undefined;

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.sha.update(chunk);
    this.bytes += chunk.length;
    done(null, chunk);
  }

  digest(): string {
    this.hex ??= this.sha.digest('hex');
    return this.hex;
  }
}

/** COPY text: one row per newline (newlines inside values are escaped as `\n`). */
class CopyTextCounter extends Counter {
  rows = 0;
  lastByte = -1;
  private nextReport = PROGRESS_BYTES;
  private readonly report: (rows: number) => void;

  constructor(report: (rows: number) => void) {
    super();
    this.report = report;
  }

  override _transform(chunk: Buffer, enc: BufferEncoding, done: TransformCallback): void {
    for (let i = chunk.indexOf(NEWLINE); i !== -1; i = chunk.indexOf(NEWLINE, i + 1)) this.rows++;
    if (chunk.length > 0) this.lastByte = chunk[chunk.length - 1] as number;
    super._transform(chunk, enc, done);
    if (this.bytes >= this.nextReport) {
      this.nextReport = this.bytes + PROGRESS_BYTES;
      this.report(this.rows);
    }
  }
}

export interface WrittenArchive {
  location: string;
  /** Size of the archive file. */
  bytes: number;
  /** SHA-256 of the archive file as stored (after encryption, if any), hex. */
  sha256: string;
  manifest: ArchiveManifest;
  /** Whether it is age-encrypted. */
  encrypted: boolean;
}

/**
 * Phase 2: the manifest (the tables from the spool and the rest as given)
 * built and signed, and the archive written through `storage` under `name`,
 * atomically. The spool is left for the caller to dispose.
 */
export async function writeArchive(
  storage: BackupStorage,
  name: string,
  spooled: SpooledTables,
  manifest: Omit<ArchiveManifest, 'tables' | 'keyId' | 'format' | 'compression'>,
  signer: ManifestSigner,
  options: ArchiveWriterOptions = {},
): Promise<WrittenArchive> {
  if (spooled.files.length !== spooled.tables.length)
    throw new BackupError('writeArchive needs the result of spoolTables');
  const full: ArchiveManifest = {
    ...manifest,
    format: ARCHIVE_FORMAT,
    keyId: signer.keyId,
    compression: 'zstd',
    tables: spooled.tables,
  };
  const signed: SignedArchiveManifest = {
    manifest: full,
    manifestSha256: createHash('sha256').update(canonicalBytes(full)).digest('hex'),
    signature: signer.sign(manifestSigningBytes(full)).toString('base64'),
  };
  const manifestBytes = manifestEntryBytes(signed);
  const mtime = new Date(full.createdAt);
  const recipients = options.recipients ?? [];
  const hashed = new Counter();
  const { location, bytes } = await storage.put(name, async (out) => {
    const through: Duplex[] = recipients.length > 0 ? [await ageEncryptor(recipients)] : [];
    await writeTar(
      out,
      [
        { name: MANIFEST_ENTRY, body: manifestBytes },
        ...spooled.tables.map((t, i) => ({ name: t.part, file: spooled.files[i] as string, size: t.bytes })),
      ],
      Number.isNaN(mtime.getTime()) ? new Date() : mtime,
      { through: [...through, hashed] },
    );
  });
  if (bytes !== hashed.bytes)
    throw new BackupError(`the archive ${location} holds ${bytes} bytes, ${hashed.bytes} were written`);
  return { location, bytes, sha256: hashed.digest(), manifest: full, encrypted: recipients.length > 0 };
}

/** age's streaming encryption as a Node Duplex (64 KiB chunks: memory stays flat). */
async function ageEncryptor(recipients: readonly string[]): Promise<Duplex> {
  const plain = new TransformStream<Uint8Array, Uint8Array>();
  const encrypted = await encrypterFor(recipients).encrypt(plain.readable);
  // age's typings use the DOM's ReadableStream, Node's Duplex.fromWeb its own: the same object at run time.
  return Duplex.fromWeb({
    readable: encrypted as unknown as WebReadable<Uint8Array>,
    writable: plain.writable,
  });
}

/** Checks age recipients without writing anything (a configuration check at start-up). */
export function checkRecipients(recipients: readonly string[]): void {
  if (recipients.length > 0) encrypterFor(recipients);
}

// age (and the post-quantum code it carries, ~0.1 s to load) is loaded only
// when something is encrypted: most CLI runs and servers never need it.
// require() of this ES module is synchronous, so the configuration check at
// start-up stays synchronous.
const loadAge = (): typeof import('age-encryption') =>
  createRequire(import.meta.url)('age-encryption') as typeof import('age-encryption');

function encrypterFor(recipients: readonly string[]): Encrypter {
  const encrypter = new (loadAge().Encrypter)();
  for (const r of recipients) {
    try {
      encrypter.addRecipient(r);
    } catch (err) {
      throw new BackupError(
        `${JSON.stringify(r)} is not an age recipient (age1…): ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
  }
  return encrypter;
}
