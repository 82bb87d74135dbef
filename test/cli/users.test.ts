import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { enclaveWith } from '../helpers/cli.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';

let db: TestDatabase;

const enclave = enclaveWith(() => ({ DATABASE_URL: db.url }));

describe('enclave users', () => {
  before(async () => {
    db = await createTestDatabase(1);
  });
  after(async () => {
    await db.drop();
  });

  test('create-admin reads the password from stdin, never from an argument, and stores only a hash', async () => {
    const r = enclave(['users', 'create-admin', '--email', 'Ops@Example.com', '--name', 'Ops', '--json'], {
      input: 'cobalt-ferry-lantern-31\n',
    });
    assert.equal(r.code, 0, r.stderr);
    const user = JSON.parse(r.stdout);
    assert.equal(user.role, 'admin');
    const row = (
      await db.pool.query(
        'SELECT password_hash, role, tenant_id FROM control.users WHERE email_normalized = $1',
        ['ops@example.com'],
      )
    ).rows[0];
    assert.match(row.password_hash, /^\$argon2id\$/);
    assert.equal(row.tenant_id, null);
    assert.doesNotMatch(r.stdout + r.stderr, /cobalt-ferry-lantern-31/);
  });

  test('a weak password, a bad email or a taken email get one line and nothing is created', async () => {
    const weak = enclave(['users', 'create-admin', '--email', 'weak@example.com'], { input: 'short\n' });
    assert.equal(weak.code, 2);
    assert.match(weak.stderr.trim(), /^enclave: the password must be at least 12 characters$/);
    const bad = enclave(['users', 'create-admin', '--email', 'nope'], { input: 'cobalt-ferry-lantern-31\n' });
    assert.equal(bad.code, 2);
    const taken = enclave(['users', 'create-admin', '--email', 'ops@example.com'], {
      input: 'cobalt-ferry-lantern-31\n',
    });
    assert.equal(taken.code, 1);
    assert.match(taken.stderr, /already exists/);
    const { rows } = await db.pool.query('SELECT count(*)::int AS n FROM control.users');
    assert.equal(rows[0].n, 1);
  });

  test('an auditor can be made to require MFA, and it can be lifted', async () => {
    assert.equal(
      enclave(['users', 'create-admin', '--email', 'audit@example.com', '--role', 'auditor'], {
        input: 'cobalt-ferry-lantern-31\n',
      }).code,
      0,
    );
    assert.equal(enclave(['users', 'require-mfa', 'audit@example.com']).code, 0);
    const q = async () =>
      (
        await db.pool.query(
          "SELECT mfa_required FROM control.users WHERE email_normalized = 'audit@example.com'",
        )
      ).rows[0].mfa_required;
    assert.equal(await q(), true);
    assert.equal(enclave(['users', 'require-mfa', 'audit@example.com', '--off']).code, 0);
    assert.equal(await q(), false);
    assert.equal(enclave(['users', 'require-mfa', 'nobody@example.com']).code, 2);
  });
});
