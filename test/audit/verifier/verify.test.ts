import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import {
  canonicalBytes,
  chainHash,
  type SignedCheckpoint,
  ZERO_HASH,
} from '../../../audit/verifier/bundle-format.ts';
import { formatTime } from '../../../audit/verifier/entry.ts';
import { readPinnedKeys, type VerifyFailure, verifyBundle } from '../../../audit/verifier/verify.ts';
import { LineSplitter } from '../../../audit/verifier/verify-entries.ts';
import { createTestDatabase, type TestDatabase } from '../../helpers/database.ts';
import {
  buildFixture,
  EditableBundle,
  exportToBuffer,
  type Fixture,
  ROLES,
  TENANT_A,
} from '../bundle-fixture.ts';
import { attacks, type Params } from './attacks.ts';

interface AttackCase {
  description: string;
  bundle?: 'full' | 'tenantA';
  attack: string;
  params: Params & { fixManifest?: boolean };
  prev?: 'latest' | 'earlier' | { chain: string; from: 'latest' | 'earlier' };
  expectedFailure: { reason: string; chain?: string; seq?: number };
}

const ATTACK_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'attacks');
const cases = readdirSync(ATTACK_DIR)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => ({
    name: f.replace(/\.json$/, ''),
    ...(JSON.parse(readFileSync(path.join(ATTACK_DIR, f), 'utf8')) as AttackCase),
  }));

let db: TestDatabase;
let fx: Fixture;

before(async () => {
  db = await createTestDatabase();
  fx = await buildFixture(db.pool);
});
after(async () => {
  await db?.drop();
});

function prevOf(c: AttackCase): SignedCheckpoint[] | undefined {
  if (!c.prev) return undefined;
  if (typeof c.prev === 'string') return [...(c.prev === 'latest' ? fx.latest : fx.earlier).values()];
  const chain = ROLES[c.prev.chain] as string;
  return [(c.prev.from === 'latest' ? fx.latest : fx.earlier).get(chain) as SignedCheckpoint];
}

function failed(result: Awaited<ReturnType<typeof verifyBundle>>): VerifyFailure {
  assert.equal(result.ok, false, 'the bundle verified, but it must not');
  return result as VerifyFailure;
}

describe('offline verify catches every attack in test/audit/verifier/attacks/', () => {
  test('the attack files cover every attack the issue lists', () => {
    const names = new Set(cases.map((c) => c.attack));
    for (const attack of [
      'editPayload',
      'deleteEntry',
      'swapEntries',
      'insertEntry',
      'rollBack',
      'forgeCheckpoint',
      'resignWithOwnKey',
      'spliceFromChain',
      'replayOlderExport',
      'reverseKeyOrder',
      'rewriteLine',
    ])
      assert.ok(names.has(attack), `no attack file uses ${attack}`);
  });

  for (const c of cases) {
    test(`${c.name}: ${c.description}`, async () => {
      const attack = attacks[c.attack];
      assert.ok(attack, `unknown attack ${c.attack}`);
      const original = await EditableBundle.from(
        c.bundle === 'tenantA' ? fx.current.tenantA : fx.current.full,
      );
      const edited = await attack(original, c.params, fx);
      if (c.params.fixManifest !== false) edited.fixManifest();
      const prev = prevOf(c);
      const result = failed(await verifyBundle(await edited.toBuffer(), fx.key, prev ? { prev } : {}));
      const want = c.expectedFailure;
      assert.equal(result.reason, want.reason, result.message);
      if (want.chain) assert.equal(result.chain, ROLES[want.chain], result.message);
      if (want.seq !== undefined) assert.equal(result.seq, want.seq, result.message);
      assert.ok(result.error instanceof Error && result.error.name === 'VerificationError');
    });
  }
});

