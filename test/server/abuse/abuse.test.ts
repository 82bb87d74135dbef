// Abuse protection against a real server (PostgreSQL + Redis), with small
// limits and windows so that each one can be seen to take effect AND lift
// within seconds. Requests come "from" different addresses (X-Forwarded-For,
// believed because TRUST_PROXY=loopback), so each test has its own per-IP
// counters; the per-account lockout ignores the address by design.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import express from 'express';
import { generate, generateSecret } from 'otplib';
import { createClient } from 'redis';
import request from 'supertest';
import { lockoutSchedule, MemoryAttemptCounter, RedisAttemptCounter } from '../../../server/abuse/lockout.ts';
import { DEFAULT_ABUSE_OPTIONS, type LockoutPolicy } from '../../../server/abuse/options.ts';
import { abuseProtection } from '../../../server/abuse/protection.ts';
import { register } from '../../../server/accounts/accounts.ts';
import { RateLimitedError } from '../../../server/app-errors.ts';
import { createApp } from '../../../server/http/app.ts';
import { connectRedis } from '../../../server/sessions/store.ts';
import { loadTenantMigrations } from '../../../tenancy/templates.ts';
import { captureLog } from '../../helpers/log.ts';
import {
  GOOD_PASSWORD,
  requireRedis,
  signIn,
  startTestServer,
  TEST_REDIS_URL,
  type TestServer,
  uniqueEmail,
} from '../../helpers/server.ts';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

let lastIp = 0;
/** A fresh client address (TEST-NET-3) for each use that needs its own per-IP counters. */
const newIp = () => `203.0.113.${++lastIp}`;

const WINDOW_MS = 1500;
const PREFIX = `enclave:test:abuse:${randomBytes(4).toString('hex')}:`;
const LOCKOUT: LockoutPolicy = {
  freeFailures: 2,
  baseDelayMs: 1000, // after failure 3: 1 s, after failure 4: 2 s
  maxDelayMs: 10_000,
  lockoutAfter: 5, // from failure 5: locked for 3 s
  lockoutMs: 3000,
  forgetAfterMs: 60_000,
};

function login(t: TestServer, body: Record<string, unknown>, from: string) {
  return request(t.url).post('/api/v1/auth/login').set('X-Forwarded-For', from).send(body);
}

async function newAccount(t: TestServer, options: { mfaSecret?: string } = {}): Promise<string> {
  const email = uniqueEmail('abuse');
  // Straight through the accounts service: the registration limit is not what these tests are about.
  const { user } = await register(
    t.db.pool,
    { email, password: GOOD_PASSWORD, displayName: 'Abuse Test' },
    loadTenantMigrations(),
  );
  if (options.mfaSecret) {
    await t.db.pool.query('UPDATE control.users SET mfa_secret = $2, mfa_enabled_at = now() WHERE id = $1', [
      user.id,
      options.mfaSecret,
    ]);
  }
  return email;
}

