// Format v2 bundles made in memory, without a database, for the verifier's
// unit tests: a History of chains sealed the way the sealer does (one signed
// checkpoint per chain that grew, each recorded in the registry chain, then
// the registry's own), exported per docs/AUDIT-FORMAT.md ("Which chains and
// ranges an export holds") into editable Parts, packed with tar-stream and
// gzip. A test edits the parts (an entry line, a checkpoint, the manifest)
// and packs again; `pack` recomputes the file hashes and re-signs the
// manifest unless told not to, which is what a key holder could do.
import { createHash, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import tar from 'tar-stream';
import {
  CHECKPOINTS_FILE,
  type Checkpoint,
  CSV_FILE,
  canonicalBytes,
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
} from '../../../audit/verifier/bundle-format.ts';
import { formatTime } from '../../../audit/verifier/entry.ts';
import { keyIdOf, rawPublicKey } from '../../../audit/verifier/keys.ts';

export const ORIGIN = 'enclave:0123456789abcdef0123456789abcdef';

export interface TestKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  keyId: string;
  pem: string;
}

export function testKey(): TestKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privateKey,
    publicKey,
    keyId: keyIdOf(rawPublicKey(publicKey)),
    pem: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
  };
}

export function signCheckpoint(checkpoint: Checkpoint, key: TestKey): SignedCheckpoint {
  return { checkpoint, signature: sign(null, canonicalBytes(checkpoint), key.privateKey).toString('base64') };
}

export const line = (value: unknown) => `${canonicalBytes(value).toString('utf8')}\n`;

interface ChainState {
  entries: Buffer[];
  /** hashes[n] = hash_n */
  hashes: Buffer[];
  /** Sizes with a signed checkpoint, ascending. */
  sealed: number[];
}

export interface ExportOptions {
  /** Kind `tenant` of this tenant id; default: a full export. */
  tenant?: string;
  /** Per chain, the first seq wanted (widened back to the anchor at or below seq - 1); sets filter.from. */
  fromSeq?: Record<string, number>;
  /** filter.to: each chain ends at its newest checkpoint at or before it. */
  to?: string;
}

/** The chains of an installation, sealed with one key, in memory. */
export class History {
  readonly key: TestKey;
  readonly origin: string;
  readonly chains = new Map<string, ChainState>();
  readonly checkpoints = new Map<string, SignedCheckpoint>();
  private clock = Date.parse('2026-11-22T17:00:00Z');

  constructor(key = testKey(), origin = ORIGIN) {
    this.key = key;
    this.origin = origin;
  }

  private tick(): string {
    this.clock += 1000;
    return formatTime(new Date(this.clock));
  }

  private state(chain: string): ChainState {
    let s = this.chains.get(chain);
    if (!s) {
      s = { entries: [], hashes: [ZERO_HASH], sealed: [] };
      this.chains.set(chain, s);
    }
    return s;
  }

  /** Appends the entry bytes (canonical, no newline) to the chain. */
  append(chain: string, entry: Record<string, unknown>): void {
    const s = this.state(chain);
    const bytes = canonicalBytes(entry);
    s.entries.push(bytes);
    s.hashes.push(chainHash(s.hashes.at(-1) as Buffer, bytes));
  }

  /** Appends `n` events of a tenant (or the platform, `null`). */
  events(tenant: string | null, n: number, action = 'note.update'): this {
    const chain = tenant === null ? 'platform' : `t_${tenant}`;
    for (let i = 0; i < n; i++) {
      const seq = this.state(chain).entries.length + 1;
      this.append(chain, eventEntry(this.origin, chain, seq, this.tick(), { action, n: seq }));
    }
    return this;
  }

  /** One seal: a checkpoint per chain that grew, each recorded in the registry, then the registry's. */
  seal(): string {
    const time = this.tick();
    for (const [chain, s] of [...this.chains].sort(([a], [b]) => (a < b ? -1 : 1))) {
      if (chain === 'registry' || s.entries.length === (s.sealed.at(-1) ?? 0)) continue;
      const sc = this.checkpoint(chain, s.entries.length, time);
      const reg = this.state('registry');
      this.append('registry', {
        v: 1,
        origin: this.origin,
        chain: 'registry',
        seq: reg.entries.length + 1,
        at: time,
        kind: 'checkpoint',
        checkpoint: sc.checkpoint,
        signature: sc.signature,
      });
    }
    const reg = this.state('registry');
    if (reg.entries.length > (reg.sealed.at(-1) ?? 0)) this.checkpoint('registry', reg.entries.length, time);
    return time;
  }

