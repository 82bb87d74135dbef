// The pages, driven like a browser would: GET the form, read its _csrf field,
// POST it urlencoded, follow the redirect. Real PostgreSQL and Redis.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { generate } from 'otplib';
import request from 'supertest';
import { csrfOf, HTML, submit } from '../../helpers/http.ts';
import { assertNoInlineCode } from '../../helpers/pages.ts';
import {
  GOOD_PASSWORD,
  signIn,
  startTestServer,
  type TestServer,
  uniqueEmail,
} from '../../helpers/server.ts';

const BROWSER =
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36';

let server: TestServer;
before(async () => {
  server = await startTestServer();
});
after(async () => {
  await server?.stop();
});

function browser(): request.Agent {
  return request.agent(server.url).set('Accept', HTML).set('User-Agent', BROWSER);
}

async function registerByForm(fields: Partial<Record<'email' | 'password' | 'displayName', string>> = {}) {
  const agent = browser();
  const email = fields.email ?? uniqueEmail('page');
  const password = fields.password ?? GOOD_PASSWORD;
  const res = await submit(agent, '/register', '/register', {
    displayName: fields.displayName ?? 'Page Person',
    email,
    password,
  });
  assert.equal(res.status, 303, res.text);
  return { agent, email, password };
}

async function userCount(): Promise<number> {
  return (await server.db.pool.query('SELECT count(*)::int AS n FROM control.users')).rows[0].n;
}

describe('registration page', () => {
  test('registering through the form signs the person in and lands on their account', async () => {
    const { agent, email } = await registerByForm({ displayName: 'Ada Form' });
    const home = await agent.get('/').expect(303);
    assert.equal(home.headers.location, '/workspace');
    const account = await agent.get('/account').expect(200).expect('Content-Type', /html/);
    assert.match(account.text, /Ada Form/);
    assert.match(account.text, new RegExp(email.replace(/[.+]/g, '\\$&')));
    assert.match(account.text, /Your workspace is ready/);
    const me = await agent.get('/api/v1/me').expect(200);
    assert.equal(me.body.user.email, email);
    assert.match(me.body.tenantId, /^[a-z0-9]{12}$/);
  });

  test('a form posted without its CSRF token is refused with a 403 page and creates nothing', async () => {
    const before = await userCount();
    const agent = browser();
    await agent.get('/register').expect(200); // has a session, but sends no token
    const res = await agent
      .post('/register')
      .type('form')
      .send({ displayName: 'No Token', email: uniqueEmail('csrf'), password: GOOD_PASSWORD })
      .expect(403)
      .expect('Content-Type', /html/);
    assert.match(res.text, /did not come from this site/);
    const wrong = await agent
      .post('/register')
      .type('form')
      .send({ _csrf: 'not-the-token', displayName: 'X', email: uniqueEmail('csrf'), password: GOOD_PASSWORD })
      .expect(403);
    assert.match(wrong.text, /<h1[^>]*>Not allowed<\/h1>/);
    // Without any session at all, too.
    await request(server.url)
      .post('/register')
      .set('Accept', HTML)
      .type('form')
      .send({ displayName: 'X', email: uniqueEmail('csrf'), password: GOOD_PASSWORD })
      .expect(403);
    assert.equal(await userCount(), before);
  });

  test('a refused registration shows the form again with what was typed, never the password', async () => {
    const agent = browser();
    const email = uniqueEmail('weak');
    const res = await submit(agent, '/register', '/register', {
      displayName: 'Weak Password',
      email,
      password: 'short-pw',
    });
    assert.equal(res.status, 400);
    assert.match(res.text, /The password must be at least 12 characters\./);
    assert.match(res.text, new RegExp(`value="${email.replace(/[.+]/g, '\\$&')}"`));
    assert.match(res.text, /value="Weak Password"/);
    assert.doesNotMatch(res.text, /short-pw/);

    const taken = await registerByForm();
    const again = await submit(browser(), '/register', '/register', {
      displayName: 'Second',
      email: taken.email.toUpperCase(),
      password: GOOD_PASSWORD,
    });
    assert.equal(again.status, 409);
    assert.match(again.text, /already exists/);
    assert.doesNotMatch(again.text, new RegExp(GOOD_PASSWORD));
  });
});

