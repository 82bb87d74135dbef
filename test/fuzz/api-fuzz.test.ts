// Every /api/v1 operation fuzzed from the served OpenAPI document
// (test/fuzz/api-arbitraries.ts), against a real server (PostgreSQL, Redis),
// as nobody, a garbage bearer token, a person (session + CSRF), their write
// and read-only API tokens, an auditor, an admin, and an admin who has just
// confirmed their password. What must hold for every request:
//   - no 5xx;
//   - no answer carries another tenant's data (a marker planted in the other
//     tenant's notes and tasks, searched for in every body, gzip opened);
//   - every refusal (4xx) is JSON with a human `error.message` (Node's own 431
//     for an oversized head is not ours to shape);
//   - no person or token of our tenant acts on the other's sessions, tokens or person;
//   - no error-level line in the server's log, no unhandled rejection;
//   - every caller still signed in after each operation; /readyz 200 at the end.
// Operations that would end the run (sign-in or registration over a session,
// sign-out, revoke-all, account deletion, password change, MFA enable/disable,
// tenant lifecycle, restore, tenant-wide session ending, backing up) are sent
// only by callers that must be refused, or with ids of nothing, or without the
// real password: see SAFETY below.
//
// Fixed seed; FUZZ_SEED and FUZZ_RUNS for a longer run (`npm run fuzz`).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import fc from 'fast-check';
import { createPrivilegedUser } from '../../server/accounts/accounts.ts';
import { settle } from '../helpers/log.ts';
import { GOOD_PASSWORD, startTestServer, type TestServer, uniqueEmail } from '../helpers/server.ts';
import {
  describeRequest,
  type FuzzOperation,
  type FuzzRequest,
  type IdPool,
  operationsOf,
  requestFor,
} from './api-arbitraries.ts';

const SEED = Number(process.env.FUZZ_SEED ?? 16);
// Runs per operation (a fifth for those that hash a password): ~650 requests by default.
const RUNS = Number(process.env.FUZZ_RUNS ?? 10);
fc.configureGlobal({ seed: SEED, numRuns: RUNS });

/** Lower-case letters and digits only, so it also fits a tag. */
const MARKER = `leak${randomBytes(8).toString('hex')}`;

type CallerName =
  | 'nobody'
  | 'garbage-bearer'
  | 'user'
  | 'user-token-write'
  | 'user-token-read'
  | 'auditor'
  | 'admin'
  | 'admin-reauthed';
const ALL: readonly CallerName[] = [
  'nobody',
  'garbage-bearer',
  'user',
  'user-token-write',
  'user-token-read',
  'auditor',
  'admin',
  'admin-reauthed',
];
const SIGNED_IN: readonly CallerName[] = [
  'user',
  'user-token-write',
  'user-token-read',
  'auditor',
  'admin',
  'admin-reauthed',
];
/** Callers every session-only route refuses, and who cannot end anyone's session. */
const NO_SESSION: readonly CallerName[] = ['nobody', 'garbage-bearer', 'user-token-write', 'user-token-read'];

interface Caller {
  cookie?: string;
  csrf?: string;
  bearer?: string;
}

/**
 * How each operation that could end the run is fuzzed.
 * - callers: only these send it (each must be refused).
 * - noRealIds: path ids are generated or hostile, never a real tenant's: an admin may send it,
 *   and is answered 404 or 400 (or 403 reauth_required).
 * - noRealPassword: a body holding the real password is never sent.
 */
