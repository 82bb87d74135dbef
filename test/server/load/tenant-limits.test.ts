// Finding 4 of issue 8: one workspace cannot take the server from the others.
// It runs at most TENANT_MAX_EXPORTS exports and TENANT_MAX_SEARCHES searches
// at once (429 with Retry-After beyond that), counted across instances through
// Redis (with a time-to-live, so a crashed process leaks nothing) or in the
// process without it; and a statement that runs past the statement timeout is
// stopped and answered 503, never 500. Real PostgreSQL and Redis throughout:
// requests are held in flight by a table lock another connection takes.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { createClient, type RedisClientType } from 'redis';
import { loadConfig } from '../../../kernel/config.ts';
import type { Pool } from '../../../kernel/db.ts';
import { RateLimitedError } from '../../../server/app-errors.ts';
import { TenantSlots } from '../../../server/load/tenant-slots.ts';
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

// --- helpers ---------------------------------------------------------------

const schemaOf = (p: SignedIn) => `t_${p.user.tenantId}`;
const bearer = (secret: string) => ({ Authorization: `Bearer ${secret}` });

/** Another connection holds `table` in ACCESS EXCLUSIVE mode: every request that reads it waits. */
async function lockTable(url: string, table: string): Promise<{ release(): Promise<void> }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query('BEGIN');
  await client.query(`LOCK TABLE ${table} IN ACCESS EXCLUSIVE MODE`);
  return {
    release: async () => {
      await client.query('ROLLBACK').catch(() => {});
      await client.end();
    },
  };
}

/** Until `n` statements wait for a lock on `table`: that many requests are in flight, holding their slots. */
async function waiters(pool: Pool, table: string, n: number): Promise<void> {
  // Generous: the whole suite runs files in parallel on two cores.
  const deadline = Date.now() + 45_000;
  for (;;) {
    const { rows } = await pool.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM pg_locks WHERE relation = to_regclass($1) AND NOT granted',
      [table],
    );
    if ((rows[0]?.n ?? 0) >= n) return;
    assert.ok(Date.now() < deadline, `${n} requests waiting on ${table}`);
    await sleep(20);
  }
}

/** A GET whose whole answer is read, as a promise started now. */
function get(base: string, route: string, headers: Record<string, string>) {
  return new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }>(
    (resolve, reject) => {
      http
        .get(new URL(route, base), { headers }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
          );
          res.on('error', reject);
        })
        .on('error', reject);
    },
  );
}

/**
 * Another connection locks `table`; the requests `start` starts wait on it,
 * and `whileHeld` runs once they all do; then the lock is released and their
 * answers are returned.
 */
async function whileLocked(
  db: { url: string; pool: Pool },
  table: string,
  start: () => Array<ReturnType<typeof get>>,
  whileHeld: () => Promise<void>,
): Promise<Array<Awaited<ReturnType<typeof get>>>> {
  const lock = await lockTable(db.url, table);
  let running: Array<ReturnType<typeof get>> = [];
  try {
    running = start();
    await waiters(db.pool, table, running.length);
    await whileHeld();
  } finally {
    await lock.release();
  }
  return Promise.all(running);
}

async function createToken(p: SignedIn): Promise<string> {
  return (await createApiToken(p, 'read', 'limits test')).secret;
}

function assertRefused(
  res: { status: number; headers: http.IncomingHttpHeaders; body: Buffer },
  what: RegExp,
) {
  assert.equal(res.status, 429, res.body.toString('utf8'));
  assert.match(String(res.headers['retry-after']), /^\d+$/, 'Retry-After says when to try again');
  const body = JSON.parse(res.body.toString('utf8'));
  assert.equal(body.error.code, 'rate_limited');
  assert.match(body.error.message, what);
}

// --- over HTTP -------------------------------------------------------------

