import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createLogger, LineBatcher, redact, redactString } from '../../kernel/logger.ts';
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

  test('LineBatcher writes the lines of a few milliseconds together, in order, and flushes on demand', async () => {
    const writes: string[] = [];
    const batcher = new LineBatcher((text) => writes.push(text), 5);
    const log = createLogger({ level: 'info', stream: batcher });
    log.info('one', { password: 'hunter2' });
    log.info('two');
    log.info('three');
    assert.equal(writes.length, 0, 'nothing is written at once');
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.equal(writes.length, 1, 'one write for the three lines');
    const lines = (writes[0] ?? '')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      lines.map((l) => l.message),
      ['one', 'two', 'three'],
    );
    assert.equal(lines[0].password, '[redacted]');
    log.info('four');
    batcher.flush();
    assert.equal(writes.length, 2);
    assert.match(writes[1] ?? '', /"message":"four"/);
    batcher.flush();
    assert.equal(writes.length, 2, 'nothing pending, nothing written');
  });

  test('LineBatcher writes at once when 16 KiB are pending', () => {
    const writes: string[] = [];
    const batcher = new LineBatcher((text) => writes.push(text), 60_000);
    const line = `${'x'.repeat(1023)}\n`;
    for (let i = 0; i < 16; i++) batcher.write(line);
    assert.equal(writes.length, 1);
    assert.equal(writes[0]?.length, 16 * 1024);
  });
});
