// MFA over HTTP against a real server (PostgreSQL + Redis): enrolment, sign-in
// with a TOTP or recovery code, replay refusal, turning it off, and required
// MFA for privileged accounts.
//
// TOTP codes are computed here from the secret the server returned. The server
// accepts the previous, current and next 30-second step, and each step only
// once per user, so a test uses steps -1, 0, +1 in that order, after making
// sure the current step has enough time left (see steadyStep).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import { createPrivilegedUser } from '../../../server/accounts/accounts.ts';
import { sessionCookie } from '../../helpers/http.ts';
import {
  GOOD_PASSWORD,
  type SignedIn,
  signIn,
  signUp,
  startTestServer,
  type TestServer,
  uniqueEmail,
} from '../../helpers/server.ts';
import { enrolMfa, steadyStep, totp } from '../../helpers/totp.ts';

interface Enrolled extends SignedIn {
  secret: string;
  recoveryCodes: string[];
}

/** Every secret and recovery code handed out, for the log check at the end. */
const handedOut: string[] = [];

/** A new account with MFA turned on (with the code of step -1). */
async function enrolledAccount(t: TestServer): Promise<Enrolled> {
  const person = await signUp(t.url);
  const mfa = await enrolMfa(person);
  handedOut.push(mfa.secret, ...mfa.recoveryCodes);
  return { ...person, ...mfa };
}

function login(t: TestServer, email: string, totpCode?: string) {
  const body: Record<string, string> = { email, password: GOOD_PASSWORD };
  if (totpCode !== undefined) body.totp = totpCode;
  return request(t.url).post('/api/v1/auth/login').send(body);
}

