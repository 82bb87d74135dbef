// The HTTP side of the soak (bench/soak.ts): one request on a session's own
// keep-alive agent, and the people the sessions belong to, registered through
// POST /api/v1/auth/register or signed in with accounts from a file.
import { randomBytes, randomInt } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

export interface SoakSession {
  /** 0, 1, ...: how results and lost writes name the session. */
  index: number;
  email: string;
  password: string;
  cookie: string;
  csrf: string;
  tenantId: string;
  /** The loopback address it signed up or in from, and keeps using (a loopback server only). */
  localAddress?: string;
  agent: http.Agent;
}

export interface Answer {
  status: number;
  text: string;
  headers: http.IncomingHttpHeaders;
}

/** A request that got no answer; `kind` is the error's code (ECONNRESET, ECONNREFUSED, timeout, ...). */
export class NetworkError extends Error {
  readonly kind: string;
  constructor(kind: string, message: string) {
    super(message);
    this.name = 'NetworkError';
    this.kind = kind;
  }
}

/** Who sends a request: a signed-in session, or (signing up or in) an address and an agent. */
export interface Sender {
  cookie?: string;
  csrf?: string;
  localAddress?: string;
  agent?: http.Agent;
}

export const REQUEST_TIMEOUT_MS = 30_000;

/** One JSON request; resolves with any answer, rejects with a NetworkError when none came. */
export function send(
  base: string,
  from: Sender,
  method: string,
  route: string,
  body?: unknown,
): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (from.cookie) headers.cookie = from.cookie;
  if (from.csrf && method !== 'GET') headers['x-csrf-token'] = from.csrf;
  const text = body === undefined ? undefined : JSON.stringify(body);
  if (text !== undefined) {
    headers['content-type'] = 'application/json';
    headers['content-length'] = String(Buffer.byteLength(text));
  }
  return new Promise((resolve, reject) => {
    const fail = (err: Error & { code?: string }) =>
      reject(err instanceof NetworkError ? err : new NetworkError(err.code ?? err.name, err.message));
    const req = http.request(
      new URL(route, base),
      {
        method,
        headers,
        timeout: REQUEST_TIMEOUT_MS,
        ...(from.agent ? { agent: from.agent } : {}),
        ...(from.localAddress ? { localAddress: from.localAddress } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            text: Buffer.concat(chunks).toString('utf8'),
            headers: res.headers,
          }),
        );
        res.on('error', fail);
      },
    );
    req.on('timeout', () =>
      req.destroy(new NetworkError('timeout', `no answer within ${REQUEST_TIMEOUT_MS / 1000} s`)),
    );
    req.on('error', fail);
    req.end(text);
  });
}