  /** A checkpoint at the chain's current size that the registry never records (what a registry check must catch). */
  checkpointOnly(chain: string): SignedCheckpoint {
    return this.checkpoint(chain, this.state(chain).entries.length, this.tick());
  }

  /** hash_size of a chain. */
  hashAt(chain: string, size: number): string {
    return (this.state(chain).hashes[size] as Buffer).toString('hex');
  }

  private checkpoint(chain: string, size: number, time: string): SignedCheckpoint {
    const s = this.state(chain);
    const cp: Checkpoint = {
      v: 1,
      origin: this.origin,
      chain,
      size,
      head: (s.hashes[size] as Buffer).toString('hex'),
      keyId: this.key.keyId,
      time,
    };
    const sc = signCheckpoint(cp, this.key);
    s.sealed.push(size);
    this.checkpoints.set(`${chain}/${size}`, sc);
    return sc;
  }

  signed(chain: string, size: number): SignedCheckpoint {
    const sc = this.checkpoints.get(`${chain}/${size}`);
    if (!sc) throw new Error(`no checkpoint of ${chain} at size ${size}`);
    return sc;
  }

  /** The newest signed checkpoint of every chain (what --save-checkpoints keeps). */
  latest(): SignedCheckpoint[] {
    return [...this.chains.keys()].sort().map((c) => this.signed(c, this.state(c).sealed.at(-1) as number));
  }

  /** An export, as editable parts. */
  export(options: ExportOptions = {}): Parts {
    const names = [...this.chains.keys()]
      .filter((c) => (this.chains.get(c) as ChainState).sealed.length > 0)
      .filter((c) => (options.tenant === undefined ? true : c === `t_${options.tenant}`))
      .sort();
    const chains: ManifestChainV2[] = [];
    const cps: SignedCheckpoint[] = [];
    const entries: Buffer[] = [];
    for (const chain of names) {
      const s = this.chains.get(chain) as ChainState;
      const ends = s.sealed.filter(
        (size) => options.to === undefined || this.signed(chain, size).checkpoint.time <= options.to,
      );
      const lastSeq = ends.at(-1);
      if (lastSeq === undefined) continue;
      const wanted = Math.min(options.fromSeq?.[chain] ?? 1, lastSeq + 1);
      const anchor = wanted <= 1 ? 0 : Math.max(0, ...s.sealed.filter((size) => size <= wanted - 1));
      const firstSeq = anchor + 1;
      chains.push({
        chain,
        firstSeq,
        lastSeq,
        prevHash: (s.hashes[anchor] as Buffer).toString('hex'),
        start: anchor === 0 ? 'genesis' : 'from',
      });
      if (anchor > 0) cps.push(this.signed(chain, anchor));
      if (lastSeq !== anchor) cps.push(this.signed(chain, lastSeq));
      entries.push(...s.entries.slice(firstSeq - 1, lastSeq));
    }
    const manifest: ManifestV2 = {
      v: 2,
      origin: this.origin,
      createdAt: this.tick(),
      keyId: this.key.keyId,
      kind: options.tenant === undefined ? 'full' : 'tenant',
      filter: {
        tenant: options.tenant ?? null,
        from: options.fromSeq ? '2026-11-01T00:00:00.000000Z' : null,
        to: options.to ?? null,
      },
      files: V2_FILES.map((name) => ({ name, bytes: 0, sha256: '' })),
      chains,
    };
    return new Parts(manifest, this.key, {
      [CHECKPOINTS_FILE]: Buffer.from(cps.map(line).join('')),
      [ENTRIES_FILE]: Buffer.from(entries.map((e) => `${e}\n`).join('')),
      [CSV_FILE]: Buffer.from('chain,seq,at,tenant,actor,action,resource,outcome\n'),
      [KEYS_FILE]: Buffer.from(`${JSON.stringify([{ keyId: this.key.keyId, pem: this.key.pem }])}\n`),
    });
  }
}

