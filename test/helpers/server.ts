// A real Enclave server for HTTP tests: its own database, the real Redis
// (TEST_REDIS_URL, default redis://127.0.0.1:6379), a captured log.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient } from 'redis';
import request from 'supertest';
import { type Config, loadConfig } from '../../kernel/config.ts';
import type { AbuseOverrides } from '../../server/abuse/options.ts';
import { createPrivilegedUser } from '../../server/accounts/accounts.ts';
import { type RunningServer, startServer } from '../../server/start.ts';
import { createTestDatabase, type TestDatabase } from './database.ts';
import { type CapturedLog, captureLog } from './log.ts';

export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Fails loudly when Redis is not there: these tests need the real one. */
export async function requireRedis(url = TEST_REDIS_URL): Promise<void> {
  const client = createClient({ url, socket: { connectTimeout: 2000, reconnectStrategy: false } });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.ping();
  } catch (err) {
    throw new Error(
      `Redis is not reachable at ${url} (set TEST_REDIS_URL or start redis-server): ${(err as Error).message}`,
    );
  } finally {
    if (client.isOpen) await client.close();
  }
}

export interface TestServer {
  url: string;
  db: TestDatabase;
  logs: CapturedLog;
  server: RunningServer;
  /** The settings it started with, PORT 0 (startInstance starts another with the same). */
  config: Config;
  /** Its abuse numbers, key prefix included (another instance shares its counts by using the same). */
  abuse: AbuseOverrides;
  stop(): Promise<void>;
}

/**
 * Every test talks from 127.0.0.1 and test files share one Redis: each server
 * gets its own key prefix, and per-IP limits high enough for a suite that signs
 * up many accounts. The per-account lockout keeps its production numbers.
 * test/server/abuse/abuse.test.ts passes small limits to see them work.
 */
export function relaxedAbuseLimits(overrides: AbuseOverrides = {}): AbuseOverrides {
  const plenty = { limit: 10_000, windowMs: 60_000 };
  return {
    prefix: `enclave:test:${randomBytes(6).toString('hex')}:`,
    login: plenty,
    register: plenty,
    mfa: plenty,
    tokenUse: plenty,
    tokenIp: plenty,
    ...overrides,
  };
}

/**
 * A lockout that refuses from the third failure on, with no delays before it:
 * locked for `lockoutMs`, failures forgotten after `forgetAfterMs`.
 */
export function quickLockout(lockoutMs: number, forgetAfterMs: number): AbuseOverrides {
  return {
    lockout: { freeFailures: 2, baseDelayMs: 0, maxDelayMs: 0, lockoutAfter: 3, lockoutMs, forgetAfterMs },
  };
}

export async function startTestServer(
  env: Record<string, string | undefined> = {},
  options: { abuse?: AbuseOverrides } = {},
): Promise<TestServer> {
  const redisUrl = 'REDIS_URL' in env ? env.REDIS_URL : TEST_REDIS_URL;
  if (redisUrl) await requireRedis(redisUrl);
  const db = await createTestDatabase(2);
  const logs = captureLog('debug');
  const loaded = loadConfig({
    DATABASE_URL: db.url,
    // Under TEST_VIA_PGBOUNCER db.url goes through the bouncer: what needs a session goes direct.
    ...(db.directUrl !== db.url ? { DIRECT_DATABASE_URL: db.directUrl } : {}),
    DATA_DIR: mkdtempSync(path.join(tmpdir(), 'enclave-test-')),
    SESSION_SECRET: randomBytes(32).toString('hex'),
    // No pg-boss (sealer, scheduled jobs) unless a test asks for it (test/audit/seal-job.test.ts,
    // test/jobs/instances.test.ts): pg-boss per test server would slow every suite down.
    AUDIT_SEAL_INTERVAL_SECONDS: '0',
    JOBS_IN_SERVER: 'false',
    ...env,
    REDIS_URL: redisUrl,
  });
  const config = { ...loaded, PORT: 0 }; // any free port (PORT itself must be 1 to 65535)
  const abuse = relaxedAbuseLimits(options.abuse);
  const server = await startServer(config, { log: logs.log, shutdownGraceMs: 500, abuse });
  if (redisUrl) await untilReady(server.url);
  return {
    url: server.url,
    db,
    logs,
    server,
    config,
    abuse,
    stop: async () => {
      await server.stop();
      await db.drop();
    },
  };
}

/**
 * Another instance of `t`'s installation, as behind a load balancer: its own
 * port and log, the same database, Redis, SESSION_SECRET, DATA_DIR (the audit
 * signing key) and abuse key prefix. Its stop() stops it alone; stop it before `t`.
 */