describe('sign-in page', () => {
  test('a wrong password keeps the typed email and never echoes the password', async () => {
    const { email } = await registerByForm();
    const agent = browser();
    const res = await submit(agent, '/login', '/login', { email, password: 'Wrong-password-123!' });
    assert.equal(res.status, 401);
    assert.match(res.headers['content-type'] ?? '', /html/);
    assert.match(res.text, /Email or password is incorrect\./);
    assert.match(res.text, new RegExp(`value="${email.replace(/[.+]/g, '\\$&')}"`));
    assert.doesNotMatch(res.text, /Wrong-password-123!/);
    await agent.get('/account').expect(303).expect('Location', '/login');
  });

  test('the right password signs in with a new session id; signing out ends it', async () => {
    const { email, password } = await registerByForm();
    const agent = browser();
    const form = await agent.get('/login').expect(200);
    const before = cookieOf(form);
    const res = await agent
      .post('/login')
      .type('form')
      .send({ _csrf: csrfOf(form.text), email, password })
      .expect(303);
    assert.equal(res.headers.location, '/workspace');
    assert.notEqual(cookieOf(res), before, 'the session id changes at sign-in');
    const account = await agent.get('/account').expect(200);
    const out = await agent
      .post('/logout')
      .type('form')
      .send({ _csrf: csrfOf(account.text) })
      .expect(303);
    assert.equal(out.headers.location, '/login?notice=signed-out');
    const login = await agent.get('/login?notice=signed-out').expect(200);
    assert.match(login.text, /You have signed out\./);
    await agent.get('/account').expect(303).expect('Location', '/login');
  });

  test('with MFA on, a correct password leads to the code page, and only a valid code signs in', async () => {
    const { agent: owner, email, password } = await registerByForm();
    const { recoveryCodes } = await enableMfaByPages(owner);
    const account = await owner.get('/account').expect(200);
    assert.match(account.text, /You have 10 unused recovery codes/);

    const agent = browser();
    const step1 = await submit(agent, '/login', '/login', { email, password });
    assert.equal(step1.status, 303);
    assert.equal(step1.headers.location, '/login/mfa');
    await agent.get('/account').expect(303).expect('Location', '/login'); // not signed in yet

    const wrong = await submit(agent, '/login/mfa', '/login/mfa', { code: '000000' });
    assert.equal(wrong.status, 401);
    assert.match(wrong.text, /That code is not valid/);

    const ok = await submit(agent, '/login/mfa', '/login/mfa', { code: recoveryCodes[0] as string });
    assert.equal(ok.status, 303, ok.text);
    // The first page after signing in tells of the change made since the last sign-in.
    const home = await agent.get('/account').expect(200);
    assert.match(home.text, /Two-step sign-in was turned on for your account on [^<]+ UTC from [^<]+/);

    // Five wrong codes and the password must be typed again.
    const guesser = browser();
    await submit(guesser, '/login', '/login', { email, password });
    let last: request.Response | undefined;
    for (let i = 0; i < 5; i++) last = await submit(guesser, '/login/mfa', '/login/mfa', { code: '999999' });
    assert.equal(last?.status, 303);
    assert.equal(last?.headers.location, '/login?notice=mfa-expired');
    await guesser.get('/login/mfa').expect(303);

    // Without the password step, the code page sends you back to sign in.
    const stranger = browser();
    await stranger.get('/login/mfa').expect(303).expect('Location', '/login?notice=mfa-expired');
  });
});

describe('an account that must use MFA', () => {
  test('is sent to set it up, can reach nothing else until then, and gets in after enrolling', async () => {
    const { email, password } = await registerByForm();
    await server.db.pool.query('UPDATE control.users SET mfa_required = true WHERE email = $1', [email]);
    const agent = browser();
    const signedIn = await submit(agent, '/login', '/login', { email, password });
    assert.equal(signedIn.status, 303);
    assert.equal(signedIn.headers.location, '/account/mfa');
    const intro = await agent.get('/account/mfa').expect(200);
    assert.match(intro.text, /Your account must use two-step sign-in/);
    const blocked = await agent.get('/account').expect(403).expect('Content-Type', /html/);
    assert.match(blocked.text, /must use two-step sign-in/);
    assert.match(blocked.text, /href="\/account\/mfa"/);
    await agent.get('/api/v1/openapi.json').expect(200); // the public API description stays open
    await enableMfaByPages(agent);
    await agent.get('/account').expect(200);
  });
});

