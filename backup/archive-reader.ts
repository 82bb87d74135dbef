// Reads a tenant backup archive, format 1 (docs/BACKUP.md), in two passes:
//
// 1. checkArchive reads the whole file once, streaming: age-decrypts it if it
//    is encrypted, checks the tar's layout, the manifest (canonical form,
//    checksum, format, signature by a trusted key) and every part (size,
//    SHA-256, then zstd-decompressed: SHA-256 of the COPY text and its row
//    count). It changes nothing and refuses anything wrong with an
//    ArchiveRefusedError naming one reason.
// 2. readParts reads it again and hands out each part's COPY text as a
//    stream, re-hashing as it goes: a part that differs from the manifest (the
//    file changed between the passes) errors with 'changed' instead of ending,
//    so a restore loading it fails before it commits.
//
// Offline: nothing here touches a database, a server or configuration
// (`enclave backup verify FILE --key PUB` runs it on a laptop). The tar is
// parsed here, strictly, rather than by a general tar reader: the layout is
// fixed (ustar headers, regular files, manifest.json first, the parts in
// manifest order, the end marker, nothing after), and a file cut short must
// be told apart from one that is merely different.
import { createHash, type KeyObject, verify } from 'node:crypto';
import { Readable, Transform, type TransformCallback, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createZstdDecompress } from 'node:zlib';
import { canonicalBytes } from '../audit/verifier/canonical.ts';
import { pinnedKeyId, readPinnedKeys } from '../audit/verifier/keys.ts';
import {
  AGE_MAGIC,
  ARCHIVE_FORMAT,
  type ArchiveManifest,
  type ArchiveTable,
  MANIFEST_ENTRY,
  MANIFEST_MAX_BYTES,
  manifestSigningBytes,
  PART_NAME,
  type SignedArchiveManifest,
} from './archive-format.ts';
import { type ArchiveRefusal, ArchiveRefusedError, BackupError } from './backup-errors.ts';

/** The trusted public keys by key id (a Map<string, KeyObject> fits). */
export interface ArchiveKeys {
  get(keyId: string): KeyObject | undefined;
}

export interface OpenOptions {
  keys: ArchiveKeys;
  /** age identities (AGE-SECRET-KEY-1…) for an encrypted archive. */
  identities?: string[];
  /** The format to accept (default ARCHIVE_FORMAT). */
  expectFormat?: number;
  /** checkArchive: called after each part has been checked. */
  onProgress?: (p: { table: string; rows: number; bytes: number }) => void;
}

export type ArchiveSource = () => Readable | Promise<Readable>;

/** The keys of a PEM file of public keys (`audit public-key`), by key id: for `backup verify --key`. */
export function archiveKeysFromPem(pem: string): Map<string, KeyObject> {
  return new Map(readPinnedKeys(pem).map((key) => [pinnedKeyId(key), key]));
}

/**
 * The identities in an age identity file (what `age-keygen` writes:
 * `# comment` lines, blank lines, one AGE-SECRET-KEY-… per line).
 */
export function ageIdentitiesFromText(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}

/** Pass 1: the whole archive checked; its manifest once everything in it holds. */
export async function checkArchive(open: ArchiveSource, options: OpenOptions): Promise<ArchiveManifest> {
  const archive = await openArchive(open, options);
  try {
    const tar = new TarReader(archive.source);
    const { manifest } = await readManifest(tar, options);
    for (let i = 0; i < manifest.tables.length; i++) {
      const table = manifest.tables[i] as ArchiveTable;
      const entry = await nextPart(tar, manifest.tables, i, refuse);
      const part = openPart(tar.body(entry), table, refuse);
      part.rows.on('error', () => {}); // the same error rejects part.done
      part.rows.resume();
      await part.done;
      options.onProgress?.({ table: table.name, rows: table.rows, bytes: table.bytes });
    }
    await endOfArchive(tar, refuse);
    return manifest;
  } finally {
    archive.close();
  }
}

