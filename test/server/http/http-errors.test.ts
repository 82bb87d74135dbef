import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Router } from 'express';
import request from 'supertest';
import { DatabaseError, InvalidInputError, PermissionDeniedError } from '../../../kernel/errors.ts';
import { createApp } from '../../../server/http/app.ts';
import {
  LegalHoldError,
  MigrationError,
  TenantBusyError,
  TenantNotFoundError,
  TenantSuspendedError,
  TenantUnavailableError,
} from '../../../tenancy/tenancy-errors.ts';
import { captureLog, settle } from '../../helpers/log.ts';

// A throwaway router that throws whatever the test names, sync or async.
const errors: Record<string, () => unknown> = {
  'tenant-not-found': () => new TenantNotFoundError('t_abc'),
  'tenant-suspended': () => new TenantSuspendedError('t_abc', 'suspended'),
  'tenant-archived': () => new TenantUnavailableError('t_abc', 'archived'),
  'invalid-input': () => new InvalidInputError('title must not be empty'),
  'legal-hold': () => new LegalHoldError('t_abc'),
  'tenant-busy': () => new TenantBusyError('abc', 4),
  'permission-denied': () => new PermissionDeniedError('permission denied for table notes', '42501', null),
  'database-error': () => new DatabaseError('relation "t_abc.secret_table" does not exist', '42P01', null),
  'migration-error': () => new MigrationError('0002_x', new Error('syntax error')),
  plain: () => new Error('connection to postgres://app:hunter2@db/enclave lost'),
  'not-an-error': () => 'a thrown string',
};

function throwingRouter(): Router {
  const router = Router();
  router.get('/throw/:name', (req) => {
    throw (errors[req.params.name] ?? (() => new Error('unknown')))();
  });
  router.get('/reject/:name', async (req) => {
    await Promise.resolve();
    throw (errors[req.params.name] ?? (() => new Error('unknown')))();
  });
  return router;
}

function app() {
  const captured = captureLog('info');
  return { captured, app: createApp({ log: captured.log, checks: {}, routers: [throwingRouter()] }) };
}

describe('the error handler maps typed errors to HTTP', () => {
  const cases: Array<[string, number, string]> = [
    ['tenant-not-found', 404, 'tenant_not_found'],
    ['tenant-suspended', 403, 'tenant_suspended'],
    ['tenant-archived', 403, 'tenant_unavailable'],
    ['invalid-input', 400, 'invalid_input'],
    ['legal-hold', 409, 'legal_hold'],
    ['tenant-busy', 429, 'tenant_busy'],
    ['permission-denied', 403, 'permission_denied'],
    ['database-error', 500, 'internal_error'],
    ['migration-error', 500, 'internal_error'],
    ['plain', 500, 'internal_error'],
    ['not-an-error', 500, 'internal_error'],
  ];
  for (const [name, status, code] of cases) {
    test(`${name} thrown in a handler is ${status} ${code}`, async () => {
      const res = await request(app().app)
        .get(`/throw/${name}`)
        .expect(status)
        .expect('Content-Type', /json/);
      assert.equal(res.body.error.code, code);
      assert.equal(typeof res.body.error.message, 'string');
    });
    test(`${name} rejected by an async handler is ${status} ${code}`, async () => {
      const res = await request(app().app).get(`/reject/${name}`).expect(status);
      assert.equal(res.body.error.code, code);
    });
  }

  test('a busy workspace is told when to try again (Retry-After)', async () => {
    const res = await request(app().app).get('/throw/tenant-busy');
    assert.equal(res.status, 429);
    assert.equal(res.headers['retry-after'], '1');
    assert.match(res.body.error.message, /too much going on/);
  });

  test('the body is exactly { error: { code, message, details? } }', async () => {
    const res = await request(app().app).get('/throw/tenant-archived').expect(403);
    assert.deepEqual(res.body, {
      error: {
        code: 'tenant_unavailable',
        message: 'This workspace is not available.',
        details: { state: 'archived' },
      },
    });
    const bad = await request(app().app).get('/throw/invalid-input').expect(400);
    assert.deepEqual(bad.body, { error: { code: 'invalid_input', message: 'title must not be empty' } });
  });

  test('a 500 says nothing about its cause; the log has the details with the request id', async () => {
    const { app: a, captured } = app();
    const res = await request(a).get('/throw/database-error').set('X-Request-Id', 'r-500').expect(500);
    assert.deepEqual(res.body, {
      error: { code: 'internal_error', message: 'Something went wrong on our side.' },
    });
    await settle();
    const line = captured.lines().find((l) => l.message === 'request failed');
    assert.equal(line?.requestId, 'r-500');
    assert.match(JSON.stringify(line?.error), /secret_table/);
  });

  test('PostgreSQL text of a permission error does not reach the client', async () => {
    const res = await request(app().app).get('/throw/permission-denied').expect(403);
    assert.doesNotMatch(JSON.stringify(res.body), /notes|42501/);
  });

  test('a password inside an error message is masked in the log', async () => {
    const { app: a, captured } = app();
    await request(a).get('/throw/plain').expect(500);
    await settle();
    assert.doesNotMatch(captured.text(), /hunter2/);
    assert.match(captured.text(), /postgres:\/\/app:\*\*\*@db\/enclave/);
  });

  test('a malformed path parameter is 400, not 500', async () => {
    const res = await request(app().app).get('/throw/%E0%A4%A').expect(400);
    assert.equal(res.body.error.code, 'bad_request');
  });
});
