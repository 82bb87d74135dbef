// Real bundles for the verifier's tests: events written to the inbox, sealed
// by the real sealer with a test key, exported by the real exportBundle
// (format v2, the manifest signed with that key); and an editable view of a
// bundle (unpack, change, re-sign, repack) for the attacks.
//
// Layout (fixed; the attack files in attacks/ count on it). Manifest order is
// platform, registry, t_aaaaaaaaaaa1 (role A), t_bbbbbbbbbbb2 (role B).
//   seal 1: tenant A seq 1..4, tenant B seq 1..3, platform seq 1..2
//           -> the "older" exports (full, and tenant A only) are taken here;
//              each export adds one audit.export event to the inbox
//   seal 2: tenant A seq 5..8 (its export event + 3), tenant B seq 4..5,
//           platform seq 3..4 (the full export's event + 1)
//           -> the "current" exports: full, tenant A, tenant A with
//              --from the time of its seq 5 (seq 5..8, anchored at the
//              signed checkpoint of size 4), and a full export with --from
//              the time of tenant B's seq 4 (written after tenant A's seq 8):
//              tenant A quiet since then (no entries in range, anchored at
//              its end checkpoint of size 8), tenant B from seq 4 and
//              platform from its seq 3 or 4 (each widened back to a signed
//              checkpoint), the registry from genesis
// The registry chain's length depends on how many seals it took (sealing
// waits for other tests' transactions), so no attack counts on its last seq.
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import tar from 'tar-stream';
import { exportBundle } from '../../audit/export.ts';
import type { Signer } from '../../audit/signing.ts';
import {
  CHECKPOINTS_FILE,
  canonicalBytes,
  chainHash,
  ENTRIES_FILE,
  MANIFEST_FILE,
  type ManifestV2,
  manifestSigningBytes,
  type SignedCheckpoint,
  type SignedManifest,
} from '../../audit/verifier/bundle-format.ts';
import { publicKeyPem } from '../../audit/verifier/keys.ts';
import type { Pool } from '../../kernel/db.ts';
import { event, insertEvent, sealAll, tempSigner } from './chain-helpers.ts';

export const TENANT_A = 'aaaaaaaaaaa1';
export const TENANT_B = 'bbbbbbbbbbb2';
export const ROLES: Record<string, string> = {
  A: `t_${TENANT_A}`,
  B: `t_${TENANT_B}`,
  platform: 'platform',
  registry: 'registry',
};

export interface Exports {
  full: Buffer;
  tenantA: Buffer;
}

export interface Fixture {
  signer: Signer;
  /** The auditor's pinned key. */
  key: KeyObject;
  /** The installation's origin (`enclave:<id>`), as in every manifest, checkpoint and entry. */
  origin: string;
  older: Exports;
  current: Exports & {
    /** Tenant A exported with --from the time of its seq 5: seq 5..8, anchored at size 4. */
    tenantAFrom: Buffer;
    /** A full export with --from the time of tenant B's seq 4: tenant A quiet (empty range at size 8), the registry from genesis. */
    fullFrom: Buffer;
  };
  /** End checkpoints of the older and the current full export, by chain. */
  earlier: Map<string, SignedCheckpoint>;
  latest: Map<string, SignedCheckpoint>;
}

/** What re-signs: the fixture's Signer fits. */
export interface SigningKey {
  readonly keyId: string;
  sign(bytes: Uint8Array): Buffer;
}

/** A bundle exported by the real exporter, its manifest signed by `options.signer` (the sealing key). */
export async function exportToBuffer(
  pool: Pool,
  options: Partial<Parameters<typeof exportBundle>[2]> & Pick<Parameters<typeof exportBundle>[2], 'signer'>,
) {
  const out = new PassThrough();
  const bytes = buffer(out);
  await exportBundle(pool, out, { actor: { type: 'auditor', id: 'test-auditor' }, ...options });
  return bytes;
}