/**
 * Pass 2, after checkArchive: each table's part as its COPY text, in manifest
 * order. Read `rows` to its end before asking for the next part (a part left
 * unread is skipped). Anything that differs from `manifest` now is refused as
 * 'changed': a part's stream errors instead of ending.
 */
export async function* readParts(
  open: ArchiveSource,
  manifest: ArchiveManifest,
  options: OpenOptions,
): AsyncGenerator<{ table: ArchiveTable; rows: Readable }> {
  const archive = await openArchive(open, options).catch((err: unknown) => {
    throw changedFrom(err);
  });
  let current: Part | undefined;
  try {
    const tar = new TarReader(archive.source);
    const now = await readManifest(tar, options);
    if (!canonicalBytes(now.manifest).equals(canonicalBytes(manifest)))
      throw changed(`its ${MANIFEST_ENTRY} is not the one that was checked`, MANIFEST_ENTRY);
    for (let i = 0; i < manifest.tables.length; i++) {
      const table = manifest.tables[i] as ArchiveTable;
      const entry = await nextPart(tar, manifest.tables, i, changedRefusal);
      current = openPart(tar.body(entry), table, changedRefusal);
      current.done.catch(() => {}); // awaited below
      yield { table, rows: current.rows };
      // Read to its end: `done` has settled. Left unread (or failed on the reader's side): skipped.
      if (current.rows.readableEnded) await current.done;
      else {
        const failed = current.rows.errored;
        current.rows.destroy();
        await current.done.catch(() => {});
        if (failed instanceof ArchiveRefusedError) throw failed;
      }
      current = undefined;
    }
    await endOfArchive(tar, changedRefusal);
  } catch (err) {
    throw changedFrom(err);
  } finally {
    current?.rows.destroy();
    archive.close();
  }
}

// --- refusals --------------------------------------------------------------------------

type Refuse = (reason: ArchiveRefusal, message: string, entry?: string) => ArchiveRefusedError;

const refuse: Refuse = (reason, message, entry) =>
  new ArchiveRefusedError(reason, message, entry === undefined ? {} : { entry });

function changed(message: string, entry?: string, cause?: unknown): ArchiveRefusedError {
  return new ArchiveRefusedError('changed', `the archive changed after it was checked: ${message}`, {
    ...(entry === undefined ? {} : { entry }),
    ...(cause === undefined ? {} : { cause }),
  });
}

const changedRefusal: Refuse = (_reason, message, entry) => changed(message, entry);

