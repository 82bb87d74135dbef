// Confirming the admin's password before destructive actions: the API
// (POST /api/v1/admin/reauth) and the page (/admin/reauth). A destructive call
// is refused (403 reauth_required) until the password is confirmed and allowed
// after; the stamp lasts ADMIN_REAUTH_MINUTES; a wrong password is a 401 that
// counts toward the account's lockout (429 once locked, even for the right
// one); success and failure are both audited (admin.reauth).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Request } from 'express';
import request from 'supertest';
import { recentlyConfirmed } from '../../../server/auth/recent-auth.ts';
import { csrfOf, HTML } from '../../helpers/http.ts';
import { assertNoInlineCode } from '../../helpers/pages.ts';
import {
  GOOD_PASSWORD,
  quickLockout,
  type SignedIn,
  signInPrivileged,
  signUp,
  startTestServer,
  type TestServer,
} from '../../helpers/server.ts';

describe('admin reauth', () => {
  let t: TestServer;
  let alice: SignedIn;

  before(async () => {
    t = await startTestServer({ ADMIN_REAUTH_MINUTES: '1' }, { abuse: quickLockout(60_000, 60_000) });
    alice = await signUp(t.url);
  });
  after(async () => {
    await t?.stop();
  });

  const suspend = (who: SignedIn) =>
    who.agent
      .post(`/api/v1/admin/tenants/${alice.user.tenantId}/suspend`)
      .set('X-CSRF-Token', who.csrf)
      .send({});

  test('a destructive admin API call is 403 reauth_required before the password is confirmed, and goes through after', async () => {
    const admin = await signInPrivileged(t, 'admin');
    const refused = await suspend(admin).expect(403);
    assert.match(JSON.stringify(refused.body), /reauth_required/);
    await admin.agent
      .post('/api/v1/admin/reauth')
      .set('X-CSRF-Token', admin.csrf)
      .send({ password: GOOD_PASSWORD })
      .expect(204);
    const done = await suspend(admin);
    assert.ok(done.status < 300, `suspended after confirming (${done.status})`);
    await admin.agent
      .post(`/api/v1/admin/tenants/${alice.user.tenantId}/resume`)
      .set('X-CSRF-Token', admin.csrf)
      .send({})
      .expect((res) => assert.ok(res.status < 300));
    // Another session of the same admin has not confirmed anything.
    const other = await signInPrivileged(t, 'admin');
    await suspend(other).expect(403);
  });

  test('the stamp lasts ADMIN_REAUTH_MINUTES, and one from the future counts for nothing', () => {
    const at = (msAgo: number) => ({ session: { reauthAt: Date.now() - msAgo } }) as unknown as Request;
    assert.equal(recentlyConfirmed(at(30_000), 1), true);
    assert.equal(recentlyConfirmed(at(61_000), 1), false);
    assert.equal(recentlyConfirmed(at(61_000), 2), true);
    assert.equal(recentlyConfirmed(at(-60_000), 1), false);
    assert.equal(recentlyConfirmed({ session: {} } as unknown as Request, 1), false);
  });

  test('the page: a form with the password and the way back; the right password returns there (303) and unlocks', async () => {
    const admin = await signInPrivileged(t, 'admin');
    const page = await admin.agent
      .get('/admin/reauth?next=/admin/tenants%3Fstate%3Dactive')
      .set('Accept', HTML)
      .expect(200);
    assertNoInlineCode(page.text, '/admin/reauth');
    assert.match(page.text, /<input type="hidden" name="next" value="\/admin\/tenants\?state=active">/);
    assert.match(page.text, /<label for="reauth-password">/);
    assert.doesNotMatch(page.text, /name="totp"/, 'no code field for an admin without MFA');
    assert.match(page.text, /for 1 minutes/);
    const ok = await admin.agent
      .post('/admin/reauth')
      .type('form')
      .send({ _csrf: csrfOf(page.text), password: GOOD_PASSWORD, next: '/admin/tenants?state=active' })
      .expect(303);
    assert.equal(ok.headers.location, '/admin/tenants?state=active');
    const done = await suspend(admin);
    assert.ok(done.status < 300, `the page's confirmation unlocks the API too (${done.status})`);
    await admin.agent
      .post(`/api/v1/admin/tenants/${alice.user.tenantId}/resume`)
      .set('X-CSRF-Token', admin.csrf)
      .send({});
    // `next` never leaves the admin pages.
    for (const next of [
      'https://evil.example/admin',
      '//evil.example/admin',
      '/account',
      'javascript:alert(1)',
    ]) {
      const res = await admin.agent
        .get(`/admin/reauth?next=${encodeURIComponent(next)}`)
        .set('Accept', HTML)
        .expect(200);
      assert.match(res.text, /name="next" value="\/admin">/, next);
    }
  });

  test('a wrong password re-renders the form with an error (401), counts toward the lockout (429), and is audited', async () => {
    const admin = await signInPrivileged(t, 'admin');
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const page = await admin.agent.get('/admin/reauth').set('Accept', HTML).expect(200);
      const res = await admin.agent
        .post('/admin/reauth')
        .type('form')
        .send({ _csrf: csrfOf(page.text), password: `wrong-${i}`, next: '/admin/jobs' });
      statuses.push(res.status);
      if (res.status === 401) {
        assert.match(res.text, /role="alert"/);
        assert.match(res.text, /The password is incorrect/);
        assert.match(res.text, /name="next" value="\/admin\/jobs"/);
        assertNoInlineCode(res.text, '/admin/reauth (wrong password)');
      }
    }
    assert.equal(statuses[0], 401);
    assert.ok(statuses.includes(429), `locked out after repeated failures: ${statuses.join(',')}`);
    // Locked: the right password is refused too, on the page and over the API.
    const page = await admin.agent.get('/admin/reauth').set('Accept', HTML).expect(200);
    await admin.agent
      .post('/admin/reauth')
      .type('form')
      .send({ _csrf: csrfOf(page.text), password: GOOD_PASSWORD })
      .expect(429);
    await admin.agent
      .post('/api/v1/admin/reauth')
      .set('X-CSRF-Token', admin.csrf)
      .send({ password: GOOD_PASSWORD })
      .expect(429);
    await suspend(admin).expect(403);

    const events = await t.db.pool.query<{ outcome: string; outcome_code: string | null }>(
      "SELECT outcome, outcome_code FROM control.audit_inbox WHERE action = 'admin.reauth' AND actor_id = $1 ORDER BY id",
      [admin.user.id],
    );
    assert.ok(events.rows.length >= 1);
    assert.ok(events.rows.every((e) => e.outcome === 'failure' && e.outcome_code === 'wrong_password'));
    const successes = await t.db.pool.query(
      "SELECT count(*)::int AS n FROM control.audit_inbox WHERE action = 'admin.reauth' AND outcome = 'success' AND tenant_id IS NULL",
    );
    assert.ok(successes.rows[0].n >= 2, 'the earlier confirmations are audited on the platform chain');
  });

  test('owners, auditors and strangers cannot use the confirmation at all', async () => {
    const auditor = await signInPrivileged(t, 'auditor');
    await auditor.agent
      .post('/api/v1/admin/reauth')
      .set('X-CSRF-Token', auditor.csrf)
      .send({ password: GOOD_PASSWORD })
      .expect(403);
    await alice.agent
      .post('/api/v1/admin/reauth')
      .set('X-CSRF-Token', alice.csrf)
      .send({ password: GOOD_PASSWORD })
      .expect(403);
    await alice.agent.get('/admin/reauth').set('Accept', HTML).expect(403);
    const anon = await request(t.url).get('/admin/reauth').set('Accept', HTML).expect(303);
    assert.equal(anon.headers.location, '/login');
  });
});
