// The OpenAPI description (server/http/openapi.ts) against the real app: a
// valid OpenAPI 3.1 document; exactly the routes the app registers under
// /api/v1 (walked in the app's own router stack, built as start.ts builds it);
// requests made from the document's examples accepted, and requests missing
// what it says is required refused with 400; and docs/HTTP-API.md naming only
// what the document has, with its generated route table current. Real
// PostgreSQL and Redis.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Validator } from '@seriousme/openapi-schema-validator';
import type { Express } from 'express';
import request from 'supertest';
import { openSigner, publishSigningKey } from '../../../audit/signing.ts';
import { API_DOC, BEGIN_MARKER, END_MARKER, routeTable, withRouteTable } from '../../../cli/api-doc.ts';
import { loadConfig } from '../../../kernel/config.ts';
import { createPrivilegedUser } from '../../../server/accounts/accounts.ts';
import { createApp } from '../../../server/http/app.ts';
import { type OpenApiDocument, openApiDocument } from '../../../server/http/openapi.ts';
import { buildWeb, type Web } from '../../../server/web.ts';
import { createOrm, type Orm } from '../../../tenancy/orm.ts';
import { TenantContext } from '../../../tenancy/unit-of-work.ts';
import { createTestDatabase, type TestDatabase } from '../../helpers/database.ts';
import { captureLog } from '../../helpers/log.ts';
import {
  GOOD_PASSWORD,
  relaxedAbuseLimits,
  requireRedis,
  type SignedIn,
  signIn,
  signUp,
  TEST_REDIS_URL,
  uniqueEmail,
} from '../../helpers/server.ts';

type Method = 'get' | 'post' | 'patch' | 'delete';
const METHODS: readonly Method[] = ['get', 'post', 'patch', 'delete'];

interface Param {
  name: string;
  in: string;
  required?: boolean;
  example?: string;
}
interface BodySchema {
  properties?: Record<string, unknown>;
  required?: string[];
  additionalProperties?: boolean;
  anyOf?: Array<{ required: string[] }>;
}
interface Operation {
  parameters?: Param[];
  requestBody?: { content: Record<string, { schema?: BodySchema; example?: Record<string, unknown> }> };
  responses: Record<string, unknown>;
  'x-enclave-unknown-query'?: string;
}

/** `METHOD /path/{}`: the same route whatever its parameters are called (`:id`, `{tenantId}`). */
const key = (method: string, p: string) => `${method.toUpperCase()} ${p.replace(/[:{](\w+)}?/g, '{}')}`;

/** Every operation of the document, as `METHOD /api/v1/…/{}`. */
function documented(doc: OpenApiDocument): string[] {
  return Object.entries(doc.paths ?? {}).flatMap(([p, item]) =>
    METHODS.filter((m) => (item as Record<string, unknown>)[m]).map((m) => key(m, p)),
  );
}

interface Layer {
  route?: { path: unknown; methods: Record<string, boolean> };
  handle?: { stack?: Layer[] };
  slash?: boolean;
}

/** Every route the app answers, from its router stack (express 5: app.router.stack, a Router's stack). */
function registered(app: Express): string[] {
  const found: string[] = [];
  const walk = (stack: Layer[]) => {
    for (const layer of stack) {
      if (layer.route) {
        assert.equal(typeof layer.route.path, 'string', 'a route path that is not a string');
        for (const m of Object.keys(layer.route.methods)) found.push(key(m, layer.route.path as string));
      } else if (Array.isArray(layer.handle?.stack)) {
        // routes.ts mounts every router at the root: a router under a prefix would change the paths seen here.
        assert.equal(layer.slash, true, 'a router mounted under a path prefix');
        walk(layer.handle.stack);
      }
    }
  };
  walk((app as unknown as { router: { stack: Layer[] } }).router.stack);
  return found;
}