/** Pass 2: any refusal means the file is no longer the one pass 1 checked. */
function changedFrom(err: unknown): unknown {
  if (!(err instanceof ArchiveRefusedError) || err.reason === 'changed') return err;
  return changed(err.message, err.entry, err);
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

// --- opening: the raw file, or its age decryption --------------------------------------

interface OpenedArchive {
  /** The tar bytes (decrypted when the file is encrypted). */
  source: ByteSource;
  encrypted: boolean;
  close(): void;
}

async function openArchive(open: ArchiveSource, options: OpenOptions): Promise<OpenedArchive> {
  let input: Readable;
  try {
    input = await open();
  } catch (err) {
    throw new ArchiveRefusedError('unreadable', `cannot open the archive: ${messageOf(err)}`, { cause: err });
  }
  const close = () => {
    input.destroy();
  };
  try {
    const raw = new ByteSource(
      input,
      (err) =>
        new ArchiveRefusedError('unreadable', `cannot read the archive: ${messageOf(err)}`, { cause: err }),
    );
    const head = await raw.peek(AGE_MAGIC.length);
    if (!head.equals(Buffer.from(AGE_MAGIC))) return { source: raw, encrypted: false, close };
    const identities = options.identities ?? [];
    if (identities.length === 0)
      throw new ArchiveRefusedError(
        'encrypted-no-identity',
        'the archive is encrypted (age): restoring or checking it needs the identity it was encrypted to (BACKUP_AGE_IDENTITY_FILE)',
      );
    // Loaded only for an encrypted archive (see archive-writer.ts).
    const { Decrypter } = await import('age-encryption');
    const decrypter = new Decrypter();
    for (const identity of identities) {
      try {
        decrypter.addIdentity(identity);
      } catch (err) {
        // The caller's configuration, not the archive: not a refusal.
        throw new BackupError(`an age identity given is not one (AGE-SECRET-KEY-1…): ${messageOf(err)}`, {
          cause: err,
        });
      }
    }
    let plain: ReadableStream<Uint8Array>;
    try {
      plain = await decrypter.decrypt(raw.toWeb());
    } catch (err) {
      if (err instanceof ArchiveRefusedError) throw err;
      if (/no identity matched/.test(messageOf(err)))
        throw new ArchiveRefusedError(
          'wrong-identity',
          'the archive is encrypted (age) to recipients none of the given identities match',
          { cause: err },
        );
      if (raw.eof)
        throw new ArchiveRefusedError('truncated', 'the archive ends inside its age header', { cause: err });
      throw new ArchiveRefusedError('unreadable', `the archive's age header is invalid: ${messageOf(err)}`, {
        cause: err,
      });
    }
    const source = new ByteSource(plain, (err) =>
      err instanceof ArchiveRefusedError
        ? err
        : new ArchiveRefusedError(
            'unreadable',
            `the encrypted archive is damaged or cut short: age cannot authenticate it (${messageOf(err)})`,
            { cause: err },
          ),
    );
    return { source, encrypted: true, close };
  } catch (err) {
    close();
    throw err;
  }
}

const EMPTY = Buffer.alloc(0);

/** Bytes pulled from a stream on demand; `consumed` counts what has been handed out. */
class ByteSource {
  consumed = 0;
  eof = false;
  private buffered: Buffer = EMPTY;
  private readonly chunks: AsyncIterator<Uint8Array>;
  private readonly fail: (err: unknown) => ArchiveRefusedError;

  constructor(input: AsyncIterable<Uint8Array>, fail: (err: unknown) => ArchiveRefusedError) {
    this.chunks = input[Symbol.asyncIterator]();
    this.fail = fail;
  }

  private async pull(): Promise<boolean> {
    if (this.eof) return false;
    let r: IteratorResult<Uint8Array>;
    try {
      r = await this.chunks.next();
    } catch (err) {
      throw this.fail(err);
    }
    if (r.done) {
      this.eof = true;
      return false;
    }
    const chunk = Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength);
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    return true;
  }

  /** The next `n` bytes without consuming them (fewer at the end). */
  async peek(n: number): Promise<Buffer> {
    while (this.buffered.length < n && (await this.pull()));
    return this.buffered.subarray(0, Math.min(n, this.buffered.length));
  }

  /** The next `n` bytes (fewer only at the end). */
  async read(n: number): Promise<Buffer> {
    const bytes = await this.peek(n);
    this.take(bytes.length);
    return bytes;
  }

  /** Up to `max` bytes, whatever is at hand; null at the end. */
  async chunk(max: number): Promise<Buffer | null> {
    if (this.buffered.length === 0 && !(await this.pull())) return null;
    const bytes = this.buffered.subarray(0, Math.min(max, this.buffered.length));
    this.take(bytes.length);
    return bytes;
  }

  private take(n: number): void {
    this.buffered = this.buffered.subarray(n);
    this.consumed += n;
  }

  /** The rest as a web stream (for age). */
  toWeb(): ReadableStream<Uint8Array> {
    return new ReadableStream<Uint8Array>(
      {
        pull: async (controller) => {
          const bytes = await this.chunk(64 << 10);
          if (bytes === null) controller.close();
          else controller.enqueue(bytes);
        },
      },
      { highWaterMark: 0 },
    );
  }
}

// --- the tar ---------------------------------------------------------------------------

const BLOCK = 512;
const USTAR = Buffer.from('ustar\u000000', 'latin1');

interface TarEntry {
  name: string;
  size: number;
  /** A regular file (typeflag '0' or NUL). */
  regular: boolean;
  /** Where its header starts in the tar. */
  offset: number;
}

/** A strict ustar reader: one entry at a time, its body streamed. */
class TarReader {
  private readonly source: ByteSource;
  private left = 0; // body bytes of the current entry not read yet
  private padding = 0;
  private reading: Promise<void> | undefined; // settles when a started body is left
  private first = true;

