// The admin's People API over HTTP, on a real server (PostgreSQL + Redis):
// finding people; deactivation ends every session and API token at once and
// refuses sign-in until reactivation; MFA reset with its reason; role changes
// between auditor and admin, picked up at the next request; the last active
// admin can be neither demoted nor deactivated, also by two requests racing;
// every change audited; non-admins refused; destructive calls need a recent
// password check; bad input is a 400 that says what is wrong.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import request from 'supertest';
import { DEACTIVATED } from '../../../server/accounts/accounts.ts';
import { createApiToken } from '../../helpers/http.ts';
import {
  GOOD_PASSWORD,
  type SignedIn,
  signIn,
  signInPrivileged,
  signUp,
  startTestServer,
  type TestServer,
} from '../../helpers/server.ts';
import { enrolMfa } from '../../helpers/totp.ts';

const API = '/api/v1/admin/users';

interface AuditRow {
  action: string;
  actor_type: string;
  actor_id: string | null;
  tenant_id: string | null;
  resource_type: string | null;
  resource_id: string | null;
  outcome: string;
  outcome_code: string | null;
  details: Record<string, unknown>;
}

async function auditOf(t: TestServer, resourceId: string, action: string): Promise<AuditRow[]> {
  const { rows } = await t.db.pool.query<AuditRow>(
    `SELECT action, actor_type, actor_id, tenant_id, resource_type, resource_id, outcome, outcome_code, details
       FROM control.audit_inbox WHERE resource_id = $1 AND action = $2 ORDER BY id`,
    [resourceId, action],
  );
  return rows;
}

/** The admin confirms their password (POST /api/v1/admin/reauth), as the destructive calls require. */
async function reauth(who: SignedIn): Promise<void> {
  await who.agent
    .post('/api/v1/admin/reauth')
    .set('X-CSRF-Token', who.csrf)
    .send({ password: who.password })
    .expect(204);
}

function post(who: SignedIn, path: string, body: unknown = {}) {
  return who.agent
    .post(path)
    .set('X-CSRF-Token', who.csrf)
    .send(body as object);
}

