// What the audit trail records, end to end on a real server (PostgreSQL +
// Redis): every sign-in, failed sign-in, sign-out, MFA change, session and
// token revocation, tenant lifecycle step, admin action and (with
// AUDIT_READS) workspace read writes its inbox event with the right actor,
// action, outcome and tenant, and never a secret; then the sealer moves them
// into the chains unchanged. An event whose transaction rolls back never
// appears anywhere.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import { openSigner, type Signer } from '../../audit/signing.ts';
import { createPrivilegedUser } from '../../server/accounts/accounts.ts';
import { migrateFleet } from '../../tenancy/fleet-migrate.ts';
import { setLegalHold, setTenantState } from '../../tenancy/lifecycle.ts';
import { createOrm } from '../../tenancy/orm.ts';
import { provisionTenant } from '../../tenancy/provision.ts';
import { loadTenantMigrations } from '../../tenancy/templates.ts';
import { TenantContext } from '../../tenancy/unit-of-work.ts';
import { enclave } from '../helpers/cli.ts';
import { submit } from '../helpers/http.ts';
import { migrationsDirWith } from '../helpers/migrations.ts';
import {
  GOOD_PASSWORD,
  type SignedIn,
  signIn,
  signUp,
  startTestServer,
  type TestServer,
  uniqueEmail,
} from '../helpers/server.ts';
import { steadyStep, totp } from '../helpers/totp.ts';
import { sealAll } from './chain-helpers.ts';

interface InboxRow {
  id: number;
  tenant_id: string | null;
  actor_type: string;
  actor_id: string | null;
  action: string;
  resource_type: string | null;
  resource_id: string | null;
  outcome: string;
  outcome_code: string | null;
  ip: string | null;
  user_agent: string | null;
  request_id: string | null;
  details: Record<string, unknown>;
}

/** Every secret handed out or typed during the run: none may ever reach the trail. */
const secrets: string[] = [GOOD_PASSWORD];
const WRONG_PASSWORD = 'not-my-password-771';
secrets.push(WRONG_PASSWORD);

