import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { redact, redactString } from '../../kernel/logger.ts';
import { captureLog } from '../helpers/log.ts';

describe('logger', () => {
  test('writes one JSON object per line with level, message and timestamp', async () => {
    const { log, lines } = captureLog('info');
    log.info('hello', { n: 1 });
    log.debug('not at info');
    const [line, ...rest] = lines();
    assert.equal(rest.length, 0);
    assert.equal(line?.level, 'info');
    assert.equal(line?.message, 'hello');
    assert.equal(line?.n, 1);
    assert.ok(typeof line?.timestamp === 'string');
  });

  test('the password of a URL is masked in messages and in nested fields', () => {
    const { log, text } = captureLog();
    log.info('connecting to postgres://enclave:hunter2@127.0.0.1:54329/enclave', {
      nested: { url: 'redis://:s3cret@cache:6379', list: ['postgresql://a:b%40c@h/d'] },
    });
    assert.doesNotMatch(text(), /hunter2|s3cret|b%40c/);
    assert.match(text(), /postgres:\/\/enclave:\*\*\*@127\.0\.0\.1:54329\/enclave/);
  });

  test('fields named like secrets are replaced whatever their value', () => {
    const { log, text } = captureLog();
    log.info('login', {
      password: 'pw1',
      user: { apiKey: 'k2', sessionToken: 't3' },
      authorization: 'Bearer z4',
    });
    assert.doesNotMatch(text(), /pw1|k2|t3|z4/);
  });

  test('errors are logged with name, message, code and cause, and the caller object is not changed', () => {
    const { log, lines } = captureLog();
    const cause = Object.assign(new Error('inner postgres://u:p4ss@h/d'), { code: 'ECONNREFUSED' });
    const meta = { error: new Error('outer', { cause }) };
    log.error('failed', meta);
    const error = lines()[0]?.error as Record<string, unknown>;
    assert.equal(error.message, 'outer');
    assert.deepEqual((error.cause as Record<string, unknown>).code, 'ECONNREFUSED');
    assert.doesNotMatch(JSON.stringify(error), /p4ss/);
    assert.ok(meta.error instanceof Error);
  });

  test('redact copes with cycles', () => {
    const a: Record<string, unknown> = { name: 'a' };
    a.self = a;
    assert.deepEqual(redact(a), { name: 'a', self: '[…]' });
  });

  test('redactString leaves URLs without a password alone', () => {
    assert.equal(
      redactString('see https://example.com/a@b and postgres://u@h/d'),
      'see https://example.com/a@b and postgres://u@h/d',
    );
  });
});
