// Sign-in reads its credentials one way only (server/auth/sign-in-credentials.ts),
// for the lockout and the password check alike: one string email and one
// string password, from the body. Every other shape is refused with 400 before
// the lockout and before any password is checked. Real PostgreSQL and Redis,
// with a lockout that locks after three failures and stays locked for the test.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import { register } from '../../../server/accounts/accounts.ts';
import { loadTenantMigrations } from '../../../tenancy/templates.ts';
import { csrfOf, HTML } from '../../helpers/http.ts';
import { settle } from '../../helpers/log.ts';
import {
  GOOD_PASSWORD,
  quickLockout,
  startTestServer,
  type TestServer,
  uniqueEmail,
} from '../../helpers/server.ts';

let t: TestServer;
before(async () => {
  t = await startTestServer({}, { abuse: quickLockout(10 * 60_000, 60 * 60_000) });
});
after(async () => {
  await t?.stop();
});

interface Account {
  email: string;
  userId: string;
  tenantId: string;
}

async function newAccount(password = GOOD_PASSWORD): Promise<Account> {
  const email = uniqueEmail('creds');
  const { user } = await register(
    t.db.pool,
    { email, password, displayName: 'Credentials Test' },
    loadTenantMigrations(),
  );
  return { email, userId: user.id, tenantId: user.tenant_id as string };
}

/** Sign-ins the account's audit chain saw (successes and failures) and sessions it has: what a checked password leaves. */
async function traces(a: Account): Promise<{ logins: number; sessions: number }> {
  const logins = await t.db.pool.query(
    "SELECT count(*)::int AS n FROM control.audit_inbox WHERE action = 'auth.login' AND tenant_id = $1",
    [a.tenantId],
  );
  const sessions = await t.db.pool.query(
    'SELECT count(*)::int AS n FROM control.user_sessions WHERE user_id = $1',
    [a.userId],
  );
  return { logins: logins.rows[0].n, sessions: sessions.rows[0].n };
}

const api = (query = '') => request(t.url).post(`/api/v1/auth/login${query}`);

async function lock(a: Account): Promise<void> {
  for (let i = 0; i < 3; i++) {
    await api()
      .send({ email: a.email, password: `wrong-password-${i}` })
      .expect(401);
  }
  const locked = await api().send({ email: a.email, password: GOOD_PASSWORD }).expect(429);
  assert.ok(Number(locked.headers['retry-after']) > 60);
}

/** A browser on the sign-in page: its cookie and the form's token. */
async function signInPage(): Promise<{ agent: request.Agent; csrf: string }> {
  const agent = request.agent(t.url).set('Accept', HTML);
  const form = await agent.get('/login').expect(200);
  const csrf = csrfOf(form.text);
  assert.ok(csrf);
  return { agent, csrf };
}

const enc = encodeURIComponent;

describe('the reported lockout bypass', () => {
  test('a locked account: an email object in the body and the address in the query string gets 400, unchecked, and no session (API)', async () => {
    const victim = await newAccount();
    await lock(victim);
    const seen = await traces(victim);
    for (const password of [GOOD_PASSWORD, 'wrong-password-x']) {
      const res = await api(`?email=${enc(victim.email)}`)
        .send({ email: {}, password })
        .expect(400);
      assert.equal(res.body.error.code, 'invalid_input');
      assert.equal(res.body.error.message, 'The email address must be text.');
      assert.equal(res.headers['set-cookie'], undefined, 'no session cookie');
    }
    // Nothing was checked: no sign-in (success or failure) recorded, no session opened.
    assert.deepEqual(await traces(victim), seen);
    // And still locked for the address given the normal way.
    await api().send({ email: victim.email, password: GOOD_PASSWORD }).expect(429);
  });

  test('a locked account: two email fields in the form and the address in the query string gets 400 and no session (page)', async () => {
    const victim = await newAccount();
    await lock(victim);
    const seen = await traces(victim);
    const { agent, csrf } = await signInPage();
    const form = `_csrf=${enc(csrf)}&email=${enc(uniqueEmail())}&email=${enc(victim.email)}&password=${enc(GOOD_PASSWORD)}`;
    const res = await agent
      .post(`/login?email=${enc(victim.email)}`)
      .type('form')
      .send(form)
      .expect(400)
      .expect('Content-Type', /html/);
    assert.match(res.text, /Send the email address only once\./);
    await agent.get('/account').expect(303).expect('Location', '/login');
    assert.deepEqual(await traces(victim), seen);
  });
});