describe('offline verify', () => {
  test('a clean full export verifies, with the count of entries and chains', async () => {
    const result = await verifyBundle(fx.current.full, fx.key);
    assert.ok(result.ok, result.ok ? '' : result.message);
    const byChain = new Map(result.chains.map((c) => [c.chain, c]));
    assert.deepEqual([...byChain.keys()].sort(), [ROLES.platform, ROLES.registry, ROLES.A, ROLES.B].sort());
    assert.equal(byChain.get(ROLES.A as string)?.lastSeq, 8);
    assert.equal(byChain.get(ROLES.B as string)?.lastSeq, 5);
    assert.equal(byChain.get('platform')?.lastSeq, 4);
    const registry = byChain.get('registry')?.lastSeq as number;
    assert.equal(result.entries, 8 + 5 + 4 + registry);
    assert.equal(result.checkpoints.length, 4);
  });

  test('a one-tenant export holds that chain only and verifies', async () => {
    const result = await verifyBundle(fx.current.tenantA, fx.key);
    assert.ok(result.ok);
    assert.deepEqual(
      result.chains.map((c) => [c.chain, c.firstSeq, c.lastSeq]),
      [[ROLES.A, 1, 8]],
    );
  });

  test('only the pinned key is trusted: the genuine bundle fails against another key', async () => {
    const other = generateKeyPairSync('ed25519').publicKey;
    const result = failed(await verifyBundle(fx.current.full, other));
    assert.equal(result.reason, 'unknown-key');
  });

  test('a pinned key file may hold several keys (rotation): any of them may have signed', async () => {
    const other = generateKeyPairSync('ed25519').publicKey.export({ format: 'pem', type: 'spki' });
    const pem = `${other}${fx.key.export({ format: 'pem', type: 'spki' })}`;
    assert.equal(readPinnedKeys(pem).length, 2);
    assert.ok((await verifyBundle(fx.current.full, pem)).ok);
  });

  test('a pinned key file without an Ed25519 public key is refused before anything is read', async () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({
      format: 'pem',
      type: 'spki',
    });
    await assert.rejects(verifyBundle(fx.current.full, String(rsa)), { name: 'PinnedKeyError' });
    await assert.rejects(verifyBundle(fx.current.full, 'not a key'), { name: 'PinnedKeyError' });
  });

  test('without --prev a rolled-back one-tenant export is self-consistent: the auditor must keep the earlier checkpoint', async () => {
    const edited = await attacks.rollBack?.(
      await EditableBundle.from(fx.current.tenantA),
      { chain: 'A' },
      fx,
    );
    edited?.fixManifest();
    const bytes = await (edited as EditableBundle).toBuffer();
    assert.ok((await verifyBundle(bytes, fx.key)).ok);
    const latest = fx.latest.get(ROLES.A as string) as SignedCheckpoint;
    assert.equal(failed(await verifyBundle(bytes, fx.key, { prev: latest })).reason, 'truncated');
  });

  test('--prev: a later export extends the earlier checkpoints, and a bundle is consistent with its own', async () => {
    const earlier = [...fx.earlier.values()];
    assert.ok((await verifyBundle(fx.current.full, fx.key, { prev: earlier })).ok);
    const result = await verifyBundle(fx.current.full, fx.key, { prev: [...fx.latest.values()] });
    assert.ok(result.ok);
  });

  test('--prev: an earlier checkpoint not signed by the pinned key is refused', async () => {
    const earlier = fx.earlier.get(ROLES.A as string) as SignedCheckpoint;
    const forged = { ...earlier, checkpoint: { ...earlier.checkpoint, size: 3 } };
    const result = failed(await verifyBundle(fx.current.full, fx.key, { prev: forged }));
    assert.equal(result.reason, 'prev-invalid');
  });

  test('--prev: a genuine checkpoint with another head at its size means the history was rewritten', async () => {
    const earlier = fx.earlier.get(ROLES.A as string) as SignedCheckpoint;
    const checkpoint = { ...earlier.checkpoint, head: 'ab'.repeat(32) };
    const prev = { checkpoint, signature: fx.signer.sign(canonicalBytes(checkpoint)).toString('base64') };
    const result = failed(await verifyBundle(fx.current.full, fx.key, { prev }));
    assert.equal(result.reason, 'forked');
    assert.equal(result.seq, 4);
    assert.equal(result.expected, 'ab'.repeat(32));
  });

  test('--from: the bundle starts later, linked by prevHash, and still verifies against earlier checkpoints it reaches', async () => {
    const seal2 = await db.pool.query<{ t: Date }>(
      'SELECT min(occurred_at) AS t FROM control.audit_log WHERE chain = $1 AND seq = 5',
      [ROLES.A],
    );
    const bundle = await exportToBuffer(db.pool, { tenant: TENANT_A, from: seal2.rows[0]?.t as Date });
    const earlier = fx.earlier.get(ROLES.A as string) as SignedCheckpoint;
    const result = await verifyBundle(bundle, fx.key, { prev: earlier });
    assert.ok(result.ok, result.ok ? '' : result.message);
    assert.deepEqual(
      result.chains.map((c) => [c.firstSeq, c.lastSeq]),
      [[5, 8]],
    );
    // An earlier checkpoint before the bundle's first entry cannot be compared.
    const lines = (await EditableBundle.from(fx.current.tenantA)).lines.slice(0, 2);
    const head = lines.reduce((h, l) => chainHash(h, Buffer.from(l)), ZERO_HASH).toString('hex');
    const checkpoint = { ...earlier.checkpoint, size: 2, head, time: formatTime(new Date()) };
    const prev = { checkpoint, signature: fx.signer.sign(canonicalBytes(checkpoint)).toString('base64') };
    assert.ok((await verifyBundle(fx.current.tenantA, fx.key, { prev })).ok);
    assert.equal(failed(await verifyBundle(bundle, fx.key, { prev })).reason, 'prev-not-covered');
  });

  test('the bundle is read as a stream: small chunks verify the same as one buffer', async () => {
    const bytes = fx.current.full;
    const chunks = Array.from({ length: Math.ceil(bytes.length / 97) }, (_, i) =>
      bytes.subarray(i * 97, i * 97 + 97),
    );
    const result = await verifyBundle(Readable.from(chunks), fx.key);
    assert.ok(result.ok);
    assert.equal(result.entries, ((await verifyBundle(bytes, fx.key)) as { entries: number }).entries);
  });

  test('what is not a whole .tar.gz is unreadable', async () => {
    assert.equal(failed(await verifyBundle(Buffer.from('hello'), fx.key)).reason, 'unreadable');
    const cut = fx.current.full.subarray(0, fx.current.full.length - 40);
    assert.equal(failed(await verifyBundle(cut, fx.key)).reason, 'unreadable');
    assert.equal(failed(await verifyBundle(gzipSync(Buffer.alloc(0)), fx.key)).reason, 'missing-file');
  });

  test('a file after the manifest, an unlisted file or a missing file is refused', async () => {
    const extra = await EditableBundle.from(fx.current.full);
    extra.files.set('notes.txt', Buffer.from('hi'));
    assert.equal(failed(await verifyBundle(await extra.toBuffer(), fx.key)).reason, 'unexpected-file');
    const missing = await EditableBundle.from(fx.current.full);
    missing.files.delete('entries.csv');
    assert.equal(failed(await verifyBundle(await missing.toBuffer(), fx.key)).reason, 'missing-file');
  });

  test('an over-long line fails without being held in memory', async () => {
    const result = failed(await verifyBundle(fx.current.full, fx.key, { maxLineBytes: 64 }));
    assert.equal(result.reason, 'line-too-long');
  });

  test('LineSplitter joins lines cut across chunks and counts a trailing partial line', () => {
    const lines: string[] = [];
    const s = new LineSplitter(100, (l) => lines.push(l.toString()));
    for (const chunk of ['{"a"', ':1}\n{"b":2}\n{', '"c":', '3}\n{"d"']) s.push(Buffer.from(chunk));
    assert.deepEqual(lines, ['{"a":1}', '{"b":2}', '{"c":3}']);
    assert.equal(s.pending, 4);
  });
});
