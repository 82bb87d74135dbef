// TENANT_SEARCHES_PER_MINUTE: how many searches one workspace may start, as a
// fixed window of 10 seconds allowing a sixth of the rate (server/load/search-rate.ts),
// on GET /api/v1/search and the search page alike, after sign-in and before
// the slot of TENANT_MAX_SEARCHES. Real PostgreSQL and Redis: the count lives
// in Redis, so two instances on it share it.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type request from 'supertest';
import { loadConfig } from '../../../kernel/config.ts';
import { searchesPerWindow } from '../../../server/load/search-rate.ts';
import { type RunningServer, startServer } from '../../../server/start.ts';
import { createApiToken } from '../../helpers/http.ts';
import { captureLog } from '../../helpers/log.ts';
import {
  relaxedAbuseLimits,
  type SignedIn,
  signUp,
  startTestServer,
  TEST_REDIS_URL,
  type TestServer,
} from '../../helpers/server.ts';

const REFUSED =
  /^Too many searches in this workspace \(at most 2 every 10 seconds\)\. Try again in \d+ seconds?\.$/;

async function addNote(p: SignedIn, title: string): Promise<void> {
  await p.agent.post('/api/v1/notes').set('X-CSRF-Token', p.csrf).send({ title, body: 'fruit' }).expect(201);
}

/** A 429 of the search rate: Retry-After within the window, the code and a sentence saying what and when. */
function assertRateRefused(res: request.Response): number {
  assert.equal(res.status, 429, res.text);
  const retryAfter = Number(res.headers['retry-after']);
  assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 10, `Retry-After ${retryAfter}`);
  assert.equal(res.body.error.code, 'rate_limited');
  assert.match(res.body.error.message, REFUSED);
  assert.equal(res.body.error.details.retryAfterSeconds, retryAfter);
  return retryAfter;
}

/**
 * The searches that ran for the tenant: each writes one workspace.read event of a search with a
 * query (AUDIT_READS on; the search form without one is a read of the page, not a search).
 */
