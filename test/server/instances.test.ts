// Several app instances behind one load balancer: two servers (startServer,
// each on its own port) on one database, one Redis, one SESSION_SECRET and
// one abuse key prefix, plus an `enclave worker`. What one instance did holds
// on the other at the very next request: sessions, revocations, rate limits,
// the lockout; and sealing runs one at a time across all of them.
// (Each scheduled job running once per tick: test/jobs/instances.test.ts.)
import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import { exportBundle } from '../../audit/export.ts';
import { openSigner, signingKeyFile } from '../../audit/signing.ts';
import { publicKeyPem } from '../../audit/verifier/keys.ts';
import { verifyBundle } from '../../audit/verifier/verify.ts';
import { assertChainValid, chains } from '../audit/chain-helpers.ts';
import { HTML, sessionCookie } from '../helpers/http.ts';
import {
  GOOD_PASSWORD,
  instanceEnv,
  quickLockout,
  requireRedis,
  startInstance,
  startTestServer,
  startWorker,
  type TestServer,
  uniqueEmail,
} from '../helpers/server.ts';

/** Signs in on `url` with a fresh client: the raw session cookie and the CSRF token, to replay anywhere. */
async function cookieSignIn(url: string, email: string): Promise<{ cookie: string; csrf: string }> {
  const res = await request(url)
    .post('/api/v1/auth/login')
    .send({ email, password: GOOD_PASSWORD })
    .expect(200);
  const cookie = sessionCookie(res);
  assert.ok(cookie, 'signing in sets the session cookie');
  return { cookie, csrf: res.body.csrfToken };
}

async function register(url: string, email = uniqueEmail()): Promise<string> {
  await request(url)
    .post('/api/v1/auth/register')
    .send({ email, password: GOOD_PASSWORD, displayName: 'Two Doors' })
    .expect(201);
  return email;
}

const me = (url: string, cookie: string) => request(url).get('/api/v1/me').set('Cookie', cookie);

/** Two instances of one installation; `b` stops before `a` (which drops the database). */
async function pair(
  env: Record<string, string> = {},
  abuse: Parameters<typeof startTestServer>[1] = {},
): Promise<{ a: TestServer; b: TestServer; stop(): Promise<void> }> {
  const a = await startTestServer({ TENANT_CACHE_MS: '0', ...env }, abuse);
  let b: TestServer;
  try {
    b = await startInstance(a);
  } catch (err) {
    await a.stop();
    throw err;
  }
  assert.notEqual(a.url, b.url);
  return {
    a,
    b,
    stop: async () => {
      await b.stop();
      await a.stop();
    },
  };
}

