// "Try again later" from the one error mapping: a database that cannot be
// reached (however the driver says it) is 503 database_unavailable with
// Retry-After, not a 500; a stopping server answers /readyz and late requests
// with 503.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import express from 'express';
import request from 'supertest';
import { createPool } from '../../../kernel/db.ts';
import { DatabaseError } from '../../../kernel/errors.ts';
import { SessionsUnavailableError } from '../../../server/app-errors.ts';
import { createApp } from '../../../server/http/app.ts';
import { problemFor } from '../../../server/http/http-errors.ts';
import { captureLog } from '../../helpers/log.ts';

const withCode = (message: string, code: string) => Object.assign(new Error(message), { code });

describe('database_unavailable', () => {
  const unavailable = [
    ['a refused connection', withCode('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED')],
    ['a refused "localhost" (one error per address)', new AggregateError([withCode('', 'ECONNREFUSED')], '')],
    ['an administrator shutdown (57P01)', new DatabaseError('terminating connection', '57P01', null)],
    [
      'a server starting up or shutting down (57P03)',
      withCode('the database system is starting up', '57P03'),
    ],
    ['a connection exception (class 08)', withCode('connection failure', '08006')],
    ['a connection lost mid-query', new Error('Connection terminated unexpectedly')],
    ['a pool wait past connectionTimeoutMillis', new Error('timeout exceeded when trying to connect')],
    ['a wrapped driver error', new Error('query failed', { cause: withCode('x', 'ECONNRESET') })],
  ] as const;
  for (const [what, err] of unavailable) {
    test(`${what} is 503 database_unavailable with a wait to retry`, () => {
      const p = problemFor(err);
      assert.equal(p.status, 503);
      assert.equal(p.code, 'database_unavailable');
      assert.ok((p.details as { retryAfterSeconds: number }).retryAfterSeconds > 0);
    });
  }

  test('a session that could not be loaded because the database is down is database_unavailable; Redis down stays sessions_unavailable', () => {
    const db = problemFor(new SessionsUnavailableError(withCode('connect ECONNREFUSED', 'ECONNREFUSED')));
    assert.equal(db.code, 'database_unavailable');
    const offline = Object.assign(new Error('The client is offline'), { name: 'ClientOfflineError' });
    const redis = problemFor(new SessionsUnavailableError(offline));
    assert.equal(redis.code, 'sessions_unavailable');
    assert.ok((redis.details as { retryAfterSeconds: number }).retryAfterSeconds > 0);
  });

  test('other errors are not mistaken for it', () => {
    assert.equal(problemFor(new Error('boom')).status, 500);
    assert.equal(problemFor(new DatabaseError('duplicate key', '23505', null)).status, 500);
  });

  test('a pool with a connect timeout refuses within it when no connection comes, with Retry-After', async () => {
    // 10.255.255.1 is not routed: the connection attempt hangs until the timeout.
    const pool = createPool('postgres://x@10.255.255.1:5432/x', 1, 'enclave-test', 300);
    const router = express.Router();
    router.get('/q', async (_req, res, next) => {
      try {
        res.json((await pool.query('SELECT 1')).rows);
      } catch (err) {
        next(err);
      }
    });
    const app = createApp({ log: captureLog().log, checks: {}, routers: [router] });
    const started = Date.now();
    const res = await request(app).get('/q').expect(503);
    assert.ok(Date.now() - started < 3000);
    assert.equal(res.body.error.code, 'database_unavailable');
    assert.equal(res.headers['retry-after'], '5');
    await pool.end();
  });
});

describe('draining', () => {
  test('once draining, /readyz is 503 draining and a new request is refused with 503 shutting_down and Retry-After', async () => {
    const drain = { draining: false };
    const router = express.Router();
    router.get('/hello', (_req, res) => {
      res.json({ hello: true });
    });
    const app = createApp({ log: captureLog().log, checks: {}, routers: [router], drain });
    await request(app).get('/readyz').expect(200);
    await request(app).get('/hello').expect(200);
    drain.draining = true;
    const ready = await request(app).get('/readyz').expect(503);
    assert.equal(ready.body.status, 'draining');
    const late = await request(app).get('/hello').expect(503);
    assert.equal(late.body.error.code, 'shutting_down');
    assert.equal(late.headers['retry-after'], '1');
    assert.equal(late.headers.connection, 'close');
    await request(app).get('/healthz').expect(200);
  });
});
