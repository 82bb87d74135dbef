import assert from 'node:assert/strict';
import { createHash, createPublicKey, verify } from 'node:crypto';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { exportBundle, NothingToExportError } from '../../audit/export.ts';
import { pruneAuditPayloads } from '../../audit/retention.ts';
import { seal } from '../../audit/sealer.ts';
import type { Signer } from '../../audit/signing.ts';
import {
  canonicalBytes,
  MANIFEST_FILE,
  manifestSigningBytes,
  type SignedManifest,
  V2_FILES,
} from '../../audit/verifier/bundle-format.ts';
import { publicKeyPem } from '../../audit/verifier/keys.ts';
import { type VerifyOk, verifyBundle } from '../../audit/verifier/verify.ts';
import { type Pool, transaction } from '../../kernel/db.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';
import { EditableBundle, exportToBuffer } from './bundle-fixture.ts';
import { event, insertEvent, readChain, sealAll, tempSigner } from './chain-helpers.ts';

let db: TestDatabase;
let signer: Signer;
const T1 = 'dddddddddd01';
const T2 = 'eeeeeeeeee02';

const pinned = () => createPublicKey(publicKeyPem(signer.publicKey));

async function verified(bundle: Buffer): Promise<VerifyOk> {
  const result = await verifyBundle(bundle, pinned());
  assert.ok(result.ok, result.ok ? '' : `${result.reason}: ${result.message}`);
  return result;
}