const SAFETY: Record<string, { callers?: readonly CallerName[]; noRealIds?: true; noRealPassword?: true }> = {
  // Signing in or up replaces the session a caller sends: only callers without one.
  'POST /api/v1/auth/register': { callers: NO_SESSION },
  'POST /api/v1/auth/login': { callers: NO_SESSION },
  'POST /api/v1/setup/admin': { callers: NO_SESSION },
  'POST /api/v1/auth/logout': { callers: NO_SESSION },
  'POST /api/v1/sessions/revoke-all': { callers: NO_SESSION },
  'POST /api/v1/admin/reauth': { callers: ALL.filter((c) => c !== 'admin-reauthed'), noRealPassword: true },
  'POST /api/v1/admin/tenants/{tenantId}/sessions/revoke-all': { noRealIds: true },
  'POST /api/v1/admin/tenants/{tenantId}/backups': { noRealIds: true },
  'POST /api/v1/admin/tenants/{tenantId}/backups/{backupId}/restore': { noRealIds: true },
  'POST /api/v1/admin/tenants/{tenantId}/suspend': { noRealIds: true },
  'POST /api/v1/admin/tenants/{tenantId}/resume': { noRealIds: true },
  'POST /api/v1/admin/tenants/{tenantId}/archive': { noRealIds: true },
  'POST /api/v1/admin/tenants/{tenantId}/hold': { noRealIds: true },
  'POST /api/v1/admin/tenants/{tenantId}/release': { noRealIds: true },
  'POST /api/v1/account/delete': { noRealPassword: true },
  'POST /api/v1/account/password': { noRealPassword: true },
  'POST /api/v1/mfa/enable': { noRealPassword: true },
  'POST /api/v1/mfa/disable': { noRealPassword: true },
  'POST /api/v1/mfa/recovery-codes': { noRealPassword: true },
};

const WRITES = new Set(['post', 'patch', 'delete']);

/** Operations that check a password (Argon2id, and a refusal is audited): a fifth of the runs. */
const HASHING = new Set([
  'POST /api/v1/auth/register',
  'POST /api/v1/auth/login',
  'POST /api/v1/setup/admin',
  'POST /api/v1/admin/reauth',
  'POST /api/v1/account/delete',
  'POST /api/v1/account/password',
  'POST /api/v1/mfa/enable',
  'POST /api/v1/mfa/disable',
  'POST /api/v1/mfa/recovery-codes',
]);

/** Mostly callers the operation is for (so input reaches the handler), sometimes anyone allowed. */
function callerFor(op: FuzzOperation, allowed: readonly CallerName[]): fc.Arbitrary<CallerName> {
  const meant: readonly CallerName[] =
    op.access === 'public'
      ? ['nobody']
      : op.role === 'admin'
        ? ['admin', 'admin-reauthed']
        : op.role === 'auditor'
          ? ['auditor']
          : op.access === 'session-or-token'
            ? ['user', 'user-token-write', 'user-token-read']
            : ['user'];
  const fitting = meant.filter((c) => allowed.includes(c));
  return fitting.length
    ? fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...fitting) }, fc.constantFrom(...allowed))
    : fc.constantFrom(...allowed);
}

interface Answer {
  status: number;
  contentType: string;
  text: string;
  requestId: string;
}

