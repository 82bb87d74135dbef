// Shared by the audit tests: write inbox events, seal until drained, and
// check a chain the way an outsider would (recompute every hash, verify every
// signature with node:crypto and the published key).
import assert from 'node:assert/strict';
import { createHash, createPublicKey, verify } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { seal } from '../../audit/sealer.ts';
import { openSigner, type Signer } from '../../audit/signing.ts';
import { type AuditEvent, insertAuditEvent } from '../../kernel/audit-inbox.ts';
import type { Client, Pool } from '../../kernel/db.ts';

export async function tempSigner(): Promise<Signer> {
  const dir = mkdtempSync(path.join(tmpdir(), 'enclave-audit-'));
  return openSigner(path.join(dir, 'audit-signing-key.pem'), { create: true });
}

export function event(
  tenantId: string | null,
  action: string,
  details: Record<string, unknown> = {},
): AuditEvent {
  return {
    tenantId,
    actor: { type: 'user', id: 'u-1' },
    action,
    resource: { type: 'note', id: 42 },
    outcome: 'success',
    context: { ip: '127.0.0.1', userAgent: 'test', requestId: 'req-1' },
    details,
  };
}

export async function insertEvent(db: Pool | Client, e: AuditEvent, occurredAt?: Date): Promise<void> {
  const stmt = insertAuditEvent(e);
  if (!occurredAt) {
    await db.query(stmt.text, stmt.values);
    return;
  }
  await db.query(
    stmt.text
      .replace('request_id, details)', 'request_id, details, occurred_at)')
      .replace('$11, $12)', '$11, $12, $13)'),
    [...stmt.values, occurredAt],
  );
}

/**
 * Seals until the inbox is empty. Retries because sealing waits for every
 * older transaction in the cluster to finish (other test files run at the
 * same time on the same PostgreSQL).
 */
export async function sealAll(pool: Pool, signer: Signer, timeoutMs = 20_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let sealed = 0;
  for (;;) {
    const result = await seal(pool, signer);
    sealed += result.sealed;
    if (result.more) continue;
    const { rows } = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM control.audit_inbox');
    if (rows[0]?.n === 0) return sealed;
    if (Date.now() > deadline) throw new Error(`the inbox did not drain within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Waits until every row in the inbox is sealable: its transaction is older
 * than every transaction still open anywhere in the cluster (other test files
 * hold transactions on the same PostgreSQL), so a seal sees the whole inbox.
 */
export async function waitUntilSealable(pool: Pool, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { rows } = await pool.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM control.audit_inbox WHERE txid >= pg_snapshot_xmin(pg_current_snapshot())',
    );
    if (rows[0]?.n === 0) return;
    if (Date.now() > deadline) throw new Error(`the inbox did not become sealable within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface LogRow {
  chain: string;
  seq: number;
  entry: Buffer | null;
  hash: Buffer;
  inbox_id: number | null;
}

export async function readChain(pool: Pool, chain: string): Promise<LogRow[]> {
  const { rows } = await pool.query<LogRow>(
    'SELECT chain, seq::int AS seq, entry, hash, inbox_id FROM control.audit_log WHERE chain = $1 ORDER BY seq',
    [chain],
  );
  return rows;
}

export async function chains(pool: Pool): Promise<string[]> {
  const { rows } = await pool.query<{ chain: string }>(
    'SELECT DISTINCT chain FROM control.audit_log ORDER BY chain',
  );
  return rows.map((r) => r.chain);
}

const sha256 = (...parts: Uint8Array[]) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};

/**
 * Checks one chain from the outside: seq 1..n with no gap, each hash =
 * SHA-256(prev || entry) from 32 zero bytes (pruned payloads: the stored
 * hash is taken as given and the entry is `{ pruned: true, seq }`), each entry naming its own chain and seq, and the
 * latest checkpoint covering exactly the head, signed by a published key.
 * Returns the parsed entries.
 */
export async function assertChainValid(pool: Pool, chain: string): Promise<Array<Record<string, unknown>>> {
  const rows = await readChain(pool, chain);
  assert.ok(rows.length > 0, `chain ${chain} is empty`);
  let prev = Buffer.alloc(32);
  const entries: Array<Record<string, unknown>> = [];
  rows.forEach((row, i) => {
    assert.equal(row.seq, i + 1, `${chain}: seq ${row.seq} where ${i + 1} was due (gap or repeat)`);
    if (row.entry === null) {
      prev = Buffer.from(row.hash);
      entries.push({ pruned: true, seq: row.seq });
      return;
    }
    assert.deepEqual(sha256(prev, row.entry), row.hash, `${chain}/${row.seq}: hash does not recompute`);
    prev = Buffer.from(row.hash);
    const parsed = JSON.parse(row.entry.toString('utf8')) as Record<string, unknown>;
    assert.equal(parsed.chain, chain);
    assert.equal(parsed.seq, row.seq);
    entries.push(parsed);
  });
  const { rows: cps } = await pool.query<{
    size: number;
    head: Buffer;
    checkpoint: Buffer;
    signature: Buffer;
    key_id: string;
    public_key: Buffer;
  }>(
    `SELECT c.size::int AS size, c.head, c.checkpoint, c.signature, c.key_id, k.public_key
       FROM control.audit_checkpoints c JOIN control.audit_keys k USING (key_id)
      WHERE c.chain = $1 ORDER BY c.size DESC LIMIT 1`,
    [chain],
  );
  const cp = cps[0];
  assert.ok(cp, `chain ${chain} has no checkpoint`);
  assert.equal(cp.size, rows.length, `${chain}: the latest checkpoint does not cover the head`);
  assert.deepEqual(cp.head, prev);
  const body = JSON.parse(cp.checkpoint.toString('utf8'));
  assert.equal(body.chain, chain);
  assert.equal(body.size, rows.length);
  assert.equal(body.head, prev.toString('hex'));
  assert.equal(body.keyId, cp.key_id);
  const key = createPublicKey({
    key: { kty: 'OKP', crv: 'Ed25519', x: cp.public_key.toString('base64url') },
    format: 'jwk',
  });
  assert.ok(verify(null, cp.checkpoint, key, cp.signature), `${chain}: checkpoint signature does not verify`);
  return entries;
}

/**
 * Runs `enclave audit seal --json` until the inbox is empty (other test files'
 * open transactions can delay a seal); returns how many entries were sealed.
 */
export async function sealUntilDrainedByCli(
  enclave: (args: string[]) => { code: number | null; stdout: string; stderr: string },
  pool: Pool,
): Promise<number> {
  let sealed = 0;
  for (let i = 0; i < 50; i++) {
    const r = enclave(['audit', 'seal', '--json']);
    assert.equal(r.code, 0, r.stderr);
    sealed += JSON.parse(r.stdout).sealed;
    const { rows } = await pool.query('SELECT count(*)::int AS n FROM control.audit_inbox');
    if (rows[0].n === 0) return sealed;
  }
  throw new Error('the inbox did not drain');
}
