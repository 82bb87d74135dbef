import assert from 'node:assert/strict';
import { createPublicKey, verify } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { enclaveWith } from '../helpers/cli.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';
import { assertChainValid, event, insertEvent, sealUntilDrainedByCli } from './chain-helpers.ts';

let db: TestDatabase;
let dataDir: string;

const enclave = enclaveWith(() => ({ DATABASE_URL: db.url, DATA_DIR: dataDir, AUDIT_SIGNING_KEY_FILE: '' }));

const sealUntilDrained = () => sealUntilDrainedByCli(enclave, db.pool);

describe('enclave audit (seal, keys, retention)', () => {
  before(async () => {
    db = await createTestDatabase();
    dataDir = mkdtempSync(path.join(tmpdir(), 'enclave-audit-cli-'));
  });
  after(async () => {
    await db.drop();
  });

  test('audit --help lists seal, public-key, prune and rotate-key', () => {
    const r = enclave(['audit', '--help']);
    assert.equal(r.code, 0);
    for (const command of ['seal', 'public-key', 'prune', 'rotate-key'])
      assert.match(r.stdout, new RegExp(`\\n  ${command}\\b`));
  });

  test('audit seal seals the inbox and prints counts; audit public-key prints the key that verifies the checkpoints', async () => {
    await insertEvent(db.pool, event('kkkkkkkkkk01', 'note.create'));
    await insertEvent(db.pool, event(null, 'auth.login'));
    assert.equal(await sealUntilDrained(), 2);
    const human = enclave(['audit', 'seal']);
    assert.equal(human.code, 0);
    assert.equal(human.stdout, 'Nothing to seal.\n');

    const pem = enclave(['audit', 'public-key']);
    assert.equal(pem.code, 0, pem.stderr);
    assert.match(pem.stdout, /^-----BEGIN PUBLIC KEY-----\n[\s\S]+-----END PUBLIC KEY-----\n$/);
    const key = createPublicKey(pem.stdout);
    const { rows } = await db.pool.query(
      "SELECT checkpoint, signature FROM control.audit_checkpoints WHERE chain = 'registry'",
    );
    assert.ok(rows.length > 0);
    for (const r of rows) assert.ok(verify(null, r.checkpoint, key, r.signature));
  });

  test('rotate-key retires the old key, keeps it published, and later checkpoints use the new one', async () => {
    const before = JSON.parse(enclave(['audit', 'public-key', '--json']).stdout);
    assert.equal(before.length, 1);
    const rotated = enclave(['audit', 'rotate-key', '--json']);
    assert.equal(rotated.code, 0, rotated.stderr);
    const { retired, current } = JSON.parse(rotated.stdout);
    assert.equal(retired, before[0].keyId);

    const all = JSON.parse(enclave(['audit', 'public-key', '--all', '--json']).stdout);
    assert.deepEqual(
      all.map((k: { keyId: string; current: boolean }) => [k.keyId, k.current]),
      [
        [current, true],
        [retired, false],
      ],
    );
    const text = enclave(['audit', 'public-key', '--all']).stdout;
    assert.match(text, new RegExp(`# key ${retired} created \\S+ retired \\S+\\n-----BEGIN PUBLIC KEY-----`));

    await insertEvent(db.pool, event(null, 'auth.logout'));
    await sealUntilDrained();
    await assertChainValid(db.pool, 'platform'); // verifies with whichever published key signed it
    const { rows } = await db.pool.query(
      "SELECT key_id FROM control.audit_checkpoints WHERE chain = 'platform' ORDER BY size",
    );
    assert.deepEqual(
      rows.map((r) => r.key_id),
      [retired, current],
    );
  });

  test('audit prune reports what it pruned', () => {
    const r = enclave(['audit', 'prune', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).pruned, 0);
  });
});