describe('account page', () => {
  test('what people typed is escaped: a display name of markup shows as text', async () => {
    const { agent } = await registerByForm({ displayName: '<script>alert(1)</script>' });
    const account = await agent.get('/account').expect(200);
    assert.match(account.text, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/);
    assert.doesNotMatch(account.text, /<script>alert/);
    assertNoInlineCode(account.text, '/account');
  });

  test('lists the sessions with the current one marked, and revoking another ends it', async () => {
    const { agent, email, password } = await registerByForm();
    const other = await signIn(server.url, email, password);
    await other.agent.get('/api/v1/me').expect(200);

    const page = await agent.get('/account').expect(200);
    const items = page.text.match(/<li class="session[^"]*"/g) ?? [];
    assert.equal(items.length, 2);
    assert.equal((page.text.match(/This device/g) ?? []).length, 1);
    assert.match(page.text, /Chrome on Linux/);
    assert.match(page.text, /127\.0\.0\.1/);
    const [, otherId] = /action="\/account\/sessions\/([0-9a-f-]{36})\/revoke"/.exec(page.text) ?? [];
    assert.ok(otherId, 'a revoke button for the other session');

    const res = await agent
      .post(`/account/sessions/${otherId}/revoke`)
      .type('form')
      .send({ _csrf: csrfOf(page.text) })
      .expect(303);
    assert.equal(res.headers.location, '/account');
    await other.agent.get('/api/v1/me').expect(401);
    const after = await agent.get('/account').expect(200);
    assert.match(after.text, /That session has been signed out\./);
    assert.equal((after.text.match(/<li class="session[^"]*"/g) ?? []).length, 1);
  });

  test('"sign out of all other sessions" ends every other session and keeps this one', async () => {
    const { agent, email, password } = await registerByForm();
    const others = [await signIn(server.url, email, password), await signIn(server.url, email, password)];
    const page = await agent.get('/account').expect(200);
    await agent
      .post('/account/sessions/revoke-all')
      .type('form')
      .send({ _csrf: csrfOf(page.text) })
      .expect(303);
    for (const o of others) await o.agent.get('/api/v1/me').expect(401);
    const after = await agent.get('/account').expect(200);
    assert.match(after.text, /Signed out of 2 other sessions\./);
  });

  test('changing the password works, keeps this session and ends the others', async () => {
    const { agent, email, password } = await registerByForm();
    const other = await signIn(server.url, email, password);
    const next = 'amber-lantern-quarry-47';

    const mismatch = await submit(agent, '/account', '/account/password', {
      currentPassword: password,
      newPassword: next,
      confirmPassword: `${next}x`,
    });
    assert.equal(mismatch.status, 400);
    assert.match(mismatch.text, /The two new passwords are not the same\./);
    assert.doesNotMatch(mismatch.text, new RegExp(next));

    const wrongCurrent = await submit(agent, '/account', '/account/password', {
      currentPassword: 'not-my-password-at-all',
      newPassword: next,
      confirmPassword: next,
    });
    assert.equal(wrongCurrent.status, 401);
    assert.match(wrongCurrent.text, /The current password is incorrect\./);

    const ok = await submit(agent, '/account', '/account/password', {
      currentPassword: password,
      newPassword: next,
      confirmPassword: next,
    });
    assert.equal(ok.status, 303, ok.text);
    assert.equal(ok.headers.location, '/account');
    const after = await agent.get('/account').expect(200);
    assert.match(after.text, /Your password has been changed/);
    await other.agent.get('/api/v1/me').expect(401);
    await request(server.url).post('/api/v1/auth/login').send({ email, password }).expect(401);
    await request(server.url).post('/api/v1/auth/login').send({ email, password: next }).expect(200);
  });

  test('a signed-out visitor is sent to sign in; a signed-out form post gets a 401 page', async () => {
    const agent = browser();
    await agent.get('/').expect(303).expect('Location', '/login');
    await agent.get('/account').expect(303).expect('Location', '/login');
    const form = await agent.get('/login').expect(200);
    const res = await agent
      .post('/account/sessions/revoke-all')
      .type('form')
      .send({ _csrf: csrfOf(form.text) })
      .expect(401)
      .expect('Content-Type', /html/);
    assert.match(res.text, /Please sign in first\./);
  });
});

describe('API tokens on the account page', () => {
  test('a new token is shown once, works as a bearer token, and stops working when revoked', async () => {
    const { agent } = await registerByForm();
    const page = await agent.get('/account').expect(200);
    assert.match(page.text, /You have no API tokens\./);

    const bad = await agent
      .post('/account/tokens')
      .type('form')
      .send({ _csrf: csrfOf(page.text), name: '', scope: 'write' })
      .expect(400);
    assert.match(bad.text, /A token name is required\./);
    assert.match(bad.text, /id="scope-write" name="scope" type="radio" value="write" checked/);

    const created = await agent
      .post('/account/tokens')
      .type('form')
      .send({ _csrf: csrfOf(bad.text), name: 'nightly <export>', scope: 'read' })
      .expect(200);
    assert.match(created.headers['cache-control'] ?? '', /no-store/);
    const secret = /<code class="secret" id="new-token">(enc_[A-Za-z0-9_-]{43})<\/code>/.exec(
      created.text,
    )?.[1];
    assert.ok(secret, 'the secret is on the page');
    assert.match(created.text, /nightly &lt;export&gt;/);
    await request(server.url).get('/api/v1/me').set('Authorization', `Bearer ${secret}`).expect(200);

    const later = await agent.get('/account').expect(200);
    assert.doesNotMatch(later.text, new RegExp(secret), 'shown once only');
    assert.match(later.text, /Read only/);
    const [, tokenId] = /action="\/account\/tokens\/([0-9a-f-]{36})\/revoke"/.exec(later.text) ?? [];
    await agent
      .post(`/account/tokens/${tokenId}/revoke`)
      .type('form')
      .send({ _csrf: csrfOf(later.text) })
      .expect(303);
    await request(server.url).get('/api/v1/me').set('Authorization', `Bearer ${secret}`).expect(401);
  });
});

describe('API tokens and signing out everywhere', () => {
  test('the page says beforehand that a password change and "sign out everywhere" end the tokens, and they do', async () => {
    const { agent, password } = await registerByForm();
    const newToken = async (name: string) => {
      const page = await agent.get('/account').expect(200);
      const created = await agent
        .post('/account/tokens')
        .type('form')
        .send({ _csrf: csrfOf(page.text), name, scope: 'write' })
        .expect(200);
      const secret = /<code class="secret" id="new-token">(enc_[A-Za-z0-9_-]{43})<\/code>/.exec(
        created.text,
      )?.[1];
      assert.ok(secret, 'the secret is on the page');
      return secret;
    };
    const works = (secret: string, status: number) =>
      request(server.url).get('/api/v1/notes').set('Authorization', `Bearer ${secret}`).expect(status);

    const first = await newToken('first');
    await works(first, 200);
    const page = await agent.get('/account').expect(200);
    // Next to the sign-out button and the password form, before either is used.
    assert.equal(page.text.match(/This also ends your API tokens; you can create new ones\./g)?.length, 2);
    // Offered even when this is the only session: there are tokens to end.
    assert.match(page.text, /This is your only session\./);
    assert.match(page.text, /aria-describedby="revoke-all-hint">Sign out everywhere else<\/button>/);
    await agent
      .post('/account/sessions/revoke-all')
      .type('form')
      .send({ _csrf: csrfOf(page.text) })
      .expect(303);
    await works(first, 401);
    assert.match((await agent.get('/account').expect(200)).text, /Ended 1 API token; create new ones/);

    const second = await newToken('second');
    await works(second, 200);
    const next = 'ember-willow-canyon-31';
    const changed = await submit(agent, '/account', '/account/password', {
      currentPassword: password,
      newPassword: next,
      confirmPassword: next,
    });
    assert.equal(changed.status, 303, changed.text);
    await works(second, 401);
    const after = await agent.get('/account').expect(200);
    assert.match(after.text, /Your password has been changed\. .* Ended 1 API token; create new ones/);
  });
});

describe('pages and the strict CSP', () => {
  test('every page carries the strict CSP and no inline script, style or event handler', async () => {
    const { agent } = await registerByForm();
    const anonymous = browser();
    const pages: Array<[request.Agent, string, number]> = [
      [anonymous, '/register', 200],
      [anonymous, '/login', 200],
      [anonymous, '/no/such/page', 404],
      [agent, '/account', 200],
    ];
    for (const [who, path, status] of pages) {
      const res = await who.get(path).expect(status).expect('Content-Type', /html/);
      const csp = res.headers['content-security-policy'] ?? '';
      assert.match(csp, /default-src 'self'/);
      assert.match(csp, /script-src 'self'(;|$)/);
      assert.match(csp, /style-src 'self'(;|$)/);
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|https?:/);
      assert.match(res.headers['cache-control'] ?? '', /no-store/);
      assert.match(res.text, /<html lang="en">/);
      assert.match(res.text, /<link rel="stylesheet" href="\/assets\/app\.css\?v=[0-9a-f]{16}">/);
      assertNoInlineCode(res.text, path);
    }
  });

  test('every input has a label and the password fields say what to autofill', async () => {
    const anonymous = browser();
    const { agent } = await registerByForm();
    for (const [who, path] of [
      [anonymous, '/register'],
      [anonymous, '/login'],
      [agent, '/account'],
    ] as const) {
      const html = (await who.get(path).expect(200)).text;
      const inputs = [...html.matchAll(/<input\b[^>]*>/g)]
        .map((m) => m[0])
        .filter((i) => !/type="hidden"/.test(i));
      assert.ok(inputs.length > 0);
      for (const input of inputs) {
        const id = /\bid="([^"]+)"/.exec(input)?.[1];
        assert.ok(id, `${path}: input without id: ${input}`);
        assert.match(html, new RegExp(`<label for="${id}">`), `${path}: no label for #${id}`);
        if (!/type="(radio|checkbox)"/.test(input)) {
          assert.match(input, /autocomplete="[a-z-]+"/, `${path}: #${id} has no autocomplete`);
        }
      }
    }
  });

  test('the stylesheet is served by the app: immutable when versioned, revalidated otherwise', async () => {
    const page = await browser().get('/login').expect(200);
    const href = /href="(\/assets\/app\.css\?v=[0-9a-f]+)"/.exec(page.text)?.[1] as string;
    const css = await request(server.url)
      .get(href)
      .expect(200)
      .expect('Content-Type', /text\/css/);
    assert.match(css.headers['cache-control'] ?? '', /max-age=31536000, immutable/);
    assert.equal(css.headers['set-cookie'], undefined, 'no session for a stylesheet');
    const plain = await request(server.url).get('/assets/app.css').expect(200);
    assert.equal(plain.headers['cache-control'], 'no-cache');
    await request(server.url)
      .get('/assets/app.css')
      .set('If-None-Match', plain.headers.etag as string)
      .expect(304);
    await request(server.url).get('/assets/..%2Fapp.ts').expect(404);
    await request(server.url).get('/assets/nothing.css').expect(404);
  });

  test('the API keeps its JSON errors even when a browser asks for HTML', async () => {
    const res = await browser().get('/api/v1/no-such-endpoint').expect(404).expect('Content-Type', /json/);
    assert.equal(res.body.error.code, 'not_found');
    const plain = await request(server.url).get('/no/such/page').expect(404).expect('Content-Type', /json/);
    assert.equal(plain.body.error.code, 'not_found');
  });
});