export async function startInstance(t: TestServer): Promise<TestServer> {
  const logs = captureLog('debug');
  const server = await startServer(t.config, { log: logs.log, shutdownGraceMs: 500, abuse: t.abuse });
  return { ...t, url: server.url, logs, server, stop: () => server.stop() };
}

/** The environment `enclave worker` (or any CLI command) needs to join `t`'s installation. */
export function instanceEnv(t: TestServer): Record<string, string> {
  const c = t.config;
  const env: Record<string, string> = {
    DATABASE_URL: c.DATABASE_URL ?? '',
    DATA_DIR: c.DATA_DIR,
    SESSION_SECRET: c.SESSION_SECRET ?? '',
    AUDIT_SEAL_INTERVAL_SECONDS: String(c.AUDIT_SEAL_INTERVAL_SECONDS),
  };
  if (c.DIRECT_DATABASE_URL) env.DIRECT_DATABASE_URL = c.DIRECT_DATABASE_URL;
  if (c.REDIS_URL) env.REDIS_URL = c.REDIS_URL;
  if (c.AUDIT_SIGNING_KEY_FILE) env.AUDIT_SIGNING_KEY_FILE = c.AUDIT_SIGNING_KEY_FILE;
  return env;
}

export interface Worker {
  /** Everything it wrote to stdout and stderr so far. */
  output(): string;
  /** SIGTERM, then its exit code. */
  stop(): Promise<number | null>;
}

/** `enclave worker` in a child process with `env` on top of this one's; resolves once it says it started. */
export async function startWorker(env: Record<string, string>, timeoutMs = 30_000): Promise<Worker> {
  const child = spawn(process.execPath, ['bin/enclave.js', 'worker'], {
    cwd: fileURLToPath(new URL('../../', import.meta.url)),
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    return exited;
  };
  const started = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`the worker did not start:\n${out.slice(-2000)}`)),
      timeoutMs,
    );
    const read = (b: Buffer) => {
      out += b.toString();
      if (out.includes('worker started')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', read);
    child.stderr?.on('data', read);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`the worker exited (${code}) before it started:\n${out.slice(-2000)}`));
    });
  });
  try {
    await started;
  } catch (err) {
    await stop();
    throw err;
  }
  return { output: () => out, stop };
}

let counter = 0;
export function uniqueEmail(prefix = 'person'): string {
  counter += 1;
  return `${prefix}.${process.pid}.${counter}.${randomBytes(3).toString('hex')}@example.com`;
}

export const GOOD_PASSWORD = 'violet-kettle-harbour-92';

export interface SignedIn {
  agent: request.Agent;
  csrf: string;
  email: string;
  password: string;
  user: { id: string; tenantId: string | null; role: string };
}

/** Registers through the JSON API and returns a cookie-keeping agent with its CSRF token. */
export async function signUp(
  url: string,
  overrides: Partial<{ email: string; password: string; displayName: string }> = {},
): Promise<SignedIn> {
  const agent = request.agent(url);
  const email = overrides.email ?? uniqueEmail();
  const password = overrides.password ?? GOOD_PASSWORD;
  const res = await agent
    .post('/api/v1/auth/register')
    .send({ email, password, displayName: overrides.displayName ?? 'Test Person' })
    .expect(201);
  return { agent, csrf: res.body.csrfToken, email, password, user: res.body.user };
}

/** Signs in an existing account with a new agent (a second device). */
export async function signIn(
  url: string,
  email: string,
  password: string,
  extra: Record<string, string> = {},
): Promise<SignedIn> {
  const agent = request.agent(url);
  const res = await agent
    .post('/api/v1/auth/login')
    .send({ email, password, ...extra })
    .expect(200);
  return { agent, csrf: res.body.csrfToken, email, password, user: res.body.user };
}

/** Makes an admin or auditor account (as `enclave users create-admin` does) and signs it in. */
export async function signInPrivileged(t: TestServer, role: 'admin' | 'auditor'): Promise<SignedIn> {
  const email = uniqueEmail(role);
  await createPrivilegedUser(t.db.pool, { email, password: GOOD_PASSWORD, displayName: role, role });
  return signIn(t.url, email, GOOD_PASSWORD);
}

/**
 * Redis connects in the background (server/sessions/store.ts): on a busy machine the first
 * request could come before it and get a 503. Waits up to 10 s for /readyz, then goes on
 * (a test that starts with Redis down on purpose sees that itself).
 */
async function untilReady(url: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const ok = await fetch(`${url}/readyz`).then(
      (res) => res.ok,
      () => false,
    );
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
