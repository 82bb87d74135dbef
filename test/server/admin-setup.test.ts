import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import { issueSetupToken } from '../../server/accounts/admin-setup.ts';
import { settle } from '../helpers/log.ts';
import { GOOD_PASSWORD, startTestServer, type TestServer, uniqueEmail } from '../helpers/server.ts';

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
