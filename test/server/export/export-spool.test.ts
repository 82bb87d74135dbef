// Finding 4 of issue 8: exports cannot fill the disk. An export spools each
// table to a file before sending it; every spooled byte counts against the
// process's budget (EXPORT_SPOOL_BUDGET_MB) until its file is deleted, an
// export that would overdraw it is refused with 503, and a download still
// running after EXPORT_DEADLINE_SECONDS is cut off. Every way out removes the
// files. Each server here spools into a directory of its own (EXPORT_SPOOL_DIR).
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ServerBusyError } from '../../../server/app-errors.ts';
import { SpoolBudget } from '../../../server/export/spool-budget.ts';
import { createApiToken } from '../../helpers/http.ts';
import { type SignedIn, signUp, startTestServer, type TestServer } from '../../helpers/server.ts';

const MB = 1024 * 1024;

/** Notes of hex text (compresses only about 2:1, so the download outgrows the socket buffers). */
async function fill(t: TestServer, p: SignedIn, notes: number): Promise<void> {
  await t.db.pool.query(
    `INSERT INTO "t_${p.user.tenantId}".notes (title, body)
     SELECT 'bulk ' || i, (SELECT string_agg(md5(i || '.' || j), '') FROM generate_series(1, 150) AS j)
       FROM generate_series(1, $1::int) AS i`,
    [notes],
  );
}

async function token(p: SignedIn): Promise<string> {
  return (await createApiToken(p, 'read', 'spool test')).secret;
}

/** The export's response, headers only: the body is left unread until the caller reads or drops it. */
function open(base: string, secret: string): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    http
      .get(`${base}/api/v1/export`, { headers: { Authorization: `Bearer ${secret}` } }, resolve)
      .on('error', reject);
  });
}

async function readAll(res: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Every file under `dir`, at any depth. */
async function filesUnder(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true, withFileTypes: true }))
    .filter((e) => e.isFile())
    .map((e) => path.join(e.parentPath, e.name));
}

async function until(what: string, check: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    assert.ok(Date.now() < deadline, what);
    await sleep(25);
  }
}

const empty = (dir: string) => async () => (await readdir(dir)).length === 0;

describe('export spooling is bounded', () => {
  describe('EXPORT_DEADLINE_SECONDS', () => {
    let t: TestServer;
    const spoolDir = mkdtempSync(path.join(tmpdir(), 'enclave-spool-'));
    before(async () => {
      // Long enough for the dump to finish and the headers to go out on a busy machine
      // (the suite runs files in parallel); the stall below is what must outlast it.
      t = await startTestServer({ EXPORT_SPOOL_DIR: spoolDir, EXPORT_DEADLINE_SECONDS: '10' });
    });
    after(async () => {
      await t?.stop();
    });

    test('a reader that stalls past the deadline is cut off, and its files are removed', async () => {
      const p = await signUp(t.url);
      await fill(t, p, 3000); // about 14 MB of JSON Lines, some 8 MB to download
      const res = await open(t.url, await token(p));
      assert.equal(res.statusCode, 200);
      res.pause(); // reads nothing more: the server blocks on backpressure with its files on disk
      await sleep(200);
      assert.ok((await filesUnder(spoolDir)).length > 0, 'the export is still spooled while it is sent');
      // The server gives up on it at the deadline (a paused client only notices once it reads on).
      await until(
        'the export is cut off at its deadline',
        async () => t.logs.lines().some((l) => l.message === 'export cut off at its deadline'),
        30_000,
      );
      await until('the spool files are removed', empty(spoolDir));
      const ended = new Promise<boolean>((resolve) => {
        res.once('close', () => resolve(res.complete));
        res.once('error', () => {});
      });
      res.resume();
      assert.equal(await ended, false, 'the download was cut short, not completed');
      assert.ok(!t.logs.lines().some((l) => l.level === 'error'), 'no error-level line');
    });
  });

  describe('EXPORT_SPOOL_BUDGET_MB', () => {
    let t: TestServer;
    const spoolDir = mkdtempSync(path.join(tmpdir(), 'enclave-spool-'));
    let big: SignedIn;
    let small: SignedIn;
    let bigToken: string;
    let smallToken: string;
    before(async () => {
      // Room for the big workspace's export (about 14 MB), not for another beside it.
      t = await startTestServer({ EXPORT_SPOOL_DIR: spoolDir, EXPORT_SPOOL_BUDGET_MB: '16' });
      big = await signUp(t.url);
      small = await signUp(t.url);
      await fill(t, big, 3000);
      await fill(t, small, 800); // about 3.7 MB
      bigToken = await token(big);
      smallToken = await token(small);
    });
    after(async () => {
      await t?.stop();
    });

    test('while a slow download holds the budget, another export is refused with 503 and leaves no files', async () => {
      const slow = await open(t.url, bigToken);
      assert.equal(slow.statusCode, 200);
      slow.pause();
      await sleep(200);
      const held = await filesUnder(spoolDir);
      assert.ok(held.length > 0, 'the slow download holds its spool files');

      const refused = await open(t.url, smallToken);
      const body = JSON.parse((await readAll(refused)).toString('utf8'));
      assert.equal(refused.statusCode, 503);
      assert.equal(body.error.code, 'server_busy');
      assert.match(body.error.message, /busy preparing other exports/);
      assert.match(String(refused.headers['retry-after']), /^\d+$/);
      assert.deepEqual(await filesUnder(spoolDir), held, 'the refused export left nothing behind');

      // The slow reader goes away: its files go, the budget is back, and the same export now runs.
      slow.destroy();
      await until('the slow export is cleaned up', empty(spoolDir));
      const again = await open(t.url, smallToken);
      assert.equal(again.statusCode, 200);
      assert.ok((await readAll(again)).length > 1_000_000);
      await until('the finished export is cleaned up', empty(spoolDir));
    });
  });

  describe('SpoolBudget', () => {
    test('refuses a new account once spent, an overdraft at once, and gets everything back on close', () => {
      const budget = new SpoolBudget(10 * MB);
      const a = budget.open();
      a.take(6 * MB);
      const b = budget.open();
      assert.throws(() => b.take(5 * MB), ServerBusyError, 'no overdraft');
      b.take(4 * MB);
      assert.equal(budget.usedBytes, 10 * MB);
      assert.throws(() => budget.open(), ServerBusyError, 'spent: nothing new starts');
      a.giveBack(2 * MB); // one file deleted after it was sent
      assert.equal(budget.usedBytes, 8 * MB);
      a.close();
      b.close();
      b.close();
      assert.equal(budget.usedBytes, 0);
    });
  });
});