describe('every other shape of credentials is refused before any check', () => {
  // Sent with the RIGHT password of an unlocked account: had the password been
  // checked, the answer would be 200 and a session.
  const jsonCases = (email: string): Array<[string, string, object, RegExp]> => [
    ['an email object', '', { email: {}, password: GOOD_PASSWORD }, /^The email address must be text\.$/],
    [
      'an email array',
      '',
      { email: [email], password: GOOD_PASSWORD },
      /^Send the email address only once\.$/,
    ],
    [
      'two emails in an array',
      '',
      { email: [uniqueEmail(), email], password: GOOD_PASSWORD },
      /^Send the email address only once\.$/,
    ],
    ['a number as email', '', { email: 42, password: GOOD_PASSWORD }, /^The email address must be text\.$/],
    ['a password object', '', { email, password: {} }, /^The password must be text\.$/],
    ['a password array', '', { email, password: [GOOD_PASSWORD] }, /^Send the password only once\.$/],
    [
      'the email only in the query string',
      `?email=${enc(email)}`,
      { password: GOOD_PASSWORD },
      /^Enter your email address\.$/,
    ],
    [
      'the password only in the query string',
      `?password=${enc(GOOD_PASSWORD)}`,
      { email },
      /^Enter your password\.$/,
    ],
    ['an empty body', '', {}, /^Enter your email address\.$/],
    [
      'a JSON array as the body',
      '',
      [{ email, password: GOOD_PASSWORD }],
      /^Send your email address and password in the request body\.$/,
    ],
    [
      'a NUL in the email',
      '',
      { email: email.replace('@', '\u0000@'), password: GOOD_PASSWORD },
      /control characters/,
    ],
    [
      'an over-long email',
      '',
      { email: `${'a'.repeat(300)}${email}`, password: GOOD_PASSWORD },
      /at most 254 characters/,
    ],
    [
      'an over-long password',
      '',
      { email, password: 'x'.repeat(1000) },
      /^The password can be at most 256 characters\.$/,
    ],
    [
      'a lone surrogate in the email',
      '',
      { email: email.replace('@', '\ud800@'), password: GOOD_PASSWORD },
      /not valid/,
    ],
    [
      'two codes',
      '',
      { email, password: GOOD_PASSWORD, totp: ['123456', '654321'] },
      /^Send the code only once\.$/,
    ],
  ];

  const formCases = (email: string): Array<[string, string, string, RegExp]> => [
    [
      'a repeated email field',
      '',
      `email=${enc(email)}&email=${enc(email)}&password=${enc(GOOD_PASSWORD)}`,
      /Send the email address only once\./,
    ],
    [
      'a repeated password field',
      '',
      `email=${enc(email)}&password=${enc(GOOD_PASSWORD)}&password=${enc(GOOD_PASSWORD)}`,
      /Send the password only once\./,
    ],
    [
      'the email only in the query string',
      `?email=${enc(email)}`,
      `password=${enc(GOOD_PASSWORD)}`,
      /Enter your email address\./,
    ],
    [
      'a NUL in the email',
      '',
      `email=${enc(email.replace('@', '\u0000@'))}&password=${enc(GOOD_PASSWORD)}`,
      /control characters/,
    ],
  ];

  test('JSON API: 400 with a message that says what to fix; no password checked', async () => {
    const a = await newAccount();
    const seen = await traces(a);
    for (const [name, query, body, message] of jsonCases(a.email)) {
      const res = await api(query).send(body);
      assert.equal(res.status, 400, `${name}: ${res.text}`);
      assert.equal(res.body.error.code, 'invalid_input', name);
      assert.match(res.body.error.message, message, name);
    }
    for (const [name, query, body, message] of formCases(a.email)) {
      const res = await api(query).type('form').send(body);
      assert.equal(res.status, 400, `form, ${name}: ${res.text}`);
      assert.match(res.body.error.message, message, `form, ${name}`);
    }
    assert.deepEqual(await traces(a), seen, 'no sign-in recorded, no session opened');
    // None of it counted as a guess either: the right password still signs in at once.
    const ok = await api().send({ email: a.email, password: GOOD_PASSWORD }).expect(200);
    assert.equal(ok.body.failedAttemptsSinceLastSignIn, 0);
  });

  test('sign-in page: 400 page with the message; no password checked, not signed in', async () => {
    const a = await newAccount();
    const seen = await traces(a);
    for (const [name, query, body, message] of formCases(a.email)) {
      const { agent, csrf } = await signInPage();
      const res = await agent
        .post(`/login${query}`)
        .type('form')
        .send(`_csrf=${enc(csrf)}&${body}`);
      assert.equal(res.status, 400, `${name}: ${res.text}`);
      assert.match(res.headers['content-type'] ?? '', /html/, name);
      assert.match(res.text, message, name);
      await agent.get('/account').expect(303).expect('Location', '/login');
    }
    assert.deepEqual(await traces(a), seen);
  });
});

