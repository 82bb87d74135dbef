import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import { issueSetupToken } from '../../../server/accounts/admin-setup.ts';
import { csrfOf } from '../../helpers/http.ts';
import { settle } from '../../helpers/log.ts';
import { GOOD_PASSWORD, startTestServer, type TestServer, uniqueEmail } from '../../helpers/server.ts';

describe('first admin, without a default password', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer();
  });
  after(async () => {
    await t.stop();
  });

  test('with no admin, the start log holds a one-time setup link; it creates the admin once', async () => {
    await settle();
    const line = t.logs.lines().find((l) => l.setupLink === true);
    assert.ok(line, 'a setup link was logged');
    const token = /\/setup\/admin\?token=([\w-]+)/.exec(String(line.message))?.[1];
    assert.ok(token);
    const email = uniqueEmail('admin');
    await request(t.url)
      .post('/api/v1/setup/admin')
      .send({ token: 'x'.repeat(43), email, password: GOOD_PASSWORD, displayName: 'Admin' })
      .expect(401);
    const weak = await request(t.url)
      .post('/api/v1/setup/admin')
      .send({ token, email, password: 'short', displayName: 'Admin' })
      .expect(400);
    assert.match(weak.body.error.message, /at least 12/);
    const created = await request(t.url)
      .post('/api/v1/setup/admin')
      .send({ token, email, password: GOOD_PASSWORD, displayName: 'Admin' })
      .expect(201);
    assert.equal(created.body.user.role, 'admin');
    await request(t.url)
      .post('/api/v1/setup/admin')
      .send({ token, email: uniqueEmail('second'), password: GOOD_PASSWORD, displayName: 'Again' })
      .expect(401);
    const login = await request(t.url)
      .post('/api/v1/auth/login')
      .send({ email, password: GOOD_PASSWORD })
      .expect(200);
    assert.equal(login.body.user.role, 'admin');
    assert.equal(await issueSetupToken(t.db.pool), undefined, 'no more links once an admin exists');
  });
});

describe('the setup link opens a page', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer();
  });
  after(async () => {
    await t.stop();
  });

  test('the logged link shows a form that creates the first admin, then sends them to sign in', async () => {
    await settle();
    const line = t.logs.lines().find((l) => l.setupLink === true);
    const link = /(\/setup\/admin\?token=[\w-]+)/.exec(String(line?.message))?.[1];
    assert.ok(link);
    const agent = request.agent(t.url);
    const page = await agent.get(link).expect(200);
    const csrf = csrfOf(page.text);
    const token = /name="token" value="([^"]+)"/.exec(page.text)?.[1];
    assert.ok(csrf && token);
    const email = uniqueEmail('pageadmin');
    const weak = await agent
      .post('/setup/admin')
      .type('form')
      .send({ _csrf: csrf, token, email, displayName: 'Page Admin', password: 'short' })
      .expect(400);
    assert.match(weak.text, /at least 12 characters/);
    assert.match(weak.text, new RegExp(email.replace(/[.+]/g, '\\$&')));
    const done = await agent
      .post('/setup/admin')
      .type('form')
      .send({ _csrf: csrf, token, email, displayName: 'Page Admin', password: GOOD_PASSWORD })
      .expect(303);
    assert.equal(done.headers.location, '/login?notice=admin-created');
    const login = await request(t.url)
      .post('/api/v1/auth/login')
      .send({ email, password: GOOD_PASSWORD })
      .expect(200);
    assert.equal(login.body.user.role, 'admin');
    await agent
      .post('/setup/admin')
      .type('form')
      .send({
        _csrf: csrf,
        token,
        email: uniqueEmail('again'),
        displayName: 'Again',
        password: GOOD_PASSWORD,
      })
      .expect(401);
  });
});