describe('the JSON API under fuzzing (fast-check, from the served OpenAPI document)', () => {
  let t: TestServer;
  const callers = new Map<CallerName, Caller>();
  const own = { noteIds: [] as string[], taskIds: [] as string[], tenantId: '' };
  const other = {
    noteIds: [] as string[],
    taskIds: [] as string[],
    tenantId: '',
    userId: '',
    sessionIds: [] as string[],
    tokenIds: [] as string[],
  };
  /** The other tenant's owner: only to show the marker is there to be found. */
  let otherCaller: Caller = {};
  const unhandled: unknown[] = [];
  const onUnhandled = (err: unknown) => unhandled.push(err);
  /** X-Request-Id → the request, to name the one behind an error line in the log. */
  const sent = new Map<string, string>();

  async function call(
    who: Caller,
    method: string,
    path: string,
    opts: { query?: string; body?: FuzzRequest['body']; headers?: Record<string, string> } = {},
  ): Promise<Answer> {
    const headers: Record<string, string> = {};
    if (who.cookie) headers.cookie = who.cookie;
    if (who.csrf && WRITES.has(method)) headers['x-csrf-token'] = who.csrf;
    if (who.bearer) headers.authorization = `Bearer ${who.bearer}`;
    let body: Uint8Array<ArrayBuffer> | undefined;
    const b = opts.body ?? { kind: 'none' };
    if (method !== 'get' && b.kind === 'json') {
      body = new Uint8Array(Buffer.from(JSON.stringify(b.value) ?? 'null'));
      headers['content-type'] = 'application/json';
    } else if (method !== 'get' && b.kind === 'raw') {
      body = new Uint8Array(b.bytes);
      headers['content-type'] = b.contentType;
    }
    Object.assign(headers, opts.headers);
    const res = await fetch(`${t.url}${path}${opts.query ? `?${opts.query}` : ''}`, {
      method: method.toUpperCase(),
      headers,
      body,
      redirect: 'manual',
    });
    let bytes = Buffer.from(await res.arrayBuffer());
    // A download (export, backup, audit bundle) is searched inside its gzip too.
    if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
      try {
        bytes = Buffer.concat([bytes, gunzipSync(bytes)]);
      } catch {
        // Not gzip after all: searched as it is.
      }
    }
    return {
      status: res.status,
      contentType: res.headers.get('content-type') ?? '',
      text: bytes.toString('utf8'),
      requestId: res.headers.get('x-request-id') ?? '',
    };
  }

  const json = (a: Answer) =>
    JSON.parse(a.text) as Record<string, unknown> & { error?: { message?: unknown } };
  const sessionCookie = (res: Response) =>
    res.headers
      .getSetCookie()
      .map((c) => c.split(';')[0])
      .find((c) => c?.startsWith('enclave.sid=')) as string;

  async function register(): Promise<Caller & { user: { id: string; tenantId: string } }> {
    const res = await fetch(`${t.url}/api/v1/auth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: uniqueEmail('fuzz'), password: GOOD_PASSWORD, displayName: 'Fuzz' }),
    });
    assert.equal(res.status, 201, await res.clone().text());
    const body = (await res.json()) as { csrfToken: string; user: { id: string; tenantId: string } };
    return { cookie: sessionCookie(res), csrf: body.csrfToken, user: body.user };
  }

  async function privileged(role: 'admin' | 'auditor'): Promise<Caller> {
    const email = uniqueEmail(role);
    await createPrivilegedUser(t.db.pool, { email, password: GOOD_PASSWORD, displayName: role, role });
    const res = await fetch(`${t.url}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email, password: GOOD_PASSWORD }),
    });
    assert.equal(res.status, 200, await res.clone().text());
    return { cookie: sessionCookie(res), csrf: ((await res.json()) as { csrfToken: string }).csrfToken };
  }

  async function made(who: Caller, path: string, body: unknown, key: 'note' | 'task'): Promise<string> {
    const a = await call(who, 'post', path, { body: { kind: 'json', value: body } });
    assert.equal(a.status, 201, a.text);
    return String((json(a)[key] as { id: number }).id);
  }

  async function token(who: Caller, scope: 'read' | 'write'): Promise<{ id: string; secret: string }> {
    const a = await call(who, 'post', '/api/v1/tokens', {
      body: { kind: 'json', value: { name: `fuzz ${scope}`, scope } },
    });
    assert.equal(a.status, 201, a.text);
    const { token: view, secret } = json(a) as unknown as { token: { id: string }; secret: string };
    return { id: view.id, secret };
  }

  before(async () => {
    process.on('unhandledRejection', onUnhandled);
    process.on('uncaughtException', onUnhandled);
    // Wrong passwords are most of what the password routes get here: no lockout (a locked
    // account answers 429 before its input is looked at; test/server/abuse covers lockouts).
    t = await startTestServer(
      {},
      {
        abuse: {
          lockout: { freeFailures: 1_000_000, lockoutAfter: 1_000_000, baseDelayMs: 0, maxDelayMs: 0 },
        },
      },
    );
    // The other tenant: the marker in every note and task field it has, more rows than ours
    // (ids past ours exist only there), a session and a token of its own.
    const b = await register();
    otherCaller = b;
    other.tenantId = b.user.tenantId;
    other.userId = b.user.id;
    for (let i = 0; i < 5; i++) {
      const noteId = await made(
        b,
        '/api/v1/notes',
        { title: `${MARKER} title ${i}`, body: `${MARKER} body`, tags: [MARKER] },
        'note',
      );
      other.noteIds.push(noteId);
      other.taskIds.push(
        await made(b, '/api/v1/tasks', { title: `${MARKER} task ${i}`, noteId: Number(noteId) }, 'task'),
      );
    }
    other.tokenIds.push((await token(b, 'read')).id);
    const sessions = json(await call(b, 'get', '/api/v1/sessions')).sessions as Array<{ id: string }>;
    other.sessionIds.push(...sessions.map((s) => s.id));

    const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
    for (const id of [other.userId, ...other.tokenIds, ...other.sessionIds]) assert.match(id, uuid);
    assert.ok(other.sessionIds.length > 0);
    const a = await register();
    own.tenantId = a.user.tenantId;
    for (let i = 0; i < 2; i++) {
      const noteId = await made(a, '/api/v1/notes', { title: `ours ${i}`, body: 'milk' }, 'note');
      own.noteIds.push(noteId);
      own.taskIds.push(await made(a, '/api/v1/tasks', { title: `ours ${i}` }, 'task'));
    }
    callers.set('nobody', {});
    callers.set('garbage-bearer', { bearer: `enc_${randomBytes(24).toString('base64url')}` });
    callers.set('user', a);
    callers.set('user-token-write', { bearer: (await token(a, 'write')).secret });
    callers.set('user-token-read', { bearer: (await token(a, 'read')).secret });
    callers.set('auditor', await privileged('auditor'));
    callers.set('admin', await privileged('admin'));
    const reauthed = await privileged('admin');
    const confirmed = await call(reauthed, 'post', '/api/v1/admin/reauth', {
      body: { kind: 'json', value: { password: GOOD_PASSWORD } },
    });
    assert.equal(confirmed.status, 204, confirmed.text);
    callers.set('admin-reauthed', reauthed);
  });

  after(async () => {
    process.off('unhandledRejection', onUnhandled);
    process.off('uncaughtException', onUnhandled);
    await t?.stop();
  });

  /** Real ids for a path parameter: the other tenant's things, and (where harmless) our own. */
  const ids: IdPool = (op, param) => {
    if (SAFETY[op.key]?.noRealIds) return [];
    const p = op.path;
    if (param === 'tenantId') return [other.tenantId, ...(op.method === 'get' ? [own.tenantId] : [])];
    if (param !== 'id') return [];
    if (p.startsWith('/api/v1/notes/')) return [...own.noteIds, ...other.noteIds];
    if (p.startsWith('/api/v1/tasks/')) return [...own.taskIds, ...other.taskIds];
    if (p.includes('/sessions/')) return other.sessionIds;
    if (p.startsWith('/api/v1/admin/users/')) return [other.userId];
    if (p.startsWith('/api/v1/tokens/')) return other.tokenIds;
    return [];
  };

  /** Callers of the tenant that is not the other one: they may not act on its sessions, tokens or people. */
  const TENANT_SIDE = new Set<CallerName>([
    'nobody',
    'garbage-bearer',
    'user',
    'user-token-write',
    'user-token-read',
  ]);

  /** The invariants for one answer; the message names the request. */
  function check(what: string, a: Answer, who?: CallerName, path?: string): void {
    assert.ok(a.status < 500, `5xx: ${what} → ${a.status} ${a.text.slice(0, 500)}`);
    if (who && path && TENANT_SIDE.has(who) && a.status < 300) {
      const theirs = [...other.sessionIds, ...other.tokenIds, other.userId].find((id) => path.includes(id));
      assert.equal(theirs, undefined, `acted on the other tenant's ${theirs}: ${what} → ${a.status}`);
    }
    assert.ok(!a.text.includes(MARKER), `another tenant's data in the answer to ${what} → ${a.status}`);
    if (a.status >= 400 && a.status !== 431) {
      assert.match(
        a.contentType,
        /^application\/json/,
        `a refusal that is not JSON: ${what} → ${a.status} ${a.contentType} ${a.text.slice(0, 200)}`,
      );
      const message = json(a).error?.message;
      assert.ok(
        typeof message === 'string' && message.trim().length > 0,
        `a refusal without a message: ${what} → ${a.status} ${a.text.slice(0, 300)}`,
      );
    }
  }

  /** Error-level lines (and unhandled rejections) since `from`, with the requests behind them. */
  async function errorsSince(from: number): Promise<string[]> {
    await settle();
    const lines = t.logs.lines().slice(from);
    const errors = lines
      .filter((l) => l.level === 'error')
      .map(
        (l) =>
          `${JSON.stringify(l).slice(0, 600)} ← ${sent.get(String(l.requestId ?? '')) ?? 'no request id'}`,
      );
    return [...errors, ...unhandled.splice(0).map((e) => `unhandled: ${String((e as Error)?.stack ?? e)}`)];
  }

  test('the callers are who they claim (the fuzz would prove little otherwise)', async () => {
    const me = async (who: CallerName) => call(callers.get(who) as Caller, 'get', '/api/v1/me');
    for (const who of [
      'user',
      'user-token-write',
      'user-token-read',
      'auditor',
      'admin',
      'admin-reauthed',
    ] as const)
      assert.equal((await me(who)).status, 200, who);
    for (const who of ['nobody', 'garbage-bearer'] as const) assert.equal((await me(who)).status, 401, who);
    // Our own notes are readable without the marker; the other tenant's carry it, also in its
    // export once unzipped (so the search would see a leak in a download too).
    const list = await call(callers.get('user') as Caller, 'get', '/api/v1/notes');
    assert.equal(list.status, 200);
    assert.ok(!list.text.includes(MARKER));
    assert.ok((await call(otherCaller, 'get', '/api/v1/notes')).text.includes(MARKER));
    const theirExport = await call(otherCaller, 'get', '/api/v1/export');
    assert.equal(theirExport.status, 200);
    assert.ok(theirExport.text.includes(MARKER), 'the marker is not found in an unzipped export');
  });

  test('the checks refuse what they look for: a 5xx, the marker, a refusal without JSON or a message', () => {
    const answer = (status: number, text: string, contentType = 'application/json') => ({
      status,
      text,
      contentType,
      requestId: '',
    });
    const error = JSON.stringify({ error: { code: 'x', message: 'Refused.' } });
    check('planted', answer(400, error));
    assert.throws(() => check('planted', answer(500, error)), /5xx/);
    assert.throws(() => check('planted', answer(200, `{"title":"${MARKER}"}`)), /another tenant/);
    assert.throws(() => check('planted', answer(403, 'Forbidden', 'text/plain')), /not JSON/);
    assert.throws(() => check('planted', answer(404, '{"error":{"message":" "}}')), /without a message/);
    assert.throws(
      () => check('planted', answer(204, ''), 'user', `/api/v1/tokens/${other.tokenIds[0]}`),
      /acted on the other tenant/,
    );
  });

  test('an admin who has not confirmed their password gets 403 reauth_required from every reauth route', async () => {
    const ops = operationsOf(
      json(await call({}, 'get', '/api/v1/openapi.json')) as { paths?: Record<string, unknown> },
    ).filter((o) => o.reauth);
    assert.ok(ops.length >= 8, `only ${ops.length} reauth operations`);
    for (const op of ops) {
      const path = op.path.replace(/\{(\w+)\}/g, (_m, name: string) =>
        name === 'tenantId' ? 'k3v9x2m7q1zp' : '0b3c2f9e-6a1d-4c55-9d3e-2f1a7b8c9d0e',
      );
      const body = op.body?.example ?? (op.body ? {} : undefined);
      const a = await call(callers.get('admin') as Caller, op.method, path, {
        body: body === undefined ? { kind: 'none' } : { kind: 'json', value: body },
      });
      check(`${op.key} as admin without reauth`, a);
      assert.equal(a.status, 403, `${op.key}: ${a.status} ${a.text}`);
      assert.equal((json(a).error as { code: string }).code, 'reauth_required', op.key);
    }
  });

  test('every operation, fuzzed: no 5xx, no other tenant data, JSON refusals, no error logged', async (tt) => {
    const doc = await call({}, 'get', '/api/v1/openapi.json');
    assert.equal(doc.status, 200);
    const ops = operationsOf(json(doc) as { paths?: Record<string, unknown> });
    assert.ok(ops.length >= 71, `only ${ops.length} operations in the served document`);
    let requests = 0;
    const seen = new Map<string, number>();
    const count = (k: string) => seen.set(k, (seen.get(k) ?? 0) + 1);
    const byOp = new Map<string, number>();
    const slowest: Array<[number, string]> = [];
    for (const [index, op] of ops.entries()) {
      await tt.test(`${op.key}`, async () => {
        const rule = SAFETY[op.key] ?? {};
        const allowed = rule.callers ?? ALL;
        const from = t.logs.lines().length;
        await fc.assert(
          fc.asyncProperty(
            callerFor(op, allowed),
            requestFor(op, ids).filter(
              (r) =>
                !rule.noRealPassword ||
                !JSON.stringify(r.body.kind === 'json' ? r.body.value : '').includes(GOOD_PASSWORD),
            ),
            async (who, req) => {
              const what = describeRequest(op, who, req);
              const started = performance.now();
              const a = await call(callers.get(who) as Caller, op.method, req.path, {
                query: req.query,
                body: req.body,
                headers: req.headers,
              });
              requests++;
              slowest.push([performance.now() - started, what]);
              slowest.sort((x, y) => y[0] - x[0]).splice(10);
              count(`${req.mode.split(' ')[0]} ${a.status}`);
              if (process.env.FUZZ_VERBOSE) {
                const code =
                  a.status >= 400 && a.status !== 431 ? (json(a).error as { code?: string }).code : '';
                const k = `${op.key} ${who} ${a.status} ${code}`;
                byOp.set(k, (byOp.get(k) ?? 0) + 1);
              }
              if (a.requestId) sent.set(a.requestId, what);
              check(what, a, who, req.path);
            },
          ),
          // One seed for the run, a different stream per operation.
          { seed: SEED + index, ...(HASHING.has(op.key) ? { numRuns: Math.ceil(RUNS / 5) } : {}) },
        );
        assert.deepEqual(await errorsSince(from), [], `error-level log lines while fuzzing ${op.key}`);
        // Every caller is still who it was: an operation that ends a session would fuzz the rest as nobody.
        const lost = (
          await Promise.all(
            SIGNED_IN.map(async (who) => {
              const me = await call(callers.get(who) as Caller, 'get', '/api/v1/me');
              return me.status === 200 ? [] : [`${who}: ${me.status} ${me.text.slice(0, 200)}`];
            }),
          )
        ).flat();
        assert.deepEqual(lost, [], `callers signed out while fuzzing ${op.key}`);
      });
    }
    tt.diagnostic(`${requests} requests over ${ops.length} operations, seed ${SEED}, ${RUNS} runs each`);
    for (const [ms, what] of slowest) tt.diagnostic(`slow: ${Math.round(ms)} ms ${what.slice(0, 300)}`);
    if (process.env.FUZZ_VERBOSE) for (const [k, n] of [...byOp].sort()) tt.diagnostic(`${k}: ${n}`);
    tt.diagnostic(
      `answers by input: ${[...seen]
        .sort()
        .map(([k, n]) => `${k}: ${n}`)
        .join(', ')}`,
    );
  });

  test('the server is still ready after the fuzzing, and logged no error', async () => {
    const ready = await call({}, 'get', '/readyz');
    assert.equal(ready.status, 200, ready.text);
    assert.deepEqual(await errorsSince(0), []);
  });
});