  constructor(source: ByteSource) {
    this.source = source;
  }

  /** The next entry, or null at the end marker (after which only zeros may follow). */
  async next(): Promise<TarEntry | null> {
    await this.reading;
    await this.skip(this.left + this.padding);
    this.left = this.padding = 0;
    const offset = this.source.consumed;
    const block = await this.source.read(BLOCK);
    const first = this.first;
    this.first = false;
    if (block.length < BLOCK) {
      if (
        first &&
        !block
          .subarray(0, MANIFEST_ENTRY.length)
          .equals(Buffer.from(MANIFEST_ENTRY).subarray(0, block.length))
      )
        throw refuse('not-an-archive', 'not a backup archive: too short to be a tar');
      throw truncated(offset + block.length);
    }
    if (isZero(block)) {
      await this.endMarker(offset);
      return null;
    }
    const entry = parseHeader(block, offset);
    if (entry === null)
      throw refuse(
        'not-an-archive',
        first
          ? 'not a backup archive: not a tar file'
          : `the archive is damaged: an invalid tar header at byte ${offset}`,
      );
    this.left = entry.size;
    this.padding = (BLOCK - (entry.size % BLOCK)) % BLOCK;
    return entry;
  }

  /** The body of the entry `next` just returned, streamed (read it to its end, or stop reading it). */
  body(entry: TarEntry): AsyncGenerator<Buffer> {
    const { promise, resolve } = Promise.withResolvers<void>();
    this.reading = promise;
    const self = this;
    return (async function* () {
      try {
        while (self.left > 0) {
          const bytes = await self.source.chunk(Math.min(self.left, 256 << 10));
          if (bytes === null) throw truncated(self.source.consumed, entry.name);
          self.left -= bytes.length;
          yield bytes;
        }
      } finally {
        resolve();
      }
    })();
  }

  private async skip(n: number): Promise<void> {
    while (n > 0) {
      const bytes = await this.source.chunk(Math.min(n, 256 << 10));
      if (bytes === null) throw truncated(this.source.consumed);
      n -= bytes.length;
    }
  }

  private async endMarker(offset: number): Promise<void> {
    const second = await this.source.read(BLOCK);
    if (second.length < BLOCK) throw truncated(this.source.consumed);
    if (!isZero(second))
      throw refuse(
        'unexpected-entry',
        `the archive holds data after its end marker (byte ${offset + BLOCK})`,
      );
    for (
      let bytes = await this.source.chunk(256 << 10);
      bytes !== null;
      bytes = await this.source.chunk(256 << 10)
    )
      if (!isZero(bytes))
        throw refuse('unexpected-entry', `the archive holds data after its end marker (byte ${offset})`);
  }
}

function truncated(at: number, entry?: string): ArchiveRefusedError {
  return refuse(
    'truncated',
    `the archive is cut short: it ends at byte ${at}${entry ? `, inside ${entry}` : ''}, before its end marker`,
    entry,
  );
}

function isZero(bytes: Buffer): boolean {
  for (const b of bytes) if (b !== 0) return false;
  return true;
}

/** A ustar header, or null if it is not one (bad checksum, magic or size). */
function parseHeader(block: Buffer, offset: number): TarEntry | null {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : (block[i] as number);
  if (octal(block.subarray(148, 156)) !== sum) return null;
  if (!block.subarray(257, 265).equals(USTAR)) return null;
  const size = block[124] === 0x80 ? base256(block.subarray(125, 136)) : octal(block.subarray(124, 136));
  if (size === null) return null;
  const name = text(block.subarray(0, 100));
  const prefix = text(block.subarray(345, 500));
  const type = block[156];
  return { name: prefix ? `${prefix}/${name}` : name, size, regular: type === 0x30 || type === 0, offset };
}

function octal(field: Buffer): number | null {
  const s = field
    .toString('latin1')
    .replace(/[\0 ]+$/, '')
    .replace(/^ +/, '');
  return /^[0-7]{1,12}$/.test(s) ? Number.parseInt(s, 8) : null;
}