describe('MFA', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer();
  });
  after(async () => {
    await t.stop();
  });

  test('enrolment: setup gives a QR code, a wrong code is refused, the right one turns MFA on with ten recovery codes stored hashed', async () => {
    await steadyStep();
    const person = await signUp(t.url);
    const setup = await person.agent.post('/api/v1/mfa/setup').set('X-CSRF-Token', person.csrf).expect(200);
    const { secret, otpauthUrl, qrSvg } = setup.body;
    handedOut.push(secret);
    assert.match(secret, /^[A-Z2-7]{32}$/);
    assert.match(otpauthUrl, /^otpauth:\/\/totp\/Enclave:/);
    assert.ok(otpauthUrl.includes(`secret=${secret}`));
    assert.match(qrSvg, /^<svg[\s\S]*<\/svg>\s*$/);
    assert.doesNotMatch(qrSvg, /<script|style=/i);
    assert.equal(setup.headers['cache-control'], 'no-store');

    // Pending, not on: signing in still needs no code.
    const status = await person.agent.get('/api/v1/mfa').expect(200);
    assert.deepEqual(status.body, { enabled: false, required: false, pending: true, recoveryCodesLeft: 0 });
    await login(t, person.email).expect(200);

    const wrong = await person.agent
      .post('/api/v1/mfa/enable')
      .set('X-CSRF-Token', person.csrf)
      .send({ password: person.password, code: (await totp(secret)) === '000000' ? '111111' : '000000' })
      .expect(401);
    assert.equal(wrong.body.error.code, 'unauthenticated');
    await person.agent.post('/api/v1/mfa/enable').set('X-CSRF-Token', person.csrf).send({}).expect(400);

    const enable = await person.agent
      .post('/api/v1/mfa/enable')
      .set('X-CSRF-Token', person.csrf)
      .send({ password: person.password, code: await totp(secret) })
      .expect(200);
    const codes: string[] = enable.body.recoveryCodes;
    assert.equal(codes.length, 10);
    assert.equal(new Set(codes).size, 10);
    for (const code of codes) assert.match(code, /^[a-z2-9]{5}-[a-z2-9]{5}$/);
    assert.equal(enable.body.user.mfaEnabled, true);

    const { rows } = await t.db.pool.query<{ code_hash: Buffer }>(
      'SELECT code_hash FROM control.recovery_codes WHERE user_id = $1',
      [person.user.id],
    );
    const stored = new Set(rows.map((r) => r.code_hash.toString('hex')));
    assert.equal(stored.size, 10);
    for (const code of codes) {
      const hash = createHash('sha256').update(code.replace('-', '')).digest('hex');
      assert.ok(stored.has(hash), 'each recovery code is stored as its SHA-256, nothing else');
    }
    const user = await t.db.pool.query(
      'SELECT mfa_pending_secret, mfa_secret FROM control.users WHERE id = $1',
      [person.user.id],
    );
    assert.equal(user.rows[0].mfa_pending_secret, null);
    assert.equal(user.rows[0].mfa_secret, secret);

    const me = await person.agent.get('/api/v1/me').expect(200);
    assert.equal(me.body.user.mfaEnabled, true);
    // A second setup while it is on would let a stolen session swap the authenticator.
    await person.agent.post('/api/v1/mfa/setup').set('X-CSRF-Token', enable.body.csrfToken).expect(409);
  });

  test('sign-in then asks for the code: none is 401 mfa_required, a wrong one 401, the right one 200', async () => {
    await steadyStep();
    const person = await enrolledAccount(t);
    const missing = await login(t, person.email).expect(401);
    assert.equal(missing.body.error.code, 'mfa_required');
    const right = await totp(person.secret);
    const wrong = await login(t, person.email, right === '123456' ? '654321' : '123456').expect(401);
    assert.equal(wrong.body.error.code, 'unauthenticated');
    // The wrong password with the right code is still the plain password answer.
    const badPassword = await request(t.url)
      .post('/api/v1/auth/login')
      .send({ email: person.email, password: 'not-the-password-at-all', totp: right })
      .expect(401);
    assert.equal(badPassword.body.error.code, 'unauthenticated');
    const ok = await login(t, person.email, right).expect(200);
    assert.equal(ok.body.user.mfaEnabled, true);
  });

  test('a TOTP code signs in once: the same code again is refused, and so is an older one', async () => {
    await steadyStep();
    const person = await enrolledAccount(t); // used step -1
    const now = await totp(person.secret);
    await login(t, person.email, now).expect(200);
    const again = await login(t, person.email, now).expect(401);
    assert.match(again.body.error.message, /already used/);
    // Step -1 was spent at enrolment; it stays spent.
    await login(t, person.email, await totp(person.secret, -1)).expect(401);
    // The next step is still good.
    await login(t, person.email, await totp(person.secret, 1)).expect(200);
  });

  test('a recovery code signs in once, written any way; a second use fails', async () => {
    await steadyStep();
    const person = await enrolledAccount(t);
    const [first, second] = person.recoveryCodes as [string, string];
    await login(t, person.email, first).expect(200);
    const reused = await login(t, person.email, first).expect(401);
    assert.equal(reused.body.error.code, 'unauthenticated');
    await login(t, person.email, ` ${second.toUpperCase().replace('-', ' ')} `).expect(200);
    await login(t, person.email, second).expect(401);
    const status = await person.agent.get('/api/v1/mfa').expect(200);
    assert.equal(status.body.recoveryCodesLeft, 8);
  });

  test('new recovery codes need the password and a code, and replace the old ones', async () => {
    await steadyStep();
    const person = await enrolledAccount(t);
    const post = (body: object) =>
      person.agent.post('/api/v1/mfa/recovery-codes').set('X-CSRF-Token', person.csrf).send(body);
    const code = await totp(person.secret);
    await post({ password: GOOD_PASSWORD, code: code === '000000' ? '111111' : '000000' }).expect(401);
    // A code alone (what a stolen session can read off a shoulder) is not enough.
    const noPassword = await post({ code }).expect(400);
    assert.match(noPassword.body.error.message, /current password/);
    const wrongPassword = await post({ password: 'not-the-password-at-all', code }).expect(401);
    assert.equal(wrongPassword.body.error.message, 'The password or the code is incorrect.');
    const res = await post({ password: GOOD_PASSWORD, code }).expect(200);
    assert.equal(res.body.recoveryCodes.length, 10);
    await login(t, person.email, person.recoveryCodes[0]).expect(401);
    const next = await login(t, person.email, res.body.recoveryCodes[0]).expect(200);
    // The owner hears of both changes at the next sign-in.
    assert.deepEqual(
      next.body.notices.map((n: { kind: string }) => n.kind),
      ['mfa.enable', 'mfa.recovery_codes.regenerate'],
    );
  });

  test('a second session cannot turn MFA on without the password; with it, the owner is told at the next sign-in', async () => {
    await steadyStep();
    const owner = await signUp(t.url);
    // A second session on the account: what a stolen cookie gives.
    const thief = await signIn(t.url, owner.email, owner.password);
    const setup = await thief.agent.post('/api/v1/mfa/setup').set('X-CSRF-Token', thief.csrf).expect(200);
    handedOut.push(setup.body.secret);
    const code = await totp(setup.body.secret);
    const enable = (body: object) =>
      thief.agent
        .post('/api/v1/mfa/enable')
        .set('X-CSRF-Token', thief.csrf)
        .set('User-Agent', 'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0')
        .send(body);

    const missing = await enable({ code }).expect(400);
    assert.match(missing.body.error.message, /current password/);
    const wrong = await enable({ code, password: 'a-guessed-password-1' }).expect(401);
    assert.equal(wrong.body.error.message, 'The password is incorrect.');
    // Nothing changed: MFA is off, the owner is still signed in; the refusal is in the trail.
    const me = await owner.agent.get('/api/v1/me').expect(200);
    assert.equal(me.body.user.mfaEnabled, false);
    await login(t, owner.email).expect(200);
    const { rows } = await t.db.pool.query(
      `SELECT outcome, outcome_code FROM control.audit_inbox
        WHERE action = 'mfa.enable' AND resource_id = $1 ORDER BY id`,
      [owner.user.id],
    );
    assert.deepEqual(rows, [{ outcome: 'failure', outcome_code: 'wrong_password' }]);

    // With the password it turns on; the owner's next sign-in says when, from where.
    const on = await enable({ code, password: owner.password }).expect(200);
    handedOut.push(...on.body.recoveryCodes);
    const next = await login(t, owner.email, await totp(setup.body.secret, 1)).expect(200);
    assert.equal(next.body.notices.length, 1);
    const [notice] = next.body.notices;
    assert.equal(notice.kind, 'mfa.enable');
    assert.equal(notice.device, 'Firefox on Linux');
    assert.ok(notice.ip);
    assert.ok(Math.abs(Date.now() - Date.parse(notice.at)) < 60_000, notice.at);
    // Told once.
    const later = await login(t, owner.email, on.body.recoveryCodes[0]).expect(200);
    assert.deepEqual(later.body.notices, []);
  });

  test('turning MFA off needs the password and a current code; after it, sign-in needs no code', async () => {
    await steadyStep();
    const person = await enrolledAccount(t);
    const post = (body: object) =>
      person.agent.post('/api/v1/mfa/disable').set('X-CSRF-Token', person.csrf).send(body);
    const code = await totp(person.secret);
    await post({ password: 'wrong-password-here', code }).expect(401);
    await post({ password: GOOD_PASSWORD }).expect(400);
    await post({ password: GOOD_PASSWORD, code: code === '000000' ? '111111' : '000000' }).expect(401);
    await login(t, person.email).expect(401); // still on
    const off = await post({ password: GOOD_PASSWORD, code }).expect(200);
    assert.equal(off.body.user.mfaEnabled, false);
    assert.ok(off.body.csrfToken);
    const left = await t.db.pool.query(
      'SELECT count(*)::int AS n FROM control.recovery_codes WHERE user_id = $1',
      [person.user.id],
    );
    assert.equal(left.rows[0].n, 0);
    await login(t, person.email).expect(200);
  });

  test('enabling MFA gives the session a new id and CSRF token; the old cookie and other sessions stop working', async () => {
    await steadyStep();
    const person = await signUp(t.url);
    const other = await login(t, person.email).expect(200);
    const otherCookie = sessionCookie(other) as string;
    const setup = await person.agent.post('/api/v1/mfa/setup').set('X-CSRF-Token', person.csrf).expect(200);
    const before = await person.agent.get('/api/v1/me').expect(200);
    const oldCookie = sessionCookie(before) as string;
    assert.ok(oldCookie);

    const enable = await person.agent
      .post('/api/v1/mfa/enable')
      .set('X-CSRF-Token', person.csrf)
      .send({ password: person.password, code: await totp(setup.body.secret) })
      .expect(200);
    const newCookie = sessionCookie(enable);
    assert.ok(newCookie, 'a new session cookie is set');
    assert.notEqual(newCookie, oldCookie);
    assert.notEqual(enable.body.csrfToken, person.csrf);

    await request(t.url).get('/api/v1/me').set('Cookie', oldCookie).expect(401);
    await request(t.url).get('/api/v1/me').set('Cookie', otherCookie).expect(401);
    const me = await person.agent.get('/api/v1/me').expect(200);
    assert.equal(me.body.user.mfaEnabled, true);
    // The old CSRF token belonged to the old session.
    await person.agent
      .post('/api/v1/mfa/recovery-codes')
      .set('X-CSRF-Token', person.csrf)
      .send({ password: person.password, code: await totp(setup.body.secret, 1) })
      .expect(403);
  });

  test('an admin who must use MFA gets 403 mfa_enrolment_required everywhere else until enrolled, but can enrol', async () => {
    await steadyStep();
    const email = uniqueEmail('admin');
    const admin = await createPrivilegedUser(t.db.pool, {
      email,
      password: GOOD_PASSWORD,
      displayName: 'Ops Person',
      role: 'admin',
    });
    await t.db.pool.query('UPDATE control.users SET mfa_required = true WHERE id = $1', [admin.id]);

    const agent = request.agent(t.url);
    const signedIn = await agent
      .post('/api/v1/auth/login')
      .send({ email, password: GOOD_PASSWORD })
      .expect(200);
    let csrf: string = signedIn.body.csrfToken;

    const refused = await agent.get('/api/v1/sessions').expect(403);
    assert.equal(refused.body.error.code, 'mfa_enrolment_required');
    await agent.get('/api/v1/admin/tenants/abcdefghijkl/sessions').expect(403);
    const write = await agent.post('/api/v1/sessions/revoke-all').set('X-CSRF-Token', csrf).expect(403);
    assert.equal(write.body.error.code, 'mfa_enrolment_required');

    // What stays open: who am I, a CSRF token, enrolment.
    await agent.get('/api/v1/me').expect(200);
    await agent.get('/api/v1/csrf').expect(200);
    const status = await agent.get('/api/v1/mfa').expect(200);
    assert.equal(status.body.required, true);
    const setup = await agent.post('/api/v1/mfa/setup').set('X-CSRF-Token', csrf).expect(200);
    const enable = await agent
      .post('/api/v1/mfa/enable')
      .set('X-CSRF-Token', csrf)
      .send({ password: GOOD_PASSWORD, code: await totp(setup.body.secret) })
      .expect(200);
    csrf = enable.body.csrfToken;

    await agent.get('/api/v1/sessions').expect(200);
    // And from now on, signing in needs the code.
    const again = await request(t.url)
      .post('/api/v1/auth/login')
      .send({ email, password: GOOD_PASSWORD })
      .expect(401);
    assert.equal(again.body.error.code, 'mfa_required');
    // Logout stays open whatever the state.
    await agent.post('/api/v1/auth/logout').set('X-CSRF-Token', csrf).expect(204);
  });

  test('the log never holds a TOTP secret or a recovery code', () => {
    const text = t.logs.text();
    assert.ok(handedOut.length > 20);
    for (const secret of handedOut) {
      assert.ok(!text.includes(secret), 'a secret or recovery code reached the log');
      assert.ok(!text.includes(secret.replace('-', '')), 'a recovery code reached the log');
    }
  });
});
