import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Signer } from '../../audit/signing.ts';
import { JOBS_SCHEMA, startJobRunner } from '../../jobs/runner.ts';
import { SEAL_QUEUE, sealAudit } from '../../jobs/seal-audit.ts';
import { loadConfig } from '../../kernel/config.ts';
import { StartupError, startServer } from '../../server/start.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';
import { captureLog } from '../helpers/log.ts';
import { assertChainValid, event, insertEvent, readChain, tempSigner } from './chain-helpers.ts';

let db: TestDatabase;
let signer: Signer;
const T = 'jjjjjjjjjj01';

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const inboxEmpty = async () =>
  (await db.pool.query('SELECT count(*)::int AS n FROM control.audit_inbox')).rows[0].n === 0;

describe('the scheduled audit seal', () => {
  before(async () => {
    db = await createTestDatabase(6);
    signer = await tempSigner();
  });
  after(async () => {
    await db.drop();
  });

  test('the job body seals the inbox without any scheduler', async () => {
    await insertEvent(db.pool, event(T, 'note.create'));
    const { log } = captureLog();
    await waitFor('the job to seal', async () => {
      await sealAudit({ pool: db.pool, signer, log, batchSize: 100 });
      return inboxEmpty();
    });
    assert.equal((await assertChainValid(db.pool, `t_${T}`)).length, 1);
  });

  test('pg-boss runs the seal every interval; two instances at once still seal each event once', async () => {
    const logs = captureLog();
    const options = {
      connectionString: db.url,
      pool: db.pool,
      signer,
      log: logs.log,
      sealIntervalSeconds: 1,
    };
    const one = await startJobRunner(options);
    const two = await startJobRunner(options);
    try {
      for (let i = 0; i < 10; i++) await insertEvent(db.pool, event(T, 'note.update', { i }));
      await waitFor('the scheduled seal', inboxEmpty);
      await two.boss.send(SEAL_QUEUE, null); // an explicit enqueue is run too
      for (let i = 10; i < 20; i++) await insertEvent(db.pool, event(T, 'note.update', { i }));
      await waitFor('the scheduled seal', inboxEmpty);
    } finally {
      await one.stop();
      await two.stop();
    }
    const entries = await assertChainValid(db.pool, `t_${T}`);
    assert.deepEqual(
      entries.slice(1).map((e) => (e.details as { i: number }).i),
      Array.from({ length: 20 }, (_, i) => i),
    );
    const { rows } = await db.pool.query(
      `SELECT state, count(*)::int AS n FROM ${JOBS_SCHEMA}.job WHERE name = $1 GROUP BY state`,
      [SEAL_QUEUE],
    );
    const states = Object.fromEntries(rows.map((r) => [r.state, r.n]));
    assert.ok(states.completed >= 1, JSON.stringify(states));
    assert.equal(states.failed, undefined, JSON.stringify(states));
    assert.ok(!logs.text().includes('"level":"error"'), logs.text());
  });

  test('the server starts the scheduler, seals with a key made in DATA_DIR (mode 0600), and stops cleanly', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'enclave-audit-server-'));
    const config = {
      ...loadConfig({
        DATABASE_URL: db.url,
        DATA_DIR: dataDir,
        SESSION_SECRET: randomBytes(32).toString('hex'),
        AUDIT_SEAL_INTERVAL_SECONDS: '1',
      }),
      PORT: 0,
    };
    const logs = captureLog();
    // The key of the tests above is current in this database: a server with another key is refused.
    await assert.rejects(startServer(config, { log: logs.log, shutdownGraceMs: 200 }), (err: Error) => {
      assert.ok(err instanceof StartupError);
      assert.match(err.message, /is not the current published key/);
      return true;
    });
    const keyFile = path.join(dataDir, 'audit-signing-key.pem');
    assert.equal(statSync(keyFile).mode & 0o777, 0o600);

    const server = await startServer(
      { ...config, AUDIT_SIGNING_KEY_FILE: signer.file },
      { log: logs.log, shutdownGraceMs: 200 },
    );
    const before = (await readChain(db.pool, 'platform')).length;
    try {
      await insertEvent(db.pool, event(null, 'system.started'));
      await waitFor('the server to seal', inboxEmpty);
    } finally {
      await server.stop();
    }
    assert.equal((await assertChainValid(db.pool, 'platform')).length, before + 1);
  });
});
