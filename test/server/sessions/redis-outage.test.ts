// Redis stopped during a run: requests that need a session get a clear 503,
// nothing in PostgreSQL is touched, and service comes back by itself.
// Uses a private redis-server on its own port so the shared one is not disturbed.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import { GOOD_PASSWORD, signUp, startTestServer, type TestServer } from '../../helpers/server.ts';

async function freePort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

function startRedis(port: number): ChildProcess {
  const found = spawnSync('redis-server', ['--version']);
  if (found.error)
    throw new Error(
      'redis-server is not installed: this test needs the real binary (apt-get install redis-server)',
    );
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    {
      stdio: 'ignore',
    },
  );
  return child;
}

async function until(what: string, ms: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('when Redis goes away', () => {
  let port: number;
  let redis: ChildProcess;
  let t: TestServer;

  before(async () => {
    port = await freePort();
    redis = startRedis(port);
    const url = `redis://127.0.0.1:${port}`;
    await until('the private redis-server', 5000, async () => {
      const socket = net.connect(port, '127.0.0.1');
      await once(socket, 'connect');
      socket.destroy();
      return true;
    });
    t = await startTestServer({ REDIS_URL: url });
  });
  after(async () => {
    await t.stop();
    redis.kill('SIGKILL');
  });

  test('session routes answer 503 with a clear message, health stays up, data is intact, and service comes back', async () => {
    const a = await signUp(t.url);
    await a.agent.post('/api/v1/notes').set('X-CSRF-Token', a.csrf).send({ title: 'kept' }).expect(201);

    redis.kill('SIGTERM');
    await once(redis, 'exit');

    const me = await a.agent.get('/api/v1/me').expect(503);
    assert.equal(me.body.error.code, 'sessions_unavailable');
    assert.match(me.body.error.message, /temporarily unavailable/);
    const login = await request(t.url)
      .post('/api/v1/auth/login')
      .send({ email: a.email, password: GOOD_PASSWORD });
    assert.equal(login.status, 503);
    await request(t.url).get('/healthz').expect(200);
    const ready = await request(t.url).get('/readyz').expect(503);
    assert.notEqual(ready.body.checks.redis, 'ok');
    assert.equal(ready.body.checks.database, 'ok');

    // Nothing was lost or half-written in PostgreSQL.
    const notes = await t.db.pool.query(`SELECT title FROM "t_${a.user.tenantId}".notes`);
    assert.deepEqual(notes.rows, [{ title: 'kept' }]);

    redis = startRedis(port);
    await until(
      'the app to reach Redis again',
      10_000,
      async () => (await request(t.url).get('/readyz')).status === 200,
    );
    // Redis kept nothing on disk, so the person signs in again, and everything works.
    await a.agent.get('/api/v1/me').expect(401);
    const again = await request
      .agent(t.url)
      .post('/api/v1/auth/login')
      .send({ email: a.email, password: GOOD_PASSWORD })
      .expect(200);
    assert.equal(again.body.user.tenantId, a.user.tenantId);
  });
});
