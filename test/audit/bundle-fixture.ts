// Real bundles for the verifier's tests: events written to the inbox, sealed
// by the real sealer with a test key, exported by the real exportBundle; and
// an editable view of a bundle (unpack, change, repack) for the attacks.
//
// Layout (fixed; the attack files in attacks/ count on it):
//   seal 1: tenant A seq 1..4, tenant B seq 1..3, platform seq 1..2
//           -> the "older" exports (full, and tenant A only) are taken here;
//              each export adds one audit.export event to the inbox
//   seal 2: tenant A seq 5..8 (its export event + 3), tenant B seq 4..5,
//           platform seq 3..4 (the full export's event + 1)
//           -> the "current" exports
// The registry chain's length depends on how many seals it took (sealing
// waits for other tests' transactions), so no attack counts on it.
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
  ENTRIES_FILE,
  MANIFEST_FILE,
  type Manifest,
  type SignedCheckpoint,
} from '../../audit/verifier/bundle-format.ts';
import { publicKeyPem } from '../../audit/verifier/keys.ts';
import { verifyBundle } from '../../audit/verifier/verify.ts';
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
  older: Exports;
  current: Exports;
  /** Checkpoints of the older and the current full export, by chain. */
  earlier: Map<string, SignedCheckpoint>;
  latest: Map<string, SignedCheckpoint>;
}

export async function exportToBuffer(pool: Pool, options: Partial<Parameters<typeof exportBundle>[2]> = {}) {
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
    full: await exportToBuffer(pool),
    tenantA: await exportToBuffer(pool, { tenant: TENANT_A }),
  };
  for (let i = 5; i <= 7; i++) await insertEvent(pool, event(TENANT_A, 'note.update', { count: 100, n: i }));
  for (let i = 4; i <= 5; i++) await insertEvent(pool, event(TENANT_B, 'task.create', { n: i }));
  await insertEvent(pool, event(null, 'tenant.suspend', {}));
  await sealAll(pool, signer);
  const current = {
    full: await exportToBuffer(pool),
    tenantA: await exportToBuffer(pool, { tenant: TENANT_A }),
  };
  const checkpointsOf = async (bundle: Buffer) => {
    const result = await verifyBundle(bundle, key);
    if (!result.ok) throw new Error(`the fixture bundle does not verify: ${result.message}`);
    return new Map(result.checkpoints.map((c) => [c.checkpoint.chain, c]));
  };
  return {
    signer,
    key,
    older,
    current,
    earlier: await checkpointsOf(older.full),
    latest: await checkpointsOf(current.full),
  };
}

// --- an editable bundle --------------------------------------------------------

export class EditableBundle {
  /** File name -> bytes, in tar order (the manifest last). */
  files = new Map<string, Buffer>();

  static async from(bytes: Buffer): Promise<EditableBundle> {
    const bundle = new EditableBundle();
    const extract = tar.extract();
    const done = pipeline(PassThroughFrom(bytes), createGunzip(), extract);
    for await (const entry of extract)
      bundle.files.set(entry.header.name, await buffer(entry as AsyncIterable<Buffer>));
    await done;
    return bundle;
  }

  get manifest(): Manifest {
    return JSON.parse(this.text(MANIFEST_FILE)) as Manifest;
  }

  set manifest(m: Manifest) {
    this.files.set(MANIFEST_FILE, Buffer.from(`${JSON.stringify(m, null, 2)}\n`));
  }

  text(name: string): string {
    return (this.files.get(name) as Buffer).toString('utf8');
  }

  /** entries.jsonl as lines (without their newlines). */
  get lines(): string[] {
    return this.text(ENTRIES_FILE).split('\n').slice(0, -1);
  }

  set lines(lines: string[]) {
    this.files.set(ENTRIES_FILE, Buffer.from(lines.map((l) => `${l}\n`).join('')));
  }

  /** Index in `lines` of a chain's entry. */
  indexOf(chain: string, seq: number): number {
    const i = this.lines.findIndex((l) => {
      const e = JSON.parse(l);
      return e.chain === chain && e.seq === seq;
    });
    if (i === -1) throw new Error(`no entry ${chain}/${seq} in the bundle`);
    return i;
  }

  get checkpoints(): SignedCheckpoint[] {
    return this.text(CHECKPOINTS_FILE)
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as SignedCheckpoint);
  }

  set checkpoints(list: SignedCheckpoint[]) {
    this.files.set(
      CHECKPOINTS_FILE,
      Buffer.concat(list.flatMap((c) => [canonicalBytes(c), Buffer.from('\n')])),
    );
  }

  /** What an attacker does for free: make the manifest's sizes and hashes match the edited files again. */
  fixManifest(): void {
    const m = this.manifest;
    m.files = m.files.map((f) => {
      const bytes = this.files.get(f.name) as Buffer;
      return { name: f.name, bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
    });
    this.manifest = m;
  }

  async toBuffer(): Promise<Buffer> {
    const pack = tar.pack();
    const out = buffer(pipelineOut(pack));
    for (const [name, bytes] of this.files) pack.entry({ name, size: bytes.length, mode: 0o644 }, bytes);
    pack.finalize();
    return out;
  }
}

function PassThroughFrom(bytes: Buffer): PassThrough {
  const p = new PassThrough();
  p.end(bytes);
  return p;
}

function pipelineOut(pack: tar.Pack): PassThrough {
  const out = new PassThrough();
  pipeline(pack, createGzip(), out).catch((err) => out.destroy(err));
  return out;
}
