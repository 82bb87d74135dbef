// Moves committed inbox rows into the hash chains and signs checkpoints.
//
// One seal is one transaction under one advisory lock (tenancy/locks.ts
// auditLock): only one sealer runs at a time anywhere, and a crash at any
// point leaves nothing half-sealed (the inbox rows are still there, the
// chains end where they ended). Steps:
//   1. lock; check that our key is the current one;
//   2. take up to batchSize inbox rows in a safe order (chain-sql.ts selectSealable);
//   3. per chain (`t_<tenant>` or `platform`): canonical entry bytes, gapless
//      seq after the chain's head, hash = SHA-256(prev || bytes); insert; the
//      inbox rows are deleted (the inbox is a queue);
//   4. one signed checkpoint per chain that grew, each also recorded as an
//      entry of the `registry` chain, then a signed checkpoint of the registry.
import type { Client, Pool } from '../kernel/db.ts';
import { transaction } from '../kernel/db.ts';
import { auditLock, auditTryLock } from '../kernel/locks.ts';
import {
  currentKey,
  deleteInbox,
  insertCheckpoint,
  insertEntries,
  insertKey,
  type NewEntry,
  selectHeads,
  selectOrigin,
  selectSealable,
} from './chain-sql.ts';
import { type Signer, SigningKeyNotCurrentError } from './signing.ts';
import { canonicalBytes } from './verifier/canonical.ts';
import {
  type Checkpoint,
  chainHash,
  chainOf,
  checkpointOf,
  entryOf,
  formatTime,
  type InboxRow,
  REGISTRY_CHAIN,
  registryEntryOf,
  ZERO_HASH,
} from './verifier/entry.ts';

export const DEFAULT_SEAL_BATCH = 5000;

export interface SealOptions {
  /** The installation id (`enclave:...`); read from control.audit_origin when not given. */
  origin?: string;
  /** Most inbox rows sealed by this call; `more` says whether some were left. */
  batchSize?: number;
  /** The checkpoints' time; tests pass their own. */
  clock?: () => Date;
  /** false: if another seal holds the lock, return at once with `busy` (the scheduled job does). */
  wait?: boolean;
}

export interface SealedChain {
  chain: string;
  /** First and last seq appended by this seal. */
  from: number;
  to: number;
}

export interface SealResult {
  /** Inbox rows sealed (entries appended to tenant and platform chains). */
  sealed: number;
  chains: SealedChain[];
  /** Checkpoints signed, the registry's included. */
  checkpoints: number;
  /** True when the batch was full: call again to seal the rest. */
  more: boolean;
  /** True when nothing was done because another seal was running (only with `wait: false`). */
  busy: boolean;
}

const nothing = (busy: boolean): SealResult => ({ sealed: 0, chains: [], checkpoints: 0, more: false, busy });

interface Head {
  seq: number;
  hash: Buffer;
}

