// What the fault tests share: an Enclave server on a private PostgreSQL
// cluster and a private Redis (in this process, or as a child to SIGKILL or
// SIGTERM), people signed up through the HTTP API, and a load of them writing
// and reading notes, every request bounded in time and every outcome kept.
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../kernel/config.ts';
import { ident } from '../../kernel/identifiers.ts';
import { type RunningServer, startServer } from '../../server/start.ts';
import { createScratchDatabase, type ScratchDatabase } from '../helpers/database.ts';
import { type CapturedLog, captureLog } from '../helpers/log.ts';
import { type PrivatePostgres, startPrivatePostgres } from '../helpers/private-postgres.ts';
import { freePort, type PrivateRedis, startPrivateRedis } from '../helpers/private-redis.ts';
import { GOOD_PASSWORD, relaxedAbuseLimits, uniqueEmail } from '../helpers/server.ts';

/** No client request may take longer: one that does is a hang, and the tests say so. */
export const REQUEST_BOUND_MS = 15_000;
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Stage {
  pg: PrivatePostgres;
  redis: PrivateRedis;
  db: ScratchDatabase;
  /** The environment a server of this stage runs with (DATABASE_URL, REDIS_URL, secrets, DATA_DIR). */
  env: Record<string, string>;
  close(): Promise<void>;
}

