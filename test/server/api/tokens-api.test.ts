// API tokens through the whole stack: a real server (startServer) on its own
// database and the real Redis, driven over HTTP with supertest.
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import { loadConfig } from '../../../kernel/config.ts';
import { createPrivilegedUser } from '../../../server/accounts/accounts.ts';
import { type RunningServer, startServer } from '../../../server/start.ts';
import { createTestDatabase, type TestDatabase } from '../../helpers/database.ts';
import { createApiToken } from '../../helpers/http.ts';
import { type CapturedLog, captureLog, settle } from '../../helpers/log.ts';
import { relaxedAbuseLimits, requireRedis } from '../../helpers/server.ts';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const PASSWORD = 'violet-kettle-harbour-92';
const TOKEN_SHAPE = /^enc_[A-Za-z0-9_-]{43}$/;

interface Person {
  agent: ReturnType<typeof request.agent>;
  csrf: string;
  tenantId: string;
}

let db: TestDatabase;
let server: RunningServer;
let captured: CapturedLog;
let dataDir: string;
/** Every secret handed out in this file: none may ever show up in the log. */
const secrets: string[] = [];

const api = () => request(server.url);
const bearer = (secret: string) => ({ Authorization: `Bearer ${secret}` });

async function register(name: string): Promise<Person> {
  const agent = request.agent(server.url);
  const email = `${name}.${randomBytes(4).toString('hex')}@example.com`;
  const res = await agent
    .post('/api/v1/auth/register')
    .send({ email, password: PASSWORD, displayName: name })
    .expect(201);
  assert.ok(res.body.csrfToken, 'registration answers with a CSRF token');
  return { agent, csrf: res.body.csrfToken, tenantId: res.body.user.tenantId };
}

async function createToken(
  who: Person,
  name: string,
  scope: 'read' | 'write',
): Promise<{ id: string; secret: string }> {
  const made = await createApiToken(who, scope, name);
  secrets.push(made.secret);
  return made;
}

async function addNote(who: Person, title: string): Promise<void> {
  await who.agent.post('/api/v1/notes').set('X-CSRF-Token', who.csrf).send({ title }).expect(201);
}

const titles = (res: { body: { notes: Array<{ title: string }> } }) =>
  res.body.notes.map((n) => n.title).sort();

