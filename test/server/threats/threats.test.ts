// Threat flags on a real server (real PostgreSQL and Redis): each rule is
// raised by a scripted attack, lands in control.threat_flags and the platform
// audit chain, shows in the admin API and page and in /metrics, and can be
// acknowledged with a note; a normal session's day of work raises none.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import request from 'supertest';
import { createPrivilegedUser } from '../../../server/accounts/accounts.ts';
import { csrfOf, HTML, submit } from '../../helpers/http.ts';
import { assertNoInlineCode } from '../../helpers/pages.ts';
import {
  GOOD_PASSWORD,
  quickLockout,
  type SignedIn,
  signIn,
  signInPrivileged,
  signUp,
  startTestServer,
  type TestServer,
  uniqueEmail,
} from '../../helpers/server.ts';

const THRESHOLDS = {
  THREAT_FAILED_SIGNINS: '3',
  THREAT_NOT_FOUND_BURST: '3',
  THREAT_REJECTED_BURST: '3',
  // The client address from X-Forwarded-For, so each attack can come from its own address.
  TRUST_PROXY: 'loopback',
};

interface Flag {
  id: string;
  rule: string;
  severity: string;
  subject: string;
  count: string;
  details: Record<string, unknown>;
  acknowledged_at: Date | null;
}

async function flagsOf(t: TestServer, rule: string, subject?: string): Promise<Flag[]> {
  const { rows } = await t.db.pool.query<Flag>(
    `SELECT id::text, rule, severity, subject, count::text, details, acknowledged_at
       FROM control.threat_flags WHERE rule = $1 AND ($2::text IS NULL OR subject = $2) ORDER BY id`,
    [rule, subject ?? null],
  );
  return rows;
}

/** Flags are written after the response: wait for them (a few seconds at most). */
async function waitForFlags(t: TestServer, rule: string, subject?: string, n = 1): Promise<Flag[]> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const rows = await flagsOf(t, rule, subject);
    if (rows.length >= n || Date.now() > deadline) return rows;
    await sleep(50);
  }
}

const from = (ip: string) => ({ 'X-Forwarded-For': ip });