describe('per-workspace limits on exports and searches', () => {
  const prefix = `enclave:test:${randomBytes(6).toString('hex')}:`;
  const dataDir = mkdtempSync(path.join(tmpdir(), 'enclave-test-'));
  let t: TestServer;
  let second: RunningServer | undefined;
  let alice: SignedIn;
  let bob: SignedIn;
  let aliceToken: string;
  let bobToken: string;

  before(async () => {
    // The searches wait on a lock for as long as the test holds it: no statement timeout gets in the way.
    t = await startTestServer(
      { DATA_DIR: dataDir, TENANT_MAX_SEARCHES: '2', TENANT_STATEMENT_TIMEOUT_MS: '60000' },
      { abuse: { prefix } },
    );
    alice = await signUp(t.url);
    bob = await signUp(t.url);
    aliceToken = await createToken(alice);
    bobToken = await createToken(bob);
    for (const p of [alice, bob]) {
      await p.agent
        .post('/api/v1/notes')
        .set('X-CSRF-Token', p.csrf)
        .send({ title: 'apples and pears', body: 'fruit' })
        .expect(201);
    }
  });
  after(async () => {
    await second?.stop();
    await t?.stop();
  });

  test('a third export of one workspace at once is refused with 429 and Retry-After; other workspaces are not', async () => {
    const answers = await whileLocked(
      t.db,
      `"${schemaOf(alice)}".tasks`,
      () => [
        get(t.url, '/api/v1/export', bearer(aliceToken)),
        get(t.url, '/api/v1/export', bearer(aliceToken)),
      ],
      async () => {
        assertRefused(
          await get(t.url, '/api/v1/export', bearer(aliceToken)),
          /Too many exports of this workspace at once \(at most 2/,
        );
        // Through the session too: the limit is the workspace's, not the credential's.
        const viaSession = await alice.agent.get('/api/v1/export').expect(429);
        assert.equal(viaSession.body.error.code, 'rate_limited');
        assert.equal((await get(t.url, '/api/v1/export', bearer(bobToken))).status, 200, "Bob's export runs");
      },
    );
    for (const r of answers) assert.equal(r.status, 200, 'the two admitted exports finish');
    assert.equal(
      (await get(t.url, '/api/v1/export', bearer(aliceToken))).status,
      200,
      'their slots are free again',
    );
  });

  test('a third search of one workspace at once is refused with 429, through the API and the search page', async () => {
    const answers = await whileLocked(
      t.db,
      `"${schemaOf(alice)}".notes`,
      () => [
        get(t.url, '/api/v1/search?q=apples', bearer(aliceToken)),
        get(t.url, '/api/v1/search?q=pears', bearer(aliceToken)),
      ],
      async () => {
        assertRefused(
          await get(t.url, '/api/v1/search?q=fruit', bearer(aliceToken)),
          /Too many searches of this workspace at once \(at most 2/,
        );
        const page = await alice.agent
          .get('/workspace/search?q=fruit')
          .set('Accept', 'text/html')
          .expect(429);
        assert.match(page.headers['retry-after'] ?? '', /^\d+$/);
        assert.match(page.text, /Too many searches of this workspace at once/);
        const other = await get(t.url, '/api/v1/search?q=apples', bearer(bobToken));
        assert.equal(other.status, 200, "Bob's search runs");
      },
    );
    for (const r of answers) assert.equal(r.status, 200);
    const again = await get(t.url, '/api/v1/search?q=apples', bearer(aliceToken));
    assert.equal(again.status, 200);
    assert.equal(JSON.parse(again.body.toString('utf8')).results.length, 1);
  });

  test('with Redis the count holds across instances: a second server on the same database refuses the third export', async () => {
    const log = captureLog('warn');
    const loaded = loadConfig({
      DATABASE_URL: t.db.url,
      REDIS_URL: TEST_REDIS_URL,
      DATA_DIR: mkdtempSync(path.join(tmpdir(), 'enclave-test-')),
      SESSION_SECRET: randomBytes(32).toString('hex'),
      AUDIT_SEAL_INTERVAL_SECONDS: '0',
      JOBS_IN_SERVER: 'false',
      // Instances of one installation share the audit signing key.
      AUDIT_SIGNING_KEY_FILE: path.join(dataDir, 'audit-signing-key.pem'),
    });
    second = await startServer(
      { ...loaded, PORT: 0 },
      { log: log.log, shutdownGraceMs: 500, abuse: relaxedAbuseLimits({ prefix }) },
    );
    const other = second;
    const answers = await whileLocked(
      t.db,
      `"${schemaOf(alice)}".tasks`,
      () => [
        get(t.url, '/api/v1/export', bearer(aliceToken)),
        get(other.url, '/api/v1/export', bearer(aliceToken)),
      ],
      async () => {
        assertRefused(await get(other.url, '/api/v1/export', bearer(aliceToken)), /at most 2/);
        assertRefused(await get(t.url, '/api/v1/export', bearer(aliceToken)), /at most 2/);
      },
    );
    for (const r of answers) assert.equal(r.status, 200);
    assert.equal((await get(second.url, '/api/v1/export', bearer(aliceToken))).status, 200);
  });
});

describe('a statement past TENANT_STATEMENT_TIMEOUT_MS', () => {
  let t: TestServer;
  let alice: SignedIn;
  before(async () => {
    t = await startTestServer({ TENANT_STATEMENT_TIMEOUT_MS: '300' });
    alice = await signUp(t.url);
  });
  after(async () => {
    await t?.stop();
  });

  // Without the timeout the request would wait for the lock as long as it is held: the test's own limit fails it.
  test('is cancelled and answered 503 query_timeout (a warning in the log, not a 500); the next request works', {
    timeout: 20_000,
  }, async () => {
    const notes = `"${schemaOf(alice)}".notes`;
    const lock = await lockTable(t.db.url, notes);
    try {
      const res = await alice.agent.get('/api/v1/notes').expect(503);
      assert.equal(res.body.error.code, 'query_timeout');
      assert.match(res.body.error.message, /took too long and was stopped/);
    } finally {
      await lock.release();
    }
    await alice.agent.get('/api/v1/notes').expect(200);
    const lines = t.logs.lines();
    assert.ok(
      lines.some((l) => l.message === 'request stopped' && l.code === 'query_timeout' && l.level === 'warn'),
    );
    assert.ok(!lines.some((l) => l.level === 'error'), 'no error-level line');
  });
});

// --- TenantSlots itself -----------------------------------------------------

describe('TenantSlots', () => {
  const { log } = captureLog('warn');
  const clients: RedisClientType[] = [];
  const connect = async () => {
    const client: RedisClientType = createClient({ url: TEST_REDIS_URL });
    client.on('error', () => {});
    await client.connect();
    clients.push(client);
    return client;
  };
  after(async () => {
    for (const c of clients) if (c.isOpen) await c.close();
  });
  const refused = (p: Promise<unknown>) => assert.rejects(p, RateLimitedError);

  test('without Redis, the count is kept in the process, per workspace and kind', async () => {
    const slots = new TenantSlots({ redis: undefined, prefix: 'x:', limits: { export: 1, search: 2 }, log });
    const a = await slots.acquire('tenant-a', 'export');
    await refused(slots.acquire('tenant-a', 'export'));
    (await slots.acquire('tenant-b', 'export')).release();
    const s1 = await slots.acquire('tenant-a', 'search');
    const s2 = await slots.acquire('tenant-a', 'search');
    await refused(slots.acquire('tenant-a', 'search'));
    a.release();
    a.release(); // twice gives back one slot, not two
    (await slots.acquire('tenant-a', 'export')).release();
    s1.release();
    s2.release();
    await assert.rejects(
      slots.hold('tenant-a', 'search', async () => {
        await slots.acquire('tenant-a', 'search');
        await slots.acquire('tenant-a', 'search');
      }),
      RateLimitedError,
    );
  });

  test('with Redis, instances share the count, and the slot of a holder that died lapses after its TTL', async () => {
    const prefix = `enclave:test:${randomBytes(6).toString('hex')}:`;
    const limits = { export: 2, search: 4 };
    const dying = await connect();
    const one = new TenantSlots({ redis: dying, prefix, limits, log, ttlMs: 400 });
    const two = new TenantSlots({ redis: await connect(), prefix, limits, log, ttlMs: 400 });
    const held = await one.acquire('tenant-a', 'export');
    const kept = await one.acquire('tenant-a', 'export');
    await refused(two.acquire('tenant-a', 'export'));
    (await two.acquire('tenant-b', 'export')).release();
    held.release();
    await sleep(50); // the release is sent without waiting for it
    const taken = await two.acquire('tenant-a', 'export');
    // `one` goes away without giving back `kept`: its renewals stop with its connection, as in a crash.
    await dying.close();
    await sleep(1200);
    const again = await two.acquire('tenant-a', 'export'); // `kept` has lapsed: room for one more
    // `taken` was renewed all along (three TTLs): with `again`, the two slots are held.
    await refused(two.acquire('tenant-a', 'export'));
    again.release();
    taken.release();
    void kept;
  });

  test('Redis unreachable: the limit is still kept, in the process, and a warning says so', async () => {
    const captured = captureLog('warn');
    const down: RedisClientType = createClient({ url: 'redis://127.0.0.1:1', disableOfflineQueue: true });
    down.on('error', () => {});
    const slots = new TenantSlots({
      redis: down,
      prefix: 'x:',
      limits: { export: 1, search: 1 },
      log: captured.log,
    });
    const held = await slots.acquire('tenant-a', 'export');
    await refused(slots.acquire('tenant-a', 'export'));
    held.release();
    (await slots.acquire('tenant-a', 'export')).release();
    assert.ok(captured.lines().some((l) => String(l.message).includes('counted per instance')));
  });
});