describe('API tokens', () => {
  before(async () => {
    await requireRedis();
    db = await createTestDatabase(2);
    captured = captureLog('debug');
    dataDir = mkdtempSync(path.join(tmpdir(), 'enclave-tokens-'));
    const config = {
      ...loadConfig({
        DATABASE_URL: db.url,
        REDIS_URL,
        DATA_DIR: dataDir,
        SESSION_SECRET: randomBytes(32).toString('hex'),
        TENANT_CACHE_MS: '0',
      }),
      PORT: 0, // any free port (the setting itself must be 1 to 65535)
    };
    server = await startServer(config, {
      log: captured.log,
      shutdownGraceMs: 500,
      abuse: relaxedAbuseLimits(),
    });
  });

  after(async () => {
    await server?.stop();
    await db?.drop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  test('a token made with a session reads and writes its owner’s notes, and is shown once', async () => {
    const a = await register('Ada');
    const res = await a.agent
      .post('/api/v1/tokens')
      .set('X-CSRF-Token', a.csrf)
      .send({ name: 'backup script', scope: 'write' })
      .expect(201);
    secrets.push(res.body.secret);
    assert.match(res.body.secret, TOKEN_SHAPE);
    assert.equal(res.headers['cache-control'], 'no-store');
    assert.deepEqual(Object.keys(res.body.token).sort(), ['createdAt', 'id', 'lastUsedAt', 'name', 'scope']);
    assert.equal(res.body.token.name, 'backup script');
    assert.equal(res.body.token.scope, 'write');
    assert.equal(res.body.token.lastUsedAt, null);

    const written = await api()
      .post('/api/v1/notes')
      .set(bearer(res.body.secret))
      .send({ title: 'from a script' })
      .expect(201);
    assert.equal(written.headers['set-cookie'], undefined, 'a token request never gets a session cookie');
    const read = await api().get('/api/v1/notes').set(bearer(res.body.secret)).expect(200);
    assert.deepEqual(titles(read), ['from a script']);
    // The same workspace the owner sees in the browser.
    assert.deepEqual(titles(await a.agent.get('/api/v1/notes').expect(200)), ['from a script']);
    const me = await api().get('/api/v1/me').set(bearer(res.body.secret)).expect(200);
    assert.equal(me.body.tenantId, a.tenantId);
    assert.equal(me.body.user.via, 'token');
  });

  test('a read-only token reads but gets 403 on every write', async () => {
    const a = await register('Reader');
    await addNote(a, 'existing');
    const { secret } = await createToken(a, 'dashboard', 'read');
    assert.deepEqual(titles(await api().get('/api/v1/notes').set(bearer(secret)).expect(200)), ['existing']);
    const refused = await api().post('/api/v1/notes').set(bearer(secret)).send({ title: 'nope' }).expect(403);
    assert.match(refused.body.error.message, /read-only/);
    for (const method of ['put', 'patch', 'delete'] as const) {
      const res = await api()[method]('/api/v1/notes').set(bearer(secret)).send({ title: 'nope' });
      assert.equal(res.status, 403, `${method.toUpperCase()} with a read-only token`);
    }
    assert.deepEqual(titles(await a.agent.get('/api/v1/notes').expect(200)), ['existing']);
  });

  test('a revoked token gets 401 on its very next request', async () => {
    const a = await register('Revoker');
    const { id, secret } = await createToken(a, 'ci', 'write');
    await api().get('/api/v1/notes').set(bearer(secret)).expect(200);
    await a.agent.delete(`/api/v1/tokens/${id}`).set('X-CSRF-Token', a.csrf).expect(204);
    const res = await api().get('/api/v1/notes').set(bearer(secret)).expect(401);
    assert.equal(res.body.error.message, 'This API token is not valid or was revoked.');
    assert.match(String(res.headers['www-authenticate']), /^Bearer /);
    const listed = await a.agent.get('/api/v1/tokens').expect(200);
    assert.ok(
      !listed.body.tokens.some((t: { id: string }) => t.id === id),
      'a revoked token leaves the list',
    );
  });

  test('revoking another person’s token, an unknown id or a malformed id is the same 404', async () => {
    const a = await register('Owner');
    const b = await register('Other');
    const { id, secret } = await createToken(a, 'mine', 'write');
    const theirs = await b.agent.delete(`/api/v1/tokens/${id}`).set('X-CSRF-Token', b.csrf).expect(404);
    const unknown = await b.agent
      .delete(`/api/v1/tokens/${randomUUID()}`)
      .set('X-CSRF-Token', b.csrf)
      .expect(404);
    const malformed = await b.agent
      .delete('/api/v1/tokens/not-a-uuid')
      .set('X-CSRF-Token', b.csrf)
      .expect(404);
    assert.deepEqual(theirs.body, unknown.body);
    assert.deepEqual(malformed.body, unknown.body);
    await api().get('/api/v1/notes').set(bearer(secret)).expect(200);
    // Revoked twice: the second time it no longer exists.
    await a.agent.delete(`/api/v1/tokens/${id}`).set('X-CSRF-Token', a.csrf).expect(204);
    await a.agent.delete(`/api/v1/tokens/${id}`).set('X-CSRF-Token', a.csrf).expect(404);
  });

  test('a token never reaches another tenant’s data, whatever ids, cookies or headers come with it', async () => {
    const a = await register('Alice');
    const b = await register('Bob');
    await addNote(a, 'alice note');
    await addNote(b, 'bob secret note');
    const { secret } = await createToken(a, 'alice script', 'write');

    assert.deepEqual(titles(await api().get('/api/v1/notes').set(bearer(secret)).expect(200)), [
      'alice note',
    ]);
    // Headers that name B's tenant change nothing; unknown query parameters are refused (400).
    const tricked = await api()
      .get('/api/v1/notes')
      .set(bearer(secret))
      .set('X-Tenant-Id', b.tenantId)
      .set('X-Forwarded-Host', 'bob.example.com')
      .expect(200);
    assert.deepEqual(titles(tricked), ['alice note']);
    await api()
      .get(`/api/v1/notes?tenant=${b.tenantId}&tenantId=${b.tenantId}`)
      .set(bearer(secret))
      .expect(400);
    // B's session cookie with A's token: judged by the token alone (and no CSRF is asked of it).
    const withCookie = await b.agent.get('/api/v1/notes').set(bearer(secret)).expect(200);
    assert.deepEqual(titles(withCookie), ['alice note']);
    const me = await b.agent.get('/api/v1/me').set(bearer(secret)).expect(200);
    assert.equal(me.body.tenantId, a.tenantId);
    await b.agent.post('/api/v1/notes').set(bearer(secret)).send({ title: 'via both' }).expect(201);
    assert.deepEqual(titles(await b.agent.get('/api/v1/notes').expect(200)), ['bob secret note']);
    assert.deepEqual(titles(await a.agent.get('/api/v1/notes').expect(200)), ['alice note', 'via both']);
    // An invalid token next to a valid cookie does not fall back to the cookie.
    await b.agent
      .get('/api/v1/notes')
      .set(bearer(`enc_${'x'.repeat(43)}`))
      .expect(401);
    // A's token cannot see or revoke B's tokens either (token management needs a session).
    const bToken = await createToken(b, 'bob script', 'write');
    await api().delete(`/api/v1/tokens/${bToken.id}`).set(bearer(secret)).expect(403);
    await api().get('/api/v1/notes').set(bearer(bToken.secret)).expect(200);
  });

  test('a token is not a login for pages or for account management, whatever its scope', async () => {
    const a = await register('Pages');
    const { id, secret } = await createToken(a, 'full access', 'write');
    for (const page of ['/account', '/', '/login', '/register']) {
      const res = await api().get(page).set(bearer(secret));
      assert.equal(res.status, 401, `GET ${page} with a token`);
      assert.match(res.body.error.message, /only work on \/api\//);
    }
    const account: Array<[string, 'get' | 'post' | 'delete', unknown?]> = [
      ['/api/v1/tokens', 'get'],
      ['/api/v1/tokens', 'post', { name: 'minted by a token', scope: 'write' }],
      [`/api/v1/tokens/${id}`, 'delete'],
      ['/API/V1/TOKENS', 'get'],
      ['/api/v1/tokens/', 'get'],
      ['/api/v1/sessions', 'get'],
      ['/api/v1/sessions/revoke-all', 'post'],
      [
        '/api/v1/account/password',
        'post',
        { currentPassword: PASSWORD, newPassword: 'another-long-passphrase-7' },
      ],
      ['/api/v1/auth/logout', 'post'],
      ['/api/v1/auth/login', 'post', { email: 'x@example.com', password: PASSWORD }],
      ['/api/v1/csrf', 'get'],
      ['/api/v1/mfa', 'get'],
      ['/api/v1/mfa/setup', 'post'],
    ];
    for (const [url, method, body] of account) {
      const req = api()[method](url).set(bearer(secret));
      const res = await (body === undefined ? req : req.send(body as object));
      assert.equal(
        res.status,
        403,
        `${method.toUpperCase()} ${url} with a token: ${JSON.stringify(res.body)}`,
      );
    }
    const listed = await a.agent.get('/api/v1/tokens').expect(200);
    assert.deepEqual(
      listed.body.tokens.map((t: { name: string }) => t.name),
      ['full access'],
      'no token was minted and none revoked',
    );
    await api().get('/api/v1/notes').set(bearer(secret)).expect(200);
    await a.agent.get('/api/v1/sessions').expect(200);
  });

  test('malformed, unknown and non-bearer credentials are refused with 401 and a clear message', async () => {
    const a = await register('Malformed');
    const { secret } = await createToken(a, 'real', 'write');
    const bad = [
      'Bearer ',
      'Bearer not-a-token',
      `Bearer ${secret.slice(0, -1)}`,
      `Bearer ${secret}x`,
      `Bearer ${secret} extra`,
      `Bearer enc_${randomBytes(32).toString('base64url')}`,
      `Bearer ${secret.replace('enc_', 'ENC_')}`,
    ];
    for (const header of bad) {
      const res = await api().get('/api/v1/notes').set('Authorization', header).expect(401);
      assert.equal(res.body.error.message, 'This API token is not valid or was revoked.', header);
    }
    // Another scheme is not a login either: the request is simply anonymous.
    await api()
      .get('/api/v1/notes')
      .set('Authorization', `Basic ${Buffer.from(`x:${secret}`).toString('base64')}`)
      .expect(401);
    // The scheme name is case-insensitive (RFC 7235).
    await api().get('/api/v1/notes').set('Authorization', `bearer ${secret}`).expect(200);
  });

  test('last_used_at is set on first use and written at most once a minute', async () => {
    const a = await register('Clock');
    const { id, secret } = await createToken(a, 'cron', 'read');
    const before = (await a.agent.get('/api/v1/tokens').expect(200)).body.tokens.find(
      (t: { id: string }) => t.id === id,
    );
    assert.equal(before.lastUsedAt, null);
    await api().get('/api/v1/notes').set(bearer(secret)).expect(200);
    const first = (await db.pool.query('SELECT last_used_at FROM control.api_tokens WHERE id = $1', [id]))
      .rows[0].last_used_at as Date;
    assert.ok(first instanceof Date && Date.now() - first.getTime() < 60_000, 'set by the use');
    await api().get('/api/v1/notes').set(bearer(secret)).expect(200);
    const second = (await db.pool.query('SELECT last_used_at FROM control.api_tokens WHERE id = $1', [id]))
      .rows[0].last_used_at as Date;
    assert.equal(second.getTime(), first.getTime(), 'not written again within the minute');
    const listed = (await a.agent.get('/api/v1/tokens').expect(200)).body.tokens.find(
      (t: { id: string }) => t.id === id,
    );
    assert.equal(new Date(listed.lastUsedAt).getTime(), first.getTime());
    // A minute later (moved back in the database rather than waited for), the next use writes again.
    await db.pool.query(
      "UPDATE control.api_tokens SET last_used_at = now() - interval '2 minutes' WHERE id = $1",
      [id],
    );
    await api().get('/api/v1/notes').set(bearer(secret)).expect(200);
    const third = (await db.pool.query('SELECT last_used_at FROM control.api_tokens WHERE id = $1', [id]))
      .rows[0].last_used_at as Date;
    assert.ok(Date.now() - third.getTime() < 60_000);
  });

  test('creating a token needs a CSRF token with the session, and a body of exactly { name, scope }', async () => {
    const a = await register('Strict');
    await a.agent.post('/api/v1/tokens').send({ name: 'no csrf', scope: 'read' }).expect(403);
    const bodies: unknown[] = [
      { name: 'x', scope: 'read', admin: true },
      { name: 'x', scope: 'read', tenantId: a.tenantId },
      { name: '', scope: 'read' },
      { name: '   ', scope: 'read' },
      { name: 'n'.repeat(101), scope: 'read' },
      { name: 'tab\there', scope: 'read' },
      { name: 'x' },
      { name: 'x', scope: 'admin' },
      { name: 'x', scope: ['read'] },
      { name: 42, scope: 'read' },
      ['name', 'scope'],
    ];
    for (const body of bodies) {
      const res = await a.agent
        .post('/api/v1/tokens')
        .set('X-CSRF-Token', a.csrf)
        .send(body as object);
      assert.equal(res.status, 400, `refused: ${JSON.stringify(body)}`);
      assert.equal(res.body.error.code, 'invalid_input');
    }
    const unknown = await a.agent
      .post('/api/v1/tokens')
      .set('X-CSRF-Token', a.csrf)
      .send({ name: 'x', scope: 'read', expires: 1 })
      .expect(400);
    assert.match(unknown.body.error.message, /unknown field "expires"/);
    assert.deepEqual(
      (await a.agent.get('/api/v1/tokens').expect(200)).body.tokens,
      [],
      'nothing was created',
    );
    const longest = await createToken(a, 'n'.repeat(100), 'read');
    assert.ok(longest.id);
    const trimmed = await createToken(a, '  padded  ', 'read');
    const listed = (await a.agent.get('/api/v1/tokens').expect(200)).body.tokens;
    assert.equal(listed.find((t: { id: string }) => t.id === trimmed.id).name, 'padded');
  });

  test('auditors and admins cannot create or list tokens (403)', async () => {
    for (const role of ['auditor', 'admin'] as const) {
      const email = `${role}.${randomBytes(4).toString('hex')}@example.com`;
      await createPrivilegedUser(db.pool, { email, password: PASSWORD, displayName: role, role });
      const agent = request.agent(server.url);
      const login = await agent.post('/api/v1/auth/login').send({ email, password: PASSWORD }).expect(200);
      const csrf = login.body.csrfToken as string;
      const res = await agent
        .post('/api/v1/tokens')
        .set('X-CSRF-Token', csrf)
        .send({ name: 'ops script', scope: 'read' })
        .expect(403);
      assert.equal(res.body.error.code, 'forbidden');
      await agent.get('/api/v1/tokens').expect(403);
    }
    const { rows } = await db.pool.query(
      "SELECT count(*)::int AS n FROM control.api_tokens a JOIN control.users u ON u.id = a.user_id WHERE u.role <> 'user'",
    );
    assert.equal(rows[0].n, 0);
  });

  test('a token of a suspended workspace is refused by the workspace routes', async () => {
    const a = await register('Suspended');
    const { secret } = await createToken(a, 'nightly', 'read');
    await api().get('/api/v1/notes').set(bearer(secret)).expect(200);
    await db.pool.query("UPDATE control.tenants SET state = 'suspended' WHERE id = $1", [a.tenantId]);
    const res = await api().get('/api/v1/notes').set(bearer(secret)).expect(403);
    assert.equal(res.body.error.code, 'tenant_suspended');
  });

  /** The `token.revoke` events of these tokens: resource id, reason, and the transaction they were written in. */
  async function revokeEvents(ids: string[]) {
    const { rows } = await db.pool.query(
      `SELECT resource_id, details->>'reason' AS reason, txid::text AS txid FROM control.audit_inbox
        WHERE action = 'token.revoke' AND resource_id = ANY($1) ORDER BY resource_id`,
      [ids],
    );
    return rows as Array<{ resource_id: string; reason: string; txid: string }>;
  }

  test('a password change ends every API token of the person: 401 on the next request', async () => {
    const a = await register('Changer');
    const other = await register('Bystander');
    const made = [await createToken(a, 'backup', 'write'), await createToken(a, 'dashboard', 'read')];
    const bystander = await createToken(other, 'theirs', 'write');
    for (const { secret } of made) await api().get('/api/v1/notes').set(bearer(secret)).expect(200);

    const changed = await a.agent
      .post('/api/v1/account/password')
      .set('X-CSRF-Token', a.csrf)
      .send({ currentPassword: PASSWORD, newPassword: 'copper-meadow-lantern-58' })
      .expect(200);
    for (const { secret } of made) {
      await api().get('/api/v1/notes').set(bearer(secret)).expect(401);
      await api().post('/api/v1/notes').set(bearer(secret)).send({ title: 'after' }).expect(401);
    }
    assert.equal(changed.body.tokensEnded, 2);
    assert.equal(changed.body.sessionsEnded, 0);
    await api().get('/api/v1/notes').set(bearer(bystander.secret)).expect(200);
    assert.deepEqual((await a.agent.get('/api/v1/tokens').expect(200)).body.tokens, []);
    // Each ended token is in the trail, written with the password change itself.
    const events = await revokeEvents(made.map((t) => t.id));
    assert.deepEqual(
      events.map((e) => e.reason),
      ['password changed', 'password changed'],
    );
    const { rows } = await db.pool.query(
      "SELECT txid::text AS txid FROM control.audit_inbox WHERE action = 'account.password.change' AND outcome = 'success' AND txid::text = $1",
      [events[0]?.txid],
    );
    assert.equal(rows.length, 1, 'the tokens end in the transaction that changes the password');
    // The owner makes new ones, which work.
    const fresh = await createToken({ ...a, csrf: changed.body.csrfToken }, 'backup again', 'write');
    await api().get('/api/v1/notes').set(bearer(fresh.secret)).expect(200);
  });

  test('"sign out everywhere" ends every API token too, and says how many', async () => {
    const a = await register('Leaver');
    const made = [await createToken(a, 'ci', 'write'), await createToken(a, 'report', 'read')];
    for (const { secret } of made) await api().get('/api/v1/notes').set(bearer(secret)).expect(200);

    const res = await a.agent.post('/api/v1/sessions/revoke-all').set('X-CSRF-Token', a.csrf).expect(200);
    for (const { secret } of made) await api().get('/api/v1/notes').set(bearer(secret)).expect(401);
    assert.deepEqual(res.body, { ended: 0, tokensEnded: 2 });
    // This session goes on, and can make a new token.
    await a.agent.get('/api/v1/me').expect(200);
    const events = await revokeEvents(made.map((t) => t.id));
    assert.deepEqual(
      events.map((e) => e.reason),
      ['signed out everywhere', 'signed out everywhere'],
    );
    const fresh = await createToken(a, 'ci again', 'write');
    await api().get('/api/v1/notes').set(bearer(fresh.secret)).expect(200);
  });

  test('the secret is stored only as its SHA-256 and never appears in a list or the server log', async () => {
    const a = await register('Quiet');
    const { id, secret } = await createToken(a, 'quiet', 'write');
    await api().get('/api/v1/notes').set(bearer(secret)).expect(200);
    await api()
      .get(`/api/v1/notes?token=${secret}`)
      .set(bearer(`${secret}x`))
      .expect(401);
    const listed = await a.agent.get('/api/v1/tokens').expect(200);
    for (const s of secrets) assert.ok(!listed.text.includes(s), 'a secret in the list');
    const row = (await db.pool.query('SELECT * FROM control.api_tokens WHERE id = $1', [id])).rows[0];
    assert.deepEqual(row.token_hash, createHash('sha256').update(secret).digest());
    assert.ok(!JSON.stringify(row).includes(secret.slice(4)));

    await settle();
    const log = captured.text();
    assert.ok(log.includes('"via":"token"'), 'token requests are logged (as such)');
    assert.ok(secrets.length >= 10);
    for (const s of secrets) {
      assert.ok(!log.includes(s), 'a token secret in the log');
      assert.ok(!log.includes(s.slice(4)), 'a token secret (without its prefix) in the log');
    }
  });
});
