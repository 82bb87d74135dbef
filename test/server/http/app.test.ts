import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import { createPool, type Pool } from '../../../kernel/db.ts';
import { createApp } from '../../../server/http/app.ts';
import { databaseCheck } from '../../../server/http/health.ts';
import { createTestDatabase, type TestDatabase } from '../../helpers/database.ts';
import { captureLog, settle } from '../../helpers/log.ts';

describe('health endpoints', () => {
  let db: TestDatabase;
  let deadPool: Pool;
  before(async () => {
    db = await createTestDatabase(2);
    deadPool = createPool('postgres://x:hunter2@127.0.0.1:1/x', 1);
  });
  after(async () => {
    await deadPool.end();
    await db.drop();
  });

  test('GET /healthz is 200 {status: ok} even when the database is down', async () => {
    const app = createApp({ log: captureLog().log, checks: { database: databaseCheck(deadPool) } });
    const res = await request(app).get('/healthz').expect(200);
    assert.deepEqual(res.body, { status: 'ok' });
  });

  test('GET /readyz is 200 with database ok when SELECT 1 works on the pool', async () => {
    const app = createApp({ log: captureLog().log, checks: { database: databaseCheck(db.pool) } });
    const res = await request(app).get('/readyz').expect(200).expect('Content-Type', /json/);
    assert.deepEqual(res.body, { status: 'ready', checks: { database: 'ok' } });
  });

  test('GET /readyz is 503 with a short JSON reason when the database refuses connections', async () => {
    const captured = captureLog();
    const app = createApp({ log: captured.log, checks: { database: databaseCheck(deadPool) } });
    const res = await request(app).get('/readyz').expect(503).expect('Content-Type', /json/);
    assert.deepEqual(res.body, { status: 'unavailable', checks: { database: 'error: ECONNREFUSED' } });
    assert.doesNotMatch(captured.text(), /hunter2/);
  });

  test('GET /readyz gives up on a check that does not answer in time and says timeout', async () => {
    const hang = () => new Promise<void>(() => {});
    const app = createApp({ log: captureLog().log, checks: { database: hang }, checkTimeoutMs: 50 });
    const started = Date.now();
    const res = await request(app).get('/readyz').expect(503);
    assert.deepEqual(res.body, { status: 'unavailable', checks: { database: 'timeout' } });
    assert.ok(Date.now() - started < 1000);
  });

  test('GET /readyz reports every check by name and is 503 if any one fails', async () => {
    const app = createApp({
      log: captureLog().log,
      checks: { database: databaseCheck(db.pool), redis: () => Promise.reject(new Error('down')) },
    });
    const res = await request(app).get('/readyz').expect(503);
    assert.deepEqual(res.body, { status: 'unavailable', checks: { database: 'ok', redis: 'error' } });
  });

  test('concurrent /readyz probes share one run of a slow check instead of piling up', async () => {
    let runs = 0;
    const slow = async () => {
      runs++;
      await new Promise((resolve) => setTimeout(resolve, 50));
    };
    const app = createApp({ log: captureLog().log, checks: { database: slow } });
    const agent = request(app);
    await Promise.all([agent.get('/readyz').expect(200), agent.get('/readyz').expect(200)]);
    assert.equal(runs, 1);
  });
});

describe('security headers', () => {
  const app = createApp({ log: captureLog().log, checks: {} });

  test('the CSP is strict: self only, no unsafe-inline, no objects, no framing', async () => {
    const res = await request(app).get('/healthz').expect(200);
    const csp = String(res.headers['content-security-policy']);
    const directives = new Map(
      csp.split(';').map((d) => {
        const [name = '', ...values] = d.trim().split(/\s+/);
        return [name, values.join(' ')] as const;
      }),
    );
    assert.equal(directives.get('default-src'), "'self'");
    assert.equal(directives.get('script-src'), "'self'");
    assert.equal(directives.get('style-src'), "'self'");
    assert.equal(directives.get('object-src'), "'none'");
    assert.equal(directives.get('frame-ancestors'), "'none'");
    assert.equal(directives.get('base-uri'), "'self'");
    assert.equal(directives.get('form-action'), "'self'");
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|https:|data:|\*/);
  });

  test('the CSP and the request id are on 404 answers too', async () => {
    const res = await request(app).get('/no/such/thing').expect(404);
    assert.match(String(res.headers['content-security-policy']), /default-src 'self'/);
    assert.ok(res.headers['x-request-id']);
  });

  test('X-Powered-By is not sent', async () => {
    const res = await request(app).get('/healthz');
    assert.equal(res.headers['x-powered-by'], undefined);
  });
});

describe('request id', () => {
  const app = createApp({ log: captureLog().log, checks: {} });

  test('a sane incoming X-Request-Id is echoed back', async () => {
    const res = await request(app).get('/healthz').set('X-Request-Id', 'lb-4f2a.9_c-1').expect(200);
    assert.equal(res.headers['x-request-id'], 'lb-4f2a.9_c-1');
  });

  for (const hostile of ['a b', 'x'.repeat(65), '<script>', 'id\u00e9', '../../etc', 'a;b', '']) {
    test(`a hostile X-Request-Id (${JSON.stringify(hostile.slice(0, 12))}) is replaced by a fresh one`, async () => {
      const res = await request(app).get('/healthz').set('X-Request-Id', hostile).expect(200);
      const id = String(res.headers['x-request-id']);
      assert.notEqual(id, hostile);
      assert.match(id, /^[0-9a-f-]{36}$/);
    });
  }

  test('without X-Request-Id each request gets its own', async () => {
    const a = await request(app).get('/healthz');
    const b = await request(app).get('/healthz');
    assert.notEqual(a.headers['x-request-id'], b.headers['x-request-id']);
  });
});

describe('request log', () => {
  test('one line per request with id, method, route, status and duration, and no query string', async () => {
    const captured = captureLog('info');
    const app = createApp({ log: captured.log, checks: {} });
    await request(app).get('/healthz?token=s3cr3t').set('X-Request-Id', 'req-1').expect(200);
    await settle();
    const lines = captured.lines().filter((l) => l.message === 'request');
    assert.equal(lines.length, 1);
    const [line] = lines;
    assert.equal(line?.requestId, 'req-1');
    assert.equal(line?.method, 'GET');
    assert.equal(line?.route, '/healthz');
    assert.equal(line?.path, '/healthz');
    assert.equal(line?.status, 200);
    assert.equal(typeof line?.durationMs, 'number');
    assert.doesNotMatch(captured.text(), /s3cr3t/);
  });

  test('an unmatched request is logged with route null and its 404', async () => {
    const captured = captureLog('info');
    const app = createApp({ log: captured.log, checks: {} });
    await request(app).post('/nowhere').expect(404);
    await settle();
    const line = captured.lines().find((l) => l.message === 'request');
    assert.equal(line?.route, null);
    assert.equal(line?.status, 404);
    assert.equal(line?.method, 'POST');
  });
});

describe('unknown routes', () => {
  test('an unknown route is 404 with the JSON error shape', async () => {
    const app = createApp({ log: captureLog().log, checks: {} });
    const res = await request(app).get('/api/nothing-here').expect(404).expect('Content-Type', /json/);
    assert.deepEqual(res.body, { error: { code: 'not_found', message: 'No such page or endpoint.' } });
  });
});