describe('People API', () => {
  let t: TestServer;
  let admin: SignedIn;

  before(async () => {
    t = await startTestServer();
    admin = await signInPrivileged(t, 'admin');
    await reauth(admin);
  });
  after(() => t?.stop());

  test('users, auditors and anonymous visitors are refused every People route (403 / 401), API tokens too', async () => {
    const owner = await signUp(t.url);
    const auditor = await signInPrivileged(t, 'auditor');
    const token = await createApiToken(owner, 'write');
    const routes: Array<['get' | 'post', string]> = [
      ['get', API],
      ['get', `${API}/${owner.user.id}`],
      ['post', `${API}/${owner.user.id}/deactivate`],
      ['post', `${API}/${owner.user.id}/reactivate`],
      ['post', `${API}/${owner.user.id}/end-sessions`],
      ['post', `${API}/${owner.user.id}/reset-mfa`],
      ['post', `${API}/${owner.user.id}/role`],
    ];
    for (const [method, path] of routes) {
      for (const who of [owner, auditor]) {
        const res = await who.agent[method](path).set('X-CSRF-Token', who.csrf).send({});
        assert.equal(res.status, 403, `${who.user.role} ${method} ${path}`);
      }
      const anon = await request(t.url)[method](path);
      assert.ok([401, 403].includes(anon.status), `anonymous ${method} ${path}: ${anon.status}`);
      const bearer = await request(t.url)[method](path).set('Authorization', `Bearer ${token.secret}`);
      assert.equal(bearer.status, 403, `token ${method} ${path}`);
    }
    // Nothing changed.
    await owner.agent.get('/api/v1/me').expect(200);
  });

  test('search: email part (case-insensitive, LIKE characters literal), prefix, tenant, role, state; keyset pages repeat nobody', async () => {
    const tag = `pp${Date.now().toString(36)}`;
    const under = await signUp(t.url, { email: `${tag}_under@example.com` });
    const other = await signUp(t.url, { email: `${tag}xunder@example.com` });
    const upper = await signUp(t.url, { email: `Zed.${tag}@Example.com` });

    const q = (query: Record<string, string>) => admin.agent.get(API).query(query).expect(200);
    // `_` is a character, not "any character".
    assert.deepEqual(
      (await q({ q: `${tag}_` })).body.users.map((u: { id: string }) => u.id),
      [under.user.id],
    );
    const contains = (await q({ q: tag.toUpperCase() })).body.users.map((u: { id: string }) => u.id);
    assert.deepEqual(new Set(contains), new Set([under.user.id, other.user.id, upper.user.id]));
    const prefix = (await q({ q: tag, match: 'prefix' })).body.users.map((u: { id: string }) => u.id);
    assert.deepEqual(new Set(prefix), new Set([under.user.id, other.user.id]));
    // By tenant: exactly its owner.
    const byTenant = (await q({ tenant: under.user.tenantId as string })).body.users;
    assert.equal(byTenant.length, 1);
    assert.equal(byTenant[0].email, `${tag}_under@example.com`);
    assert.equal(byTenant[0].role, 'user');
    assert.equal(byTenant[0].state, 'active');
    assert.equal(byTenant[0].tenantId, under.user.tenantId);
    // By role: admins only.
    const admins = (await q({ role: 'admin' })).body.users;
    assert.ok(admins.length >= 1 && admins.every((u: { role: string }) => u.role === 'admin'));
    assert.ok(admins.some((u: { id: string }) => u.id === admin.user.id));
    // Keyset: pages of 1 through the three, in email order, nobody twice.
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res = await q({ q: tag, limit: '1', ...(cursor ? { cursor } : {}) });
      seen.push(...res.body.users.map((u: { email: string }) => u.email.toLowerCase()));
      cursor = res.body.nextCursor;
    } while (cursor);
    assert.equal(seen.length, 3);
    assert.deepEqual(seen, [...seen].sort());
    // State: a deactivated one is found under `deactivated`, not under `active`.
    await post(admin, `${API}/${other.user.id}/deactivate`, { reason: 'search test' }).expect(200);
    const deactivated = (await q({ q: tag, state: 'deactivated' })).body.users;
    assert.deepEqual(
      deactivated.map((u: { id: string }) => u.id),
      [other.user.id],
    );
    assert.equal(deactivated[0].deactivationReason, 'search test');
    const active = (await q({ q: tag, state: 'active' })).body.users.map((u: { id: string }) => u.id);
    assert.ok(!active.includes(other.user.id));
  });

  test('search refuses what it cannot read: unknown parameters, bad role, state, tenant, limit and cursor are 400s', async () => {
    for (const [query, words] of [
      [{ sort: 'email' }, /unknown field sort/],
      [{ role: 'root' }, /role/],
      [{ state: 'gone' }, /state/],
      [{ tenant: 'Not A Tenant' }, /tenant/],
      [{ limit: '0' }, /limit/],
      [{ limit: '500' }, /limit/],
      [{ cursor: 'not-a-cursor' }, /cursor/],
      [{ cursor: Buffer.from('["a","b"]').toString('base64url') }, /cursor/],
    ] as const) {
      const res = await admin.agent.get(API).query(query).expect(400);
      assert.equal(res.body.error.code, 'invalid_input');
      assert.match(res.body.error.message, words, JSON.stringify(query));
    }
    // Repeated parameters (arrays) are not strings.
    const res = await admin.agent.get(`${API}?q=a&q=b`).expect(400);
    assert.match(res.body.error.message, /q/);
  });

  test('a person: 404 for what is not an id or nobody; their sign-ins (time, IP, device) and failed attempts', async () => {
    await admin.agent.get(`${API}/not-a-uuid`).expect(404);
    await admin.agent.get(`${API}/00000000-0000-4000-8000-000000000000`).expect(404);
    const owner = await signUp(t.url);
    await request(t.url)
      .post('/api/v1/auth/login')
      .set('User-Agent', 'Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0')
      .send({ email: owner.email, password: 'not-the-right-password' })
      .expect(401);
    await request(t.url)
      .post('/api/v1/auth/login')
      .set('User-Agent', 'Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0')
      .send({ email: owner.email, password: owner.password })
      .expect(200);
    const res = await admin.agent.get(`${API}/${owner.user.id}`).expect(200);
    assert.equal(res.body.user.id, owner.user.id);
    assert.equal(res.body.user.email, owner.email);
    assert.equal(res.body.user.mfaEnabled, false);
    assert.equal(res.body.liveSessions, 2);
    assert.equal(res.body.signIns.length, 2);
    assert.equal(res.body.signIns[0].device, 'Firefox on Linux');
    assert.ok(res.body.signIns[0].ip);
    assert.equal(res.body.refusals.length, 1);
    assert.equal(res.body.refusals[0].code, 'wrong_password');
    assert.equal(res.body.refusals[0].device, 'Firefox on Linux');
    // The failure counter was reset by the successful sign-in.
    assert.equal(res.body.user.failedAttemptsSinceSignIn, 0);
    // No tenant content: no notes, no workspace data in the answer.
    assert.deepEqual(Object.keys(res.body).sort(), [
      'liveSessions',
      'liveTokens',
      'refusals',
      'signIns',
      'unusedRecoveryCodes',
      'user',
    ]);
  });

  test('destructive calls without a recent password check are 403 reauth_required and change nothing; reactivate needs none', async () => {
    const fresh = await signInPrivileged(t, 'admin');
    const owner = await signUp(t.url);
    const calls: Array<[string, unknown]> = [
      ['deactivate', {}],
      ['end-sessions', {}],
      ['reset-mfa', { reason: 'lost phone' }],
      ['role', { role: 'admin' }],
    ];
    for (const [action, body] of calls) {
      const res = await post(fresh, `${API}/${owner.user.id}/${action}`, body).expect(403);
      assert.equal(res.body.error.code, 'reauth_required', action);
    }
    await owner.agent.get('/api/v1/me').expect(200);
    // A wrong password does not count as a check.
    await post(fresh, '/api/v1/admin/reauth', { password: 'wrong-wrong-wrong' }).expect(401);
    const still = await post(fresh, `${API}/${owner.user.id}/deactivate`, {}).expect(403);
    assert.equal(still.body.error.code, 'reauth_required');
    // Reactivation gives back, it takes nothing away: no check needed (409 here: not deactivated).
    const re = await post(fresh, `${API}/${owner.user.id}/reactivate`).expect(409);
    assert.match(re.body.error.message, /not deactivated/);
  });

  test('deactivation ends every session and API token at once, refuses sign-in (saying so only after the right password), and is audited; reactivation lets them in again', async () => {
    const owner = await signUp(t.url);
    const laptop = await signIn(t.url, owner.email, owner.password);
    const token = await createApiToken(owner, 'write');
    const bearer = () => request(t.url).get('/api/v1/notes').set('Authorization', `Bearer ${token.secret}`);
    await bearer().expect(200);
    await laptop.agent.get('/api/v1/me').expect(200);

    const res = await post(admin, `${API}/${owner.user.id}/deactivate`, {
      reason: 'left the company',
    }).expect(200);
    assert.deepEqual(res.body, { deactivated: true, sessionsEnded: 2, tokensEnded: 1 });

    // At once: the very next request of each is refused.
    await owner.agent.get('/api/v1/me').expect(401);
    await laptop.agent.get('/api/v1/me').expect(401);
    const refused = await bearer().expect(401);
    assert.equal(refused.body.error.message, 'This API token is not valid or was revoked.');

    // Sign-in: the right password hears why; a wrong one hears the usual words.
    const right = await request(t.url)
      .post('/api/v1/auth/login')
      .send({ email: owner.email, password: owner.password })
      .expect(401);
    assert.equal(right.body.error.message, DEACTIVATED);
    const wrong = await request(t.url)
      .post('/api/v1/auth/login')
      .send({ email: owner.email, password: 'not-the-right-password' })
      .expect(401);
    assert.equal(wrong.body.error.message, 'Email or password is incorrect.');

    // Audited on the owner's chain, the admin as actor, with the reason.
    const [event] = await auditOf(t, owner.user.id, 'user.deactivate');
    assert.ok(event);
    assert.equal(event.actor_type, 'admin');
    assert.equal(event.actor_id, admin.user.id);
    assert.equal(event.tenant_id, owner.user.tenantId);
    assert.equal(event.outcome, 'success');
    assert.equal(event.details.reason, 'left the company');
    assert.equal(event.details.sessionsEnded, 2);
    assert.equal(event.details.apiCredentialsEnded, 1);
    const [revokeAll] = await auditOf(t, owner.user.id, 'session.revoke_all');
    assert.equal(revokeAll?.details.reason, 'account deactivated');
    const tokenEvents = await auditOf(t, token.id, 'token.revoke');
    assert.equal(tokenEvents.length, 1);
    assert.equal(tokenEvents[0]?.actor_id, admin.user.id);
    const [failed] = (await auditOf(t, owner.user.id, 'auth.login')).filter(
      (e) => e.outcome_code === 'account_deactivated',
    );
    assert.equal(failed?.outcome, 'failure');

    // Twice is a 409; the admin cannot deactivate themselves.
    const again = await post(admin, `${API}/${owner.user.id}/deactivate`).expect(409);
    assert.match(again.body.error.message, /already deactivated/);
    const self = await post(admin, `${API}/${admin.user.id}/deactivate`).expect(409);
    assert.match(self.body.error.message, /your own account/);

    // Reactivated: sign-in works again; the old token stays revoked.
    assert.deepEqual((await post(admin, `${API}/${owner.user.id}/reactivate`).expect(200)).body, {
      reactivated: true,
    });
    const back = await signIn(t.url, owner.email, owner.password);
    await back.agent.get('/api/v1/me').expect(200);
    await bearer().expect(401);
    const [re] = await auditOf(t, owner.user.id, 'user.reactivate');
    assert.equal(re?.actor_id, admin.user.id);
    assert.equal(re?.tenant_id, owner.user.tenantId);
  });

  test('a session signed in with the password before a deactivation but finishing later is refused too (the lookup checks the account)', async () => {
    const owner = await signUp(t.url);
    // Deactivated directly in the database, sessions left in place: the per-request check alone must refuse.
    await t.db.pool.query('UPDATE control.users SET deactivated_at = now() WHERE id = $1', [owner.user.id]);
    await owner.agent.get('/api/v1/me').expect(401);
    await t.db.pool.query('UPDATE control.users SET deactivated_at = NULL WHERE id = $1', [owner.user.id]);
  });

  test('end all sessions: every session ends, API tokens keep working; audited', async () => {
    const owner = await signUp(t.url);
    const phone = await signIn(t.url, owner.email, owner.password);
    const token = await createApiToken(owner, 'read');
    const res = await post(admin, `${API}/${owner.user.id}/end-sessions`).expect(200);
    assert.deepEqual(res.body, { sessionsEnded: 2 });
    await owner.agent.get('/api/v1/me').expect(401);
    await phone.agent.get('/api/v1/me').expect(401);
    await request(t.url).get('/api/v1/notes').set('Authorization', `Bearer ${token.secret}`).expect(200);
    const events = (await auditOf(t, owner.user.id, 'session.revoke_all')).filter(
      (e) => e.details.reason === 'ended by an admin',
    );
    assert.equal(events.length, 1);
    assert.equal(events[0]?.actor_id, admin.user.id);
    assert.equal(events[0]?.details.sessionsEnded, 2);
    // Unknown fields are a 400.
    const bad = await post(admin, `${API}/${owner.user.id}/end-sessions`, { all: true }).expect(400);
    assert.match(bad.body.error.message, /unknown field all/);
  });

  test('reset MFA: needs a one-line reason of 1 to 500 characters, removes the secret and recovery codes, is audited with the reason, and the owner is told', async () => {
    const owner = await signUp(t.url);
    await enrolMfa(owner);
    const path = `${API}/${owner.user.id}/reset-mfa`;
    for (const [body, words] of [
      [{}, /reason: required/],
      [{ reason: '' }, /reason is required/],
      [{ reason: '   ' }, /reason is required/],
      [{ reason: ['lost', 'phone'] }, /reason/],
      [{ reason: 42 }, /reason/],
      [{ reason: 'two\nlines' }, /one line/],
      [{ reason: 'x'.repeat(501) }, /at most 500/],
      [{ reason: 'lost phone', force: true }, /unknown field force/],
    ] as const) {
      const res = await post(admin, path, body).expect(400);
      assert.equal(res.body.error.code, 'invalid_input');
      assert.match(res.body.error.message, words, JSON.stringify(body));
    }
    // Still on after all of that.
    const before = await admin.agent.get(`${API}/${owner.user.id}`).expect(200);
    assert.equal(before.body.user.mfaEnabled, true);
    assert.equal(before.body.unusedRecoveryCodes, 10);

    const res = await post(admin, path, {
      reason: '  Lost phone and codes; identity checked by video call  ',
    }).expect(200);
    assert.deepEqual(res.body, { reset: true, codesDeleted: 10 });
    const { rows } = await t.db.pool.query(
      `SELECT mfa_secret, mfa_enabled_at, mfa_pending_secret,
              (SELECT count(*)::int FROM control.recovery_codes c WHERE c.user_id = u.id) AS codes
         FROM control.users u WHERE id = $1`,
      [owner.user.id],
    );
    assert.deepEqual(rows[0], { mfa_secret: null, mfa_enabled_at: null, mfa_pending_secret: null, codes: 0 });
    const [event] = await auditOf(t, owner.user.id, 'user.mfa.reset');
    assert.equal(event?.details.reason, 'Lost phone and codes; identity checked by video call');
    assert.equal(event?.actor_id, admin.user.id);
    assert.equal(event?.tenant_id, owner.user.tenantId);

    // The password alone signs in now, and the owner hears of the reset.
    const login = await request(t.url)
      .post('/api/v1/auth/login')
      .send({ email: owner.email, password: owner.password })
      .expect(200);
    assert.ok(login.body.notices.some((n: { kind: string }) => n.kind === 'mfa.reset'));
    // Nothing left to reset: 409.
    const none = await post(admin, path, { reason: 'again' }).expect(409);
    assert.match(none.body.error.message, /no two-step sign-in/);
  });

  test('role: auditor <-> admin, picked up at the next request and audited from -> to; owners and "user" are refused with 409s; bad roles 400', async () => {
    const auditor = await signInPrivileged(t, 'auditor');
    const owner = await signUp(t.url);
    await auditor.agent.get(API).expect(403);

    const up = await post(admin, `${API}/${auditor.user.id}/role`, { role: 'admin' }).expect(200);
    assert.deepEqual(up.body, { from: 'auditor', to: 'admin', changed: true });
    // The same session, its next request: an admin now.
    await auditor.agent.get(API).expect(200);
    const [event] = await auditOf(t, auditor.user.id, 'user.role.change');
    assert.deepEqual({ from: event?.details.from, to: event?.details.to }, { from: 'auditor', to: 'admin' });
    assert.equal(event?.actor_id, admin.user.id);
    assert.equal(event?.tenant_id, null);

    const same = await post(admin, `${API}/${auditor.user.id}/role`, { role: 'admin' }).expect(200);
    assert.equal(same.body.changed, false);
    assert.equal((await auditOf(t, auditor.user.id, 'user.role.change')).length, 1);

    const down = await post(admin, `${API}/${auditor.user.id}/role`, { role: 'auditor' }).expect(200);
    assert.deepEqual(down.body, { from: 'admin', to: 'auditor', changed: true });
    await auditor.agent.get(API).expect(403);
    await auditor.agent.get('/api/v1/audit/entries').expect((r) => assert.notEqual(r.status, 403));

    const ownerUp = await post(admin, `${API}/${owner.user.id}/role`, { role: 'admin' }).expect(409);
    assert.match(ownerUp.body.error.message, /owns a workspace/);
    const toUser = await post(admin, `${API}/${auditor.user.id}/role`, { role: 'user' }).expect(409);
    assert.match(toUser.body.error.message, /owns no workspace/);

    for (const [body, words] of [
      [{ role: 'root' }, /role/],
      [{ role: ['admin'] }, /role/],
      [{}, /role/],
      [{ role: 'admin', reason: 'x' }, /unknown field reason/],
    ] as const) {
      const res = await post(admin, `${API}/${auditor.user.id}/role`, body).expect(400);
      assert.match(res.body.error.message, words, JSON.stringify(body));
    }
    await post(admin, `${API}/not-an-id/role`, { role: 'admin' }).expect(404);
  });
});