async function searchesRun(t: TestServer, p: SignedIn): Promise<number> {
  const { rows } = await t.db.pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM control.audit_inbox
      WHERE tenant_id = $1 AND action = 'workspace.read' AND resource_type = 'search'
        AND details->'query' ? 'q'`,
    [p.user.tenantId],
  );
  return rows[0]?.n ?? 0;
}

describe('TENANT_SEARCHES_PER_MINUTE: the searches a workspace may start', () => {
  test('a sixth of the rate per 10 seconds, rounded up (the default 60 is 10)', () => {
    assert.equal(searchesPerWindow(60), 10);
    assert.equal(searchesPerWindow(12), 2);
    assert.equal(searchesPerWindow(7), 2);
    assert.equal(searchesPerWindow(1), 1);
  });

  describe('at 12 a minute (2 per 10 seconds)', () => {
    const prefix = `enclave:test:${randomBytes(6).toString('hex')}:`;
    const dataDir = mkdtempSync(path.join(tmpdir(), 'enclave-test-'));
    let t: TestServer;
    let second: RunningServer | undefined;
    let alice: SignedIn;
    let bob: SignedIn;
    let carol: SignedIn;

    before(async () => {
      t = await startTestServer(
        { DATA_DIR: dataDir, TENANT_SEARCHES_PER_MINUTE: '12', AUDIT_READS: 'true' },
        { abuse: { prefix } },
      );
      [alice, bob, carol] = [await signUp(t.url), await signUp(t.url), await signUp(t.url)];
      for (const p of [alice, bob, carol]) await addNote(p, 'apples and pears');
    });
    after(async () => {
      await second?.stop();
      await t?.stop();
    });

    test('the third search in a window is refused with 429, Retry-After and a readable message, through the API and the page, without touching the workspace; the next window allows 2 again', {
      timeout: 30_000,
    }, async () => {
      await alice.agent.get('/api/v1/search?q=apples').expect(200);
      // The page counts with the API: the same workspace's searches.
      await alice.agent.get('/workspace/search?q=pears').set('Accept', 'text/html').expect(200);
      assert.equal(await searchesRun(t, alice), 2);

      // Another connection holds the workspace's notes: a search that ran would wait for it, and
      // be stopped by the statement timeout (503). A refusal answers at once.
      const lock = new pg.Client({ connectionString: t.db.url });
      await lock.connect();
      let retryAfter: number;
      try {
        await lock.query('BEGIN');
        await lock.query(`LOCK TABLE "t_${alice.user.tenantId}".notes IN ACCESS EXCLUSIVE MODE`);
        retryAfter = assertRateRefused(await alice.agent.get('/api/v1/search?q=apples'));
        const page = await alice.agent.get('/workspace/search?q=apples').set('Accept', 'text/html');
        assert.equal(page.status, 429);
        assert.match(page.headers['content-type'] ?? '', /text\/html/);
        assert.match(page.headers['retry-after'] ?? '', /^([1-9]|10)$/);
        assert.match(page.text, /Too many searches in this workspace \(at most 2 every 10 seconds\)/);
      } finally {
        await lock.query('ROLLBACK').catch(() => {});
        await lock.end();
      }
      assert.equal(await searchesRun(t, alice), 2, 'the refused searches did not run');
      // The form without a query is no search: it is shown whatever the count.
      await alice.agent.get('/workspace/search').set('Accept', 'text/html').expect(200);
      // A query that fails its check is a 400, not a refusal (and is not counted).
      await alice.agent.get('/api/v1/search?q=').expect(400);
      await alice.agent.get('/api/v1/search?q=a&cursor=nonsense').expect(400);

      // After Retry-After the window is a new one: the refusals were not counted into it.
      await sleep(retryAfter * 1000 + 250);
      const fresh = await alice.agent.get('/api/v1/search?q=apples').expect(200);
      assert.equal(fresh.body.results.length, 1);
      await alice.agent.get('/api/v1/search?q=pears').expect(200);
      assertRateRefused(await alice.agent.get('/api/v1/search?q=apples'));
      assert.equal(await searchesRun(t, alice), 4);
    });

    test("another workspace's searches are not affected by one that is refused", async () => {
      await carol.agent.get('/api/v1/search?q=apples').expect(200);
      await carol.agent.get('/api/v1/search?q=apples').expect(200);
      assertRateRefused(await carol.agent.get('/api/v1/search?q=apples'));
      // Bob's workspace has its own count: his two searches run while Carol waits.
      const first = await bob.agent.get('/api/v1/search?q=apples').expect(200);
      assert.equal(first.body.results.length, 1);
      await bob.agent.get('/workspace/search?q=pears').set('Accept', 'text/html').expect(200);
      assertRateRefused(await carol.agent.get('/api/v1/search?q=pears'));
    });

    test('two instances on the same Redis share the count: one search on each, then both refuse the third', async () => {
      const who = await signUp(t.url);
      await addNote(who, 'apples and pears');
      // API tokens: the second instance has its own session secret, so the cookie would not do.
      const token = { Authorization: `Bearer ${(await createApiToken(who, 'read', 'rate test')).secret}` };
      const log = captureLog('warn');
      const loaded = loadConfig({
        DATABASE_URL: t.db.url,
        REDIS_URL: TEST_REDIS_URL,
        DATA_DIR: mkdtempSync(path.join(tmpdir(), 'enclave-test-')),
        SESSION_SECRET: randomBytes(32).toString('hex'),
        AUDIT_SEAL_INTERVAL_SECONDS: '0',
        JOBS_IN_SERVER: 'false',
        TENANT_SEARCHES_PER_MINUTE: '12',
        // Instances of one installation share the audit signing key.
        AUDIT_SIGNING_KEY_FILE: path.join(dataDir, 'audit-signing-key.pem'),
      });
      second = await startServer(
        { ...loaded, PORT: 0 },
        { log: log.log, shutdownGraceMs: 500, abuse: relaxedAbuseLimits({ prefix }) },
      );
      const search = (base: string) => fetch(new URL('/api/v1/search?q=apples', base), { headers: token });
      assert.equal((await search(t.url)).status, 200);
      assert.equal((await search(second.url)).status, 200);
      for (const base of [second.url, t.url]) {
        const res = await search(base);
        assert.equal(res.status, 429, base);
        assert.match(res.headers.get('retry-after') ?? '', /^([1-9]|10)$/);
        const body = (await res.json()) as { error: { code: string; message: string } };
        assert.equal(body.error.code, 'rate_limited');
        assert.match(body.error.message, REFUSED);
      }
    });
  });

  test('0 switches the limit off: a dozen searches in a row all run', async () => {
    const t = await startTestServer({ TENANT_SEARCHES_PER_MINUTE: '0' });
    try {
      const who = await signUp(t.url);
      await addNote(who, 'apples and pears');
      for (let i = 0; i < 12; i++) {
        const res = await who.agent.get(`/api/v1/search?q=${i % 2 ? 'apples' : 'pears'}`).expect(200);
        assert.equal(res.body.results.length, 1);
      }
      await who.agent.get('/workspace/search?q=apples').set('Accept', 'text/html').expect(200);
    } finally {
      await t.stop();
    }
  });
});