/** A server on this machine's loopback: sign-ups can then come from many 127.X.Y.Z addresses. */
export function isLoopback(base: string): boolean {
  const host = new URL(base).hostname;
  return host === 'localhost' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** Sign-ups per loopback address: below the production limit of 5 a minute per address. */
const PER_ADDRESS = 4;

/** Loopback addresses 127.0.X.1, .2, ... (X drawn per run), each handed out PER_ADDRESS times. */
function loopbackAddresses(): { next(): string; skip(): void } {
  const network = `127.0.${randomInt(20, 250)}`;
  let host = 1;
  let used = 0;
  return {
    next() {
      if (used === PER_ADDRESS) {
        host++;
        used = 0;
      }
      used++;
      if (host > 254) throw new Error('out of loopback addresses for sign-ups');
      return `${network}.${host}`;
    },
    /** The address was used within the minute (a run just before this one): on to the next. */
    skip() {
      used = PER_ADDRESS;
    },
  };
}

interface Account {
  email: string;
  password: string;
}

export interface SessionsOptions {
  base: string;
  count: number;
  /** A JSON file of [{ email, password }]: signed in if it exists, written with the new accounts if not. */
  accountsFile?: string;
  concurrency: number;
  log: (line: string) => void;
  signal?: AbortSignal;
}

/** `count` signed-in sessions: registered (each with a workspace of its own), or the file's accounts signed in. */
export async function openSessions(o: SessionsOptions): Promise<SoakSession[]> {
  const reuse = o.accountsFile !== undefined && existsSync(o.accountsFile);
  const accounts: Account[] = reuse ? readAccounts(o.accountsFile as string, o.count) : [];
  const addresses = isLoopback(o.base) ? loopbackAddresses() : undefined;
  const tag = randomBytes(4).toString('hex');
  const sessions: SoakSession[] = [];
  let begun = 0;
  let failure: unknown;
  const one = async (index: number): Promise<SoakSession> => {
    const account = accounts[index] ?? {
      email: `soak.${tag}.${index}@example.com`,
      password: randomBytes(18).toString('base64url'),
    };
    for (let tries = 0; ; tries++) {
      const localAddress = addresses?.next();
      const answer = reuse
        ? await send(o.base, { localAddress }, 'POST', '/api/v1/auth/login', account)
        : await send(o.base, { localAddress }, 'POST', '/api/v1/auth/register', {
            ...account,
            displayName: `Soak ${index}`,
          });
      if (answer.status === 429 && tries < 5) {
        // On loopback another address; elsewhere the server's Retry-After (sign-ups: 5 a minute per address).
        if (addresses) addresses.skip();
        else {
          const seconds = Math.min(Number(answer.headers['retry-after']) || 30, 120);
          o.log(`  sign-up limited: waiting ${seconds} s (reuse accounts with --accounts FILE to skip this)`);
          await sleep(seconds * 1000, undefined, { signal: o.signal });
        }
        continue;
      }
      const setCookie = (answer.headers['set-cookie'] ?? []).find((c) => c.startsWith('enclave.sid='));
      if (answer.status !== (reuse ? 200 : 201) || !setCookie)
        throw new Error(
          `${reuse ? 'sign-in' : 'registration'} of ${account.email} answered ${answer.status}: ${answer.text.slice(0, 300)}`,
        );
      const { csrfToken, user } = JSON.parse(answer.text) as {
        csrfToken: string;
        user: { tenantId: string | null };
      };
      if (!user.tenantId) throw new Error(`${account.email} has no workspace`);
      return {
        index,
        ...account,
        cookie: setCookie.split(';')[0] as string,
        csrf: csrfToken,
        tenantId: user.tenantId,
        ...(localAddress ? { localAddress } : {}),
        // Two requests in flight per session at most by default; a browser keeps a few connections too.
        // Idle sockets are closed after 4 s, below the server's keep-alive timeout (Node's 5 s):
        // a socket idle for longer may be closed by the server just as a request goes out on it,
        // an ECONNRESET of the client's making that browsers and undici avoid the same way.
        agent: new http.Agent({ keepAlive: true, maxSockets: 4, timeout: 4000 }),
      };
    }
  };
  const worker = async () => {
    while (begun < o.count && failure === undefined && !o.signal?.aborted) {
      const index = begun++;
      try {
        sessions.push(await one(index));
        if (sessions.length % 50 === 0) o.log(`  ${sessions.length}/${o.count} signed in`);
      } catch (err) {
        failure ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, worker));
  if (failure !== undefined || o.signal?.aborted) {
    await closeSessions(o.base, sessions);
    throw failure ?? o.signal?.reason;
  }
  sessions.sort((a, b) => a.index - b.index);
  if (o.accountsFile && !reuse) {
    // Passwords: readable by the owner only.
    writeFileSync(
      o.accountsFile,
      `${JSON.stringify(
        sessions.map(({ email, password }) => ({ email, password })),
        null,
        1,
      )}\n`,
      { mode: 0o600 },
    );
    o.log(`  accounts written to ${o.accountsFile} (the next run signs them in)`);
  }
  return sessions;
}

function readAccounts(file: string, count: number): Account[] {
  const list = JSON.parse(readFileSync(file, 'utf8')) as unknown;
  if (
    !Array.isArray(list) ||
    !list.every((a) => typeof a?.email === 'string' && typeof a?.password === 'string')
  )
    throw new Error(`${file}: expected a JSON array of { "email": ..., "password": ... }`);
  if (list.length < count)
    throw new Error(`${file} has ${list.length} accounts; --sessions asks for ${count}`);
  return (list as Account[]).slice(0, count);
}

/** Signs every session out (so none lingers in Redis until it expires) and closes its connections. */
export async function closeSessions(base: string, sessions: readonly SoakSession[]): Promise<void> {
  for (let i = 0; i < sessions.length; i += 8)
    await Promise.all(
      sessions.slice(i, i + 8).map(async (s) => {
        await send(base, s, 'POST', '/api/v1/auth/logout').catch(() => {});
        s.agent.destroy();
      }),
    );
}
