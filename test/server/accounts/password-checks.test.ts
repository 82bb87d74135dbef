// Every check of a password or code counts toward the same per-account
// lockout as sign-in, also behind a session (change the password, delete the
// account, two-step sign-in) and at the sign-in page's code step; and the
// owner is told at their next sign-in how many attempts failed or were refused
// since the last one. Real PostgreSQL and Redis.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { generate, generateSecret } from 'otplib';
import request from 'supertest';
import { DELETE_CONFIRMATION } from '../../../server/accounts/account-deletion.ts';
import { csrfOf, HTML, submit } from '../../helpers/http.ts';
import {
  GOOD_PASSWORD,
  quickLockout,
  type SignedIn,
  signIn,
  signUp,
  startTestServer,
  type TestServer,
} from '../../helpers/server.ts';

const NEW_PASSWORD = 'amber-lantern-orchard-57';
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A browser signed in through the sign-in form. */
async function browserSignIn(t: TestServer, email: string): Promise<request.Agent> {
  const agent = request.agent(t.url).set('Accept', HTML);
  const res = await submit(agent, '/login', '/login', { email, password: GOOD_PASSWORD });
  assert.equal(res.status, 303, res.text);
  return agent;
}

async function auditFailures(t: TestServer, tenantId: string, action: string): Promise<number> {
  const { rows } = await t.db.pool.query(
    `SELECT count(*)::int AS n FROM control.audit_inbox
      WHERE tenant_id = $1 AND action = $2 AND outcome = 'failure'`,
    [tenantId, action],
  );
  return rows[0].n;
}

const changePassword = (p: SignedIn, currentPassword: string) =>
  p.agent
    .post('/api/v1/account/password')
    .set('X-CSRF-Token', p.csrf)
    .send({ currentPassword, newPassword: NEW_PASSWORD });

describe('with the production lockout', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer();
  });
  after(async () => {
    await t?.stop();
  });

  test('50 wrong guesses at /api/v1/account/password end in 429s, unchecked, and the lockout then blocks sign-in too', async () => {
    const person = await signUp(t.url);
    const statuses: number[] = [];
    let refused: request.Response | undefined;
    for (let i = 0; i < 50; i++) {
      const res = await changePassword(person, `wrong-guess-number-${i}`);
      statuses.push(res.status);
      if (res.status === 429) refused = res;
    }
    const checked = statuses.filter((s) => s === 401).length;
    // 5 free failures, the 6th arms a delay (then 4, 8, 16 s, then 15 minutes): a handful checked at most.
    assert.ok(checked >= 6 && checked <= 8, statuses.join(','));
    assert.equal(statuses.filter((s) => s === 429).length, 50 - checked, statuses.join(','));
    assert.equal(statuses.at(-1), 429);
    assert.ok(refused);
    assert.ok(Number(refused.headers['retry-after']) >= 1);
    assert.match(
      refused.body.error.message,
      /^Too many wrong passwords or codes for this account\. Try again in/,
    );
    // Only the checked guesses cost an argon2 hash: each left its audited failure, the refused ones none.
    const failures = await auditFailures(t, person.user.tenantId as string, 'account.password.change');
    assert.equal(failures, checked);

    // The same lockout holds at sign-in, even for the right password.
    const signInRefused = await request(t.url)
      .post('/api/v1/auth/login')
      .send({ email: person.email, password: GOOD_PASSWORD })
      .expect(429);
    assert.match(signInRefused.body.error.message, /^Too many failed sign-ins\./);
    // And the password did not change.
    await changePassword(person, NEW_PASSWORD).expect(429);
  });

  test('a form filled in wrong is not a guess: repeated 400s do not lock anyone out', async () => {
    const person = await signUp(t.url);
    for (let i = 0; i < 12; i++) {
      await person.agent
        .post('/api/v1/account/delete')
        .set('X-CSRF-Token', person.csrf)
        .send({ confirm: 'delete it', password: GOOD_PASSWORD })
        .expect(400);
    }
    await signIn(t.url, person.email, GOOD_PASSWORD);
  });
});

