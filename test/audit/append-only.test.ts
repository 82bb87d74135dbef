import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { pruneAuditPayloads } from '../../audit/retention.ts';
import type { Signer } from '../../audit/signing.ts';
import { query, transaction } from '../../kernel/db.ts';
import { PermissionDeniedError } from '../../kernel/errors.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';
import { assertChainValid, event, insertEvent, readChain, sealAll, tempSigner } from './chain-helpers.ts';

let db: TestDatabase;
let signer: Signer;
const OLD = 'oooooooooo01';
const HELD = 'hhhhhhhhhh01';
const ALIGN = 'aaaaaaaaaa09';
const DAY = 86_400_000;

/** Runs one statement as the owner of the tables (the test role, a superuser even). */
const attempt = (text: string, values: unknown[] = []) => query(db.pool, text, values);

describe('the audit trail is append-only', () => {
  before(async () => {
    db = await createTestDatabase();
    signer = await tempSigner();
    // Control-plane rows only (no schema or role): what a dropped tenant leaves behind.
    await db.pool.query(
      `INSERT INTO control.tenants (id, display_name, schema_name, role_name, state, legal_hold)
       VALUES ($1, 'Old', 't_' || $1, 't_' || $1, 'deleted', false), ($2, 'Held', 't_' || $2, 't_' || $2, 'deleted', true)`,
      [OLD, HELD],
    );
    const long = new Date(Date.now() - 3000 * DAY);
    // Seal 1 ends OLD and HELD at seq 3 and ALIGN at seq 2; seal 2 adds the rest.
    for (const tenant of [OLD, HELD])
      for (let i = 0; i < 3; i++) await insertEvent(db.pool, event(tenant, 'note.update', { i }), long);
    for (let i = 0; i < 2; i++) await insertEvent(db.pool, event(ALIGN, 'note.update', { i }), long);
    await sealAll(db.pool, signer);
    for (const tenant of [OLD, HELD]) {
      await insertEvent(db.pool, event(tenant, 'note.update', { i: 'recent' }));
      await insertEvent(db.pool, event(tenant, 'note.update', { i: 'old again' }), long); // after a recent one
    }
    await insertEvent(db.pool, event(ALIGN, 'note.update', { i: 'old, sealed with a recent one' }), long);
    await insertEvent(db.pool, event(ALIGN, 'note.update', { i: 'recent' }));
    await sealAll(db.pool, signer);
  });
  after(async () => {
    await db.drop();
  });

  for (const table of ['control.audit_log', 'control.audit_checkpoints']) {
    test(`UPDATE, DELETE and TRUNCATE on ${table} are refused by the trigger, even for the owner`, async () => {
      await assert.rejects(attempt(`UPDATE ${table} SET chain = chain`), PermissionDeniedError);
      await assert.rejects(attempt(`DELETE FROM ${table} WHERE chain = 'registry'`), PermissionDeniedError);
      await assert.rejects(attempt(`TRUNCATE ${table}`), PermissionDeniedError);
    });
  }

  test('published keys and the origin cannot be changed or removed; a key can only be retired', async () => {
    await assert.rejects(attempt('DELETE FROM control.audit_keys'), PermissionDeniedError);
    await assert.rejects(
      attempt("UPDATE control.audit_keys SET public_key = '\\x00'"),
      PermissionDeniedError,
    );
    await assert.rejects(
      attempt("UPDATE control.audit_origin SET origin = 'enclave:' || repeat('0', 32)"),
      PermissionDeniedError,
    );
    await assert.rejects(attempt('TRUNCATE control.audit_origin'), PermissionDeniedError);
  });

  test('nulling a payload is refused without the retention flag, and with it when anything else changes', async () => {
    await assert.rejects(
      attempt(`UPDATE control.audit_log SET entry = NULL WHERE chain = 't_${OLD}' AND seq = 1`),
      PermissionDeniedError,
    );
    await assert.rejects(
      transaction(db.pool, async (c) => {
        await c.query("SELECT set_config('enclave.audit_retention', 'on', true)");
        await c.query(
          `UPDATE control.audit_log SET entry = NULL, hash = sha256(hash) WHERE chain = 't_${OLD}' AND seq = 1`,
        );
      }),
      PermissionDeniedError,
    );
    await assert.rejects(
      transaction(db.pool, async (c) => {
        await c.query("SELECT set_config('enclave.audit_retention', 'on', true)");
        await c.query("UPDATE control.audit_log SET entry = NULL WHERE chain = 'registry' AND seq = 1");
      }),
      PermissionDeniedError,
    );
    assert.ok((await readChain(db.pool, `t_${OLD}`)).every((r) => r.entry !== null));
  });

  test('retention prunes only the old prefix of payloads and keeps every hash, so the chain still verifies', async () => {
    const before = await readChain(db.pool, `t_${OLD}`);
    const result = await pruneAuditPayloads(db.pool, { retentionDays: 2557 });
    assert.equal(
      result.pruned,
      3 + 2,
      'OLD seq 1-3 (seq 5 is old but comes after a recent entry), ALIGN seq 1-2',
    );
    const afterPrune = await readChain(db.pool, `t_${OLD}`);
    assert.deepEqual(
      afterPrune.map((r) => r.entry === null),
      [true, true, true, false, false],
    );
    assert.deepEqual(
      afterPrune.map((r) => r.hash),
      before.map((r) => r.hash),
    );
    await assertChainValid(db.pool, `t_${OLD}`);
    await assertChainValid(db.pool, 'registry');
    const { rows } = await db.pool.query(
      "SELECT count(*)::int AS n FROM control.audit_log WHERE chain = 'registry' AND entry IS NULL",
    );
    assert.equal(rows[0].n, 0, 'the registry chain is never pruned');
  });

  test('retention prunes only up to a signed checkpoint, so what is left starts at an anchor', async () => {
    // ALIGN: seq 1-2 sealed (checkpoint at 2), then seq 3 (old) and 4 (recent) sealed together.
    const afterPrune = await readChain(db.pool, `t_${ALIGN}`);
    assert.deepEqual(
      afterPrune.map((r) => r.entry === null),
      [true, true, false, false],
      'seq 3 is old too, but no checkpoint ends at 3: it is kept until one does',
    );
  });

  test('a tenant under legal hold keeps every payload, and the trigger refuses pruning it directly', async () => {
    assert.ok((await readChain(db.pool, `t_${HELD}`)).every((r) => r.entry !== null));
    await assert.rejects(
      transaction(db.pool, async (c) => {
        await c.query("SELECT set_config('enclave.audit_retention', 'on', true)");
        await c.query(`UPDATE control.audit_log SET entry = NULL WHERE chain = 't_${HELD}' AND seq = 1`);
      }),
      PermissionDeniedError,
    );
    // Lifting the hold lets the next run prune it.
    await db.pool.query('UPDATE control.tenants SET legal_hold = false WHERE id = $1', [HELD]);
    assert.equal((await pruneAuditPayloads(db.pool, { retentionDays: 2557 })).pruned, 3);
  });

  test('the retention flag ends with its transaction', async () => {
    await transaction(db.pool, async (c) => {
      await c.query("SELECT set_config('enclave.audit_retention', 'on', true)");
    });
    await assert.rejects(
      attempt(`UPDATE control.audit_log SET entry = NULL WHERE chain = 't_${OLD}' AND seq = 4`),
      PermissionDeniedError,
    );
  });
});