export async function buildFixture(pool: Pool): Promise<Fixture> {
  const signer = await tempSigner();
  const key = createPublicKey(publicKeyPem(signer.publicKey));
  for (let i = 1; i <= 4; i++)
    await insertEvent(pool, event(TENANT_A, 'note.update', { count: 100, n: i, note: { title: `t${i}` } }));
  for (let i = 1; i <= 3; i++) await insertEvent(pool, event(TENANT_B, 'task.create', { n: i }));
  for (let i = 1; i <= 2; i++) await insertEvent(pool, event(null, 'tenant.provision', { n: i }));
  await sealAll(pool, signer);
  const older = {
    full: await exportToBuffer(pool, { signer }),
    tenantA: await exportToBuffer(pool, { signer, tenant: TENANT_A }),
  };
  for (let i = 5; i <= 7; i++) await insertEvent(pool, event(TENANT_A, 'note.update', { count: 100, n: i }));
  for (let i = 4; i <= 5; i++) await insertEvent(pool, event(TENANT_B, 'task.create', { n: i }));
  await insertEvent(pool, event(null, 'tenant.suspend', {}));
  await sealAll(pool, signer);
  const seq5 = await pool.query<{ t: Date }>(
    'SELECT occurred_at AS t FROM control.audit_log WHERE chain = $1 AND seq = 5',
    [ROLES.A],
  );
  const bSeq4 = await pool.query<{ t: Date }>(
    'SELECT occurred_at AS t FROM control.audit_log WHERE chain = $1 AND seq = 4',
    [ROLES.B],
  );
  const current = {
    full: await exportToBuffer(pool, { signer }),
    tenantA: await exportToBuffer(pool, { signer, tenant: TENANT_A }),
    tenantAFrom: await exportToBuffer(pool, { signer, tenant: TENANT_A, from: seq5.rows[0]?.t as Date }),
    fullFrom: await exportToBuffer(pool, { signer, from: bSeq4.rows[0]?.t as Date }),
  };
  const full = await EditableBundle.from(current.full);
  return {
    signer,
    key,
    origin: full.manifest.origin,
    older,
    current,
    earlier: signedOnly((await EditableBundle.from(older.full)).endCheckpoints()),
    latest: signedOnly(full.endCheckpoints()),
  };
}

const signedOnly = (ends: Map<string, SignedCheckpoint>) =>
  new Map([...ends].map(([chain, c]) => [chain, { checkpoint: c.checkpoint, signature: c.signature }]));

// --- an editable bundle --------------------------------------------------------

const LF = Buffer.from('\n');
/** A fixed tar mtime: repacking the same files gives the same bytes. */
const REPACKED_AT = new Date('2026-01-01T00:00:00Z');
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** Signs a checkpoint object the way the sealer does: Ed25519 over its canonical bytes. */
export function signCheckpoint(
  checkpoint: SignedCheckpoint['checkpoint'],
  key: SigningKey,
): SignedCheckpoint {
  return { checkpoint, signature: key.sign(canonicalBytes(checkpoint)).toString('base64') };
}

/**
 * A bundle unpacked into its files, in tar order (format v2: manifest.json
 * first). Setters write canonical lines back; nothing is re-signed unless
 * asked: `fixManifest` is what anyone can do (the files' sizes and hashes),
 * `signManifest` and `resignCheckpoints` need the signing key.
 */
export class EditableBundle {
  /** File name -> bytes, in tar order. */
  files = new Map<string, Buffer>();
  /** When set, the bundle's bytes as they are (a broken archive): toBuffer returns them instead of packing `files`. */
  raw: Buffer | undefined;

  static async from(bytes: Buffer): Promise<EditableBundle> {
    const bundle = new EditableBundle();
    const extract = tar.extract();
    const done = pipeline(passThroughFrom(bytes), createGunzip(), extract);
    for await (const entry of extract)
      bundle.files.set(entry.header.name, await buffer(entry as AsyncIterable<Buffer>));
    await done;
    return bundle;
  }

  /** A copy that can be edited without touching this one. */
  clone(): EditableBundle {
    const copy = new EditableBundle();
    for (const [name, bytes] of this.files) copy.files.set(name, Buffer.from(bytes));
    if (this.raw) copy.raw = Buffer.from(this.raw);
    return copy;
  }

  text(name: string): string {
    const bytes = this.files.get(name);
    if (!bytes) throw new Error(`no ${name} in the bundle`);
    return bytes.toString('utf8');
  }

  /** manifest.json: `{manifest, signature}`. */
  get signed(): SignedManifest {
    return JSON.parse(this.text(MANIFEST_FILE)) as SignedManifest;
  }

  /** Writes manifest.json as the exporter does: one canonical line. */
  set signed(s: SignedManifest) {
    this.files.set(MANIFEST_FILE, Buffer.concat([canonicalBytes(s), LF]));
  }

  get manifest(): ManifestV2 {
    return this.signed.manifest;
  }

  /** Replaces the manifest and keeps the old signature (which then no longer verifies, unless re-signed). */
  set manifest(manifest: ManifestV2) {
    this.signed = { manifest, signature: this.signed.signature };
  }

  /** Edits the manifest in place (signature kept). */
  editManifest(edit: (m: ManifestV2) => void): void {
    const m = this.manifest;
    edit(m);
    this.manifest = m;
  }

  /** What an outsider does for free: make the manifest's sizes and hashes match the edited files again. */
  fixManifest(): void {
    this.editManifest((m) => {
      m.files = m.files.map((f) => {
        const bytes = this.files.get(f.name) ?? Buffer.alloc(0);
        return { name: f.name, bytes: bytes.length, sha256: sha256(bytes) };
      });
    });
  }

