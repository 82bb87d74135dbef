// Shared set-up of the backup and restore tests: a signing key and its
// published key, a storage directory, the context, a tenant filled with rows
// that exercise COPY (FKs, arrays, unicode, NULLs, HTML, escapes), and a
// snapshot of a tenant's rows to compare before and after; and an archive as
// a test sees it (its tar entries, its manifest re-signed, the tar rebuilt).

import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { canonicalBytes } from '../../audit/verifier/canonical.ts';
import { keyIdOf, rawPublicKey } from '../../audit/verifier/keys.ts';
import {
  type ArchiveManifest,
  MANIFEST_ENTRY,
  manifestEntryBytes,
  manifestSigningBytes,
  type SignedArchiveManifest,
} from '../../backup/archive-format.ts';
import type { ManifestSigner } from '../../backup/archive-writer.ts';
import type { BackupContext } from '../../backup/backup.ts';
import type { RestoreContext } from '../../backup/restore.ts';
import { DirectoryStorage } from '../../backup/storage.ts';
import { type ArchiveEntry, writeTar } from '../../kernel/archive.ts';
import type { AuditBy } from '../../kernel/audit-inbox.ts';
import type { Client, Pool } from '../../kernel/db.ts';
import { ident } from '../../kernel/identifiers.ts';
import type { TenantMigration } from '../../tenancy/templates.ts';

export const ADMIN: AuditBy = { actor: { type: 'admin', id: 'ops-1' } };

export interface Fixture {
  ctx: RestoreContext;
  dir: string;
  cleanup(): void;
}

export function signingKey() {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const keyId = keyIdOf(rawPublicKey(privateKey));
  return {
    signer: { keyId, sign: (bytes: Uint8Array) => sign(null, bytes, privateKey) },
    keys: new Map([[keyId, publicKey]]),
  };
}

