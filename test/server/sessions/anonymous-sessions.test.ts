// An anonymous visitor costs no stored session: the sign-in and registration
// forms and GET /api/v1/csrf hand out a CSRF token bound to a cookie, with
// nothing kept in Redis until someone signs in. The server here uses a Redis
// database of its own, so the count of session keys is not disturbed by the
// test files running alongside (they use database 0).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createClient } from 'redis';
import request from 'supertest';
import { CSRF_COOKIE } from '../../../server/auth/csrf.ts';
import { SESSION_COOKIE } from '../../../server/auth/session-middleware.ts';
import { cookieOf, csrfOf, HTML, submit } from '../../helpers/http.ts';
import {
  GOOD_PASSWORD,
  signUp,
  startTestServer,
  TEST_REDIS_URL,
  type TestServer,
} from '../../helpers/server.ts';

const REDIS_DB = 11;
const REDIS_URL = `${TEST_REDIS_URL.replace(/\/\d*$/, '')}/${REDIS_DB}`;
const SESSION_KEYS = 'enclave:sess:*';

let t: TestServer;
let redis: ReturnType<typeof createClient>;
before(async () => {
  t = await startTestServer({ REDIS_URL });
  redis = createClient({ url: REDIS_URL });
  await redis.connect();
});
after(async () => {
  await redis?.close();
  await t?.stop();
});

async function sessionKeys(): Promise<number> {
  let n = 0;
  for await (const keys of redis.scanIterator({ MATCH: SESSION_KEYS, COUNT: 1000 })) n += keys.length;
  return n;
}

const setsSessionCookie = (res: request.Response) => cookieOf(res, SESSION_COOKIE) !== undefined;

describe('anonymous visitors', () => {
  test('100 GET /api/v1/csrf and 100 sign-in and registration pages store no session', async () => {
    const before = await sessionKeys();
    let sessionCookies = 0;
    for (let i = 0; i < 100; i++) {
      // A new client each time: no cookie to reuse, as a script hammering the endpoint would do.
      const res = await request(t.url).get('/api/v1/csrf').expect(200);
      assert.ok(res.body.token, 'a CSRF token');
      if (setsSessionCookie(res)) sessionCookies++;
      for (const page of ['/login', '/register']) {
        const form = await request(t.url).get(page).set('Accept', HTML).expect(200);
        csrfOf(form.text);
        if (setsSessionCookie(form)) sessionCookies++;
      }
    }
    assert.equal((await sessionKeys()) - before, 0, 'session keys added to Redis');
    assert.equal(sessionCookies, 0, 'session cookies handed out');
  });

  test('signing in with the page form and with the JSON API still works, and stores one session each', async () => {
    const { email } = await signUp(t.url);
    const before = await sessionKeys();

    const browser = request.agent(t.url).set('Accept', HTML);
    const byForm = await submit(browser, '/login', '/login', { email, password: GOOD_PASSWORD });
    assert.equal(byForm.status, 303, byForm.text);
    assert.equal(byForm.headers.location, '/workspace');
    await browser.get('/account').expect(200);

    // A script with a stale session cookie must send a token: it fetches one first.
    const issued = await request(t.url).get('/api/v1/csrf').expect(200);
    const csrfCookie = cookieOf(issued, CSRF_COOKIE);
    assert.ok(csrfCookie, 'the token comes with its cookie');
    const cookies = `${csrfCookie}; ${SESSION_COOKIE}=s%3Agone.invalid`;
    const login = () =>
      request(t.url)
        .post('/api/v1/auth/login')
        .set('Cookie', cookies)
        .send({ email, password: GOOD_PASSWORD });
    await login().expect(403);
    const signedIn = await login().set('X-CSRF-Token', issued.body.token).expect(200);
    const session = cookieOf(signedIn, SESSION_COOKIE);
    assert.ok(session, 'a session cookie at sign-in');
    await request(t.url).get('/api/v1/me').set('Cookie', session).expect(200);

    assert.equal(await sessionKeys(), before + 2, 'one session per sign-in');
  });

  test('an anonymous form token works only with the cookie it was made for', async () => {
    const { email } = await signUp(t.url);
    const mine = request.agent(t.url).set('Accept', HTML);
    const theirs = request.agent(t.url).set('Accept', HTML);
    const myToken = csrfOf((await mine.get('/login').expect(200)).text);
    await theirs.get('/login').expect(200);
    const fields = { email, password: GOOD_PASSWORD };

    // No token, a made-up one, another browser's, and the right one without its cookie: all refused.
    await mine.post('/login').type('form').send(fields).expect(403);
    await mine
      .post('/login')
      .type('form')
      .send({ _csrf: 'x'.repeat(43), ...fields })
      .expect(403);
    await theirs
      .post('/login')
      .type('form')
      .send({ _csrf: myToken, ...fields })
      .expect(403);
    await request(t.url)
      .post('/login')
      .type('form')
      .send({ _csrf: myToken, ...fields })
      .expect(403);
    await mine
      .post('/login')
      .type('form')
      .send({ _csrf: myToken, ...fields })
      .expect(303);
  });
});
