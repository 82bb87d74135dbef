import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setLegalHold } from '../../tenancy/lifecycle.ts';
import { latestVersion, loadTenantMigrations } from '../../tenancy/templates.ts';
import { enclaveWith, oneLine } from '../helpers/cli.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';

let db: TestDatabase;

const enclave = enclaveWith(() => ({ DATABASE_URL: db.url }));

describe('enclave CLI', () => {
  before(async () => {
    db = await createTestDatabase();
  });
  after(async () => {
    await db.drop();
  });

  test('--help works on every command and exits 0', () => {
    for (const args of [
      [],
      ['tenants'],
      ['tenants', 'create'],
      ['tenants', 'list'],
      ['tenants', 'migrate'],
      ['tenants', 'drift'],
      ['tenants', 'drop'],
    ]) {
      const r = enclave([...args, '--help']);
      assert.equal(r.code, 0, args.join(' '));
      assert.match(r.stdout, /Usage: enclave/);
    }
  });

  test('tenants create --json then tenants list --json give id, name, schema, role, state and version', () => {
    const created = enclave(['tenants', 'create', '--name', 'Acme Research', '--json']);
    assert.equal(created.code, 0, created.stderr);
    const tenant = JSON.parse(created.stdout);
    assert.match(tenant.id, /^[a-z0-9]{12}$/);
    assert.equal(tenant.name, 'Acme Research');
    assert.equal(tenant.schema, `t_${tenant.id}`);
    assert.equal(tenant.role, `t_${tenant.id}`);
    assert.equal(tenant.state, 'active');
    assert.equal(tenant.version, latestVersion(loadTenantMigrations()));

    const listed = enclave(['tenants', 'list', '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    const all = JSON.parse(listed.stdout);
    assert.deepEqual(
      all.find((t: { id: string }) => t.id === tenant.id),
      tenant,
    );
    const table = enclave(['tenants', 'list']);
    assert.match(table.stdout, /^ID\s+NAME\s+SCHEMA\s+ROLE\s+STATE\s+VERSION/);
    assert.match(table.stdout, /Acme Research/);
  });

  test('migrate and drift report a current, clean fleet and exit 0', () => {
    const migrate = enclave(['tenants', 'migrate', '--json']);
    assert.equal(migrate.code, 0, migrate.stderr);
    assert.equal(JSON.parse(migrate.stdout).migrated, 0);
    const drift = enclave(['tenants', 'drift']);
    assert.equal(drift.code, 0, drift.stderr);
    assert.match(drift.stdout, /0 with drift/);
  });

  const misuse: Array<[string, string[], RegExp]> = [
    ['an unknown command', ['tenants', 'explode'], /unknown command 'explode'/],
    ['an unknown option', ['tenants', 'list', '--colour'], /unknown option '--colour'/],
    ['a missing --name', ['tenants', 'create'], /--name <name>' not specified/],
    [
      'a non-numeric --concurrency',
      ['tenants', 'migrate', '--concurrency', 'lots'],
      /whole number from 1 to 64/,
    ],
    ['a zero --concurrency', ['tenants', 'migrate', '--concurrency', '0'], /whole number from 1 to 64/],
    [
      'a malformed tenant id',
      ['tenants', 'drop', "x'; DROP TABLE control.tenants;--", '--yes'],
      /is not a tenant id/,
    ],
    [
      'an unknown tenant id to migrate',
      ['tenants', 'migrate', '--tenant', 'zzzzzzzzzzzz'],
      /no such tenant: zzzzzzzzzzzz/,
    ],
    ['drop without --yes and no terminal', ['tenants', 'drop', 'zzzzzzzzzzzz'], /pass --yes/],
  ];
  for (const [what, args, message] of misuse) {
    test(`${what} gets one clear line and exit code 2`, () => {
      const r = enclave(args);
      assert.equal(r.code, 2, r.stderr);
      assert.match(oneLine(r.stderr), message);
      assert.match(r.stderr, /^enclave: /);
    });
  }

  test('a bad setting gets one line naming it, exit code 78, and never echoes a password', () => {
    const r = enclave(['tenants', 'list'], { env: { DATABASE_URL: 'mysql://admin:hunter2@db/x' } });
    assert.equal(r.code, 78);
    const line = oneLine(r.stderr);
    assert.match(line, /DATABASE_URL/);
    assert.doesNotMatch(line, /hunter2/);
    const port = enclave(['tenants', 'list'], { env: { MIGRATION_CONCURRENCY: '1000' } });
    assert.equal(port.code, 78);
    assert.match(oneLine(port.stderr), /MIGRATION_CONCURRENCY: must be a whole number from 1 to 64/);
  });

  test('drop removes schema and role and marks the tenant deleted; legal hold refuses it with exit 1', async () => {
    const held = JSON.parse(enclave(['tenants', 'create', '--name', 'Held', '--json']).stdout);
    await setLegalHold(db.pool, held.id, true);
    const refused = enclave(['tenants', 'drop', held.id, '--yes']);
    assert.equal(refused.code, 1);
    assert.match(oneLine(refused.stderr), /legal hold/);
    const schema = await db.pool.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [held.schema]);
    assert.equal(schema.rowCount, 1, 'the held schema is untouched');

    await setLegalHold(db.pool, held.id, false);
    const dropped = enclave(['tenants', 'drop', held.id, '--yes', '--json']);
    assert.equal(dropped.code, 0, dropped.stderr);
    assert.equal(JSON.parse(dropped.stdout).state, 'deleted');
    assert.equal(
      (await db.pool.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [held.schema])).rowCount,
      0,
    );
    assert.equal((await db.pool.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [held.role])).rowCount, 0);
    const again = enclave(['tenants', 'drop', held.id, '--yes']);
    assert.equal(again.code, 1);
    assert.match(oneLine(again.stderr), /already deleted/);
  });
});