describe('with a short lockout', () => {
  let t: TestServer;
  const LOCK_MS = 3000;
  before(async () => {
    t = await startTestServer({}, { abuse: quickLockout(LOCK_MS, 60_000) });
  });
  after(async () => {
    await t?.stop();
  });

  const wrongSignIn = (email: string) =>
    request(t.url).post('/api/v1/auth/login').send({ email, password: 'not-the-password-at-all' });

  test('a lockout earned at sign-in holds at every password and code check behind a session, pages included', async () => {
    const person = await signUp(t.url);
    const page = await browserSignIn(t, person.email);
    const setup = await person.agent.post('/api/v1/mfa/setup').set('X-CSRF-Token', person.csrf).expect(200);
    const account = await page.get('/account').expect(200);
    const pageCsrf = csrfOf(account.text);
    const code = await generate({ secret: setup.body.secret });

    for (let i = 0; i < 3; i++) await wrongSignIn(person.email).expect(401);
    const post = (path: string, body: object) =>
      person.agent.post(path).set('X-CSRF-Token', person.csrf).send(body);
    const refusals = [
      await changePassword(person, GOOD_PASSWORD),
      await post('/api/v1/account/delete', { confirm: DELETE_CONFIRMATION, password: GOOD_PASSWORD }),
      await post('/api/v1/mfa/enable', { password: GOOD_PASSWORD, code }),
      await page.post('/account/password').type('form').send({
        _csrf: pageCsrf,
        currentPassword: GOOD_PASSWORD,
        newPassword: NEW_PASSWORD,
        confirmPassword: NEW_PASSWORD,
      }),
      await page
        .post('/account/delete')
        .type('form')
        .send({ _csrf: pageCsrf, confirm: DELETE_CONFIRMATION, password: GOOD_PASSWORD }),
      await page
        .post('/account/mfa/enable')
        .type('form')
        .send({ _csrf: pageCsrf, password: GOOD_PASSWORD, code }),
    ];
    for (const [i, res] of refusals.entries()) {
      assert.equal(res.status, 429, `request ${i}: ${res.text.slice(0, 200)}`);
      assert.ok(Number(res.headers['retry-after']) >= 1, `request ${i}`);
    }
    assert.match(refusals[3]?.text ?? '', /Too many wrong passwords or codes for this account/);
    // Nothing was checked, so nothing changed and no failure was recorded.
    const tenantId = person.user.tenantId as string;
    for (const action of ['account.password.change', 'account.delete', 'mfa.enable']) {
      assert.equal(await auditFailures(t, tenantId, action), 0, action);
    }
    const me = await person.agent.get('/api/v1/me').expect(200);
    assert.equal(me.body.user.mfaEnabled, false);

    // Once the lockout is over, the same request goes through.
    await sleep(LOCK_MS + 200);
    await changePassword(person, GOOD_PASSWORD).expect(200);
  });

  test("the sign-in page's code step counts toward the lockout too", async () => {
    const person = await signUp(t.url);
    const secret = generateSecret();
    await t.db.pool.query('UPDATE control.users SET mfa_secret = $2, mfa_enabled_at = now() WHERE id = $1', [
      person.user.id,
      secret,
    ]);
    const agent = request.agent(t.url).set('Accept', HTML);
    const form = await agent.get('/login').expect(200);
    await agent
      .post('/login')
      .type('form')
      .send({ _csrf: csrfOf(form.text), email: person.email, password: GOOD_PASSWORD })
      .expect(303)
      .expect('Location', '/login/mfa');
    // The password step counted once; two more failures elsewhere lock the account.
    for (let i = 0; i < 2; i++) await wrongSignIn(person.email).expect(401);
    const codePage = await agent.get('/login/mfa').expect(200);
    const code = await generate({ secret });
    const refused = await agent
      .post('/login/mfa')
      .type('form')
      .send({ _csrf: csrfOf(codePage.text), code })
      .expect(429);
    assert.match(refused.text, /Too many failed sign-ins/);
    await agent.get('/account').expect(303).expect('Location', '/login');

    // After the lockout, the same (unused) code signs in, and the count starts again from zero.
    await sleep(LOCK_MS + 200);
    await agent
      .post('/login/mfa')
      .type('form')
      .send({ _csrf: csrfOf(refused.text), code })
      .expect(303);
    await agent.get('/account').expect(200);
    await wrongSignIn(person.email).expect(401);
    await wrongSignIn(person.email).expect(401);
  });

  test('at the next sign-in, the owner is told how many attempts failed or were refused since the last (API)', async () => {
    const person = await signUp(t.url);
    const signInNow = () =>
      request(t.url).post('/api/v1/auth/login').send({ email: person.email, password: GOOD_PASSWORD });
    await changePassword(person, 'not-the-password-at-all').expect(401); // failed, behind the session
    for (let i = 0; i < 2; i++) await wrongSignIn(person.email).expect(401); // failed; now locked
    await wrongSignIn(person.email).expect(429); // refused
    await signInNow().expect(429); // refused, although right
    await changePassword(person, GOOD_PASSWORD).expect(429); // refused, behind the session
    await sleep(LOCK_MS + 200);

    const res = await signInNow().expect(200);
    assert.equal(res.body.failedAttemptsSinceLastSignIn, 6);
    assert.deepEqual(res.body.notices, []);
    // Told once: the sign-in after that has nothing to tell.
    const again = await signInNow().expect(200);
    assert.equal(again.body.failedAttemptsSinceLastSignIn, 0);
  });

  test('the sign-in page tells the owner too, on the first page after signing in', async () => {
    const person = await signUp(t.url);
    for (let i = 0; i < 2; i++) await wrongSignIn(person.email).expect(401);
    const agent = await browserSignIn(t, person.email);
    const home = await agent.get('/workspace').expect(200);
    assert.match(
      home.text,
      /Since you last signed in, 2 attempts to sign in or to confirm your password failed or were refused\./,
    );
    // Said once.
    const again = await agent.get('/workspace').expect(200);
    assert.doesNotMatch(again.text, /Since you last signed in/);
  });
});