  /** What a key holder does: sign the manifest as it now is (keyId set to the key's). */
  signManifest(key: SigningKey): void {
    const manifest = { ...this.manifest, keyId: key.keyId };
    this.signed = { manifest, signature: key.sign(manifestSigningBytes(manifest)).toString('base64') };
  }

  /** entries.jsonl as lines (without their newlines). */
  get lines(): string[] {
    return this.text(ENTRIES_FILE).split('\n').slice(0, -1);
  }

  set lines(lines: string[]) {
    this.files.set(ENTRIES_FILE, Buffer.from(lines.map((l) => `${l}\n`).join('')));
  }

  /** Index in `lines` of the entry whose own chain and seq fields are these. */
  indexOf(chain: string, seq: number): number {
    const i = this.lines.findIndex((l) => {
      const e = JSON.parse(l);
      return e.chain === chain && e.seq === seq;
    });
    if (i === -1) throw new Error(`no entry ${chain}/${seq} in the bundle`);
    return i;
  }

  /**
   * The lines at a chain's positions as the manifest lays them out (chains in
   * manifest order, each firstSeq..lastSeq): what a verifier hashes for it.
   */
  linesAt(chain: string): string[] {
    const lines = this.lines;
    let at = 0;
    for (const c of this.manifest.chains) {
      const n = c.lastSeq - c.firstSeq + 1;
      if (c.chain === chain) return lines.slice(at, at + n);
      at += n;
    }
    throw new Error(`no chain ${chain} in the manifest`);
  }

  /** hex of hash_n: the chain's prevHash hashed on over `lines`. */
  static headOf(prevHash: string, lines: readonly string[]): string {
    let hash: Buffer = Buffer.from(prevHash, 'hex');
    for (const line of lines) hash = chainHash(hash, Buffer.from(line));
    return hash.toString('hex');
  }

  get checkpoints(): SignedCheckpoint[] {
    return this.text(CHECKPOINTS_FILE)
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as SignedCheckpoint);
  }

  set checkpoints(list: SignedCheckpoint[]) {
    this.files.set(CHECKPOINTS_FILE, Buffer.concat(list.flatMap((c) => [canonicalBytes(c), LF])));
  }

  /** Each chain's checkpoint of the largest size in checkpoints.jsonl (its end), by chain. */
  endCheckpoints(): Map<string, SignedCheckpoint & { index: number }> {
    const ends = new Map<string, SignedCheckpoint & { index: number }>();
    for (const [index, c] of this.checkpoints.entries()) {
      const seen = ends.get(c.checkpoint.chain);
      if (!seen || seen.checkpoint.size < c.checkpoint.size) ends.set(c.checkpoint.chain, { ...c, index });
    }
    return ends;
  }

  /**
   * What a key holder (or a buggy exporter) does after editing entries: each
   * listed chain's end checkpoint (its largest in checkpoints.jsonl) is made
   * to say the manifest's lastSeq and the head recomputed over the lines at
   * the chain's positions, and signed again; every other line is signed again
   * as it is (Ed25519 is deterministic: an unchanged line stays the same).
   */
  resignCheckpoints(key: SigningKey, chains?: readonly string[]): void {
    const ranges = new Map(this.manifest.chains.map((c) => [c.chain, c]));
    const ends = this.endCheckpoints();
    this.checkpoints = [...this.checkpoints.entries()].map(([i, sc]) => {
      const cp = { ...sc.checkpoint };
      const range = ranges.get(cp.chain);
      if (range && ends.get(cp.chain)?.index === i && (!chains || chains.includes(cp.chain))) {
        cp.size = range.lastSeq;
        cp.head = EditableBundle.headOf(range.prevHash, this.linesAt(cp.chain));
      }
      return signCheckpoint({ ...cp, keyId: key.keyId }, key);
    });
  }

  /** The .tar.gz: the files in this order (or `raw`). */
  async toBuffer(): Promise<Buffer> {
    if (this.raw) return this.raw;
    const pack = tar.pack();
    const out = buffer(pipelineOut(pack));
    for (const [name, bytes] of this.files)
      pack.entry({ name, size: bytes.length, mode: 0o644, mtime: REPACKED_AT }, bytes);
    pack.finalize();
    return out;
  }
}

function passThroughFrom(bytes: Buffer): PassThrough {
  const p = new PassThrough();
  p.end(bytes);
  return p;
}

function pipelineOut(pack: tar.Pack): PassThrough {
  const out = new PassThrough();
  pipeline(pack, createGzip(), out).catch((err) => out.destroy(err));
  return out;
}
