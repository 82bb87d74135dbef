// The per-tenant backup archive, format 1 (docs/BACKUP.md, "The archive,
// format 1"): its shapes, names and the bytes that are hashed and signed.
// Pure: no I/O, nothing that touches a database, a server or configuration
// (the offline `enclave backup verify` reads archives through this).
import { randomBytes } from 'node:crypto';
import { canonicalBytes } from '../audit/verifier/canonical.ts';

export const ARCHIVE_FORMAT = 1;
/** What the signature covers: this prefix, then the canonical manifest bytes. */
export const ARCHIVE_SIGNING_PREFIX = 'enclave-tenant-backup-v1\n';
export const ARCHIVE_EXTENSION = '.enclave-backup';
/** The first tar entry. */
export const MANIFEST_ENTRY = 'manifest.json';
/** manifest.json holds a few lines per table: anything bigger is not a manifest. */
export const MANIFEST_MAX_BYTES = 32 << 20;
/** What an age-encrypted file starts with. */
export const AGE_MAGIC = 'age-encryption.org/v1\n';

export interface ArchiveTable {
  name: string;
  /** The columns copied, in COPY order (generated columns are left out). */
  columns: string[];
  rows: number;
  /** The tar entry: `data/<n>-<table>.copy.zst` (partName). */
  part: string;
  /** Size of the part (zstd-compressed). */
  bytes: number;
  /** SHA-256 of the part as stored (compressed), hex. */
  sha256: string;
  /** SHA-256 of the uncompressed COPY text, hex. */
  contentSha256: string;
}

export interface ArchiveSequence {
  name: string;
  /** A bigint as decimal text. */
  lastValue: string;
  isCalled: boolean;
}

export interface ArchiveTemplate {
  version: number;
  name: string;
  checksum: string;
}

export interface ArchiveDriftDifference {
  kind: string;
  object: string;
  problem: string;
  expected?: string;
  actual?: string;
}

export interface ArchiveManifest {
  format: 1;
  enclaveVersion: string;
  origin: string;
  keyId: string;
  tenant: { id: string; name: string };
  schemaVersion: number;
  templates: ArchiveTemplate[];
  /** UTC with microseconds and Z (audit/verifier/entry.ts formatTime). */
  createdAt: string;
  compression: 'zstd';
  tables: ArchiveTable[];
  sequences: ArchiveSequence[];
  drift: { checked: boolean; differences: ArchiveDriftDifference[] };
}

/** manifest.json: `canonical(SignedArchiveManifest)` and a newline. */
export interface SignedArchiveManifest {
  manifest: ArchiveManifest;
  /** SHA-256 of canonicalBytes(manifest), hex. */
  manifestSha256: string;
  /** Ed25519 over manifestSigningBytes(manifest), base64. */
  signature: string;
}

/** The bytes the signature covers: the prefix, then the RFC 8785 form of the manifest. */
export function manifestSigningBytes(m: ArchiveManifest): Buffer {
  return Buffer.concat([Buffer.from(ARCHIVE_SIGNING_PREFIX, 'utf8'), canonicalBytes(m)]);
}

/** manifest.json exactly as it goes into the tar: one line of canonical JSON and a newline. */
export function manifestEntryBytes(signed: SignedArchiveManifest): Buffer {
  return Buffer.concat([canonicalBytes(signed), Buffer.from('\n')]);
}

/** The tar entry of the table at `index` (0-based) in manifest order: `data/<index + 1>-<table>.copy.zst`. */
export function partName(index: number, table: string): string {
  // Table names come from the templates, but a tar name must stay one plain
  // path segment whatever they hold: anything but [A-Za-z0-9_] becomes `_`
  // (the number in front keeps names unique), and the whole stays within the
  // 100 bytes of a ustar name field.
  return `data/${index + 1}-${table.replace(/[^A-Za-z0-9_]/g, '_').slice(0, 63)}.copy.zst`;
}

/** What every part name matches (the reader refuses a manifest with any other). */
export const PART_NAME = /^data\/[1-9][0-9]{0,8}-[A-Za-z0-9_]{0,63}\.copy\.zst$/;

/**
 * `<tenant id>-<YYYYMMDDTHHMMSSZ>-<6 hex>.enclave-backup`. The random tail
 * keeps two backups of one tenant within the same second apart (a safety
 * backup just before a restore, then the next one); storage never overwrites.
 */
export function archiveFileName(tenantId: string, at: Date): string {
  const stamp = at
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replace(/[-:]/g, '');
  return `${tenantId}-${stamp}-${randomBytes(3).toString('hex')}${ARCHIVE_EXTENSION}`;
}