/** A private cluster and Redis, and a scratch database on that cluster with the control plane. */
export async function startStage(): Promise<Stage> {
  const pg = await startPrivatePostgres();
  let redis: PrivateRedis | undefined;
  try {
    redis = await startPrivateRedis();
    const db = await createScratchDatabase({ adminUrl: pg.url, poolSize: 2, prefix: 'enclave_faults' });
    const env = {
      DATABASE_URL: db.url,
      REDIS_URL: redis.url,
      DATA_DIR: mkdtempSync(path.join(tmpdir(), 'enclave-faults-')),
      SESSION_SECRET: randomBytes(32).toString('hex'),
      AUDIT_SEAL_INTERVAL_SECONDS: '0',
      JOBS_IN_SERVER: 'false',
      LOG_LEVEL: 'warn',
    };
    const r = redis;
    return {
      pg,
      redis: r,
      db,
      env,
      close: async () => {
        await db.pool.end().catch(() => {});
        await r.stop();
        await pg.destroy(); // the whole cluster goes, its tenant roles with it
        rmSync(env.DATA_DIR, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await redis?.stop();
    await pg.destroy();
    throw err;
  }
}

export interface InProcessServer {
  url: string;
  server: RunningServer;
  logs: CapturedLog;
}

export async function startInProcess(
  stage: Stage,
  env: Record<string, string> = {},
): Promise<InProcessServer> {
  const config = { ...loadConfig({ ...stage.env, ...env }), PORT: 0 };
  const logs = captureLog('debug');
  const server = await startServer(config, {
    log: logs.log,
    shutdownGraceMs: 5000,
    abuse: relaxedAbuseLimits(),
  });
  return { url: server.url, server, logs };
}

export interface ChildServer {
  url: string;
  child: ChildProcess;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * `node server/main.ts` as a child. It keeps the production abuse limits, so
 * TRUST_PROXY is on and every person sends an address of their own.
 */
export async function startChild(stage: Stage, env: Record<string, string> = {}): Promise<ChildServer> {
  const port = await freePort();
  const child = spawn(process.execPath, ['server/main.ts'], {
    cwd: ROOT,
    env: {
      ...process.env,
      ...stage.env,
      PORT: String(port),
      TRUST_PROXY: 'loopback',
      LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d) => {
    out += d;
  });
  child.stderr?.on('data', (d) => {
    out += d;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`the server exited before it listened:\n${out.slice(-3000)}`);
    const up = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1000) }).then(
      (r) => r.ok,
      () => false,
    );
    if (up) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the server did not listen within 60 s:\n${out.slice(-3000)}`);
    }
    await sleep(100);
  }
  return { url, child, output: () => out, exited };
}

export interface Outcome {
  what: string;
  status: number;
  /** 'timeout' (hit REQUEST_BOUND_MS), 'network' (refused, reset), or none. */
  failure?: 'timeout' | 'network';
  ms: number;
  at: number;
  retryAfter?: string | null;
  code?: string;
  message?: string;
}

let addressCounter = 0;

/** One person's HTTP client: a cookie jar, the CSRF token, their own client address. */
export class Person {
  readonly email = uniqueEmail('fault');
  readonly address =
    `10.${(addressCounter >> 16) & 255}.${(addressCounter >> 8) & 255}.${addressCounter++ & 255}`;
  readonly cookies = new Map<string, string>();
  csrf = '';
  tenantId = '';
  bearer = '';
  readonly url: string;
  constructor(url: string) {
    this.url = url;
  }

  async call(
    method: string,
    pathname: string,
    body?: unknown,
    auth: 'session' | 'bearer' = 'session',
  ): Promise<{ outcome: Outcome; json: Record<string, unknown> | undefined }> {
    const headers: Record<string, string> = { 'X-Forwarded-For': this.address, Accept: 'application/json' };
    if (auth === 'bearer') headers.Authorization = `Bearer ${this.bearer}`;
    else {
      if (this.cookies.size > 0) headers.Cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
      if (method !== 'GET' && this.csrf) headers['X-CSRF-Token'] = this.csrf;
    }
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const start = performance.now();
    const at = Date.now();
    const what = `${method} ${pathname.replace(/\/\d+$/, '/:id')}`;
    try {
      const res = await fetch(this.url + pathname, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(REQUEST_BOUND_MS),
      });
      if (auth === 'session')
        for (const c of res.headers.getSetCookie()) {
          const [pair] = c.split(';');
          const eq = (pair ?? '').indexOf('=');
          if (eq > 0) this.cookies.set((pair ?? '').slice(0, eq), (pair ?? '').slice(eq + 1));
        }
      const text = await res.text();
      let json: Record<string, unknown> | undefined;
      try {
        json = JSON.parse(text);
      } catch {}
      const error = json?.error as { code?: string; message?: string } | undefined;
      return {
        outcome: {
          what,
          status: res.status,
          ms: performance.now() - start,
          at,
          retryAfter: res.headers.get('retry-after'),
          code: error?.code,
          message: error?.message,
        },
        json,
      };
    } catch (err) {
      const timeout = (err as Error).name === 'TimeoutError';
      return {
        outcome: {
          what,
          status: 0,
          failure: timeout ? 'timeout' : 'network',
          ms: performance.now() - start,
          at,
        },
        json: undefined,
      };
    }
  }

  async register(): Promise<Outcome> {
    const { outcome, json } = await this.call('POST', '/api/v1/auth/register', {
      email: this.email,
      password: GOOD_PASSWORD,
      displayName: 'Fault Person',
    });
    if (outcome.status === 201 && json) {
      this.csrf = json.csrfToken as string;
      this.tenantId = (json.user as { tenantId: string }).tenantId;
    }
    return outcome;
  }

  async login(): Promise<Outcome> {
    this.cookies.clear();
    const { outcome, json } = await this.call('POST', '/api/v1/auth/login', {
      email: this.email,
      password: GOOD_PASSWORD,
    });
    if (outcome.status === 200 && json) this.csrf = json.csrfToken as string;
    return outcome;
  }

  async makeToken(scope: 'read' | 'write'): Promise<void> {
    const { outcome, json } = await this.call('POST', '/api/v1/tokens', { name: 'fault script', scope });
    if (outcome.status !== 201 || !json) throw new Error(`POST /api/v1/tokens: ${outcome.status}`);
    this.bearer = json.secret as string;
  }
}

/** Registers `n` people, a few at a time; fails on any that is not 201. */
export async function signUpMany(url: string, n: number, atOnce = 4): Promise<Person[]> {
  const people = Array.from({ length: n }, () => new Person(url));
  for (let i = 0; i < n; i += atOnce) {
    const outcomes = await Promise.all(people.slice(i, i + atOnce).map((p) => p.register()));
    for (const o of outcomes)
      if (o.status !== 201) throw new Error(`register: ${o.status} ${o.code} ${o.message}`);
  }
  return people;
}

/** A note's body follows from its title: a note with both present and not matching was half-written. */
export function bodyFor(title: string): string {
  const h = createHash('sha256').update(title).digest('hex');
  return `${title}\n${h.repeat(8)}`;
}

export interface Load {
  outcomes: Outcome[];
  /** Notes acknowledged with 201 and an id, by person. */
  acknowledged: Map<Person, Array<{ id: number; title: string }>>;
  /** Writes sent that got no 201 (unknown outcome or refused), by person: titles. */
  unacknowledged: Map<Person, string[]>;
  stop(): Promise<void>;
}

/**
 * Every person writes a note, reads it back and lists notes, over and over,
 * until stop(); a short pause between rounds keeps a 2-core machine breathing.
 * `auth` picks how they authenticate (a session cookie, or an API token).
 */
export function startLoad(
  people: Person[],
  options: { pauseMs?: number; auth?: 'session' | 'bearer' } = {},
): Load {
  const pauseMs = options.pauseMs ?? 50;
  const auth = options.auth ?? 'session';
  const outcomes: Outcome[] = [];
  const acknowledged = new Map<Person, Array<{ id: number; title: string }>>();
  const unacknowledged = new Map<Person, string[]>();
  let running = true;
  let seq = 0;
  const loop = async (p: Person) => {
    acknowledged.set(p, []);
    unacknowledged.set(p, []);
    while (running) {
      const title = `fault note ${process.pid}-${seq++}-${randomBytes(3).toString('hex')}`;
      const w = await p.call('POST', '/api/v1/notes', { title, body: bodyFor(title) }, auth);
      outcomes.push(w.outcome);
      const note = w.json?.note as { id?: number } | undefined;
      if (w.outcome.status === 201 && typeof note?.id === 'number') {
        acknowledged.get(p)?.push({ id: note.id, title });
        const r = await p.call('GET', `/api/v1/notes/${note.id}`, undefined, auth);
        outcomes.push(r.outcome);
      } else unacknowledged.get(p)?.push(title);
      const l = await p.call('GET', '/api/v1/notes?limit=5', undefined, auth);
      outcomes.push(l.outcome);
      await sleep(w.outcome.status >= 500 || w.outcome.status === 0 ? 250 : pauseMs);
    }
  };
  const loops = people.map(loop);
  return {
    outcomes,
    acknowledged,
    unacknowledged,
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}

/** Each person's notes as stored (id, title, body), read straight from their tenant schema. */
export async function storedNotes(
  db: ScratchDatabase,
  person: Person,
): Promise<Map<number, { title: string; body: string }>> {
  const { rows } = await db.pool.query<{ id: number; title: string; body: string }>(
    `SELECT id, title, body FROM ${ident(`t_${person.tenantId}`)}.notes`,
  );
  return new Map(rows.map((r) => [Number(r.id), { title: r.title, body: r.body }]));
}

/** Checks every acknowledged note is stored whole, and every stored note of the load is whole. */
export async function checkNotes(
  db: ScratchDatabase,
  load: Load,
): Promise<{ acknowledged: number; stored: number }> {
  let acked = 0;
  let stored = 0;
  for (const [person, notes] of load.acknowledged) {
    const have = await storedNotes(db, person);
    stored += have.size;
    for (const n of notes) {
      acked += 1;
      const got = have.get(n.id);
      if (!got) throw new Error(`acknowledged note ${n.id} (${n.title}) of ${person.email} is missing`);
      if (got.title !== n.title || got.body !== bodyFor(n.title))
        throw new Error(`acknowledged note ${n.id} is not as written`);
    }
    for (const [id, got] of have)
      if (got.body !== bodyFor(got.title)) throw new Error(`note ${id} of ${person.email} is half-written`);
  }
  return { acknowledged: acked, stored };
}

/** Polls until `check` holds; returns how long it took. */
export async function until(what: string, ms: number, check: () => Promise<boolean>): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < ms) {
    if (await check().catch(() => false)) return Date.now() - start;
    await sleep(100);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

/** A short table of outcomes: status (and error code) → count, for a failing assertion or a report. */
export function tally(outcomes: Outcome[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const o of outcomes) {
    const key = `${o.what} ${o.failure ?? o.status}${o.code ? ` ${o.code}` : ''}`;
    out[key] = (out[key] ?? 0) + 1;
  }
  return out;
}