/** What the routes have and the document lacks, and the other way round. */
function compare(routes: string[], doc: string[]) {
  const api = routes.filter((r) => / \/api\/v1\//.test(r));
  return {
    undescribed: api.filter((r) => !doc.includes(r)),
    unrouted: doc.filter((d) => !api.includes(d)),
  };
}

/** Retries `check` until it resolves, for up to 10 s (then its last error is thrown). */
async function until(check: () => Promise<void>): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

describe('the OpenAPI description', () => {
  let db: TestDatabase;
  let orm: Orm;
  let web: Web;
  let app: Express;
  let server: http.Server;
  let url: string;
  let owner: SignedIn;
  let admin: SignedIn;
  const doc = openApiDocument();
  const log = captureLog('debug');

  before(async () => {
    await requireRedis();
    db = await createTestDatabase(4);
    const dir = mkdtempSync(path.join(tmpdir(), 'enclave-openapi-'));
    const config = loadConfig({
      DATABASE_URL: db.url,
      DATA_DIR: dir,
      SESSION_SECRET: randomBytes(32).toString('hex'),
      REDIS_URL: TEST_REDIS_URL,
    });
    orm = (await createOrm(db.url, 4)).orm;
    const signer = await openSigner(path.join(dir, 'audit-signing-key.pem'), { create: true });
    await publishSigningKey(db.pool, signer);
    const tenants = new TenantContext(orm, db.pool, { cacheMs: 0 });
    web = await buildWeb({
      config,
      log: log.log,
      pool: db.pool,
      tenants,
      auditSigner: signer,
      abuse: relaxedAbuseLimits(),
    });
    // As start.ts composes it: the same middleware and the same routers (server/routes.ts).
    // Redis connects in the background (server/sessions/store.ts): a sign-up sent before it is
    // ready is a 503, which made this setup fail now and then on a busy machine.
    await until(async () => {
      await web.checks.redis?.();
    });
    app = createApp({ log: log.log, checks: {}, middleware: web.middleware, routers: web.routers });
    server = http.createServer(app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    owner = await signUp(url);
    const email = uniqueEmail('admin');
    await createPrivilegedUser(db.pool, {
      email,
      password: GOOD_PASSWORD,
      displayName: 'admin',
      role: 'admin',
    });
    admin = await signIn(url, email, GOOD_PASSWORD);
  });
  after(async () => {
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    await web?.close();
    await orm?.close();
    await db?.drop();
  });

  const op = (method: Method, p: string): Operation => {
    const found = (doc.paths?.[p] as Record<string, Operation> | undefined)?.[method];
    assert.ok(found, `${method.toUpperCase()} ${p} is not in the document`);
    return found;
  };
  const successOf = (o: Operation) =>
    Object.keys(o.responses)
      .filter((s) => /^2\d\d$/.test(s))
      .map(Number);
  const queryExample = (o: Operation) =>
    Object.fromEntries(
      (o.parameters ?? [])
        .filter((p) => p.in === 'query' && p.example !== undefined)
        .map((p) => [p.name, p.example]),
    );
  const media = (o: Operation) => o.requestBody?.content['application/json'];

  /** The request the document describes, sent as `who` (an agent with its CSRF token, or anonymous). */
  function send(
    who: SignedIn | null,
    method: Method,
    p: string,
    parts: { ids?: Record<string, string | number>; query?: Record<string, unknown>; body?: unknown },
  ) {
    const o = op(method, p);
    const target = p.replace(/\{(\w+)\}/g, (_m, name: string) => {
      const value =
        parts.ids?.[name] ?? o.parameters?.find((x) => x.in === 'path' && x.name === name)?.example;
      assert.ok(value !== undefined, `no value for {${name}} of ${p}`);
      return encodeURIComponent(String(value));
    });
    const agent = who ? who.agent : request(url);
    let req = agent[method](target).query((parts.query ?? {}) as Record<string, string>);
    if (who && method !== 'get') req = req.set('X-CSRF-Token', who.csrf);
    return parts.body === undefined ? req : req.send(parts.body as object);
  }

  test('is a valid OpenAPI 3.1 document (@seriousme/openapi-schema-validator)', async () => {
    assert.match(doc.openapi, /^3\.1\./);
    const validator = new Validator();
    const result = await validator.validate(structuredClone(doc) as unknown as Record<string, unknown>);
    assert.equal(result.valid, true, `not valid OpenAPI: ${JSON.stringify(result.errors, null, 2)}`);
    assert.equal(validator.version, '3.1');
    // The validator is not a rubber stamp: a document without `info` is refused.
    const { info: _info, ...broken } = structuredClone(doc);
    assert.equal((await new Validator().validate(broken as unknown as Record<string, unknown>)).valid, false);
  });

  test('is served at GET /api/v1/openapi.json to anyone, cacheable, with an ETag that answers 304', async () => {
    const res = await request(url).get('/api/v1/openapi.json').expect(200).expect('Content-Type', /json/);
    assert.deepEqual(res.body, JSON.parse(JSON.stringify(doc)));
    assert.equal(res.headers['cache-control'], 'public, max-age=3600');
    const etag = res.headers.etag;
    assert.ok(etag, 'no ETag');
    await request(url).get('/api/v1/openapi.json').set('If-None-Match', etag).expect(304);
  });

  test('every route the app registers under /api/v1 has an operation, and every operation a route', () => {
    const routes = registered(app);
    assert.ok(routes.length > 100, `only ${routes.length} routes found: the walk is broken`);
    const { undescribed, unrouted } = compare(routes, documented(doc));
    assert.deepEqual(
      undescribed,
      [],
      `routes without a description in server/http/api-description.ts: ${undescribed.join(', ')}`,
    );
    assert.deepEqual(unrouted, [], `operations no route answers: ${unrouted.join(', ')}`);
  });

  test('the route check names a route that has no operation, and an operation without a route', () => {
    const routes = registered(app);
    const ops = documented(doc);
    const dropped = ops.find((o) => o.startsWith('PATCH /api/v1/notes/')) as string;
    assert.deepEqual(
      compare(
        routes,
        ops.filter((o) => o !== dropped),
      ).undescribed,
      [dropped],
    );
    assert.deepEqual(compare(routes, [...ops, 'PUT /api/v1/nowhere']).unrouted, ['PUT /api/v1/nowhere']);
  });

  // Each: who sends it, and the document's operation. Ids in paths come from things made just before.
  const WORKSPACE: Array<[Method, string]> = [
    ['get', '/api/v1/notes'],
    ['post', '/api/v1/notes'],
    ['get', '/api/v1/notes/{id}'],
    ['patch', '/api/v1/notes/{id}'],
    ['delete', '/api/v1/notes/{id}'],
    ['get', '/api/v1/tasks'],
    ['post', '/api/v1/tasks'],
    ['get', '/api/v1/tasks/{id}'],
    ['patch', '/api/v1/tasks/{id}'],
    ['delete', '/api/v1/tasks/{id}'],
    ['get', '/api/v1/search'],
    ['get', '/api/v1/workspace'],
    ['get', '/api/v1/reference'],
    ['post', '/api/v1/tokens'],
  ];
  const ADMIN: Array<[Method, string]> = [
    ['post', '/api/v1/admin/reauth'],
    ['get', '/api/v1/admin/tenants'],
    ['get', '/api/v1/admin/users'],
    ['get', '/api/v1/admin/threats'],
    ['get', '/api/v1/admin/jobs/runs'],
    ['get', '/api/v1/admin/backups/health'],
    ['get', '/api/v1/admin/stats'],
    ['get', '/api/v1/admin/lifecycle'],
    ['get', '/api/v1/admin/tenants/{tenantId}/stats'],
  ];

  /** Fresh ids for an operation's path: a new note or task (version 1) made from the document's own example. */
  async function idsFor(p: string): Promise<Record<string, string | number>> {
    if (p.startsWith('/api/v1/notes/') || p.startsWith('/api/v1/tasks/')) {
      const list = p.startsWith('/api/v1/notes/') ? '/api/v1/notes' : '/api/v1/tasks';
      const res = await send(owner, 'post', list, { body: media(op('post', list))?.example }).expect(201);
      return { id: (res.body.note ?? res.body.task).id };
    }
    return { tenantId: owner.user.tenantId as string };
  }

  test("a request built from the document's examples gets the documented success status", async () => {
    const runs: Array<[SignedIn | null, Method, string]> = [
      ...WORKSPACE.map(([m, p]): [SignedIn, Method, string] => [owner, m, p]),
      ...ADMIN.map(([m, p]): [SignedIn, Method, string] => [admin, m, p]),
      [null, 'post', '/api/v1/auth/register'],
      [null, 'post', '/api/v1/auth/login'],
    ];
    for (const [who, method, p] of runs) {
      const o = op(method, p);
      const res = await send(who, method, p, {
        ids: await idsFor(p),
        query: queryExample(o),
        body: media(o)?.example,
      });
      assert.ok(
        successOf(o).includes(res.status),
        `${method.toUpperCase()} ${p}: ${res.status} ${JSON.stringify(res.body)}, documented ${successOf(o).join(' or ')}`,
      );
    }
  });

  test('a body without a field the document requires, or with one it does not list, is a 400', async () => {
    const runs: Array<[SignedIn | null, Method, string]> = [
      ...WORKSPACE.map(([m, p]): [SignedIn, Method, string] => [owner, m, p]),
      ...ADMIN.map(([m, p]): [SignedIn, Method, string] => [admin, m, p]),
      [null, 'post', '/api/v1/auth/register'],
      [null, 'post', '/api/v1/auth/login'],
    ];
    let checked = 0;
    for (const [who, method, p] of runs) {
      const o = op(method, p);
      const content = media(o);
      if (!content?.schema || !content.example) continue;
      const { schema, example } = content;
      const refused = async (body: Record<string, unknown>, what: string) => {
        const res = await send(who, method, p, { ids: await idsFor(p), query: queryExample(o), body });
        assert.equal(
          res.status,
          400,
          `${method.toUpperCase()} ${p} ${what}: ${res.status} ${JSON.stringify(res.body)}`,
        );
        assert.equal(res.body.error.code, 'invalid_input');
        checked++;
      };
      for (const field of schema.required ?? []) {
        const { [field]: _left, ...rest } = example;
        await refused(rest, `without ${field}`);
      }
      if (schema.additionalProperties === false)
        await refused({ ...example, unexpectedField: 1 }, 'with unexpectedField');
      // "At least one of": only the required fields.
      if (schema.anyOf) {
        const bare = Object.fromEntries((schema.required ?? []).map((f) => [f, example[f]]));
        await refused(bare, 'with none of the fields to change');
      }
    }
    assert.ok(checked >= 15, `only ${checked} refusals checked`);
  });

  test('a query string without a parameter the document requires, or with one it does not list, is a 400', async () => {
    let checked = 0;
    for (const [who, list] of [
      [owner, WORKSPACE],
      [admin, ADMIN],
    ] as const) {
      for (const [method, p] of list) {
        const o = op(method, p);
        const query = queryExample(o);
        const ids = await idsFor(p);
        for (const param of (o.parameters ?? []).filter((x) => x.in === 'query' && x.required)) {
          const { [param.name]: _left, ...rest } = query;
          const res = await send(who, method, p, { ids, query: rest, body: media(o)?.example });
          assert.equal(res.status, 400, `${method.toUpperCase()} ${p} without ?${param.name}: ${res.status}`);
          checked++;
        }
        if (o['x-enclave-unknown-query'] === 'refused') {
          const res = await send(who, method, p, {
            ids,
            query: { ...query, unexpected: '1' },
            body: media(o)?.example,
          });
          assert.equal(res.status, 400, `${method.toUpperCase()} ${p} with ?unexpected: ${res.status}`);
          checked++;
        }
      }
    }
    assert.ok(checked >= 20, `only ${checked} refusals checked`);
  });

  test('docs/HTTP-API.md carries the route table the document generates (run `node cli/api-doc.ts`)', async () => {
    const page = await readFile(API_DOC, 'utf8');
    assert.equal(page, withRouteTable(page), 'the route table is stale: run `node cli/api-doc.ts`');
    const table = page.slice(page.indexOf(BEGIN_MARKER), page.indexOf(END_MARKER));
    const rows = [...table.matchAll(/^\| `(GET|POST|PATCH|DELETE) (\/api\/v1\/\S+)` \|/gm)].map((m) =>
      key(m[1] as string, m[2] as string),
    );
    assert.deepEqual([...rows].sort(), [...documented(doc)].sort());
    assert.notEqual(
      routeTable({ ...doc, paths: {} }),
      routeTable(doc),
      'the table does not follow the document',
    );
    assert.throws(() => withRouteTable('# HTTP API\n'), /markers/);
  });

  test('every METHOD /api/v1/… the page names anywhere is an operation of the document', async () => {
    const page = await readFile(API_DOC, 'utf8');
    const named = [...page.matchAll(/\b(GET|POST|PATCH|DELETE|PUT) (\/api\/v1\/[^\s`)|,?[\]]*)/g)].map((m) =>
      key(m[1] as string, (m[2] as string).replace(/[.:]+$/, '')),
    );
    assert.ok(named.length > documented(doc).length, `only ${named.length} routes named on the page`);
    const ops = documented(doc);
    const unknown = [...new Set(named.filter((n) => !ops.includes(n)))];
    assert.deepEqual(
      unknown,
      [],
      `docs/HTTP-API.md names routes the document does not have: ${unknown.join(', ')}`,
    );
  });
});
