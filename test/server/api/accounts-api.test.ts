import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createClient } from 'redis';
import request from 'supertest';
import { sessionCookie } from '../../helpers/http.ts';
import { migrationsDirWith } from '../../helpers/migrations.ts';
import {
  GOOD_PASSWORD,
  signIn,
  signInPrivileged,
  signUp,
  startTestServer,
  TEST_REDIS_URL,
  type TestServer,
  uniqueEmail,
} from '../../helpers/server.ts';

/** The store key of a session cookie (`enclave.sid=s:<sid>.<signature>`). */
function sidOf(cookie: string): string {
  const value = decodeURIComponent(cookie.slice('enclave.sid='.length));
  return value.slice(2, value.lastIndexOf('.'));
}

async function counts(t: TestServer) {
  const q = async (sql: string) => (await t.db.pool.query(sql)).rows[0].n as number;
  return {
    users: await q('SELECT count(*)::int AS n FROM control.users'),
    tenants: await q('SELECT count(*)::int AS n FROM control.tenants'),
    schemas: await q("SELECT count(*)::int AS n FROM pg_namespace WHERE nspname LIKE 't\\_%'"),
  };
}

describe('accounts and sessions over HTTP', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer();
  });
  after(async () => {
    await t.stop();
  });

  describe('registration', () => {
    test('gives a working workspace that no other account can see', async () => {
      const a = await signUp(t.url);
      const b = await signUp(t.url);
      assert.notEqual(a.user.tenantId, b.user.tenantId);
      await a.agent
        .post('/api/v1/notes')
        .set('X-CSRF-Token', a.csrf)
        .send({ title: 'only for A' })
        .expect(201);
      const mine = await a.agent.get('/api/v1/notes').expect(200);
      assert.deepEqual(
        mine.body.notes.map((n: { title: string }) => n.title),
        ['only for A'],
      );
      const theirs = await b.agent.get('/api/v1/notes').expect(200);
      assert.deepEqual(theirs.body.notes, []);
      const me = await a.agent.get('/api/v1/me').expect(200);
      assert.equal(me.body.tenantId, a.user.tenantId);
      assert.equal(me.body.role, 'user');
    });

    test('a duplicate email, in any case, gets 409 and creates nothing', async () => {
      const email = uniqueEmail('Dup');
      await signUp(t.url, { email });
      const before = await counts(t);
      const res = await request(t.url)
        .post('/api/v1/auth/register')
        .send({ email: `  ${email.toUpperCase()} `, password: GOOD_PASSWORD, displayName: 'Again' })
        .expect(409);
      assert.match(res.body.error.message, /already exists/);
      assert.deepEqual(await counts(t), before);
    });

    const bad: Array<[string, unknown, number, RegExp]> = [
      ['a short password', { password: 'short-pass1' }, 400, /at least 12 characters/],
      ['an overlong password', { password: 'x1'.repeat(129) }, 400, /at most 256 characters/],
      ['a common password', { password: 'password1234' }, 400, /too common/],
      ['a common password with digits tacked on', { password: 'sunshine2024!!' }, 400, /too common/],
      ['a malformed email', { email: 'not-an-email' }, 400, /email address/],
      ['a missing display name', { displayName: '' }, 400, /display name is required/],
      ['a password that is not text', { password: 12345678901234 }, 400, /password is required/],
    ];
    for (const [what, change, status, message] of bad) {
      test(`${what} gets ${status} with a clear message and creates nothing`, async () => {
        const before = await counts(t);
        const body = {
          email: uniqueEmail(),
          password: GOOD_PASSWORD,
          displayName: 'Someone',
          ...(change as object),
        };
        const res = await request(t.url).post('/api/v1/auth/register').send(body).expect(status);
        assert.match(res.body.error.message, message);
        assert.deepEqual(await counts(t), before);
      });
    }

    test('a body that is not JSON, or JSON that is not an object, gets 400 and creates nothing', async () => {
      const before = await counts(t);
      await request(t.url)
        .post('/api/v1/auth/register')
        .set('Content-Type', 'application/json')
        .send('{"email":')
        .expect(400);
      await request(t.url)
        .post('/api/v1/auth/register')
        .set('Content-Type', 'application/json')
        .send('[1,2]')
        .expect(400);
      assert.deepEqual(await counts(t), before);
    });
  });

  describe('sessions', () => {
    test('the session id changes at sign-in and the old one stops working', async () => {
      const { email } = await signUp(t.url);
      const agent = request.agent(t.url);
      // An anonymous visitor has no stored session to fix; a session from an earlier sign-in is one.
      const first = await agent.get('/api/v1/csrf').expect(200);
      assert.equal(sessionCookie(first), undefined, 'no session for an anonymous visitor');
      const earlier = await agent
        .post('/api/v1/auth/login')
        .set('X-CSRF-Token', first.body.token)
        .send({ email, password: GOOD_PASSWORD })
        .expect(200);
      const before = sessionCookie(earlier);
      assert.ok(before, 'the first sign-in stores a session');
      const login = await agent
        .post('/api/v1/auth/login')
        .set('X-CSRF-Token', earlier.body.csrfToken)
        .send({ email, password: GOOD_PASSWORD })
        .expect(200);
      const afterLogin = sessionCookie(login);
      assert.ok(afterLogin && afterLogin !== before, 'sign-in issues a new session id');
      await agent.get('/api/v1/me').expect(200);
      await request(t.url)
        .get('/api/v1/me')
        .set('Cookie', before as string)
        .expect(401);
    });

    test('signing out ends the session for good', async () => {
      const agent = request.agent(t.url);
      const registered = await agent
        .post('/api/v1/auth/register')
        .send({ email: uniqueEmail(), password: GOOD_PASSWORD, displayName: 'Test Person' })
        .expect(201);
      const cookie = sessionCookie(registered);
      assert.ok(cookie, 'registering sets the session cookie');
      // The captured cookie is the live session: replayed from elsewhere, it is let in...
      await request(t.url).get('/api/v1/me').set('Cookie', cookie).expect(200);
      await agent.post('/api/v1/auth/logout').set('X-CSRF-Token', registered.body.csrfToken).expect(204);
      await agent.get('/api/v1/me').expect(401);
      // ...and after signing out it is not.
      await request(t.url).get('/api/v1/me').set('Cookie', cookie).expect(401);
    });

    test('"log out everywhere" ends the other sessions at once, even one an in-flight request saves again', async () => {
      const a = await signUp(t.url);
      const phone = await signIn(t.url, a.email, a.password);
      const seen = await phone.agent.get('/api/v1/me').expect(200);
      const phoneCookie = sessionCookie(seen) as string;
      const redis = createClient({ url: TEST_REDIS_URL });
      await redis.connect();
      try {
        const key = `enclave:sess:${sidOf(phoneCookie)}`;
        const stored = await redis.get(key);
        assert.ok(stored, 'the phone session is in Redis');
        const list = await a.agent.get('/api/v1/sessions').expect(200);
        assert.equal(list.body.sessions.length, 2);
        assert.equal(list.body.sessions.filter((s: { current: boolean }) => s.current).length, 1);

        const res = await a.agent.post('/api/v1/sessions/revoke-all').set('X-CSRF-Token', a.csrf).expect(200);
        assert.equal(res.body.ended, 1);
        // An in-flight request of the phone finishing now would write its session back:
        await redis.set(key, stored, { EX: 600 });
        await phone.agent.get('/api/v1/me').expect(401);
        await phone.agent.get('/api/v1/notes').expect(401);
        await a.agent.get('/api/v1/me').expect(200);
      } finally {
        await redis.close();
      }
    });

    test('revoking one session by id ends it; an id of someone else is 404', async () => {
      const a = await signUp(t.url);
      const laptop = await signIn(t.url, a.email, a.password);
      const other = await signUp(t.url);
      const list = await a.agent.get('/api/v1/sessions').expect(200);
      const laptopSession = list.body.sessions.find((s: { current: boolean }) => !s.current);
      await other.agent
        .delete(`/api/v1/sessions/${laptopSession.id}`)
        .set('X-CSRF-Token', other.csrf)
        .expect(404);
      await laptop.agent.get('/api/v1/me').expect(200);
      await a.agent.delete(`/api/v1/sessions/${laptopSession.id}`).set('X-CSRF-Token', a.csrf).expect(204);
      await laptop.agent.get('/api/v1/me').expect(401);
      await a.agent.delete('/api/v1/sessions/not-a-uuid').set('X-CSRF-Token', a.csrf).expect(404);
    });

    test('changing the password ends every other session and renews this one', async () => {
      const a = await signUp(t.url);
      const tablet = await signIn(t.url, a.email, a.password);
      const newPassword = 'amber-lantern-orchard-57';
      await a.agent
        .post('/api/v1/account/password')
        .set('X-CSRF-Token', a.csrf)
        .send({ currentPassword: 'wrong-password-123', newPassword })
        .expect(401);
      const res = await a.agent
        .post('/api/v1/account/password')
        .set('X-CSRF-Token', a.csrf)
        .send({ currentPassword: a.password, newPassword })
        .expect(200);
      assert.ok(sessionCookie(res), 'a new session id is issued');
      await tablet.agent.get('/api/v1/me').expect(401);
      await a.agent.get('/api/v1/me').expect(200);
      await request(t.url)
        .post('/api/v1/auth/login')
        .send({ email: a.email, password: a.password })
        .expect(401);
      await request(t.url)
        .post('/api/v1/auth/login')
        .send({ email: a.email, password: newPassword })
        .expect(200);
    });
    test('a session ends at its absolute lifetime, however active it is', async () => {
      const a = await signUp(t.url);
      await a.agent.get('/api/v1/me').expect(200);
      // SESSION_ABSOLUTE_HOURS defaults to 12: move this sign-in 12 hours and a minute into the past.
      await t.db.pool.query(
        "UPDATE control.user_sessions SET created_at = now() - interval '12 hours 1 minute' WHERE user_id = $1",
        [a.user.id],
      );
      await a.agent.get('/api/v1/me').expect(401);
    });

    test("an admin lists a tenant's active sessions and ends one; a workspace owner cannot", async () => {
      const owner = await signUp(t.url);
      const laptop = await signIn(t.url, owner.email, owner.password);
      const admin = await signInPrivileged(t, 'admin');
      const list = await admin.agent.get(`/api/v1/admin/tenants/${owner.user.tenantId}/sessions`).expect(200);
      assert.equal(list.body.sessions.length, 2);
      const target = list.body.sessions[0].id as string;
      await owner.agent.get(`/api/v1/admin/tenants/${owner.user.tenantId}/sessions`).expect(403);
      await owner.agent
        .delete(`/api/v1/admin/sessions/${target}`)
        .set('X-CSRF-Token', owner.csrf)
        .expect(403);
      // Ending a session is destructive: refused until the admin confirms their password.
      const refused = await admin.agent
        .delete(`/api/v1/admin/sessions/${target}`)
        .set('X-CSRF-Token', admin.csrf)
        .expect(403);
      assert.equal(refused.body.error.code, 'reauth_required');
      await admin.agent
        .post('/api/v1/admin/reauth')
        .set('X-CSRF-Token', admin.csrf)
        .send({ password: admin.password })
        .expect(204);
      await admin.agent
        .delete(`/api/v1/admin/sessions/${target}`)
        .set('X-CSRF-Token', admin.csrf)
        .expect(204);
      const after = await admin.agent
        .get(`/api/v1/admin/tenants/${owner.user.tenantId}/sessions`)
        .expect(200);
      assert.equal(after.body.sessions.length, 1);
      const still = await Promise.all([owner.agent.get('/api/v1/me'), laptop.agent.get('/api/v1/me')]);
      assert.deepEqual(still.map((r) => r.status).sort(), [200, 401]);
    });
  });

  describe('CSRF', () => {
    test('a state-changing request with the session cookie but without the token gets 403', async () => {
      const a = await signUp(t.url);
      const res = await a.agent.post('/api/v1/notes').send({ title: 'forged' }).expect(403);
      assert.equal(res.body.error.code, 'csrf_failed');
      await a.agent
        .post('/api/v1/notes')
        .set('X-CSRF-Token', 'x'.repeat(64))
        .send({ title: 'forged' })
        .expect(403);
      await a.agent.post('/api/v1/notes').type('form').send({ title: 'forged' }).expect(403);
      await a.agent.post('/api/v1/sessions/revoke-all').expect(403);
      const notes = await a.agent.get('/api/v1/notes').expect(200);
      assert.deepEqual(notes.body.notes, []);
    });

    test('GET /api/v1/csrf gives the token that makes the same request pass', async () => {
      const a = await signUp(t.url);
      const { body } = await a.agent.get('/api/v1/csrf').expect(200);
      await a.agent.post('/api/v1/notes').set('X-CSRF-Token', body.token).send({ title: 'fine' }).expect(201);
    });
  });

  describe('cross-tenant and roles', () => {
    test('headers, forged cookies or a tenant id in the body never reach another workspace', async () => {
      const a = await signUp(t.url);
      const b = await signUp(t.url);
      await b.agent
        .post('/api/v1/notes')
        .set('X-CSRF-Token', b.csrf)
        .send({ title: "B's secret" })
        .expect(201);
      const viaHeader = await a.agent
        .get('/api/v1/notes')
        .set('X-Tenant-Id', String(b.user.tenantId))
        .expect(200);
      assert.deepEqual(viaHeader.body.notes, []);
      // Unknown query parameters and body fields are refused outright (400), never acted on.
      const viaQuery = await a.agent
        .get(`/api/v1/notes?tenant=${b.user.tenantId}&tenantId=${b.user.tenantId}`)
        .expect(400);
      assert.equal(viaQuery.body.notes, undefined);
      await a.agent
        .post('/api/v1/notes')
        .set('X-CSRF-Token', a.csrf)
        .send({ title: 'mine', tenantId: b.user.tenantId })
        .expect(400);
      const bNotes = await b.agent.get('/api/v1/notes').expect(200);
      assert.deepEqual(
        bNotes.body.notes.map((n: { title: string }) => n.title),
        ["B's secret"],
      );
      await request(t.url).get('/api/v1/notes').set('Cookie', 'enclave.sid=s%3Aforged.signature').expect(401);
    });

    test('auditor and admin sessions get 403 on workspace routes', async () => {
      for (const role of ['auditor', 'admin'] as const) {
        const s = await signInPrivileged(t, role);
        assert.equal(s.user.role, role);
        assert.equal(s.user.tenantId, null);
        const list = await s.agent.get('/api/v1/notes').expect(403);
        assert.equal(list.body.error.code, 'forbidden');
        await s.agent.post('/api/v1/notes').set('X-CSRF-Token', s.csrf).send({ title: 'x' }).expect(403);
      }
    });

    test('a suspended workspace is refused on the very next request', async () => {
      const a = await signUp(t.url);
      await a.agent.get('/api/v1/notes').expect(200);
      await t.db.pool.query("UPDATE control.tenants SET state = 'suspended' WHERE id = $1", [
        a.user.tenantId,
      ]);
      await new Promise((r) => setTimeout(r, 2100)); // TENANT_CACHE_MS default: 2 s
      const res = await a.agent.get('/api/v1/notes').expect(403);
      assert.equal(res.body.error.code, 'tenant_suspended');
    });
  });
});

describe('registration when provisioning fails', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({
      TENANT_MIGRATIONS_DIR: migrationsDirWith({
        broken: 'ALTER TABLE {{schema}}.nope ADD COLUMN x int;\n',
      }).dir,
    });
  });
  after(async () => {
    await t.stop();
  });

  test('leaves no user and no tenant behind and says so in words', async () => {
    const res = await request(t.url)
      .post('/api/v1/auth/register')
      .send({ email: uniqueEmail(), password: GOOD_PASSWORD, displayName: 'Unlucky' })
      .expect(503);
    assert.equal(res.body.error.code, 'provisioning_failed');
    assert.match(res.body.error.message, /nothing was saved/);
    assert.deepEqual(await counts(t), { users: 0, tenants: 0, schemas: 0 });
  });
});