function retryAfter(res: request.Response): number {
  return Number(res.headers['retry-after']);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

describe('abuse protection over HTTP', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer(
      { TRUST_PROXY: 'loopback' },
      {
        abuse: {
          prefix: PREFIX,
          login: { limit: 3, windowMs: WINDOW_MS },
          register: { limit: 2, windowMs: WINDOW_MS },
          mfa: { limit: 3, windowMs: WINDOW_MS },
          tokenUse: { limit: 3, windowMs: WINDOW_MS },
          tokenIp: { limit: 5, windowMs: WINDOW_MS },
          lockout: LOCKOUT,
        },
      },
    );
  });
  after(async () => {
    await t?.stop();
  });

  test('failed sign-ins per IP: 429 with Retry-After past the limit, lifted after the window', async () => {
    const ip = newIp();
    // Different (unknown) emails, so that only the per-IP limit is in play. Path
    // spelling does not matter: Express routes these to the same handler.
    await login(t, { email: uniqueEmail(), password: 'wrong-password-1' }, ip).expect(401);
    await request(t.url)
      .post('/API/v1/Auth/Login/')
      .set('X-Forwarded-For', ip)
      .send({ email: uniqueEmail(), password: 'wrong-password-2' })
      .expect(401);
    await login(t, { email: uniqueEmail(), password: 'wrong-password-3' }, ip).expect(401);
    const refused = await login(t, { email: uniqueEmail(), password: 'wrong-password-4' }, ip).expect(429);
    assert.equal(refused.body.error.code, 'rate_limited');
    assert.match(
      refused.body.error.message,
      /^Too many failed sign-ins from your network\. Try again in \d+ seconds?\.$/,
    );
    assert.ok(retryAfter(refused) >= 1 && retryAfter(refused) <= 2, `Retry-After ${retryAfter(refused)}`);
    assert.equal(refused.body.error.details.retryAfterSeconds, retryAfter(refused));

    // Another address is not affected.
    await login(t, { email: uniqueEmail(), password: 'wrong-password-5' }, newIp()).expect(401);

    await sleep(retryAfter(refused) * 1000 + 100);
    await login(t, { email: uniqueEmail(), password: 'wrong-password-6' }, ip).expect(401);
  });

  test('successful sign-ins do not use up the per-IP budget (a busy office is not locked out)', async () => {
    const ip = newIp();
    const email = await newAccount(t);
    for (let i = 0; i < 5; i++) await login(t, { email, password: GOOD_PASSWORD }, ip).expect(200);
  });

  test('registrations per IP: 429 past the limit, lifted after the window', async () => {
    const ip = newIp();
    const signUp = (body: object) =>
      request(t.url).post('/api/v1/auth/register').set('X-Forwarded-For', ip).send(body);
    await signUp({ email: 'not-an-email' }).expect(400);
    await signUp({ email: 'not-an-email' }).expect(400);
    const refused = await signUp({
      email: uniqueEmail(),
      password: GOOD_PASSWORD,
      displayName: 'Too Soon',
    }).expect(429);
    assert.match(
      refused.body.error.message,
      /^Too many sign-ups from your network\. Try again in \d+ seconds?\.$/,
    );
    assert.ok(retryAfter(refused) >= 1);
    await sleep(retryAfter(refused) * 1000 + 100);
    await signUp({ email: uniqueEmail(), password: GOOD_PASSWORD, displayName: 'Later' }).expect(201);
  });

  test('per account: free failures, then a growing delay, then a lockout that lifts; the same for an unknown email', async () => {
    const known = await newAccount(t);
    const unknown = uniqueEmail('nobody');
    // Every attempt from a new address: the lockout follows the account, not the IP.
    const both = async (password: string) => {
      const [a, b] = await Promise.all([
        login(t, { email: known, password }, newIp()),
        login(t, { email: unknown, password }, newIp()),
      ]);
      assert.equal(a.status, b.status, 'known and unknown emails get the same status');
      assert.equal(a.text, b.text, 'known and unknown emails get byte-identical bodies');
      assert.equal(a.headers['retry-after'], b.headers['retry-after']);
      return a;
    };

    // Failures 1 and 2 are free; failure 3 arms a 1 s delay.
    for (let i = 0; i < 3; i++) assert.equal((await both('wrong-password-x')).status, 401);
    const delayed = await both('wrong-password-x');
    assert.equal(delayed.status, 429);
    assert.equal(retryAfter(delayed), 1);
    assert.match(delayed.body.error.message, /^Too many failed sign-ins\. Try again in 1 second\.$/);

    // Failure 4 arms a longer delay (2 s): it grows.
    await sleep(1100);
    assert.equal((await both('wrong-password-x')).status, 401);
    const longer = await both('wrong-password-x');
    assert.equal(longer.status, 429);
    assert.equal(retryAfter(longer), 2);

    // Failure 5 locks the account for 3 s; now even the right password is refused, unchecked.
    await sleep(2100);
    assert.equal((await both('wrong-password-x')).status, 401);
    const locked = await login(t, { email: known, password: GOOD_PASSWORD }, newIp()).expect(429);
    assert.equal(retryAfter(locked), 3);
    assert.match(locked.body.error.message, /Try again in 3 seconds\./);
    // Email spelled differently: still locked. Put in the query string, it is not read at all:
    // refused as a request without an email, the password unchecked.
    await login(t, { email: `  ${known.toUpperCase()} `, password: GOOD_PASSWORD }, newIp()).expect(429);
    await request(t.url)
      .post(`/api/v1/auth/login?email=${encodeURIComponent(known)}`)
      .set('X-Forwarded-For', newIp())
      .send({ password: GOOD_PASSWORD })
      .expect(400);

    // The lockout lifts; a success clears the count, so the next failures are free again.
    await sleep(retryAfter(locked) * 1000 + 100);
    await login(t, { email: known, password: GOOD_PASSWORD }, newIp()).expect(200);
    await login(t, { email: known, password: 'wrong-password-y' }, newIp()).expect(401);
    await login(t, { email: known, password: 'wrong-password-y' }, newIp()).expect(401);
    await login(t, { email: known, password: GOOD_PASSWORD }, newIp()).expect(200);
  });

  test('a burst of parallel guesses cannot outrun the lockout', async () => {
    const email = await newAccount(t);
    const answers = await Promise.all(
      Array.from({ length: 12 }, (_, i) => login(t, { email, password: `wrong-password-${i}` }, newIp())),
    );
    const statuses = answers.map((r) => r.status);
    // Failures 1 to 3 pass (3 arms the delay); every other one is refused unchecked.
    assert.equal(statuses.filter((s) => s === 401).length, 3, statuses.join(','));
    assert.equal(statuses.filter((s) => s === 429).length, 9, statuses.join(','));
  });

  test('wrong MFA codes at sign-in count toward the account lockout', async () => {
    const secret = generateSecret();
    const email = await newAccount(t, { mfaSecret: secret });
    const now = Math.floor(Date.now() / 1000);
    const valid = await Promise.all([-30, 0, 30].map((d) => generate({ secret, epoch: now + d })));
    let wrong = 123456;
    while (valid.includes(String(wrong).padStart(6, '0'))) wrong += 1;
    const wrongCode = String(wrong).padStart(6, '0');

    for (let i = 0; i < 3; i++) {
      const res = await login(t, { email, password: GOOD_PASSWORD, totp: wrongCode }, newIp()).expect(401);
      assert.equal(res.body.error.code, 'unauthenticated');
    }
    // The right password and the right code are now refused too, until the delay is over.
    const code = await generate({ secret });
    await login(t, { email, password: GOOD_PASSWORD, totp: code }, newIp()).expect(429);
  });

  test('MFA code submissions per IP: 429 past the limit, at sign-in and on MFA routes', async () => {
    const ip = newIp();
    // MFA routes need a session; without one they answer 401 or 403, and still count.
    await request(t.url).post('/api/v1/mfa/enable').set('X-Forwarded-For', ip).send({ code: '000000' });
    await request(t.url).post('/login/mfa').set('X-Forwarded-For', ip).type('form').send({ code: '000000' });
    await login(t, { email: uniqueEmail(), password: 'wrong-password-1', totp: '000000' }, ip).expect(401);
    const refused = await login(
      t,
      { email: uniqueEmail(), password: 'wrong-password-2', totp: '000000' },
      ip,
    );
    assert.equal(refused.status, 429);
    assert.match(refused.body.error.message, /^Too many codes entered\./);
  });

  test('password checks behind a session use up the failed sign-ins of the address, and count toward the account lockout', async () => {
    const email = await newAccount(t);
    const session = await signIn(t.url, email, GOOD_PASSWORD);
    const ip = newIp();
    const guess = (i: number) =>
      session.agent
        .post('/api/v1/account/password')
        .set('X-Forwarded-For', ip)
        .set('X-CSRF-Token', session.csrf)
        .send({ currentPassword: `wrong-password-${i}`, newPassword: 'amber-lantern-orchard-57' });
    for (let i = 0; i < 3; i++) await guess(i).expect(401);
    const refused = await guess(3).expect(429);
    assert.match(refused.body.error.message, /^Too many failed sign-ins from your network\./);
    // One budget per address: a sign-in from there, on any account, is refused as well.
    await login(t, { email: uniqueEmail(), password: 'wrong-password-z' }, ip).expect(429);
    // The account's own count: the third failure armed a delay that holds at sign-in, from anywhere.
    const locked = await login(t, { email, password: GOOD_PASSWORD }, newIp()).expect(429);
    assert.match(locked.body.error.message, /^Too many failed sign-ins\. Try again in 1 second\.$/);
  });

  test('API token use: limited per token and per IP, lifted after the window', async () => {
    const ip = newIp();
    const api = (token: string) =>
      request(t.url).get('/api/v1/notes').set('X-Forwarded-For', ip).set('Authorization', `Bearer ${token}`);
    const first = `enc_${randomBytes(16).toString('hex')}`;
    for (let i = 0; i < 3; i++) await api(first).expect(401);
    const perToken = await api(first).expect(429);
    assert.match(perToken.body.error.message, /^Too many requests with this API token\./);
    assert.ok(retryAfter(perToken) >= 1);

    // Other tokens from the same address: their own budget, but the address has one too (5).
    await api(`enc_${randomBytes(16).toString('hex')}`).expect(401);
    const perIp = await api(`enc_${randomBytes(16).toString('hex')}`).expect(429);
    assert.match(perIp.body.error.message, /^Too many API requests from your network\./);

    await sleep(WINDOW_MS + 100);
    await api(first).expect(401);
  });

  test('Redis holds no email: account keys are keyed hashes', async () => {
    const client = createClient({ url: TEST_REDIS_URL });
    client.on('error', () => {});
    await client.connect();
    try {
      const keys: string[] = [];
      for await (const batch of client.scanIterator({ MATCH: `${PREFIX}*`, COUNT: 1000 }))
        keys.push(...batch);
      assert.ok(
        keys.some((k) => k.includes(':acct:')),
        'the lockout tests left account keys',
      );
      for (const key of keys) assert.doesNotMatch(key, /@|abuse\.|nobody\./i, key);
    } finally {
      await client.close();
    }
  });
});