export async function seal(pool: Pool, signer: Signer, options: SealOptions = {}): Promise<SealResult> {
  const batchSize = options.batchSize ?? DEFAULT_SEAL_BATCH;
  if (!Number.isSafeInteger(batchSize) || batchSize < 1)
    throw new RangeError('batchSize must be a positive integer');
  const clock = options.clock ?? (() => new Date());
  return transaction(pool, async (client) => {
    if (options.wait === false) {
      const { rows } = await client.query<{ locked: boolean }>(auditTryLock());
      if (!rows[0]?.locked) return nothing(true);
    } else {
      await client.query(auditLock());
    }
    await ensureCurrentKey(client, signer);
    const origin = options.origin ?? (await readOrigin(client));
    const { rows } = await client.query<InboxRow>(selectSealable(batchSize));
    if (rows.length === 0) return nothing(false);

    const byChain = new Map<string, InboxRow[]>();
    for (const row of rows) {
      const chain = chainOf(row.tenant_id);
      const list = byChain.get(chain);
      if (list) list.push(row);
      else byChain.set(chain, [row]);
    }
    const heads = await readHeads(client, [...byChain.keys(), REGISTRY_CHAIN]);

    const entries: NewEntry[] = [];
    const grown: Array<{ chain: string; from: number; head: Head }> = [];
    for (const [chain, chainRows] of byChain) {
      let head = heads.get(chain) ?? { seq: 0, hash: ZERO_HASH };
      const from = head.seq + 1;
      for (const row of chainRows) {
        const seq = head.seq + 1;
        const bytes = canonicalBytes(entryOf(row, chain, seq, origin));
        head = { seq, hash: chainHash(head.hash, bytes) };
        entries.push({ chain, seq, entry: bytes, hash: head.hash, occurredAt: row.at, inboxId: row.id });
      }
      grown.push({ chain, from, head });
    }
    await client.query(insertEntries(entries));
    await client.query(deleteInbox(rows.map((r) => r.id)));

    const time = formatTime(clock());
    let registry = heads.get(REGISTRY_CHAIN) ?? { seq: 0, hash: ZERO_HASH };
    const registryEntries: NewEntry[] = [];
    for (const { chain, head } of grown) {
      const { checkpoint, signature } = await signCheckpoint(client, signer, { origin, chain, head, time });
      const seq = registry.seq + 1;
      const bytes = canonicalBytes(registryEntryOf(checkpoint, signature, seq, origin));
      registry = { seq, hash: chainHash(registry.hash, bytes) };
      registryEntries.push({
        chain: REGISTRY_CHAIN,
        seq,
        entry: bytes,
        hash: registry.hash,
        occurredAt: time,
        inboxId: null,
      });
    }
    await client.query(insertEntries(registryEntries));
    await signCheckpoint(client, signer, { origin, chain: REGISTRY_CHAIN, head: registry, time });

    return {
      sealed: rows.length,
      chains: grown.map(({ chain, from, head }) => ({ chain, from, to: head.seq })),
      checkpoints: grown.length + 1,
      more: rows.length === batchSize,
      busy: false,
    };
  });
}

async function signCheckpoint(
  client: Client,
  signer: Signer,
  c: { origin: string; chain: string; head: Head; time: string },
): Promise<{ checkpoint: Checkpoint; signature: Buffer }> {
  const checkpoint = checkpointOf({
    origin: c.origin,
    chain: c.chain,
    size: c.head.seq,
    head: c.head.hash.toString('hex'),
    keyId: signer.keyId,
    time: c.time,
  });
  const bytes = canonicalBytes(checkpoint);
  const signature = signer.sign(bytes);
  await client.query(
    insertCheckpoint({
      chain: c.chain,
      size: c.head.seq,
      head: c.head.hash,
      checkpoint: bytes,
      signature,
      keyId: signer.keyId,
    }),
  );
  return { checkpoint, signature };
}

/**
 * Signs only with the published current key. A key rotated by another
 * process is picked up from the (shared) key file; a key nobody published yet
 * is published when there is no current key at all (a fresh installation).
 */
async function ensureCurrentKey(client: Client, signer: Signer): Promise<void> {
  const { rows } = await client.query<{ key_id: string }>(currentKey());
  const current = rows[0]?.key_id ?? null;
  if (current === null) {
    await client.query(insertKey(signer.keyId, signer.publicKey));
    return;
  }
  if (current === signer.keyId) return;
  if ((await signer.reload()) && current === signer.keyId) return;
  throw new SigningKeyNotCurrentError(signer.file, signer.keyId, current);
}

export async function readOrigin(client: Client | Pool): Promise<string> {
  const { rows } = await client.query<{ origin: string }>(selectOrigin());
  const origin = rows[0]?.origin;
  if (!origin) throw new Error('control.audit_origin is empty: the control-plane migrations did not run');
  return origin;
}

async function readHeads(client: Client, chains: string[]): Promise<Map<string, Head>> {
  const { rows } = await client.query<{ chain: string; seq: number; hash: Buffer }>(selectHeads(chains));
  return new Map(rows.map((r) => [r.chain, { seq: Number(r.seq), hash: r.hash }]));
}
