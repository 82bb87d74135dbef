import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, loadConfig } from '../../kernel/config.ts';

function rejection(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err;
  }
  assert.fail(`loadConfig accepted ${JSON.stringify(env)}`);
}

function assertOneLineNaming(err: ConfigError, setting: string) {
  assert.equal(err.setting, setting);
  assert.ok(err.message.startsWith(`${setting}: `), err.message);
  assert.doesNotMatch(err.message, /\n/);
}

describe('loadConfig', () => {
  test('an empty environment gives the documented defaults', () => {
    const c = loadConfig({});
    assert.equal(c.PORT, 3000);
    assert.equal(c.HOST, '127.0.0.1');
    assert.equal(c.DATABASE_URL, undefined);
    assert.equal(c.LOG_LEVEL, 'info');
    assert.equal(c.MIGRATION_CONCURRENCY, 4);
  });

  for (const port of ['abc', '0', '65536', '-1', '3.5', ' 80']) {
    test(`PORT=${JSON.stringify(port)} is refused with one line naming PORT`, () => {
      assertOneLineNaming(rejection({ PORT: port }), 'PORT');
    });
  }

  test('a DATABASE_URL that is not postgres is refused without repeating its password', () => {
    const err = rejection({ DATABASE_URL: 'mysql://u:hunter2@h/db' });
    assertOneLineNaming(err, 'DATABASE_URL');
    assert.doesNotMatch(err.message, /hunter2/);
  });

  test('a DATABASE_URL that is not a URL is refused without repeating it', () => {
    const err = rejection({ DATABASE_URL: 'u:hunter2@h/db' });
    assertOneLineNaming(err, 'DATABASE_URL');
    assert.doesNotMatch(err.message, /hunter2/);
  });

  test('LOG_LEVEL=verbose is refused with one line naming LOG_LEVEL', () => {
    assertOneLineNaming(rejection({ LOG_LEVEL: 'verbose' }), 'LOG_LEVEL');
  });

  for (const n of ['0', '65', 'many']) {
    test(`MIGRATION_CONCURRENCY=${n} is refused with one line naming MIGRATION_CONCURRENCY`, () => {
      assertOneLineNaming(rejection({ MIGRATION_CONCURRENCY: n }), 'MIGRATION_CONCURRENCY');
    });
  }

  test('the load limits and the audit content setting have their documented defaults', () => {
    const c = loadConfig({});
    assert.equal(
      c.AUDIT_CONTENT,
      'hash',
      'workspace content is hashed in the audit trail unless chosen otherwise',
    );
    assert.equal(c.TENANT_MAX_EXPORTS, 2);
    assert.equal(c.TENANT_MAX_SEARCHES, 4);
    assert.equal(c.TENANT_STATEMENT_TIMEOUT_MS, 5000);
    assert.equal(c.TENANT_IDLE_IN_TRANSACTION_MS, 10000);
    assert.equal(c.EXPORT_STATEMENT_TIMEOUT_MS, 60000);
    assert.equal(c.EXPORT_SPOOL_BUDGET_MB, 1024);
    assert.equal(c.EXPORT_SPOOL_DIR, undefined);
    assert.equal(c.EXPORT_DEADLINE_SECONDS, 600);
    assert.equal(loadConfig({ AUDIT_CONTENT: 'full' }).AUDIT_CONTENT, 'full');
  });

  for (const [setting, value] of [
    ['AUDIT_CONTENT', 'verbatim'],
    ['TENANT_MAX_EXPORTS', '0'],
    ['TENANT_MAX_SEARCHES', 'many'],
    ['TENANT_STATEMENT_TIMEOUT_MS', '-1'],
    ['EXPORT_SPOOL_BUDGET_MB', '0'],
    ['EXPORT_DEADLINE_SECONDS', '0'],
  ] as const) {
    test(`${setting}=${value} is refused with one line naming ${setting}`, () => {
      assertOneLineNaming(rejection({ [setting]: value }), setting);
    });
  }
});