describe('no difference between known and unknown emails', () => {
  let t: TestServer;
  before(async () => {
    // Generous lockout: this compares many failures on the same two emails.
    t = await startTestServer({}, { abuse: { lockout: { freeFailures: 100, lockoutAfter: 100 } } });
  });
  after(async () => {
    await t?.stop();
  });

  test('a wrong password gets the same status, byte-identical body and similar timing', async () => {
    const known = await newAccount(t);
    const unknown = uniqueEmail('nobody');
    const timed = async (email: string) => {
      const started = performance.now();
      const res = await request(t.url)
        .post('/api/v1/auth/login')
        .send({ email, password: 'wrong-password-z' });
      return { res, ms: performance.now() - started };
    };
    await timed(known); // warm-up: the dummy hash is made on first use
    await timed(unknown);
    const knownMs: number[] = [];
    const unknownMs: number[] = [];
    for (let i = 0; i < 9; i++) {
      const a = await timed(known);
      const b = await timed(unknown);
      assert.equal(a.res.status, 401);
      assert.equal(b.res.status, 401);
      assert.equal(a.res.text, b.res.text);
      knownMs.push(a.ms);
      unknownMs.push(b.ms);
    }
    const [k, u] = [median(knownMs), median(unknownMs)];
    // One argon2 verification (~15-20 ms here) dominates both. Pairs are interleaved, so
    // load slows both alike; the margin allows noise but not "one hash versus none".
    assert.ok(
      Math.abs(k - u) <= Math.max(8, 0.3 * Math.max(k, u)),
      `median known ${k.toFixed(1)} ms vs unknown ${u.toFixed(1)} ms`,
    );
  });
});