describe('two instances, one installation', () => {
  before(async () => {
    await requireRedis();
  });

  describe('sessions and revocation', () => {
    let a: TestServer;
    let b: TestServer;
    let stop: () => Promise<void>;
    before(async () => {
      ({ a, b, stop } = await pair());
    });
    after(async () => {
      await stop?.();
    });

    test('a session made on A works on B: API, page, and a CSRF-protected write', async () => {
      const email = await register(a.url);
      const { cookie, csrf } = await cookieSignIn(a.url, email);
      const seen = await me(b.url, cookie).expect(200);
      assert.equal(seen.body.user.email, email);
      const page = await request(b.url).get('/workspace').set('Cookie', cookie).set('Accept', HTML);
      assert.equal(page.status, 200, page.text.slice(0, 300));
      await request(b.url)
        .post('/api/v1/notes')
        .set('Cookie', cookie)
        .send({ title: 'no token' })
        .expect(403);
      await request(b.url)
        .post('/api/v1/notes')
        .set('Cookie', cookie)
        .set('X-CSRF-Token', csrf)
        .send({ title: 'written on B' })
        .expect(201);
      // And read back on A.
      const list = await request(a.url).get('/api/v1/notes').set('Cookie', cookie).expect(200);
      assert.deepEqual(
        list.body.notes.map((n: { title: string }) => n.title),
        ['written on B'],
      );
    });

    test('signing out on A: the next request on B is 401', async () => {
      const email = await register(a.url);
      const { cookie, csrf } = await cookieSignIn(a.url, email);
      await me(b.url, cookie).expect(200); // B has seen (and touched) the session
      await request(a.url)
        .post('/api/v1/auth/logout')
        .set('Cookie', cookie)
        .set('X-CSRF-Token', csrf)
        .expect((res) => assert.ok(res.status < 300, `sign-out answered ${res.status}`));
      await me(b.url, cookie).expect(401);
    });

    test('revoking a session from another session on A: its next request on B is 401', async () => {
      const email = await register(a.url);
      const laptop = await cookieSignIn(b.url, email);
      const phone = await cookieSignIn(a.url, email);
      await me(b.url, laptop.cookie).expect(200);
      const own = await request(b.url).get('/api/v1/sessions').set('Cookie', laptop.cookie).expect(200);
      const laptopId = (own.body.sessions as Array<{ id: string; current: boolean }>).find(
        (s) => s.current,
      )?.id;
      assert.ok(laptopId, JSON.stringify(own.body));
      await request(a.url)
        .delete(`/api/v1/sessions/${laptopId}`)
        .set('Cookie', phone.cookie)
        .set('X-CSRF-Token', phone.csrf)
        .expect((res) => assert.ok(res.status < 300, `revoke answered ${res.status}`));
      await me(b.url, laptop.cookie).expect(401);
      await me(b.url, phone.cookie).expect(200);
    });

    test('revoking an API token on A: its next request on B is 401', async () => {
      const email = await register(a.url);
      const { cookie, csrf } = await cookieSignIn(a.url, email);
      const made = await request(a.url)
        .post('/api/v1/tokens')
        .set('Cookie', cookie)
        .set('X-CSRF-Token', csrf)
        .send({ name: 'two doors', scope: 'read' })
        .expect(201);
      const token = { id: made.body.token.id as string, secret: made.body.secret as string };
      const bearer = { Authorization: `Bearer ${token.secret}` };
      await request(b.url).get('/api/v1/notes').set(bearer).expect(200);
      await request(a.url)
        .delete(`/api/v1/tokens/${token.id}`)
        .set('Cookie', cookie)
        .set('X-CSRF-Token', csrf)
        .expect((res) => assert.ok(res.status < 300, `revoke answered ${res.status}`));
      await request(b.url).get('/api/v1/notes').set(bearer).expect(401);
    });
  });

  describe('abuse limits are counted across instances', () => {
    let a: TestServer;
    let b: TestServer;
    let stop: () => Promise<void>;
    before(async () => {
      // TRUST_PROXY=loopback: each test talks from its own X-Forwarded-For address.
      ({ a, b, stop } = await pair(
        { TRUST_PROXY: 'loopback' },
        {
          abuse: {
            register: { limit: 3, windowMs: 60_000 },
            login: { limit: 4, windowMs: 60_000 },
            ...quickLockout(60_000, 60_000),
          },
        },
      ));
    });
    after(async () => {
      await stop?.();
    });

    const signUpFrom = (url: string, ip: string) =>
      request(url)
        .post('/api/v1/auth/register')
        .set('X-Forwarded-For', ip)
        .send({ email: uniqueEmail(), password: GOOD_PASSWORD, displayName: 'Sign-up' });
    const signInFrom = (url: string, ip: string, email: string, password: string) =>
      request(url).post('/api/v1/auth/login').set('X-Forwarded-For', ip).send({ email, password });

    test('sign-ups from one address: 3 a minute in total, whichever instance they reach', async () => {
      const ip = '203.0.113.1';
      assert.equal((await signUpFrom(a.url, ip)).status, 201);
      assert.equal((await signUpFrom(b.url, ip)).status, 201);
      assert.equal((await signUpFrom(a.url, ip)).status, 201);
      const refused = await signUpFrom(b.url, ip);
      assert.equal(refused.status, 429);
      assert.ok(refused.headers['retry-after'], 'a refusal says when to retry');
      assert.equal((await signUpFrom(a.url, ip)).status, 429);
      assert.equal((await signUpFrom(a.url, '203.0.113.2')).status, 201, 'another address is not held back');
    });

    test('failed sign-ins from one address: 4 a minute in total across both (the fifth is 429)', async () => {
      const ip = '203.0.113.3';
      // Made-up accounts, a new one each time: only the per-address limit is at work.
      const wrong = (url: string) => signInFrom(url, ip, uniqueEmail('nobody'), 'not-the-password-1');
      for (const url of [a.url, b.url, a.url, b.url]) assert.equal((await wrong(url)).status, 401);
      assert.equal((await wrong(a.url)).status, 429);
      assert.equal((await wrong(b.url)).status, 429);
    });

    test('failed sign-ins on one account split between A and B lock it on both (the third failure locks)', async () => {
      const email = uniqueEmail('locked');
      assert.equal(
        (
          await request(a.url)
            .post('/api/v1/auth/register')
            .set('X-Forwarded-For', '203.0.113.4')
            .send({ email, password: GOOD_PASSWORD, displayName: 'Locked' })
        ).status,
        201,
      );
      // From three addresses, so no per-address limit plays a part.
      const wrong = (url: string, ip: string) => signInFrom(url, ip, email, 'not-the-password-1');
      assert.equal((await wrong(a.url, '203.0.113.5')).status, 401);
      assert.equal((await wrong(b.url, '203.0.113.6')).status, 401);
      assert.equal((await wrong(a.url, '203.0.113.7')).status, 401);
      // Locked on both now, even with the right password, from an address not seen before.
      for (const url of [b.url, a.url]) {
        const right = await signInFrom(url, '203.0.113.8', email, GOOD_PASSWORD);
        assert.equal(right.status, 429, JSON.stringify(right.body));
      }
    });
  });

  test('sealing on both instances and a worker while both take writes: one chain per tenant, no gap, no repeat, the bundle verifies', async () => {
    const { a, b, stop } = await pair({
      JOBS_IN_SERVER: 'true',
      AUDIT_SEAL_INTERVAL_SECONDS: '1',
      STATS_SCHEDULE: 'off',
      AUDIT_PRUNE_SCHEDULE: 'off',
      BACKUP_SCHEDULE: 'off',
      RESTORE_CHECK_SCHEDULE: 'off',
      LIFECYCLE_SCHEDULE: 'off',
    });
    const worker = await startWorker({
      ...instanceEnv(a),
      JOBS_IN_SERVER: 'true',
      STATS_SCHEDULE: 'off',
      AUDIT_PRUNE_SCHEDULE: 'off',
      BACKUP_SCHEDULE: 'off',
      RESTORE_CHECK_SCHEDULE: 'off',
      LIFECYCLE_SCHEDULE: 'off',
      LOG_LEVEL: 'debug',
    }).catch(async (err: unknown) => {
      await stop();
      throw err;
    });
    const db = a.db;
    try {
      // Six people, each writing notes through both instances at once for a few seconds.
      const people = await Promise.all(
        Array.from({ length: 6 }, async (_, i) => {
          const email = await register(i % 2 ? b.url : a.url);
          return cookieSignIn(i % 2 ? a.url : b.url, email);
        }),
      );
      const until = Date.now() + 6000;
      let written = 0;
      await Promise.all(
        people.flatMap((p, i) =>
          [a.url, b.url].map(async (url, side) => {
            for (let n = 0; Date.now() < until; n++) {
              await request(url)
                .post('/api/v1/notes')
                .set('Cookie', p.cookie)
                .set('X-CSRF-Token', p.csrf)
                .send({ title: `p${i} side${side} n${n}` })
                .expect(201);
              written += 1;
            }
          }),
        ),
      );
      assert.ok(written > 50, `only ${written} writes`);
      // The sealers drain the inbox by themselves (every second).
      const deadline = Date.now() + 60_000;
      for (;;) {
        const { rows } = await db.pool.query<{ n: number }>(
          'SELECT count(*)::int AS n FROM control.audit_inbox',
        );
        if (rows[0]?.n === 0) break;
        assert.ok(Date.now() < deadline, `the inbox still holds ${rows[0]?.n} events after a minute`);
        await new Promise((r) => setTimeout(r, 250));
      }
      let entries = 0;
      for (const chain of await chains(db.pool)) {
        const { rows } = await db.pool.query<{ n: number; d: number; top: number }>(
          'SELECT count(*)::int AS n, count(DISTINCT seq)::int AS d, max(seq)::int AS top FROM control.audit_log WHERE chain = $1',
          [chain],
        );
        assert.equal(rows[0]?.n, rows[0]?.d, `${chain}: two entries with one seq`);
        assert.equal(rows[0]?.n, rows[0]?.top, `${chain}: a gap`);
        // Checkpoints only ever grow: two seals at once would sign one size twice.
        const { rows: sizes } = await db.pool.query<{ n: number; d: number }>(
          'SELECT count(*)::int AS n, count(DISTINCT size)::int AS d FROM control.audit_checkpoints WHERE chain = $1',
          [chain],
        );
        assert.equal(sizes[0]?.n, sizes[0]?.d, `${chain}: one size signed twice`);
        entries += (await assertChainValid(db.pool, chain)).length;
      }
      // Every note written is one audit entry, sealed once (plus sign-ups, sign-ins...).
      const { rows: creates } = await db.pool.query<{ n: number; d: number }>(
        `SELECT count(*)::int AS n, count(DISTINCT inbox_id)::int AS d FROM control.audit_log
          WHERE convert_from(entry, 'UTF8')::jsonb ->> 'action' = 'note.create'`,
      );
      assert.equal(creates[0]?.n, written, 'note.create entries sealed');
      assert.equal(creates[0]?.d, written, 'an inbox event sealed twice');
      // What `enclave audit verify` does with an export: the bundle verifies against the key.
      const signer = await openSigner(signingKeyFile(a.config), { create: false });
      const out = new PassThrough();
      const bytes = buffer(out);
      await exportBundle(db.pool, out, { actor: { type: 'auditor', id: 'instances-test' }, signer });
      const verdict = await verifyBundle(await bytes, createPublicKey(publicKeyPem(signer.publicKey)));
      assert.ok(verdict.ok, verdict.ok ? '' : `${verdict.reason}: ${verdict.message}`);
      assert.equal(verdict.entries, entries);
      for (const [name, log] of [
        ['A', a.logs],
        ['B', b.logs],
      ] as const)
        assert.deepEqual(
          log.lines().filter((l) => l.level === 'error'),
          [],
          `instance ${name} logged errors`,
        );
      assert.doesNotMatch(worker.output(), /"level":"error"/);
      // Who sealed: for the report (which instance gets a slot's job is pg-boss's choice).
      const sealedBy = (text: string) => (text.match(/audit sealed/g) ?? []).length;
      console.log(
        `sealing: ${written} notes, ${entries} entries; seal runs that sealed something: A ${sealedBy(a.logs.text())}, B ${sealedBy(b.logs.text())}, worker ${sealedBy(worker.output())}`,
      );
    } finally {
      const code = await worker.stop();
      await stop();
      assert.equal(code, 0, worker.output().slice(-2000));
    }
  });
});