describe('the last active admin', () => {
  let t: TestServer;

  before(async () => {
    t = await startTestServer();
  });
  after(() => t?.stop());

  /** Holds every admin row locked until `release` is called, so requests queue up behind it. */
  async function holdAdmins(): Promise<{
    waiting: (n: number) => Promise<void>;
    release: () => Promise<void>;
  }> {
    const client = new pg.Client({ connectionString: t.db.url });
    await client.connect();
    await client.query('BEGIN');
    await client.query("SELECT id FROM control.users WHERE role = 'admin' FOR NO KEY UPDATE");
    const holder = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid;
    return {
      waiting: async (n) => {
        for (let i = 0; i < 200; i++) {
          // Another connection: pg_stat_activity is a snapshot that stays the same within a transaction.
          const { rows } = await t.db.pool.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM pg_stat_activity
              WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> $1`,
            [holder],
          );
          if ((rows[0]?.n ?? 0) >= n) return;
          await new Promise((resolve) => setTimeout(resolve, 25));
        }
        throw new Error(`fewer than ${n} requests waited for the lock`);
      },
      release: async () => {
        await client.query('COMMIT');
        await client.end();
      },
    };
  }

  async function activeAdmins(): Promise<string[]> {
    const { rows } = await t.db.pool.query<{ id: string }>(
      "SELECT id FROM control.users WHERE role = 'admin' AND deactivated_at IS NULL",
    );
    return rows.map((r) => r.id);
  }

  test('alone, an admin cannot demote or deactivate themselves (409), and nothing changes', async () => {
    const only = await signInPrivileged(t, 'admin');
    await reauth(only);
    const demote = await post(only, `${API}/${only.user.id}/role`, { role: 'auditor' }).expect(409);
    assert.match(demote.body.error.message, /last active admin/);
    const deactivate = await post(only, `${API}/${only.user.id}/deactivate`).expect(409);
    assert.match(deactivate.body.error.message, /your own account/);
    assert.deepEqual(await activeAdmins(), [only.user.id]);
    assert.equal((await auditOf(t, only.user.id, 'user.role.change')).length, 0);
  });

  test('two admins demoting each other at the same moment: exactly one wins, one admin is left', async () => {
    const [a, b] = await Promise.all([signInPrivileged(t, 'admin'), signInPrivileged(t, 'admin')]);
    // The admin of the previous test counts too: make them the other admins' business first.
    const others = (await activeAdmins()).filter((id) => id !== a.user.id && id !== b.user.id);
    await reauth(a);
    await reauth(b);
    for (const id of others) await post(a, `${API}/${id}/role`, { role: 'auditor' }).expect(200);
    assert.deepEqual(new Set(await activeAdmins()), new Set([a.user.id, b.user.id]));

    const hold = await holdAdmins();
    const racing = Promise.all([
      post(a, `${API}/${b.user.id}/role`, { role: 'auditor' }),
      post(b, `${API}/${a.user.id}/role`, { role: 'auditor' }),
    ]);
    await hold.waiting(2); // both are past every guard, inside their transactions
    await hold.release();
    const results = await racing;
    const statuses = results.map((r) => r.status).sort();
    assert.deepEqual(statuses, [200, 409]);
    const loser = results.find((r) => r.status === 409);
    assert.match(loser?.body.error.message, /last active admin/);
    assert.equal((await activeAdmins()).length, 1);
  });

  test('two admins deactivating each other at the same moment: exactly one wins, one active admin is left', async () => {
    const [survivor] = await activeAdmins();
    assert.ok(survivor);
    // A second admin again: a new one, made admin by the survivor... who must be signed in: sign them in anew.
    const { rows } = await t.db.pool.query<{ email: string }>(
      'SELECT email FROM control.users WHERE id = $1',
      [survivor],
    );
    const x = await signIn(t.url, rows[0]?.email as string, GOOD_PASSWORD);
    const y = await signInPrivileged(t, 'admin');
    await reauth(x);
    await reauth(y);
    assert.deepEqual(new Set(await activeAdmins()), new Set([x.user.id, y.user.id]));

    const hold = await holdAdmins();
    const racing = Promise.all([
      post(x, `${API}/${y.user.id}/deactivate`, { reason: 'race' }),
      post(y, `${API}/${x.user.id}/deactivate`, { reason: 'race' }),
    ]);
    await hold.waiting(2);
    await hold.release();
    const results = await racing;
    assert.deepEqual(results.map((r) => r.status).sort(), [200, 409]);
    assert.match(results.find((r) => r.status === 409)?.body.error.message, /last active admin/);
    const left = await activeAdmins();
    assert.equal(left.length, 1);
    // The one left can still work; the deactivated one is signed out.
    const winner = left[0] === x.user.id ? x : y;
    const loser = left[0] === x.user.id ? y : x;
    await winner.agent.get(API).expect(200);
    await loser.agent.get(API).expect(401);
  });
});