/** Seals everything with checkpoints signed at `time` (retrying while other tests' transactions hold sealing back). */
async function sealAt(pool: Pool, time: Date): Promise<void> {
  for (let i = 0; i < 400; i++) {
    const r = await seal(pool, signer, { clock: () => time });
    if (r.more) continue;
    const { rows } = await pool.query('SELECT count(*)::int AS n FROM control.audit_inbox');
    if (rows[0].n === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error('the inbox did not drain');
}

/** Names in tar order. */
function tarNames(bundle: Buffer): string[] {
  const tar = gunzipSync(bundle);
  const names: string[] = [];
  for (let off = 0; off + 512 <= tar.length; ) {
    const name = tar
      .subarray(off, off + 100)
      .toString('utf8')
      .replace(/\0.*$/s, '');
    if (!name) break;
    const size = Number.parseInt(
      tar
        .subarray(off + 124, off + 136)
        .toString('utf8')
        .replace(/\0.*$/s, '')
        .trim(),
      8,
    );
    names.push(name);
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return names;
}

describe('audit export bundle (real sealer, real database)', () => {
  before(async () => {
    db = await createTestDatabase();
    signer = await tempSigner();
    for (let i = 0; i < 6; i++) await insertEvent(db.pool, event(i % 2 ? T1 : T2, 'note.update', { n: i }));
    await insertEvent(db.pool, event(null, 'auth.login'));
    await sealAll(db.pool, signer);
  });
  after(async () => {
    await db.drop();
  });

  test('export then verify: OK, and entries.jsonl holds the exact stored bytes, by chain then seq', async () => {
    const bundle = await exportToBuffer(db.pool, { signer, batchSize: 2 });
    const result = await verified(bundle);
    const lines = (await EditableBundle.from(bundle)).lines;
    const stored: string[] = [];
    for (const { chain } of result.chains)
      for (const row of await readChain(db.pool, chain)) stored.push((row.entry as Buffer).toString('utf8'));
    assert.deepEqual(lines, stored);
    assert.equal(result.entries, stored.length);
  });

  test('the signed manifest is the first tar entry and lists every other file, in tar order, with its size and SHA-256', async () => {
    const bundle = await exportToBuffer(db.pool, { signer });
    assert.deepEqual(tarNames(bundle), [MANIFEST_FILE, ...V2_FILES]);
    const editable = await EditableBundle.from(bundle);
    const text = editable.text(MANIFEST_FILE);
    const signed = JSON.parse(text) as SignedManifest;
    assert.equal(text, `${canonicalBytes(signed).toString('utf8')}\n`, 'one canonical line');
    const { manifest } = signed;
    assert.equal(manifest.v, 2);
    assert.equal(manifest.kind, 'full');
    assert.equal(manifest.keyId, signer.keyId);
    assert.ok(
      verify(null, manifestSigningBytes(manifest), pinned(), Buffer.from(signed.signature, 'base64')),
      'signed by the audit key over the prefix and the canonical manifest',
    );
    assert.match(manifest.origin, /^enclave:[0-9a-f]{32}$/);
    assert.deepEqual(
      manifest.files.map((f) => f.name),
      [...V2_FILES],
    );
    assert.deepEqual(
      manifest.chains.map((c) => c.chain),
      manifest.chains.map((c) => c.chain).sort(),
      'chains in byte order of name',
    );
    assert.ok(manifest.chains.every((c) => c.start === 'genesis' && c.firstSeq === 1));
    for (const f of manifest.files) {
      const bytes = editable.files.get(f.name) as Buffer;
      assert.equal(f.bytes, bytes.length);
      assert.equal(f.sha256, createHash('sha256').update(bytes).digest('hex'));
    }
    const keys = JSON.parse(editable.text('keys.json'));
    assert.equal(keys.keys[0].keyId, signer.keyId);
  });

  test('--tenant exports that chain alone, without the registry', async () => {
    const result = await verified(await exportToBuffer(db.pool, { signer, tenant: T1 }));
    assert.deepEqual(
      result.chains.map((c) => c.chain),
      [`t_${T1}`],
    );
  });

  test('--to ends each chain at its latest checkpoint signed at or before T; --from starts it at T, widened back to the checkpoint before it (the anchor)', async () => {
    await insertEvent(db.pool, event(T1, 'note.create'));
    await sealAt(db.pool, new Date('2031-01-01T00:00:00Z'));
    await insertEvent(db.pool, event(T1, 'note.delete'));
    await sealAt(db.pool, new Date('2032-01-01T00:00:00Z'));
    const size = (await readChain(db.pool, `t_${T1}`)).length;

    const upTo = await verified(
      await exportToBuffer(db.pool, { signer, tenant: T1, to: new Date('2031-06-01T00:00:00Z') }),
    );
    assert.equal(upTo.chains[0]?.lastSeq, size - 1);
    await assert.rejects(
      exportToBuffer(db.pool, { signer, tenant: T1, to: new Date('2001-01-01T00:00:00Z') }),
      (err: Error) =>
        err instanceof NothingToExportError &&
        err.message ===
          `tenant ${T1} has no audit checkpoint signed at or before 2001-01-01T00:00:00.000000Z`,
      'no checkpoint at or before T: no bundle, a clear error',
    );
    await assert.rejects(
      exportToBuffer(db.pool, { signer, to: new Date('2001-01-01T00:00:00Z') }),
      NothingToExportError,
    );

    const { rows } = await db.pool.query<{ t: Date }>(
      'SELECT occurred_at AS t FROM control.audit_log WHERE chain = $1 AND seq = $2',
      [`t_${T1}`, size],
    );
    const from = await exportToBuffer(db.pool, { signer, tenant: T1, from: rows[0]?.t as Date });
    assert.deepEqual(
      (await verified(from)).chains.map((c) => [c.firstSeq, c.lastSeq]),
      [[size, size]],
      'the last seal added one entry, so a checkpoint sits right before it',
    );
    const editable = await EditableBundle.from(from);
    const manifest = (JSON.parse(editable.text(MANIFEST_FILE)) as SignedManifest).manifest;
    assert.equal(manifest.chains[0]?.start, 'from');
    assert.deepEqual(
      editable.checkpoints.map((c) => c.checkpoint.size),
      [size - 1, size],
      'the anchor at firstSeq - 1, then the end checkpoint',
    );
    assert.equal(manifest.chains[0]?.prevHash, editable.checkpoints[0]?.checkpoint.head);
  });

  test('every export is audited before its first byte leaves; one that cannot be made, or is cut short, as a failure', async () => {
    await db.pool.query("DELETE FROM control.audit_inbox WHERE action = 'audit.export'");
    const exported = (options: { afterFirstChunk?: () => Promise<void> } = {}) => {
      let seen = 0;
      return new Writable({
        write: (_chunk, _enc, done) => {
          seen++;
          if (seen === 1 && options.afterFirstChunk) options.afterFirstChunk().then(() => done(), done);
          else done();
        },
      });
    };
    const inbox = async () =>
      (
        await db.pool.query(
          `SELECT actor_type, actor_id, tenant_id, outcome, outcome_code, resource_id, details FROM control.audit_inbox
            WHERE action = 'audit.export' ORDER BY id`,
        )
      ).rows;
    let atFirstByte: Awaited<ReturnType<typeof inbox>> = [];
    await exportBundle(
      db.pool,
      exported({
        afterFirstChunk: async () => {
          atFirstByte = await inbox();
        },
      }),
      { actor: { type: 'auditor', id: 'a-1' }, tenant: T2, signer },
    );
    assert.equal(atFirstByte.length, 1, 'the event is in the inbox when the first byte goes out');
    const broken = new Writable({
      write: (_chunk, _enc, done) => done(new Error('disk full')),
    });
    await assert.rejects(
      exportBundle(db.pool, broken, { actor: { type: 'auditor', id: 'a-1' }, tenant: T2, signer }),
      /disk full/,
    );
    await assert.rejects(
      exportBundle(db.pool, exported(), {
        actor: { type: 'auditor', id: 'a-1' },
        tenant: T2,
        to: new Date('2001-01-01T00:00:00Z'),
        signer,
      }),
      NothingToExportError,
    );
    const rows = await inbox();
    assert.deepEqual(
      rows.map((r) => [r.actor_type, r.tenant_id, r.outcome, r.outcome_code]),
      [
        ['auditor', T2, 'success', null],
        ['auditor', T2, 'success', null], // made, and sending started
        ['auditor', T2, 'failure', 'export_cut_short'],
        ['auditor', T2, 'failure', 'export_failed'],
      ],
    );
    assert.match(rows[0].resource_id, /^[0-9a-f]{64}$/);
    assert.equal(rows[2].resource_id, rows[1].resource_id, 'the cut-short event names the same bundle');
    assert.equal(rows[0].details.filter.tenant, T2);
    assert.equal(typeof rows[0].details.entries, 'number');
  });

  test('entries.csv is a header plus one row per entry, and a formula-looking value is defused', async () => {
    await insertEvent(db.pool, { ...event(T2, 'note.update'), resource: { type: '=HYPERLINK("http://x")' } });
    await sealAll(db.pool, signer);
    const bundle = await EditableBundle.from(await exportToBuffer(db.pool, { signer, tenant: T2 }));
    const rows = bundle.text('entries.csv').trimEnd().split('\r\n');
    assert.equal(rows[0], 'chain,seq,at,tenant,actor,action,resource,outcome');
    assert.equal(rows.length - 1, bundle.lines.length);
    assert.ok(rows.some((r) => r.includes(`,"'=HYPERLINK(""http://x"")",`)));
    assert.ok(!rows.some((r) => /(^|,)"?=/.test(r)), 'no cell starts with =');
  });

  test('after retention pruned a prefix, the export starts after it, anchored at the checkpoint it ended at', async () => {
    const old = new Date(Date.now() - 3000 * 86_400_000);
    const T3 = 'ffffffffff03';
    for (let i = 0; i < 3; i++) await insertEvent(db.pool, event(T3, 'note.update', { i }), old);
    await sealAll(db.pool, signer);
    await insertEvent(db.pool, event(T3, 'note.update', { i: 3 }));
    await sealAll(db.pool, signer);
    const pruned = await pruneAuditPayloads(db.pool, { retentionDays: 2557 });
    assert.ok(pruned.pruned >= 3);
    const bundle = await exportToBuffer(db.pool, { signer, tenant: T3 });
    const result = await verified(bundle);
    assert.deepEqual(
      result.chains.map((c) => [c.firstSeq, c.lastSeq]),
      [[4, 4]],
    );
    const manifest = (JSON.parse((await EditableBundle.from(bundle)).text(MANIFEST_FILE)) as SignedManifest)
      .manifest;
    assert.equal(manifest.chains[0]?.start, 'retention');
  });

  test('a prefix pruned between two checkpoints (before format v2) is skipped to the next checkpoint, so the start stays anchored', async () => {
    const T4 = 'ffffffffff04';
    const old = new Date(Date.now() - 3000 * 86_400_000);
    for (const n of [2, 2, 1]) {
      for (let i = 0; i < n; i++) await insertEvent(db.pool, event(T4, 'note.update', { i }), old);
      await sealAll(db.pool, signer); // checkpoints at 2, 4, 5
    }
    // What retention did before format v2: a prefix ending anywhere (here seq 3, between checkpoints 2 and 4).
    await transaction(db.pool, async (client) => {
      await client.query("SELECT set_config('enclave.audit_retention', 'on', true)");
      await client.query('UPDATE control.audit_log SET entry = NULL WHERE chain = $1 AND seq <= 3', [
        `t_${T4}`,
      ]);
    });
    const bundle = await exportToBuffer(db.pool, { signer, tenant: T4 });
    assert.deepEqual(
      (await verified(bundle)).chains.map((c) => [c.firstSeq, c.lastSeq]),
      [[5, 5]],
      'seq 4 still has its payload, but no checkpoint ends at 3: the export starts after checkpoint 4',
    );
    const editable = await EditableBundle.from(bundle);
    assert.deepEqual(
      editable.checkpoints.map((c) => c.checkpoint.size),
      [4, 5],
    );
  });

  test('tampering inside the database shows in the export: a payload edited with its hash recomputed, a row deleted', async () => {
    const chain = `t_${T1}`;
    await db.pool.query('ALTER TABLE control.audit_log DISABLE TRIGGER audit_log_append_only');
    try {
      const rows = await readChain(db.pool, chain);
      const target = rows[1] as (typeof rows)[number];
      const edited = Buffer.from(
        (target.entry as Buffer).toString('utf8').replace('"note.update"', '"note.view"'),
      );
      const prev = (rows[0] as (typeof rows)[number]).hash;
      const hash = createHash('sha256').update(prev).update(edited).digest();
      await db.pool.query('UPDATE control.audit_log SET entry = $1, hash = $2 WHERE chain = $3 AND seq = 2', [
        edited,
        hash,
        chain,
      ]);
      const changed = await verifyBundle(await exportToBuffer(db.pool, { signer, tenant: T1 }), pinned());
      assert.equal(changed.ok, false);
      assert.equal((changed as { reason: string }).reason, 'head-mismatch');

      await db.pool.query('DELETE FROM control.audit_log WHERE chain = $1 AND seq = 3', [chain]);
      const deleted = await verifyBundle(await exportToBuffer(db.pool, { signer, tenant: T1 }), pinned());
      assert.equal(deleted.ok, false);
      assert.deepEqual(
        [(deleted as { reason: string }).reason, (deleted as { seq: number }).seq],
        ['sequence', 3],
      );
    } finally {
      await db.pool.query('ALTER TABLE control.audit_log ENABLE TRIGGER audit_log_append_only');
    }
  });
});