export function eventEntry(
  origin: string,
  chain: string,
  seq: number,
  at: string,
  details: unknown = {},
): Record<string, unknown> {
  return {
    v: 1,
    origin,
    chain,
    seq,
    id: seq * 10,
    at,
    tenant: chain === 'platform' ? null : chain.slice(2),
    actor: { type: 'user', id: 'u-1' },
    action: 'note.update',
    resource: { type: 'note', id: '42' },
    outcome: { result: 'success', code: null },
    where: { ip: '127.0.0.1', ua: 'test', request: 'req-1' },
    details,
  };
}

/** A bundle's content before packing: edit freely, then `pack`. */
export class Parts {
  manifest: ManifestV2;
  key: TestKey;
  files: Record<string, Buffer>;
  /** Tar entries in order; default the v2 order. Names not in `files` (or `raw`) are packed empty. */
  order: string[] = [MANIFEST_FILE, ...V2_FILES];
  /** Exact manifest.json bytes to pack instead of the signed manifest. */
  rawManifest: Buffer | undefined;

  constructor(manifest: ManifestV2, key: TestKey, files: Record<string, Buffer>) {
    this.manifest = manifest;
    this.key = key;
    this.files = files;
  }

  /** entries.jsonl as lines without their newlines. */
  get lines(): string[] {
    return this.text(ENTRIES_FILE).split('\n').slice(0, -1);
  }

  set lines(lines: string[]) {
    this.files[ENTRIES_FILE] = Buffer.from(lines.map((l) => `${l}\n`).join(''));
  }

  get checkpointLines(): string[] {
    return this.text(CHECKPOINTS_FILE).split('\n').slice(0, -1);
  }

  set checkpointLines(lines: string[]) {
    this.files[CHECKPOINTS_FILE] = Buffer.from(lines.map((l) => `${l}\n`).join(''));
  }

  text(name: string): string {
    return (this.files[name] as Buffer).toString('utf8');
  }

  /** Index in `lines` of a chain's entry. */
  indexOf(chain: string, seq: number): number {
    const i = this.lines.findIndex((l) => {
      const e = JSON.parse(l);
      return e.chain === chain && e.seq === seq;
    });
    if (i === -1) throw new Error(`no entry ${chain}/${seq}`);
    return i;
  }

  /** Edits one entry (kept canonical). */
  editEntry(chain: string, seq: number, edit: (e: Record<string, unknown>) => void): this {
    const lines = this.lines;
    const i = this.indexOf(chain, seq);
    const entry = JSON.parse(lines[i] as string);
    edit(entry);
    lines[i] = canonicalBytes(entry).toString('utf8');
    this.lines = lines;
    return this;
  }

  /** The manifest.json bytes: the canonical signed manifest, after fixing the file list. */
  manifestBytes(options: { fixFiles?: boolean; sign?: boolean | TestKey } = {}): Buffer {
    if (this.rawManifest) return this.rawManifest;
    if (options.fixFiles !== false)
      this.manifest.files = V2_FILES.map((name) => {
        const bytes = this.files[name] ?? Buffer.alloc(0);
        return { name, bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
      });
    const key = typeof options.sign === 'object' ? options.sign : this.key;
    const signature =
      options.sign === false
        ? Buffer.alloc(64).toString('base64')
        : sign(null, manifestSigningBytes(this.manifest), key.privateKey).toString('base64');
    return Buffer.from(line({ manifest: this.manifest, signature }));
  }

  async pack(options: { fixFiles?: boolean; sign?: boolean | TestKey } = {}): Promise<Buffer> {
    const manifest = this.manifestBytes(options);
    return packTar(
      this.order.map((name) => [
        name,
        name === MANIFEST_FILE ? manifest : (this.files[name] ?? Buffer.alloc(0)),
      ]),
    );
  }
}

/** A .tar.gz of these files, in this order (a `type` other than a regular file when asked). */
export async function packTar(
  files: Array<[string, Buffer] | [string, Buffer, 'directory' | 'symlink']>,
): Promise<Buffer> {
  const pack = tar.pack();
  const out = new PassThrough();
  const done = buffer(out);
  pipeline(pack, createGzip(), out).catch((err) => out.destroy(err));
  for (const [name, bytes, type] of files) {
    if (type === 'directory') pack.entry({ name, type: 'directory' });
    else if (type === 'symlink') pack.entry({ name, type: 'symlink', linkname: 'x' });
    else pack.entry({ name, size: bytes.length, mode: 0o644 }, bytes);
  }
  pack.finalize();
  return done;
}