describe('audit events', () => {
  let t: TestServer;
  let dataDir: string;
  let owner: SignedIn;

  before(async () => {
    dataDir = mkdtempSync(path.join(tmpdir(), 'enclave-events-'));
    t = await startTestServer({ DATA_DIR: dataDir });
    owner = await signUp(t.url);
  });
  after(async () => {
    await t.stop();
  });

  const mark = async () =>
    Number((await t.db.pool.query('SELECT coalesce(max(id), 0) AS m FROM control.audit_inbox')).rows[0].m);
  const since = async (from: number) =>
    (await t.db.pool.query<InboxRow>('SELECT * FROM control.audit_inbox WHERE id > $1 ORDER BY id', [from]))
      .rows;
  const one = (rows: InboxRow[], action: string, outcome = 'success') => {
    const found = rows.filter((r) => r.action === action && r.outcome === outcome);
    assert.equal(found.length, 1, `one ${action} ${outcome} in ${rows.map((r) => r.action).join(', ')}`);
    return found[0] as InboxRow;
  };

  test('registration records the provisioning and the account, both by the new person, and the sign-in', async () => {
    const m = await mark();
    const person = await signUp(t.url);
    const rows = await since(m);
    const tenantId = person.user.tenantId;
    for (const action of ['tenant.provision', 'account.register', 'auth.login']) {
      const row = one(rows, action);
      assert.equal(row.actor_type, 'user');
      assert.equal(row.actor_id, person.user.id);
      assert.equal(row.tenant_id, tenantId, `${action} is in the new tenant's chain`);
      assert.equal(row.ip, '127.0.0.1');
      assert.ok(row.request_id, 'the request id is recorded');
    }
    assert.equal(one(rows, 'tenant.provision').resource_id, tenantId);
    assert.equal(one(rows, 'auth.login').details.method, 'registration');
    assert.equal(one(rows, 'auth.login').resource_type, 'session');
  });

  test('a sign-in, failed sign-ins (with the reason, never the address in clear) and a sign-out', async () => {
    let m = await mark();
    const device = await signIn(t.url, owner.email, GOOD_PASSWORD);
    let rows = await since(m);
    const login = one(rows, 'auth.login');
    assert.deepEqual(
      [login.actor_type, login.actor_id, login.tenant_id, login.details.method],
      ['user', owner.user.id, owner.user.tenantId, 'password'],
    );

    m = await mark();
    await request(t.url)
      .post('/api/v1/auth/login')
      .send({ email: owner.email, password: WRONG_PASSWORD })
      .expect(401);
    const stranger = uniqueEmail('stranger');
    await request(t.url)
      .post('/api/v1/auth/login')
      .send({ email: stranger, password: WRONG_PASSWORD })
      .expect(401);
    // The page takes the same path (a browser: the form's token first).
    const browser = request.agent(t.url);
    const byForm = await submit(browser, '/login', '/login', { email: stranger, password: WRONG_PASSWORD });
    assert.equal(byForm.status, 401);
    rows = await since(m);
    const failed = rows.filter((r) => r.action === 'auth.login' && r.outcome === 'failure');
    assert.equal(failed.length, 3);
    const [known, unknown, page] = failed as [InboxRow, InboxRow, InboxRow];
    assert.deepEqual(
      [known.actor_type, known.actor_id, known.tenant_id, known.outcome_code],
      ['user', owner.user.id, owner.user.tenantId, 'wrong_password'],
    );
    assert.deepEqual(
      [unknown.actor_type, unknown.actor_id, unknown.tenant_id, unknown.outcome_code],
      ['anonymous', null, null, 'unknown_account'],
    );
    assert.match(String(unknown.details.emailHmac), /^[0-9a-f]{32}$/);
    assert.equal(page.details.emailHmac, unknown.details.emailHmac, 'one address, one keyed hash');
    const text = JSON.stringify(rows);
    assert.ok(
      !text.includes(stranger) && !text.includes(stranger.split('@')[0] as string),
      'no address in clear',
    );

    m = await mark();
    await device.agent.post('/api/v1/auth/logout').set('X-CSRF-Token', device.csrf).expect(204);
    rows = await since(m);
    const logout = one(rows, 'auth.logout');
    assert.equal(logout.actor_id, owner.user.id);
    assert.equal(
      logout.resource_id,
      login.resource_id,
      'the session that signed in is the one that signed out',
    );
  });

  test('MFA: turned on, a wrong code, new recovery codes, a recovery code used, turned off', async () => {
    await steadyStep(25);
    const person = await signUp(t.url);
    const csrf = person.csrf;
    const setup = await person.agent.post('/api/v1/mfa/setup').set('X-CSRF-Token', csrf).expect(200);
    const secret = setup.body.secret as string;
    secrets.push(secret);

    let m = await mark();
    await person.agent
      .post('/api/v1/mfa/enable')
      .set('X-CSRF-Token', csrf)
      .send({ password: GOOD_PASSWORD, code: '000000' })
      .expect(401);
    const enable = await person.agent
      .post('/api/v1/mfa/enable')
      .set('X-CSRF-Token', csrf)
      .send({ password: GOOD_PASSWORD, code: await totp(secret, -1) })
      .expect(200);
    let rows = await since(m);
    assert.equal(one(rows, 'mfa.enable', 'failure').outcome_code, 'wrong_code');
    assert.equal(one(rows, 'mfa.enable').tenant_id, person.user.tenantId);
    const csrf2 = enable.body.csrfToken as string;

    m = await mark();
    const regenerated = await person.agent
      .post('/api/v1/mfa/recovery-codes')
      .set('X-CSRF-Token', csrf2)
      .send({ password: GOOD_PASSWORD, code: await totp(secret, 0) })
      .expect(200);
    const codes = regenerated.body.recoveryCodes as string[];
    secrets.push(...codes, ...(enable.body.recoveryCodes as string[]));
    one(await since(m), 'mfa.recovery_codes.regenerate');

    m = await mark();
    const body = { email: person.email, password: GOOD_PASSWORD };
    await request(t.url).post('/api/v1/auth/login').send(body).expect(401); // mfa_required: not a failure
    await request(t.url)
      .post('/api/v1/auth/login')
      .send({ ...body, totp: await totp(secret, 0) })
      .expect(401);
    await request(t.url)
      .post('/api/v1/auth/login')
      .send({ ...body, totp: codes[0] })
      .expect(200);
    rows = await since(m);
    const failures = rows.filter((r) => r.action === 'auth.login' && r.outcome === 'failure');
    assert.deepEqual(
      failures.map((r) => r.outcome_code),
      ['reused_code'],
      'a missing code is the first step of a sign-in, not a failure',
    );
    assert.equal(one(rows, 'mfa.recovery_code.use').details.codesLeft, 9);
    assert.equal(one(rows, 'auth.login').details.method, 'recovery');

    m = await mark();
    await person.agent
      .post('/api/v1/mfa/disable')
      .set('X-CSRF-Token', csrf2)
      .send({ password: WRONG_PASSWORD, code: await totp(secret, 1) })
      .expect(401);
    await person.agent
      .post('/api/v1/mfa/disable')
      .set('X-CSRF-Token', csrf2)
      .send({ password: GOOD_PASSWORD, code: await totp(secret, 1) })
      .expect(200);
    rows = await since(m);
    assert.equal(one(rows, 'mfa.disable', 'failure').outcome_code, 'wrong_password');
    assert.equal(one(rows, 'mfa.disable').actor_id, person.user.id);
  });

  test('sessions end one by one, all at once, and by a password change', async () => {
    const person = await signUp(t.url);
    // Two more devices: one to end alone, one for "all the others".
    await signIn(t.url, person.email, GOOD_PASSWORD);
    await signIn(t.url, person.email, GOOD_PASSWORD);
    const sessions = (await person.agent.get('/api/v1/sessions').expect(200)).body.sessions as Array<{
      id: string;
      current: boolean;
    }>;
    const target = sessions.find((s) => !s.current)?.id as string;

    let m = await mark();
    await person.agent.delete(`/api/v1/sessions/${target}`).set('X-CSRF-Token', person.csrf).expect(204);
    let rows = await since(m);
    const revoke = one(rows, 'session.revoke');
    assert.deepEqual([revoke.resource_id, revoke.details.reason], [target, 'revoked by the user']);

    m = await mark();
    await person.agent.post('/api/v1/sessions/revoke-all').set('X-CSRF-Token', person.csrf).expect(200);
    rows = await since(m);
    assert.equal(one(rows, 'session.revoke_all').details.sessionsEnded, 1);

    await signIn(t.url, person.email, GOOD_PASSWORD); // one more, for the password change to end
    m = await mark();
    await person.agent
      .post('/api/v1/account/password')
      .set('X-CSRF-Token', person.csrf)
      .send({ currentPassword: WRONG_PASSWORD, newPassword: 'a-brand-new-passphrase-5' })
      .expect(401);
    await person.agent
      .post('/api/v1/account/password')
      .set('X-CSRF-Token', person.csrf)
      .send({ currentPassword: GOOD_PASSWORD, newPassword: 'a-brand-new-passphrase-5' })
      .expect(200);
    secrets.push('a-brand-new-passphrase-5');
    rows = await since(m);
    assert.equal(one(rows, 'account.password.change', 'failure').outcome_code, 'wrong_password');
    one(rows, 'account.password.change');
    const all = one(rows, 'session.revoke_all');
    assert.deepEqual([all.details.reason, all.details.sessionsEnded], ['password changed', 1]);
  });

  test('API tokens: creation (name and scope, never the secret) and revocation', async () => {
    let m = await mark();
    const created = await owner.agent
      .post('/api/v1/tokens')
      .set('X-CSRF-Token', owner.csrf)
      .send({ name: 'backup script', scope: 'read' })
      .expect(201);
    secrets.push(created.body.secret);
    let rows = await since(m);
    const row = one(rows, 'token.create');
    assert.deepEqual(
      [row.resource_id, row.tenant_id, row.details],
      [created.body.token.id, owner.user.tenantId, { name: 'backup script', scope: 'read' }],
    );

    // A read through the token is not audited without AUDIT_READS.
    m = await mark();
    await request(t.url)
      .get('/api/v1/notes')
      .set('Authorization', `Bearer ${created.body.secret}`)
      .expect(200);
    assert.equal((await since(m)).length, 0);

    m = await mark();
    await owner.agent
      .delete(`/api/v1/tokens/${created.body.token.id}`)
      .set('X-CSRF-Token', owner.csrf)
      .expect(204);
    rows = await since(m);
    assert.equal(one(rows, 'token.revoke').resource_id, created.body.token.id);
  });

  test('admins: creating one, listing a tenant sessions and ending one, each in the right chain', async () => {
    const email = uniqueEmail('admin');
    let m = await mark();
    const admin = await createPrivilegedUser(t.db.pool, {
      email,
      password: GOOD_PASSWORD,
      displayName: 'Ops',
      role: 'admin',
    });
    let rows = await since(m);
    const created = one(rows, 'account.create');
    assert.deepEqual(
      [created.actor_type, created.tenant_id, created.resource_id, created.details.role],
      ['system', null, admin.id, 'admin'],
    );

    const ops = await signIn(t.url, email, GOOD_PASSWORD);
    await signIn(t.url, owner.email, GOOD_PASSWORD); // a session for the admin to end
    // Ending a session needs the admin's password confirmed first (its own event, `admin.reauth`).
    await ops.agent
      .post('/api/v1/admin/reauth')
      .set('X-CSRF-Token', ops.csrf)
      .send({ password: GOOD_PASSWORD })
      .expect(204);
    m = await mark();
    const listed = await ops.agent.get(`/api/v1/admin/tenants/${owner.user.tenantId}/sessions`).expect(200);
    const session = (listed.body.sessions as Array<{ id: string }>)[0]?.id as string;
    await ops.agent.delete(`/api/v1/admin/sessions/${session}`).set('X-CSRF-Token', ops.csrf).expect(204);
    rows = await since(m);
    const list = one(rows, 'admin.sessions.list');
    assert.deepEqual(
      [list.actor_type, list.actor_id, list.tenant_id],
      ['admin', admin.id, owner.user.tenantId],
    );
    const ended = one(rows, 'session.revoke');
    assert.deepEqual(
      [ended.actor_type, ended.actor_id, ended.tenant_id, ended.details.owner],
      ['admin', admin.id, owner.user.tenantId, owner.user.id],
    );
  });

  test('tenant lifecycle: suspend, archive, resume, legal hold, fleet migration and drop (also by the CLI)', async () => {
    const person = await signUp(t.url);
    const id = person.user.tenantId as string;
    const ops = { actor: { type: 'admin' as const, id: 'ops-1' } };
    let m = await mark();
    await setTenantState(t.db.pool, id, 'suspended', ops);
    await setTenantState(t.db.pool, id, 'archived', ops);
    await setTenantState(t.db.pool, id, 'active', ops);
    await setLegalHold(t.db.pool, id, true, ops);
    await setLegalHold(t.db.pool, id, false);
    let rows = await since(m);
    assert.deepEqual(
      rows.map((r) => [r.action, r.tenant_id, r.actor_type, r.details.to ?? null]),
      [
        ['tenant.suspend', id, 'admin', 'suspended'],
        ['tenant.archive', id, 'admin', 'archived'],
        ['tenant.resume', id, 'admin', 'active'],
        ['tenant.legal_hold.on', id, 'admin', null],
        ['tenant.legal_hold.off', id, 'system', null],
      ],
    );

    const extra = migrationsDirWith({
      audit_flag: 'ALTER TABLE {{schema}}.notes ADD COLUMN audit_flag boolean NOT NULL DEFAULT false;\n',
    });
    const { dir } = extra;
    const next = extra.versions.audit_flag as number;
    m = await mark();
    const summary = await migrateFleet(t.db.pool, loadTenantMigrations(dir), {
      concurrency: 2,
      tenantIds: [id],
      by: ops,
    });
    assert.equal(summary.migrated, 1);
    rows = await since(m);
    const migrated = one(rows, 'tenant.migrate');
    assert.deepEqual(
      [migrated.tenant_id, migrated.details.from, migrated.details.to, migrated.details.applied],
      [id, next - 1, next, [extra.names.audit_flag]],
    );

    m = await mark();
    const cli = (args: string[]) =>
      enclave(args, { env: { DATABASE_URL: t.db.url, TENANT_MIGRATIONS_DIR: dir } });
    const made = cli(['tenants', 'create', '--name', 'Made by ops', '--json']);
    assert.equal(made.code, 0, made.stderr);
    const cliTenant = JSON.parse(made.stdout).id as string;
    const dropped = cli(['tenants', 'drop', id, '--yes', '--json']);
    assert.equal(dropped.code, 0, dropped.stderr);
    rows = await since(m);
    const provision = one(rows, 'tenant.provision');
    assert.equal(provision.tenant_id, cliTenant);
    assert.equal(provision.actor_type, 'system');
    assert.match(String(provision.actor_id), /^cli:.+/);
    const drop = one(rows, 'tenant.drop');
    assert.deepEqual([drop.tenant_id, drop.actor_type, drop.actor_id], [id, 'system', provision.actor_id]);
  });

  test('an event recorded in a transaction that rolls back never appears, in the inbox or after sealing', async () => {
    const { orm, pool } = await createOrm(t.db.url, 1);
    try {
      const tenants = new TenantContext(orm, pool, { cacheMs: 0 });
      await assert.rejects(
        tenants.run(owner.user.tenantId as string, async (uow) => {
          await uow.query({
            text: 'INSERT INTO notes (title, body) VALUES ($1, $2)',
            values: ['doomed', ''],
          });
          uow.audit({
            actor: { type: 'user', id: owner.user.id },
            action: 'note.doomed',
            outcome: 'success',
          });
          throw new Error('changed my mind');
        }),
        /changed my mind/,
      );
    } finally {
      await orm.close();
      // pool is the ORM's own: closed with it
    }
    // A service whose step fails after its event was written: provisioning that
    // fails at its very last step leaves no tenant and no `tenant.provision`.
    const m = await mark();
    let doomed = '';
    await assert.rejects(
      provisionTenant(t.db.pool, { displayName: 'doomed' }, loadTenantMigrations(), {
        afterStep: (step, tenantId) => {
          doomed = tenantId;
          if (step === 'activate') throw new Error('crash at the last step');
        },
      }),
      /crash at the last step/,
    );
    assert.equal((await since(m)).length, 0);
    const signer = await serverSigner(dataDir);
    await sealAll(t.db.pool, signer);
    const { rows } = await t.db.pool.query(
      `SELECT count(*)::int AS n FROM control.audit_log
        WHERE convert_from(entry, 'UTF8') LIKE '%note.doomed%' OR chain = $1`,
      [`t_${doomed}`],
    );
    assert.equal(rows[0].n, 0);
  });

  test('sealed entries carry what the inbox had, and nothing anywhere holds a secret', async () => {
    const signer = await serverSigner(dataDir);
    await sealAll(t.db.pool, signer);
    const { rows } = await t.db.pool.query<{ entry: Buffer }>(
      "SELECT entry FROM control.audit_log WHERE chain <> 'registry' AND entry IS NOT NULL ORDER BY chain, seq",
    );
    const entries = rows.map((r) => JSON.parse(r.entry.toString('utf8')));
    const actions = new Set(entries.map((e) => e.action));
    for (const action of [
      'tenant.provision',
      'account.register',
      'auth.login',
      'auth.logout',
      'mfa.enable',
      'mfa.disable',
      'mfa.recovery_codes.regenerate',
      'mfa.recovery_code.use',
      'session.revoke',
      'session.revoke_all',
      'account.password.change',
      'token.create',
      'token.revoke',
      'account.create',
      'admin.sessions.list',
      'tenant.suspend',
      'tenant.archive',
      'tenant.resume',
      'tenant.legal_hold.on',
      'tenant.legal_hold.off',
      'tenant.migrate',
      'tenant.drop',
    ])
      assert.ok(actions.has(action), `${action} is sealed`);
    const failure = entries.find((e) => e.action === 'auth.login' && e.outcome.result === 'failure');
    assert.equal(failure.where.ip, '127.0.0.1');

    const inbox = await t.db.pool.query('SELECT * FROM control.audit_inbox');
    const everything = `${JSON.stringify(inbox.rows)}\n${rows.map((r) => r.entry.toString('utf8')).join('\n')}`;
    for (const secret of secrets)
      assert.ok(!everything.includes(secret), `a secret (${secret.slice(0, 4)}…) is in the audit trail`);
  });
});