function base256(field: Buffer): number | null {
  let n = 0;
  for (const b of field) n = n * 256 + b;
  return Number.isSafeInteger(n) ? n : null;
}

function text(field: Buffer): string {
  const end = field.indexOf(0);
  return field.subarray(0, end === -1 ? field.length : end).toString('utf8');
}

// --- the manifest ----------------------------------------------------------------------

async function readManifest(tar: TarReader, options: OpenOptions): Promise<SignedArchiveManifest> {
  const entry = await tar.next();
  if (entry === null) throw refuse('not-an-archive', 'not a backup archive: an empty tar');
  if (entry.name !== MANIFEST_ENTRY || !entry.regular)
    throw refuse(
      'not-an-archive',
      `not a backup archive: its first entry is "${entry.name}", not ${MANIFEST_ENTRY}`,
    );
  if (entry.size > MANIFEST_MAX_BYTES)
    throw refuse(
      'manifest-invalid',
      `${MANIFEST_ENTRY} is larger than ${MANIFEST_MAX_BYTES} bytes`,
      MANIFEST_ENTRY,
    );
  const chunks: Buffer[] = [];
  for await (const bytes of tar.body(entry)) chunks.push(Buffer.from(bytes));
  return parseSignedManifest(Buffer.concat(chunks), options);
}

const HEX64 = /^[0-9a-f]{64}$/;
const KEY_ID = /^[0-9a-f]{16}$/;
const TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;
const BIGINT = /^-?[0-9]{1,19}$/;