function cookieOf(res: request.Response): string | undefined {
  const raw = res.headers['set-cookie'] as unknown as string[] | undefined;
  return raw?.find((c) => c.startsWith('enclave.sid='))?.split(';')[0];
}

/** Turns MFA on through the pages, as a person would; returns the key and the recovery codes. */
async function enableMfaByPages(
  agent: request.Agent,
  password = GOOD_PASSWORD,
): Promise<{ secret: string; recoveryCodes: string[] }> {
  const intro = await agent.get('/account/mfa').expect(200);
  const setup = await agent
    .post('/account/mfa/setup')
    .type('form')
    .send({ _csrf: csrfOf(intro.text) })
    .expect(200);
  assert.match(setup.text, /<div class="qr" role="img" aria-label="[^"]+"><svg /);
  const secret = (
    /<code class="secret" id="mfa-key">([A-Z2-7 ]+)<\/code>/.exec(setup.text)?.[1] ?? ''
  ).replace(/ /g, '');
  assert.ok(secret.length >= 16, 'the key is shown for typing');
  assertNoInlineCode(setup.text, 'mfa setup');

  // The password too: a session alone must not be enough to take the account over.
  const noPassword = await agent
    .post('/account/mfa/enable')
    .type('form')
    .send({ _csrf: csrfOf(setup.text), code: await generate({ secret }) });
  assert.equal(noPassword.status, 400);
  assert.match(noPassword.text, /Enter your current password to confirm this change\./);
  const wrongPassword = await agent
    .post('/account/mfa/enable')
    .type('form')
    .send({ _csrf: csrfOf(noPassword.text), password: 'not-the-password-at-all', code: '123456' });
  assert.equal(wrongPassword.status, 401);
  assert.match(wrongPassword.text, /The password is incorrect\./);

  const wrong = await agent
    .post('/account/mfa/enable')
    .type('form')
    .send({ _csrf: csrfOf(wrongPassword.text), password, code: '12345' });
  assert.equal(wrong.status, 400);
  assert.match(wrong.text, /Enter the 6-digit code/);
  assert.doesNotMatch(wrong.text, /<svg/, 'the key is not shown a second time');

  const code = await generate({ secret });
  const done = await agent
    .post('/account/mfa/enable')
    .type('form')
    .send({ _csrf: csrfOf(wrong.text), password, code })
    .expect(200);
  assert.match(done.headers['cache-control'] ?? '', /no-store/);
  const recoveryCodes = [...done.text.matchAll(/<li><code>([a-z0-9-]+)<\/code><\/li>/g)].map(
    (m) => m[1] as string,
  );
  assert.equal(recoveryCodes.length, 10);
  return { secret, recoveryCodes };
}