describe('AUDIT_READS', () => {
  for (const setting of ['true', 'false']) {
    test(`${setting === 'true' ? 'on: a workspace read writes one read event' : 'off: reads write nothing'}`, async () => {
      const t = await startTestServer({ AUDIT_READS: setting });
      try {
        const person = await signUp(t.url);
        const note = (
          await person.agent
            .post('/api/v1/notes')
            .set('X-CSRF-Token', person.csrf)
            .send({ title: 'Read me', body: 'text' })
            .expect(201)
        ).body.note;
        const before = Number(
          (await t.db.pool.query('SELECT coalesce(max(id), 0) AS m FROM control.audit_inbox')).rows[0].m,
        );
        await person.agent.get(`/api/v1/notes/${note.id}`).expect(200);
        await person.agent.get('/api/v1/notes?limit=5&tag=home').expect(200);
        await person.agent.get('/workspace').expect(200);
        const { rows } = await t.db.pool.query<InboxRow>(
          'SELECT * FROM control.audit_inbox WHERE id > $1 ORDER BY id',
          [before],
        );
        if (setting === 'false') {
          assert.equal(rows.length, 0);
          return;
        }
        assert.deepEqual(
          rows.map((r) => [r.action, r.tenant_id, r.actor_id, r.resource_type, r.resource_id]),
          [
            ['workspace.read', person.user.tenantId, person.user.id, 'note', String(note.id)],
            ['workspace.read', person.user.tenantId, person.user.id, 'note', null],
            ['workspace.read', person.user.tenantId, person.user.id, 'workspace', null],
          ],
          'one event per request, however many reads the page makes',
        );
        // A tag is workspace content: by default (AUDIT_CONTENT=hash) its length and SHA-256 only.
        assert.deepEqual(rows[1]?.details.query, {
          limit: '5',
          tag: { length: 4, sha256: createHash('sha256').update('home').digest('hex') },
        });
        assert.equal(rows[1]?.details.route, '/api/v1/notes');
        assert.ok(rows.every((r) => r.request_id && r.ip === '127.0.0.1'));
        // A refused read (another tenant's id) writes nothing.
        const after = rows.at(-1)?.id as number;
        await person.agent.get('/api/v1/notes/999999').expect(404);
        const { rows: none } = await t.db.pool.query('SELECT 1 FROM control.audit_inbox WHERE id > $1', [
          after,
        ]);
        assert.equal(none.length, 0);
      } finally {
        await t.stop();
      }
    });
  }
});

/** The server's own signing key (the sealer signs only with the published current key). */
function serverSigner(dataDir: string): Promise<Signer> {
  return openSigner(path.join(dataDir, 'audit-signing-key.pem'), { create: false });
}