/** manifest.json's bytes checked: JSON, format, canonical form, shape, checksum, key, signature (in that order). */
export function parseSignedManifest(bytes: Buffer, options: OpenOptions): SignedArchiveManifest {
  const bad = (why: string): never => {
    throw refuse('manifest-invalid', `${MANIFEST_ENTRY}: ${why}`, MANIFEST_ENTRY);
  };
  let signed: SignedArchiveManifest;
  try {
    signed = JSON.parse(bytes.toString('utf8')) as SignedArchiveManifest;
  } catch {
    return bad('not JSON');
  }
  if (!isObject(signed) || !isObject(signed.manifest)) return bad('no manifest object');
  const format: unknown = signed.manifest.format;
  const expected = options.expectFormat ?? ARCHIVE_FORMAT;
  if (format !== expected)
    throw refuse(
      'unsupported-format',
      `the archive is format ${JSON.stringify(format)}; this version of Enclave reads format ${expected}`,
      MANIFEST_ENTRY,
    );
  let canonical: Buffer;
  try {
    canonical = canonicalBytes(signed);
  } catch (err) {
    return bad(messageOf(err));
  }
  if (!bytes.equals(Buffer.concat([canonical, Buffer.from('\n')])))
    bad('not one line of canonical JSON (RFC 8785) and a newline');
  const keys = Object.keys(signed).sort().join(',');
  if (keys !== 'manifest,manifestSha256,signature')
    bad(`holds ${keys}, not manifest, manifestSha256, signature`);
  checkShape(signed.manifest, bad);
  const m = signed.manifest;
  if (typeof signed.manifestSha256 !== 'string' || !HEX64.test(signed.manifestSha256))
    bad('manifestSha256 is not 64 hex digits');
  const sha = createHash('sha256').update(canonicalBytes(m)).digest('hex');
  if (sha !== signed.manifestSha256)
    throw refuse(
      'manifest-checksum',
      `the manifest's SHA-256 is ${sha}, not the ${signed.manifestSha256} recorded with it: the manifest was altered`,
      MANIFEST_ENTRY,
    );
  const key = options.keys.get(m.keyId);
  if (key === undefined)
    throw refuse(
      'unknown-key',
      `the archive is signed by key ${m.keyId}, which is not a key this installation trusts`,
      MANIFEST_ENTRY,
    );
  const signature = typeof signed.signature === 'string' ? Buffer.from(signed.signature, 'base64') : EMPTY;
  let valid = false;
  if (signature.length === 64 && signature.toString('base64') === signed.signature) {
    try {
      valid = verify(null, manifestSigningBytes(m), key, signature);
    } catch {
      valid = false;
    }
  }
  if (!valid)
    throw refuse('bad-signature', `the manifest's signature is not valid for key ${m.keyId}`, MANIFEST_ENTRY);
  return signed;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkShape(m: ArchiveManifest, bad: (why: string) => never): void {
  const str = (v: unknown) => typeof v === 'string';
  const count = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
  if (!str(m.enclaveVersion) || !str(m.origin)) bad('enclaveVersion and origin must be strings');
  if (!str(m.keyId) || !KEY_ID.test(m.keyId)) bad('keyId must be 16 hex digits');
  if (!isObject(m.tenant) || !str(m.tenant.id) || !str(m.tenant.name)) bad('tenant needs id and name');
  if (!count(m.schemaVersion)) bad('schemaVersion must be a whole number');
  if (!str(m.createdAt) || !TIME.test(m.createdAt)) bad('createdAt must be UTC with microseconds');
  if (m.compression !== 'zstd') bad(`compression ${JSON.stringify(m.compression)} is not zstd`);
  if (!Array.isArray(m.templates)) bad('templates must be a list');
  for (const t of m.templates)
    if (!isObject(t) || !count(t.version) || !str(t.name) || !str(t.checksum))
      bad('a template needs version, name and checksum');
  if (!Array.isArray(m.sequences)) bad('sequences must be a list');
  for (const s of m.sequences)
    if (
      !isObject(s) ||
      !str(s.name) ||
      !str(s.lastValue) ||
      !BIGINT.test(s.lastValue) ||
      typeof s.isCalled !== 'boolean'
    )
      bad('a sequence needs name, lastValue (an integer as text) and isCalled');
  if (!isObject(m.drift) || typeof m.drift.checked !== 'boolean' || !Array.isArray(m.drift.differences))
    bad('drift needs checked and differences');
  for (const d of m.drift.differences)
    if (
      !isObject(d) ||
      !str(d.kind) ||
      !str(d.object) ||
      !str(d.problem) ||
      (d.expected !== undefined && !str(d.expected)) ||
      (d.actual !== undefined && !str(d.actual))
    )
      bad('a drift difference needs kind, object and problem');
  if (!Array.isArray(m.tables)) bad('tables must be a list');
  const names = new Set<string>();
  const parts = new Set<string>();
  for (const t of m.tables) {
    if (
      !isObject(t) ||
      !str(t.name) ||
      !Array.isArray(t.columns) ||
      !t.columns.every(str) ||
      !count(t.rows) ||
      !str(t.part) ||
      !count(t.bytes) ||
      !str(t.sha256) ||
      !HEX64.test(t.sha256) ||
      !str(t.contentSha256) ||
      !HEX64.test(t.contentSha256)
    )
      bad('a table needs name, columns, rows, part, bytes, sha256 and contentSha256');
    if (!PART_NAME.test(t.part))
      bad(`${JSON.stringify(t.part)} is not a part name (data/<n>-<table>.copy.zst)`);
    if (names.has(t.name) || parts.has(t.part)) bad(`table ${t.name} or part ${t.part} is listed twice`);
    names.add(t.name);
    parts.add(t.part);
  }
}

// --- the parts -------------------------------------------------------------------------

/** The tar entry of table `i`, which must come next. */
async function nextPart(
  tar: TarReader,
  tables: ArchiveTable[],
  i: number,
  refusal: Refuse,
): Promise<TarEntry> {
  const table = tables[i] as ArchiveTable;
  const entry = await tar.next();
  if (entry === null)
    throw refusal('part-missing', `${table.part} (table ${table.name}) is not in the archive`, table.part);
  if (entry.name !== table.part) {
    if (tables.slice(i + 1).some((t) => t.part === entry.name))
      throw refusal('part-missing', `${table.part} (table ${table.name}) is not in the archive`, table.part);
    throw refusal(
      'unexpected-entry',
      `the archive holds "${entry.name}" where the manifest puts ${table.part}`,
      entry.name,
    );
  }
  if (!entry.regular)
    throw refusal('unexpected-entry', `${entry.name} is not a regular file in the tar`, entry.name);
  if (entry.size !== table.bytes)
    throw refusal(
      'part-mismatch',
      `${table.part} (table ${table.name}) is ${entry.size} bytes, the manifest says ${table.bytes}`,
      table.part,
    );
  return entry;
}

async function endOfArchive(tar: TarReader, refusal: Refuse): Promise<void> {
  const extra = await tar.next();
  if (extra !== null)
    throw refusal(
      'unexpected-entry',
      `the archive holds "${extra.name}", which the manifest does not list`,
      extra.name,
    );
}

interface Part {
  /** The COPY text; ends only once everything checked out, errors otherwise. */
  rows: Readable;
  /** Settles when the part has been read and checked. */
  done: Promise<void>;
}

/** body -> size and SHA-256 checked -> zstd -> COPY text, its SHA-256 and rows checked -> rows. */
function openPart(body: AsyncGenerator<Buffer>, table: ArchiveTable, refusal: Refuse): Part {
  const rows = new PartRows(table, refusal);
  const done = pipeline(
    Readable.from(body, { objectMode: false }),
    new PartCheck(table, refusal),
    createZstdDecompress(),
    rows.sink,
  ).catch((err: unknown) => {
    const refused =
      err instanceof ArchiveRefusedError
        ? refusal === refuse
          ? err
          : (changedFrom(err) as ArchiveRefusedError)
        : refusal(
            'part-mismatch',
            `${table.part} (table ${table.name}) is not readable zstd: ${messageOf(err)}`,
            table.part,
          );
    rows.destroy(refused);
    throw refused;
  });
  return { rows, done };
}

/** The part as stored: its size and SHA-256 against the manifest, checked at its end. */
class PartCheck extends Transform {
  private readonly table: ArchiveTable;
  private readonly refusal: Refuse;
  private readonly sha = createHash('sha256');
  private bytes = 0;

  constructor(table: ArchiveTable, refusal: Refuse) {
    super();
    this.table = table;
    this.refusal = refusal;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.sha.update(chunk);
    this.bytes += chunk.length;
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    const { table } = this;
    const sha = this.sha.digest('hex');
    if (this.bytes === table.bytes && sha === table.sha256) done();
    else
      done(
        this.refusal(
          'part-mismatch',
          `${table.part} (table ${table.name}) differs from the manifest: SHA-256 ${sha}, expected ${table.sha256}`,
          table.part,
        ),
      );
  }
}

/** The decompressed COPY text, handed on with backpressure; it ends only once its SHA-256 and row count hold. */
class PartRows extends Readable {
  readonly sink: Writable;
  private waiting: (() => void) | undefined;

  constructor(table: ArchiveTable, refusal: Refuse) {
    super();
    const sha = createHash('sha256');
    let rows = 0;
    this.sink = new Writable({
      write: (chunk: Buffer, _enc, callback) => {
        sha.update(chunk);
        for (let i = chunk.indexOf(0x0a); i !== -1; i = chunk.indexOf(0x0a, i + 1)) rows++;
        if (this.push(chunk)) callback();
        else this.waiting = callback;
      },
      final: (callback) => {
        const content = sha.digest('hex');
        if (content !== table.contentSha256 || rows !== table.rows)
          return callback(
            refusal(
              'part-mismatch',
              `the COPY text of ${table.part} (table ${table.name}) differs from the manifest: ` +
                `${rows} rows, SHA-256 ${content}; expected ${table.rows} rows, ${table.contentSha256}`,
              table.part,
            ),
          );
        this.push(null);
        callback();
      },
    });
  }

  override _read(): void {
    const callback = this.waiting;
    this.waiting = undefined;
    callback?.();
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    // The reader stopped: stop the decompression and the reading behind it.
    if (!this.sink.writableFinished) this.sink.destroy(err ?? new Error('the part was not read to its end'));
    this.waiting = undefined;
    callback(err);
  }
}