describe('bad text in the fields a person types is a 400, never a 500', () => {
  test('a NUL in the email at registration (API and page), at sign-in; invalid text in a display name or password', async () => {
    const register = (body: object) => request(t.url).post('/api/v1/auth/register').send(body);
    const email = uniqueEmail('nul');
    const cases: Array<[string, object, RegExp]> = [
      [
        'a NUL in the email',
        { email: email.replace('@', '\u0000@'), password: GOOD_PASSWORD, displayName: 'Nul' },
        /control characters/,
      ],
      [
        'a lone surrogate in the email',
        { email: email.replace('@', '\udc00@'), password: GOOD_PASSWORD, displayName: 'Nul' },
        /does not look like an email address/,
      ],
      ['a NUL in the display name', { email, password: GOOD_PASSWORD, displayName: 'N\u0000ul' }, /control/],
      [
        'a lone surrogate in the display name',
        { email, password: GOOD_PASSWORD, displayName: 'N\ud800ul' },
        /not valid/,
      ],
      [
        'a lone surrogate in the password',
        { email, password: `${GOOD_PASSWORD}\ud800`, displayName: 'Nul' },
        /not valid/,
      ],
    ];
    for (const [name, body, message] of cases) {
      const res = await register(body);
      assert.equal(res.status, 400, `${name}: ${res.text}`);
      assert.match(res.body.error.message, message, name);
    }

    // The registration page shows its form again with the message.
    const agent = request.agent(t.url).set('Accept', HTML);
    const form = await agent.get('/register').expect(200);
    const csrf = csrfOf(form.text);
    const page = await agent
      .post('/register')
      .type('form')
      .send({
        _csrf: csrf,
        email: email.replace('@', '\u0000@'),
        password: GOOD_PASSWORD,
        displayName: 'Nul',
      });
    assert.equal(page.status, 400);
    assert.match(page.text, /An email address cannot contain control characters\./);

    // A NUL inside a password is only a character: it registers and signs in.
    const nulPassword = `violet\u0000kettle-harbour-92`;
    await register({ email, password: nulPassword, displayName: 'Nul' }).expect(201);
    await api().send({ email, password: nulPassword }).expect(200);
    await api().send({ email, password: GOOD_PASSWORD }).expect(401);

    await settle();
    const errors = t.logs.lines().filter((l) => l.level === 'error');
    assert.deepEqual(errors, [], 'nothing was logged as an error');
  });
});