describe('without REDIS_URL (one instance, sessions in PostgreSQL)', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer(
      { REDIS_URL: undefined, TRUST_PROXY: 'loopback' },
      { abuse: { login: { limit: 4, windowMs: WINDOW_MS }, lockout: LOCKOUT } },
    );
  });
  after(async () => {
    await t?.stop();
  });

  test('the per-IP limit and the account lockout still apply, counted in process memory', async () => {
    const email = await newAccount(t);
    const ip = newIp();
    for (let i = 0; i < 3; i++) await login(t, { email, password: 'wrong-password-m' }, ip).expect(401);
    const locked = await login(t, { email, password: GOOD_PASSWORD }, ip).expect(429);
    assert.match(locked.body.error.message, /^Too many failed sign-ins\. Try again in 1 second\.$/);
    const perIp = await login(t, { email: uniqueEmail(), password: 'wrong-password-m' }, ip).expect(429);
    assert.match(perIp.body.error.message, /from your network/);
  });
});

describe('fail closed and recover with Redis', () => {
  before(async () => {
    await requireRedis();
  });

  /** The abuse middleware alone in front of a route that always answers 200. */
  function guardedApp(redis: ReturnType<typeof connectRedis>) {
    const log = captureLog().log;
    const router = express.Router();
    router.post('/api/v1/auth/login', (_req, res) => {
      res.json({ reached: true });
    });
    const guard = abuseProtection({
      redis,
      secret: 'test-secret',
      log,
      overrides: { prefix: `enclave:test:abuse:${randomBytes(4).toString('hex')}:` },
    });
    return createApp({ log, checks: {}, middleware: [guard], routers: [router] });
  }

  test('with Redis unreachable, sign-in attempts get 503 and never reach the password check', async () => {
    const redis = connectRedis('redis://127.0.0.1:1', captureLog().log);
    try {
      const res = await request(guardedApp(redis))
        .post('/api/v1/auth/login')
        .send({ email: uniqueEmail(), password: 'anything-at-all' })
        .expect(503);
      assert.equal(res.body.error.code, 'sessions_unavailable');
    } finally {
      redis.destroy();
    }
  });

  test('limits made before Redis is connected work once it is (no stuck script load)', async () => {
    // connectRedis connects in the background: the limiters are made before it is ready.
    const redis = connectRedis(TEST_REDIS_URL, captureLog().log);
    const app = guardedApp(redis);
    try {
      for (let i = 0; i < 50 && !redis.isReady; i++) await sleep(20);
      assert.ok(redis.isReady);
      const res = await request(app)
        .post('/api/v1/auth/login')
        .send({ email: uniqueEmail(), password: 'anything-at-all' })
        .expect(200);
      assert.deepEqual(res.body, { reached: true });
    } finally {
      await redis.close();
    }
  });
});

