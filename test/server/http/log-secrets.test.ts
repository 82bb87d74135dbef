// A full run through every secret-handling path, then a grep of everything the
// server logged (at debug level) for each secret it saw: passwords, session
// cookies, CSRF tokens, API tokens, TOTP secrets and recovery codes.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import { settle } from '../../helpers/log.ts';
import { signIn, signUp, startTestServer, type TestServer } from '../../helpers/server.ts';
import { enrolMfa, totp } from '../../helpers/totp.ts';

function cookieValues(res: request.Response): string[] {
  return ([] as string[])
    .concat(res.headers['set-cookie'] ?? [])
    .map((c) => c.split(';')[0]?.split('=')[1] ?? '')
    .filter(Boolean);
}

describe('logs never hold a secret', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({ LOG_LEVEL: 'debug' });
  });
  after(async () => {
    await t.stop();
  });

  test('after sign-up, sign-in, MFA, tokens, a failed login and a password change', async () => {
    const secrets: string[] = [];
    const a = await signUp(t.url, { password: 'first-Secret-passphrase-91' });
    secrets.push(a.password, a.csrf);

    const mfa = await enrolMfa(a);
    secrets.push(mfa.secret, ...mfa.recoveryCodes, mfa.csrf);
    const csrf = mfa.csrf;

    const token = await a.agent
      .post('/api/v1/tokens')
      .set('X-CSRF-Token', csrf)
      .send({ name: 'script', scope: 'write' })
      .expect(201);
    secrets.push(token.body.secret);
    await request(t.url).get('/api/v1/notes').set('Authorization', `Bearer ${token.body.secret}`).expect(200);
    await request(t.url)
      .get('/api/v1/notes?access_token=x')
      .set('Authorization', 'Bearer enc_notarealtokenbutlongenough1234567890')
      .expect(401);

    const second = await request(t.url)
      .post('/api/v1/auth/login')
      .send({ email: a.email, password: a.password, totp: mfa.recoveryCodes[0] })
      .expect(200);
    secrets.push(...cookieValues(second), second.body.csrfToken);
    await request(t.url)
      .post('/api/v1/auth/login')
      .send({ email: a.email, password: 'Wrong-passphrase-guess-7' })
      .expect(401);
    secrets.push('Wrong-passphrase-guess-7');
    await request(t.url)
      .post('/api/v1/auth/login')
      .send({ email: a.email, password: a.password, totp: '000000' })
      .expect(401);

    const phone = await signIn(t.url, a.email, a.password, { totp: await totp(mfa.secret, 1) });
    secrets.push(phone.csrf);
    const changed = await phone.agent
      .post('/api/v1/account/password')
      .set('X-CSRF-Token', phone.csrf)
      .send({ currentPassword: a.password, newPassword: 'second-Secret-passphrase-42' })
      .expect(200);
    secrets.push('second-Secret-passphrase-42', ...cookieValues(changed));

    await settle();
    const text = t.logs.text();
    assert.ok(text.split('\n').length > 15, 'the run was logged');
    for (const secret of secrets) {
      assert.ok(secret.length >= 6, `a real secret: ${secret}`);
      assert.ok(!text.includes(secret), `the log contains a secret (${secret.slice(0, 4)}…)`);
      const decoded = decodeURIComponent(secret);
      assert.ok(!text.includes(decoded), 'the log contains a decoded cookie');
    }
    // The session id inside a signed cookie ("s:<sid>.<signature>") must not appear either.
    for (const cookie of secrets.filter((s) => s.startsWith('s%3A'))) {
      const sid = decodeURIComponent(cookie).slice(2).split('.')[0] as string;
      assert.ok(!text.includes(sid), 'the log contains a session id');
    }
  });
});