describe('threat flags raised by scripted attacks', () => {
  let t: TestServer;
  let admin: SignedIn;
  let alice: SignedIn;

  before(async () => {
    t = await startTestServer(THRESHOLDS, { abuse: quickLockout(60_000, 60_000) });
    admin = await signInPrivileged(t, 'admin');
    alice = await signUp(t.url);
  });
  after(() => t.stop());

  test('a burst of failed sign-ins raises a flag for the account and one for the address', async () => {
    const victim = await signUp(t.url);
    for (let i = 0; i < 3; i++) {
      await request(t.url)
        .post('/api/v1/auth/login')
        .set(from('203.0.113.10'))
        .send({ email: victim.email, password: 'wrong-password-guess-1' })
        .expect(401);
    }
    const [account] = await waitForFlags(t, 'failed_signins', `account:${victim.user.id}`);
    assert.ok(account, 'a flag for the account');
    assert.equal(account.severity, 'medium');
    assert.equal(account.count, '3');
    const [address] = await waitForFlags(t, 'failed_signins', 'ip:203.0.113.10');
    assert.ok(address, 'a flag for the address');
  });

  test('two failures stay under the threshold: no flag', async () => {
    const other = await signUp(t.url);
    for (let i = 0; i < 2; i++) {
      await request(t.url)
        .post('/api/v1/auth/login')
        .set(from('203.0.113.11'))
        .send({ email: other.email, password: 'wrong-password-guess-2' })
        .expect(401);
    }
    await sleep(300);
    assert.deepEqual(await flagsOf(t, 'failed_signins', `account:${other.user.id}`), []);
    assert.deepEqual(await flagsOf(t, 'failed_signins', 'ip:203.0.113.11'), []);
  });

  test('a lockout raises a high flag at once for the account', async () => {
    const victim = await signUp(t.url);
    // quickLockout: the third failure locks the account; spread over addresses, so only the account counts.
    for (let i = 0; i < 3; i++) {
      await request(t.url)
        .post('/api/v1/auth/login')
        .set(from(`198.18.0.${i + 1}`))
        .send({ email: victim.email, password: 'wrong-password-guess-3' })
        .expect(401);
    }
    await request(t.url)
      .post('/api/v1/auth/login')
      .send({ email: victim.email, password: victim.password })
      .expect(429);
    const [flag] = await waitForFlags(t, 'lockout', `account:${victim.user.id}`);
    assert.ok(flag, 'a lockout flag');
    assert.equal(flag.severity, 'high');
    assert.equal(flag.details.address, '198.18.0.3');
  });

  test('one session asking for many note ids that do not exist raises an enumeration flag', async () => {
    const mallory = await signUp(t.url);
    for (const id of [900001, 900002, 900003]) await mallory.agent.get(`/api/v1/notes/${id}`).expect(404);
    const flags = await waitForFlags(t, 'id_enumeration');
    const flag = flags.find((f) => f.details.userId === mallory.user.id);
    assert.ok(flag, 'a flag about the session');
    assert.match(flag.subject, /^session:[0-9a-f]{24}$/, 'the session id is hashed, never stored');
    assert.equal(flag.details.tenantId, mallory.user.tenantId);
  });

  test('a burst of rejected API tokens from one address raises a flag', async () => {
    for (let i = 0; i < 3; i++) {
      await request(t.url)
        .get('/api/v1/notes')
        .set(from('203.0.113.20'))
        .set('Authorization', `Bearer enclave_guess${i}`)
        .expect(401);
    }
    const [flag] = await waitForFlags(t, 'rejected_tokens', 'ip:203.0.113.20');
    assert.ok(flag);
    assert.equal(flag.severity, 'medium');
    assert.doesNotMatch(JSON.stringify(flag.details), /guess/, 'no token in the flag');
  });

  test('a burst of CSRF failures from one address raises a flag', async () => {
    for (let i = 0; i < 3; i++) {
      await alice.agent
        .post('/api/v1/notes')
        .set(from('203.0.113.30'))
        .set('X-CSRF-Token', 'not-the-token')
        .send({ title: 'forged' })
        .expect(403);
    }
    const [flag] = await waitForFlags(t, 'csrf_failures', 'ip:203.0.113.30');
    assert.ok(flag);
  });

  test('an admin signing in from an address not seen in 30 days raises a flag; known addresses do not', async () => {
    const email = uniqueEmail('admin');
    const { id: userId } = await createPrivilegedUser(t.db.pool, {
      email,
      password: GOOD_PASSWORD,
      displayName: 'Second admin',
      role: 'admin',
    });
    const login = (ip: string) =>
      request(t.url)
        .post('/api/v1/auth/login')
        .set(from(ip))
        .send({ email, password: GOOD_PASSWORD })
        .expect(200);
    await login('192.0.2.1'); // the first sign-in ever: nothing to compare with
    await login('192.0.2.1'); // a known address
    await sleep(300);
    assert.deepEqual(await flagsOf(t, 'new_address_signin', `account:${userId}`), []);
    await login('192.0.2.99');
    const [flag] = await waitForFlags(t, 'new_address_signin', `account:${userId}`);
    assert.ok(flag);
    assert.equal(flag.severity, 'medium');
    assert.equal(flag.details.address, '192.0.2.99');
    assert.equal(flag.details.role, 'admin');
  });

  test('an owner signing in from a new address raises nothing', async () => {
    const bob = await signUp(t.url);
    await signIn(t.url, bob.email, bob.password);
    await request(t.url)
      .post('/api/v1/auth/login')
      .set(from('192.0.2.77'))
      .send({ email: bob.email, password: bob.password })
      .expect(200);
    await sleep(300);
    assert.deepEqual(await flagsOf(t, 'new_address_signin', `account:${bob.user.id}`), []);
  });

  describe('a forced permission-denied error (42501) inside a unit of work', () => {
    let victim: SignedIn;
    let flag: Flag;
    let requestId: string;

    before(async () => {
      victim = await signUp(t.url);
      await victim.agent
        .post('/api/v1/notes')
        .set('X-CSRF-Token', victim.csrf)
        .send({ title: 'x' })
        .expect(201);
      // The bug simulated: the tenant role loses its privilege on its own table.
      const { rows } = await t.db.pool.query<{ schema_name: string; role_name: string }>(
        'SELECT schema_name, role_name FROM control.tenants WHERE id = $1',
        [victim.user.tenantId],
      );
      const tenant = rows[0] as { schema_name: string; role_name: string };
      await t.db.pool.query(`REVOKE SELECT ON "${tenant.schema_name}".notes FROM "${tenant.role_name}"`);
      const res = await victim.agent.get('/api/v1/notes').expect(403);
      assert.equal(res.body.error.code, 'permission_denied');
      requestId = String(res.headers['x-request-id']);
      [flag] = (await waitForFlags(t, 'permission_denied', `tenant:${victim.user.tenantId}`)) as [Flag];
      assert.ok(flag, 'a permission_denied flag');
    });

    test('is a critical flag naming the tenant, the user and the request, never the SQL', () => {
      assert.equal(flag.severity, 'critical');
      assert.equal(flag.details.tenantId, victim.user.tenantId);
      assert.equal(flag.details.userId, victim.user.id);
      assert.equal(flag.details.requestId, requestId);
      assert.equal(flag.details.sqlstate, '42501');
      assert.doesNotMatch(JSON.stringify(flag.details), /\bselect\b|\bfrom\b|permission denied/i);
    });

    test('is written to the platform audit chain', async () => {
      const { rows } = await t.db.pool.query(
        `SELECT tenant_id, actor_type, outcome_code, details FROM control.audit_inbox
          WHERE action = 'threat.flag' AND resource_id = $1`,
        [flag.id],
      );
      assert.equal(rows.length, 1);
      assert.equal(rows[0].tenant_id, null);
      assert.equal(rows[0].actor_type, 'system');
      assert.equal(rows[0].outcome_code, 'permission_denied');
      assert.equal(rows[0].details.severity, 'critical');
    });

    test('is listed by the admin API and on the threats page', async () => {
      const api = await admin.agent.get('/api/v1/admin/threats?severity=critical').expect(200);
      const listed = api.body.flags.find((f: { id: string }) => f.id === flag.id);
      assert.ok(listed);
      assert.equal(listed.state, 'open');
      assert.equal(listed.subject, `tenant:${victim.user.tenantId}`);
      const page = await admin.agent.get('/admin/threats').set('Accept', HTML).expect(200);
      assert.match(page.text, new RegExp(`id="flag-${flag.id}"`));
      assert.match(page.text, /permission_denied/);
      assert.match(page.text, new RegExp(`tenant:${victim.user.tenantId}`));
      assertNoInlineCode(page.text, '/admin/threats');
    });

    test('is counted in /metrics', async () => {
      const text = (await admin.agent.get('/metrics').expect(200)).text;
      const open = /^enclave_threat_flags_open\{severity="critical"\} (\d+)$/m.exec(text);
      assert.ok(open && Number(open[1]) >= 1, 'open critical flags counted');
      const total = /^enclave_threat_flags_total\{rule="permission_denied"\} (\d+)$/m.exec(text);
      assert.ok(total && Number(total[1]) >= 1, 'permission_denied flags counted');
      assert.match(text, /^enclave_threat_flags_open\{severity="low"\} 0$/m, 'every severity, 0 included');
    });

    test('acknowledged with a note through the API: audited, moved to acknowledged; the next hit opens a new flag', async () => {
      const res = await admin.agent
        .post(`/api/v1/admin/threats/${flag.id}/acknowledge`)
        .set('X-CSRF-Token', admin.csrf)
        .send({ note: 'Privilege restored; migration bug filed.' })
        .expect(200);
      assert.equal(res.body.flag.state, 'acknowledged');
      assert.equal(res.body.flag.note, 'Privilege restored; migration bug filed.');
      assert.equal(res.body.flag.acknowledgedBy.id, admin.user.id);
      const audit = await t.db.pool.query(
        `SELECT actor_type, actor_id, details FROM control.audit_inbox
          WHERE action = 'threat.acknowledge' AND resource_id = $1`,
        [flag.id],
      );
      assert.equal(audit.rows.length, 1);
      assert.equal(audit.rows[0].actor_id, admin.user.id);
      assert.equal(audit.rows[0].details.note, 'Privilege restored; migration bug filed.');
      const acked = await admin.agent.get('/api/v1/admin/threats?state=acknowledged').expect(200);
      assert.ok(acked.body.flags.some((f: { id: string }) => f.id === flag.id));
      const open = await admin.agent.get('/api/v1/admin/threats').expect(200);
      assert.ok(!open.body.flags.some((f: { id: string }) => f.id === flag.id));
      // Twice: a conflict.
      await admin.agent
        .post(`/api/v1/admin/threats/${flag.id}/acknowledge`)
        .set('X-CSRF-Token', admin.csrf)
        .send({ note: 'again' })
        .expect(409);
      // A new hit: a new open flag; the acknowledged one stays as it was.
      await victim.agent.get('/api/v1/notes').expect(403);
      const flags = await waitForFlags(t, 'permission_denied', `tenant:${victim.user.tenantId}`, 2);
      assert.equal(flags.length, 2);
      assert.ok(flags[0]?.acknowledged_at);
      assert.equal(flags[1]?.acknowledged_at, null);
      assert.notEqual(flags[1]?.id, flag.id);
    });

    test('acknowledged from the page with a note (post/redirect/get)', async () => {
      const [open] = (await flagsOf(t, 'permission_denied', `tenant:${victim.user.tenantId}`)).filter(
        (f) => f.acknowledged_at === null,
      );
      assert.ok(open);
      const res = await submit(
        admin.agent,
        '/admin/threats',
        `/admin/threats/${open.id}/acknowledge`,
        {
          note: 'Seen from the page.',
        },
        { Accept: HTML },
      );
      assert.equal(res.status, 303);
      assert.equal(res.headers.location, '/admin/threats');
      const page = await admin.agent.get('/admin/threats?state=acknowledged').set('Accept', HTML).expect(200);
      assert.match(page.text, /Seen from the page\./);
      assert.match(page.text, new RegExp(`Flag ${open.id} acknowledged`));
      // An empty note is refused, and the flag stays as it is.
      const again = await submit(
        admin.agent,
        '/admin/threats?state=all',
        `/admin/threats/${flag.id}/acknowledge`,
        {
          note: '   ',
        },
        { Accept: HTML },
      );
      assert.equal(again.status, 303);
    });
  });

  test('users and auditors get 403 from the API and the page; anonymous visitors are sent to sign in', async () => {
    const auditor = await signInPrivileged(t, 'auditor');
    for (const who of [alice, auditor]) {
      await who.agent.get('/api/v1/admin/threats').expect(403);
      await who.agent
        .post('/api/v1/admin/threats/1/acknowledge')
        .set('X-CSRF-Token', who.csrf)
        .send({ note: 'x' })
        .expect(403);
      await who.agent.get('/admin/threats').set('Accept', HTML).expect(403);
    }
    const anon = await request(t.url).get('/admin/threats').set('Accept', HTML).expect(303);
    assert.equal(anon.headers.location, '/login');
    await request(t.url).get('/api/v1/admin/threats').expect(401);
  });

  test('bad input is 400; ids that are not flags are 404', async () => {
    const get = (q: string) => admin.agent.get(`/api/v1/admin/threats${q}`);
    assert.equal((await get('?state=closed').expect(400)).body.error.code, 'invalid_input');
    await get('?severity=urgent').expect(400);
    await get('?cursor=abc').expect(400);
    await get('?page=2').expect(400);
    const ack = (id: string, body: unknown) =>
      admin.agent
        .post(`/api/v1/admin/threats/${id}/acknowledge`)
        .set('X-CSRF-Token', admin.csrf)
        .send(body as object);
    await ack('1', {}).expect(400);
    await ack('1', { note: '' }).expect(400);
    await ack('1', { note: 'x'.repeat(2001) }).expect(400);
    await ack('1', { note: 'ok', extra: true }).expect(400);
    await ack('abc', { note: 'ok' }).expect(404);
    await ack('999999999', { note: 'ok' }).expect(404);
    const page = await admin.agent.get('/admin/threats?state=closed').set('Accept', HTML).expect(400);
    assert.match(page.text, /state/);
    csrfOf(page.text);
  });
});