export function fixture(
  pool: Pool,
  migrations: readonly TenantMigration[],
  extra: Partial<RestoreContext> = {},
): Fixture {
  const dir = mkdtempSync(path.join(tmpdir(), 'enclave-backup-test-'));
  const { signer, keys } = signingKey();
  const ctx: RestoreContext = {
    pool,
    signer,
    keys,
    storage: new DirectoryStorage(path.join(dir, 'archives')),
    migrations,
    enclaveVersion: '0.1.0-test',
    lockTimeoutMs: 5000,
    keepPreviousHours: 24,
    tmpDir: dir,
    ...extra,
  };
  return { ctx, dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export const backupContext = (ctx: RestoreContext): BackupContext => ctx;

/** Rows that exercise COPY text: FK, arrays, unicode, NULLs, HTML, tabs, newlines, backslashes. */
export async function fill(pool: Pool, schema: string, notes = 20): Promise<void> {
  const s = ident(schema);
  const hasHtml = (
    await pool.query(
      "SELECT 1 FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'notes' AND column_name = 'html'",
      [schema],
    )
  ).rowCount;
  for (let i = 1; i <= notes; i++) {
    const title = i % 3 === 0 ? `Ünïcödé ✓ 日本語 ${i}` : `note ${i}`;
    const body = i % 4 === 0 ? 'line one\nline\ttwo \\ back\\slash "quoted" \u00e9' : `body ${i}`;
    const tags = i % 5 === 0 ? [] : ['a', `t${i}`, 'with space', 'comma,inside', 'quote"d', 'NULL'];
    const html = i % 2 === 0 ? `<p>${title} &amp; <script>alert(1)</script></p>` : null;
    if (hasHtml)
      await pool.query(`INSERT INTO ${s}.notes (title, body, tags, html) VALUES ($1, $2, $3, $4)`, [
        title,
        body,
        tags,
        html,
      ]);
    else
      await pool.query(`INSERT INTO ${s}.notes (title, body, tags) VALUES ($1, $2, $3)`, [title, body, tags]);
  }
  const ids = (await pool.query<{ id: string }>(`SELECT id FROM ${s}.notes ORDER BY id`)).rows.map(
    (r) => r.id,
  );
  for (let i = 1; i <= notes * 2; i++) {
    await pool.query(`INSERT INTO ${s}.tasks (title, status, due_date, note_id) VALUES ($1, $2, $3, $4)`, [
      `task ${i} ✓`,
      ['open', 'doing', 'done'][i % 3],
      i % 2 ? null : '2026-12-24',
      i % 3 ? (ids[i % ids.length] ?? null) : null,
    ]);
  }
  // Gaps in the ids: the sequences must be restored, not recomputed from max(id).
  await pool.query(`DELETE FROM ${s}.notes WHERE id IN (SELECT max(id) FROM ${s}.notes)`);
  await pool.query(`DELETE FROM ${s}.tasks WHERE id IN (SELECT max(id) FROM ${s}.tasks)`);
}

/** Every row of every table of a schema, as COPY-like text, by table name; plus storage used. */
export type Contents = Record<string, string[]> & { notes: string[]; tasks: string[] };

export async function contents(db: Pool | Client, schema: string): Promise<Contents> {
  const tables = (
    await db.query<{ name: string }>(
      "SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'r' ORDER BY 1",
      [schema],
    )
  ).rows.map((r) => r.name);
  const out: Record<string, string[]> = {};
  for (const t of tables) {
    const { rows } = await db.query<{ r: string }>(
      `SELECT (x.*)::text AS r FROM ${ident(schema)}.${ident(t)} x ORDER BY 1`,
    );
    out[t] = rows.map((r) => r.r);
  }
  return out as Contents;
}

/** The schema's shape: tables, columns, indexes, constraints, triggers, functions (names and definitions). */
export async function shape(db: Pool | Client, schema: string): Promise<string[]> {
  const { rows } = await db.query<{ d: string }>(
    `SELECT 'table ' || c.relname || ' ' || c.relkind::text AS d FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1
     UNION ALL SELECT 'column ' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
       FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = $1 AND a.attnum > 0 AND NOT a.attisdropped AND c.relkind = 'r'
     UNION ALL SELECT 'constraint ' || conname || ' ' || pg_get_constraintdef(k.oid) FROM pg_constraint k JOIN pg_namespace n ON n.oid = k.connamespace WHERE n.nspname = $1
     UNION ALL SELECT 'trigger ' || tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND NOT tgisinternal
     UNION ALL SELECT 'function ' || p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = $1
     UNION ALL SELECT 'oid ' || c.relname || ' ' || c.oid::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'r'
     ORDER BY 1`,
    [schema],
  );
  return rows.map((r) => r.d);
}

/** Schemas whose name starts with the tenant schema's and has the set-aside suffix. */
export async function asides(db: Pool | Client, schema: string): Promise<string[]> {
  const { rows } = await db.query<{ nspname: string }>(
    "SELECT nspname FROM pg_namespace WHERE nspname LIKE $1 || '\\_p%' ORDER BY 1",
    [schema],
  );
  return rows.map((r) => r.nspname);
}

export async function storageUsed(db: Pool | Client, schema: string): Promise<string> {
  const { rows } = await db.query<{ bytes: string }>(`SELECT ${ident(schema)}.storage_used()::text AS bytes`);
  return rows[0]?.bytes as string;
}

/** Flips 4 bytes in the middle of the largest data part of an (unencrypted) archive: its checksum no longer matches. */
export function corruptDataPart(file: string): void {
  const bytes = readFileSync(file);
  let offset = 0;
  let largest = { at: 0, size: 0 };
  while (offset + 512 <= bytes.length && bytes[offset] !== 0) {
    const size = Number.parseInt(
      bytes
        .subarray(offset + 124, offset + 136)
        .toString('latin1')
        .trim(),
      8,
    );
    const name = bytes
      .subarray(offset, offset + 100)
      .toString('latin1')
      .replace(/\0.*$/s, '');
    if (name.startsWith('data/') && size > largest.size) largest = { at: offset + 512, size };
    offset += 512 + Math.ceil(size / 512) * 512;
  }
  assert.ok(largest.size > 8, 'a data part to corrupt');
  const mid = largest.at + Math.floor(largest.size / 2);
  for (let i = 0; i < 4; i++) bytes[mid + i] = (bytes[mid + i] as number) ^ 0xff;
  writeFileSync(file, bytes);
}

// --- an archive, as a test sees it -----------------------------------------------------------

export interface RawEntry {
  name: string;
  header: number;
  data: number;
  size: number;
}

/** The entries of an (unencrypted) archive's tar: name, and where its header and data are. */
export function tarEntries(tar: Buffer): RawEntry[] {
  const out: RawEntry[] = [];
  for (let at = 0; at + 512 <= tar.length; ) {
    const block = tar.subarray(at, at + 512);
    if (block.every((b) => b === 0)) break;
    const field = (from: number, len: number) =>
      block
        .subarray(from, from + len)
        .toString('utf8')
        .replace(/\0.*$/s, '');
    const prefix = field(345, 155);
    const name = prefix ? `${prefix}/${field(0, 100)}` : field(0, 100);
    const size = Number.parseInt(field(124, 12).trim(), 8);
    out.push({ name, header: at, data: at + 512, size });
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

export function entry(tar: Buffer, name: string): RawEntry {
  const e = tarEntries(tar).find((x) => x.name === name);
  assert.ok(e, `no ${name} in the tar`);
  return e;
}

/** The entries of a tar as name -> body. */
export function bodies(tar: Buffer): Array<{ name: string; body: Buffer }> {
  return tarEntries(tar).map((e) => ({ name: e.name, body: tar.subarray(e.data, e.data + e.size) }));
}

export async function tarOf(entries: ArchiveEntry[]): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const out = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk);
      done();
    },
  });
  await writeTar(out, entries, new Date());
  return Buffer.concat(chunks);
}

export function signedOf(tar: Buffer): SignedArchiveManifest {
  const m = entry(tar, MANIFEST_ENTRY);
  return JSON.parse(tar.subarray(m.data, m.data + m.size).toString('utf8')) as SignedArchiveManifest;
}

/** A manifest signed (and checksummed) afresh, as a writer holding `by.signer` would. */
export function resigned(manifest: ArchiveManifest, by: { signer: ManifestSigner }): SignedArchiveManifest {
  return {
    manifest,
    manifestSha256: createHash('sha256').update(canonicalBytes(manifest)).digest('hex'),
    signature: by.signer.sign(manifestSigningBytes(manifest)).toString('base64'),
  };
}

/** The archive `tar` with its manifest.json replaced (and any entries changed by `edit`). */
export function rebuiltFrom(
  tar: Buffer,
  signed: SignedArchiveManifest,
  edit: (parts: Array<{ name: string; body: Buffer }>) => Array<{ name: string; body: Buffer }> = (p) => p,
): Promise<Buffer> {
  const parts = bodies(tar).filter((e) => e.name !== MANIFEST_ENTRY);
  return tarOf([{ name: MANIFEST_ENTRY, body: manifestEntryBytes(signed) }, ...edit(parts)]);
}
