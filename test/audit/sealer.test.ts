import assert from 'node:assert/strict';
import { createHash, createPublicKey, verify } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { seal } from '../../audit/sealer.ts';
import type { Signer } from '../../audit/signing.ts';
import { canonicalBytes, NonCanonicalValueError, numbersAsStrings } from '../../audit/verifier/canonical.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';
import {
  assertChainValid,
  event,
  insertEvent,
  readChain,
  sealAll,
  tempSigner,
  waitUntilSealable,
} from './chain-helpers.ts';

let db: TestDatabase;
let signer: Signer;
const A = 'aaaaaaaaaaa1';
const B = 'bbbbbbbbbbb2';

async function origin(): Promise<string> {
  const { rows } = await db.pool.query<{ origin: string }>('SELECT origin FROM control.audit_origin');
  return rows[0]?.origin as string;
}

describe('audit sealer', () => {
  before(async () => {
    db = await createTestDatabase();
    signer = await tempSigner();
  });
  after(async () => {
    await db.drop();
  });

  test('canonical bytes are RFC 8785 and refuse numbers that are not safe integers', () => {
    assert.equal(
      canonicalBytes({ b: [1, 'x', null], a: { d: true, c: -0 } }).toString(),
      '{"a":{"c":0,"d":true},"b":[1,"x",null]}',
    );
    assert.equal(canonicalBytes({ '€': 1, z: 2, '\u00e9': 3 }).toString(), '{"z":2,"é":3,"€":1}');
    assert.throws(() => canonicalBytes({ x: 1.5 }), NonCanonicalValueError);
    assert.throws(() => canonicalBytes({ x: 2 ** 53 }), NonCanonicalValueError);
    assert.throws(() => canonicalBytes({ x: new Date() }), NonCanonicalValueError);
    assert.throws(() => canonicalBytes({ x: undefined }), NonCanonicalValueError);
    assert.deepEqual(numbersAsStrings('{"a":1.50,"b":12345678901234567890,"c":[7,1e3]}'), {
      a: '1.50',
      b: '12345678901234567890',
      c: [7, 1000],
    });
  });

  test('sealing builds one gapless hash chain per tenant and one for the platform, with signed checkpoints', async () => {
    for (let i = 0; i < 3; i++)
      await insertEvent(db.pool, event(A, 'note.update', { n: i, price: 1.25, big: 2 ** 60 }));
    for (let i = 0; i < 2; i++) await insertEvent(db.pool, event(B, 'task.create', { n: i }));
    await insertEvent(db.pool, event(null, 'auth.login_failed'));
    // jsonb keeps numbers exactly; the entry carries their exact text as a string.
    await db.pool.query(
      `INSERT INTO control.audit_inbox (actor_type, action, outcome, details)
       VALUES ('system', 'system.exact', 'success', '{"exact": 12345678901234567890.50}')`,
    );
    const sealed = await sealAll(db.pool, signer);
    assert.equal(sealed, 7);

    const installation = await origin();
    const a = await assertChainValid(db.pool, `t_${A}`);
    assert.equal(a.length, 3);
    const first = a[0] as Record<string, unknown>;
    assert.deepEqual(Object.keys(first).sort(), [
      'action',
      'actor',
      'at',
      'chain',
      'details',
      'id',
      'origin',
      'outcome',
      'resource',
      'seq',
      'tenant',
      'v',
      'where',
    ]);
    assert.equal(first.v, 1);
    assert.equal(first.origin, installation);
    assert.equal(first.tenant, A);
    assert.equal(first.action, 'note.update');
    assert.deepEqual(first.actor, { id: 'u-1', type: 'user' });
    assert.deepEqual(first.resource, { id: '42', type: 'note' });
    assert.deepEqual(first.outcome, { code: null, result: 'success' });
    assert.deepEqual(first.where, { ip: '127.0.0.1', request: 'req-1', ua: 'test' });
    assert.deepEqual(first.details, { big: '1152921504606847000', n: 0, price: '1.25' });
    assert.match(first.at as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    // The stored bytes are exactly the canonical form of what they say.
    for (const row of await readChain(db.pool, `t_${A}`))
      assert.deepEqual(canonicalBytes(JSON.parse((row.entry as Buffer).toString())), row.entry);

    assert.equal((await assertChainValid(db.pool, `t_${B}`)).length, 2);
    const [login, exact] = await assertChainValid(db.pool, 'platform');
    assert.equal(login?.tenant, null);
    assert.deepEqual(exact?.details, { exact: '12345678901234567890.50' });
    assert.equal(exact?.resource, null);

    // The registry records each chain's checkpoint and is itself checkpointed.
    const registry = await assertChainValid(db.pool, 'registry');
    assert.equal(registry.length, 3);
    const recorded = registry.map((e) => (e.checkpoint as { chain: string }).chain).sort();
    assert.deepEqual(recorded, ['platform', `t_${A}`, `t_${B}`]);
    const key = createPublicKey({
      key: { kty: 'OKP', crv: 'Ed25519', x: signer.publicKey.toString('base64url') },
      format: 'jwk',
    });
    for (const e of registry) {
      const entry = e as {
        kind: string;
        checkpoint: Record<string, unknown>;
        signature: string;
        origin: string;
      };
      assert.equal(entry.kind, 'checkpoint');
      assert.equal(entry.origin, installation);
      assert.ok(verify(null, canonicalBytes(entry.checkpoint), key, Buffer.from(entry.signature, 'base64')));
    }
    const { rows: keyIds } = await db.pool.query('SELECT key_id FROM control.audit_keys');
    assert.deepEqual(keyIds, [
      { key_id: createHash('sha256').update(signer.publicKey).digest('hex').slice(0, 16) },
    ]);
  });

  test('a second seal continues each chain from its head and checkpoints only the chains that grew', async () => {
    const before = await db.pool.query('SELECT count(*)::int AS n FROM control.audit_checkpoints');
    await insertEvent(db.pool, event(A, 'note.delete'));
    await insertEvent(db.pool, event(A, 'note.create'));
    await sealAll(db.pool, signer);
    const a = await assertChainValid(db.pool, `t_${A}`);
    assert.deepEqual(
      a.map((e) => e.seq),
      [1, 2, 3, 4, 5],
    );
    assert.deepEqual(
      a.slice(3).map((e) => e.action),
      ['note.delete', 'note.create'],
    );
    await assertChainValid(db.pool, 'registry');
    const afterSeal = await db.pool.query('SELECT count(*)::int AS n FROM control.audit_checkpoints');
    assert.equal(afterSeal.rows[0].n - before.rows[0].n, 2, 'one for t_A, one for the registry');
    const { rows } = await db.pool.query(
      'SELECT max(size)::int AS size FROM control.audit_checkpoints WHERE chain = $1',
      [`t_${B}`],
    );
    assert.equal(rows[0].size, 2);
  });

  test('an event written in a rolled-back transaction is never sealed', async () => {
    const client = await db.pool.connect();
    try {
      await client.query('BEGIN');
      await insertEvent(client, event(A, 'note.rolled_back'));
      await client.query('ROLLBACK');
    } finally {
      client.release();
    }
    await insertEvent(db.pool, event(A, 'note.committed'));
    await sealAll(db.pool, signer);
    const actions = (await assertChainValid(db.pool, `t_${A}`)).map((e) => e.action);
    assert.ok(actions.includes('note.committed'));
    assert.ok(!actions.includes('note.rolled_back'));
  });

  test('an older transaction that commits late is sealed in order, never skipped, with no gap', async () => {
    const chain = `t_${B}`;
    const start = (await readChain(db.pool, chain)).length;
    const early = await db.pool.connect();
    try {
      await early.query('BEGIN');
      await insertEvent(early, event(B, 'task.early')); // its txid is older ...
      await insertEvent(db.pool, event(B, 'task.late')); // ... than this one, which commits first
      const first = await seal(db.pool, signer);
      assert.equal(
        first.sealed,
        0,
        'nothing may be sealed while an older transaction can still add rows before it',
      );
      assert.equal((await readChain(db.pool, chain)).length, start);
      await early.query('COMMIT');
    } finally {
      early.release();
    }
    await sealAll(db.pool, signer);
    const entries = await assertChainValid(db.pool, chain);
    assert.deepEqual(
      entries.slice(start).map((e) => e.action),
      ['task.early', 'task.late'],
    );
  });

  test('the inbox is a queue: sealed rows leave it, and a seal with nothing to do writes nothing', async () => {
    const { rows } = await db.pool.query('SELECT count(*)::int AS n FROM control.audit_inbox');
    assert.equal(rows[0].n, 0);
    const counts = async () =>
      (
        await db.pool.query(
          'SELECT (SELECT count(*) FROM control.audit_log) + (SELECT count(*) FROM control.audit_checkpoints) AS n',
        )
      ).rows[0].n;
    const before = await counts();
    const result = await seal(db.pool, signer);
    assert.deepEqual(result, { sealed: 0, chains: [], checkpoints: 0, more: false, busy: false });
    assert.equal(await counts(), before);
  });

  test('a batch limit seals a prefix and says there is more', async () => {
    for (let i = 0; i < 5; i++) await insertEvent(db.pool, event(null, 'system.tick', { i }));
    // All five must be sealable at once, or a batch of 2 could honestly seal 1.
    await waitUntilSealable(db.pool);
    const result = await seal(db.pool, signer, { batchSize: 2 });
    assert.equal(result.sealed, 2);
    assert.equal(result.more, true);
    await sealAll(db.pool, signer);
    const ticks = (await assertChainValid(db.pool, 'platform')).filter((e) => e.action === 'system.tick');
    assert.deepEqual(
      ticks.map((e) => (e.details as { i: number }).i),
      [0, 1, 2, 3, 4],
    );
  });
});