describe("a normal session's day of work", () => {
  let t: TestServer;

  before(async () => {
    // The lowest thresholds there are: two hits of any rule from one subject would raise a flag.
    t = await startTestServer({
      THREAT_FAILED_SIGNINS: '2',
      THREAT_NOT_FOUND_BURST: '2',
      THREAT_REJECTED_BURST: '2',
    });
  });
  after(() => t.stop());

  test('sign in, notes and tasks created, edited, searched and deleted, an export, sign out: no flag', async () => {
    const me = await signUp(t.url);
    await me.agent.post('/api/v1/auth/logout').set('X-CSRF-Token', me.csrf).expect(204);
    const day = await signIn(t.url, me.email, me.password);
    const { agent, csrf } = day;
    const note = (
      await agent
        .post('/api/v1/notes')
        .set('X-CSRF-Token', csrf)
        .send({ title: 'Plan', body: 'apples' })
        .expect(201)
    ).body.note;
    await agent.get(`/api/v1/notes/${note.id}`).expect(200);
    const edited = (
      await agent
        .patch(`/api/v1/notes/${note.id}`)
        .set('X-CSRF-Token', csrf)
        .send({ version: note.version, body: 'apples and pears' })
        .expect(200)
    ).body.note;
    await agent.get('/api/v1/search?q=pears').expect(200);
    const task = (
      await agent.post('/api/v1/tasks').set('X-CSRF-Token', csrf).send({ title: 'Buy pears' }).expect(201)
    ).body.task;
    await agent
      .patch(`/api/v1/tasks/${task.id}`)
      .set('X-CSRF-Token', csrf)
      .send({ version: task.version, status: 'done' })
      .expect(200);
    await agent.get('/api/v1/notes').expect(200);
    await agent.get('/api/v1/tasks').expect(200);
    await agent.get('/workspace').set('Accept', HTML).expect(200);
    await agent.get('/api/v1/export').expect(200);
    await agent
      .delete(`/api/v1/notes/${note.id}?version=${edited.version}`)
      .set('X-CSRF-Token', csrf)
      .expect(204);
    await agent
      .delete(`/api/v1/tasks/${task.id}?version=${task.version + 1}`)
      .set('X-CSRF-Token', csrf)
      .expect(204);
    await agent.post('/api/v1/auth/logout').set('X-CSRF-Token', csrf).expect(204);
    // An admin's ordinary day too: signs in twice from the same address and looks at the threats.
    const admin = await signInPrivileged(t, 'admin');
    await signIn(t.url, admin.email, admin.password);
    await admin.agent.get('/admin/threats').set('Accept', HTML).expect(200);
    await admin.agent.get('/api/v1/admin/threats?state=all').expect(200);
    await sleep(500);
    const { rows } = await t.db.pool.query('SELECT rule, subject FROM control.threat_flags');
    assert.deepEqual(rows, []);
  });
});
