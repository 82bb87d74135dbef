import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { seal } from '../../audit/sealer.ts';
import {
  openSigner,
  publicKeys,
  publishSigningKey,
  rotateSigningKey,
  type Signer,
  SigningKeyError,
  SigningKeyNotCurrentError,
} from '../../audit/signing.ts';
import { keyIdOf, publicKeyPem, verifySignature } from '../../audit/verifier/keys.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';
import { assertChainValid, event, insertEvent, sealAll } from './chain-helpers.ts';

let db: TestDatabase;
let running: Signer; // published by one test, rotated under by the next
const dir = () => mkdtempSync(path.join(tmpdir(), 'enclave-signing-'));

describe('the audit signing key', () => {
  before(async () => {
    db = await createTestDatabase();
  });
  after(async () => {
    await db.drop();
  });

  test('a missing default key is generated with mode 0600 and read back as the same key', async () => {
    const file = path.join(dir(), 'sub', 'audit-signing-key.pem');
    const made = await openSigner(file, { create: true });
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const again = await openSigner(file, { create: false });
    assert.equal(again.keyId, made.keyId);
    assert.equal(made.keyId, keyIdOf(made.publicKey));
    assert.match(made.keyId, /^[0-9a-f]{16}$/);
    const signature = made.sign(Buffer.from('checkpoint'));
    assert.ok(verifySignature(made.publicKey, Buffer.from('checkpoint'), signature));
    assert.ok(verifySignature(publicKeyPem(made.publicKey), Buffer.from('checkpoint'), signature));
    assert.ok(!verifySignature(made.publicKey, Buffer.from('checkpoinT'), signature));
  });

  test('a configured key file must exist and hold an Ed25519 private key', async () => {
    await assert.rejects(openSigner(path.join(dir(), 'absent.pem'), { create: false }), SigningKeyError);
    const rsa = path.join(dir(), 'rsa.pem');
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    writeFileSync(rsa, privateKey.export({ format: 'pem', type: 'pkcs8' }));
    await assert.rejects(openSigner(rsa, { create: false }), /needs Ed25519/);
  });

  test('a second, different key is refused while another is current', async () => {
    running = await openSigner(path.join(dir(), 'k.pem'), { create: true });
    const second = await openSigner(path.join(dir(), 'k.pem'), { create: true });
    await publishSigningKey(db.pool, running);
    await publishSigningKey(db.pool, running); // idempotent
    await assert.rejects(publishSigningKey(db.pool, second), SigningKeyNotCurrentError);
    await insertEvent(db.pool, event(null, 'system.boot'));
    await assert.rejects(seal(db.pool, second), SigningKeyNotCurrentError);
    await sealAll(db.pool, running);
  });

  test('after a rotation by another process, a running signer picks up the new key at its next seal', async () => {
    const [current] = await publicKeys(db.pool);
    assert.equal(running.keyId, current?.keyId);
    const rotated = await rotateSigningKey(db.pool, running.file); // as `enclave audit rotate-key` would
    assert.equal(rotated.retired, current?.keyId);
    await insertEvent(db.pool, event(null, 'system.after_rotation'));
    await sealAll(db.pool, running);
    assert.equal(running.keyId, rotated.current);
    await assertChainValid(db.pool, 'platform');
    const keys = await publicKeys(db.pool);
    assert.deepEqual(
      keys.map((k) => [k.keyId, k.retiredAt === null]),
      [
        [rotated.current, true],
        [rotated.retired, false],
      ],
    );
  });
});