describe('lockout schedule and counters', () => {
  test('the default schedule: 5 free failures, then 2, 4, 8, 16 s, then 15 minutes', () => {
    assert.deepEqual(
      lockoutSchedule(DEFAULT_ABUSE_OPTIONS.lockout),
      [0, 0, 0, 0, 0, 2000, 4000, 8000, 16000, 900_000],
    );
    assert.equal(
      new RateLimitedError(900, 'failed sign-ins').message,
      'Too many failed sign-ins. Try again in 15 minutes.',
    );
  });

  test('the Redis and the in-process counter follow the same schedule (the latter for single-instance setups)', async () => {
    await requireRedis();
    const policy: LockoutPolicy = { ...LOCKOUT, baseDelayMs: 100, lockoutMs: 1000 };
    let clock = 1_000_000;
    const memory = new MemoryAttemptCounter(policy, () => clock);
    const client = createClient({ url: TEST_REDIS_URL });
    client.on('error', () => {});
    await client.connect();
    try {
      const shared = new RedisAttemptCounter(
        client as unknown as ConstructorParameters<typeof RedisAttemptCounter>[0],
        `enclave:test:abuse:${randomBytes(4).toString('hex')}:`,
        policy,
      );
      /** Attempts until 7 are let through, waiting out each refusal; what happened, in order. */
      const run = async (
        counter: MemoryAttemptCounter | RedisAttemptCounter,
        wait: (ms: number) => Promise<void>,
      ) => {
        const seen: string[] = [];
        const key = randomBytes(8).toString('hex');
        while (seen.filter((s) => s.startsWith('ok')).length < 7) {
          const attempt = await counter.attempt(key);
          if (attempt.allowed) {
            seen.push(`ok ${attempt.failures}`);
          } else {
            seen.push(`wait ${Math.ceil(attempt.retryAfterMs / 100) * 100}`); // PTTL: a few ms have passed
            await wait(attempt.retryAfterMs);
          }
        }
        return seen;
      };
      const inMemory = await run(memory, async (ms) => {
        clock += ms;
      });
      const inRedis = await run(shared, (ms) => sleep(ms + 20));
      const expected = ['ok 1', 'ok 2', 'ok 3', 'wait 100', 'ok 4', 'wait 200', 'ok 5', 'wait 1000', 'ok 6'];
      assert.deepEqual(inMemory, [...expected, 'wait 1000', 'ok 7']);
      assert.deepEqual(inRedis, inMemory);
    } finally {
      await client.close();
    }
  });

  test('undo takes back one attempt (never below none), in Redis and in memory alike', async () => {
    await requireRedis();
    const policy: LockoutPolicy = { ...LOCKOUT, freeFailures: 5, lockoutAfter: 5 };
    const client = createClient({ url: TEST_REDIS_URL });
    client.on('error', () => {});
    await client.connect();
    try {
      const counters = [
        new MemoryAttemptCounter(policy),
        new RedisAttemptCounter(
          client as unknown as ConstructorParameters<typeof RedisAttemptCounter>[0],
          `enclave:test:abuse:${randomBytes(4).toString('hex')}:`,
          policy,
        ),
      ];
      for (const counter of counters) {
        const key = randomBytes(8).toString('hex');
        await counter.undo(key); // nothing to take back
        assert.deepEqual(await counter.attempt(key), { allowed: true, failures: 1 });
        assert.deepEqual(await counter.attempt(key), { allowed: true, failures: 2 });
        await counter.undo(key);
        assert.deepEqual(await counter.attempt(key), { allowed: true, failures: 2 });
        await counter.undo(key);
        await counter.undo(key);
        await counter.undo(key);
        assert.deepEqual(await counter.attempt(key), { allowed: true, failures: 1 });
      }
    } finally {
      await client.close();
    }
  });
});
