// The request-path cost of the audit inbox write, measured two ways in one run:
//
// 1. SQL: one unit of work that inserts a note, with and without one
//    `uow.audit(...)` event (which adds, inside the same transaction, the
//    switch back to the application role and one INSERT into the inbox).
// 2. Whole stack: POST /api/v1/notes (audited: `note.create` in the same
//    transaction) against POST /bench/notes, a route that exists only in this
//    benchmark's server: the same guard, validation and service (createNote)
//    in the same unit of work, except that its `audit` records nothing. Both
//    run on one Enclave server (session cookie, CSRF, rate limits, sessions in
//    Redis), alternating, at the same concurrency.
//
//   node bench/audit-write.bench.ts [--iterations 2000] [--connections 1,8] [--duration 8]
//     [--warmup 2] [--rounds 3] [--pool-size 10]
// Every option can also be set as BENCH_<NAME>. BENCH_DATABASE_URL: an admin URL
// that may create databases and roles (default postgres://postgres@127.0.0.1:5432/postgres);
// BENCH_REDIS_URL (default redis://127.0.0.1:6379).
//
// No switch in production code: the unaudited route is mounted here, through
// createApp({ routers }), in this file's `--child server` process. The audit
// sealer is off in that server (AUDIT_SEAL_INTERVAL_SECONDS=0), so what is
// compared is the request path alone; the inbox grows during the run as it
// would between two seals. The scratch database is dropped at the end.
// Results: bench/results/audit-write-<time>.json and docs/BENCHMARKS.md.
import { mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Router } from 'express';
import { loadConfig } from '../kernel/config.ts';
import { createPool } from '../kernel/db.ts';
import { createLogger } from '../kernel/logger.ts';
import { requireWorkspace, workspaceOf } from '../server/auth/guards.ts';
import { createApp } from '../server/http/app.ts';
import { databaseCheck } from '../server/http/health.ts';
import { buildWeb } from '../server/web.ts';
import { actorOf } from '../server/workspace/actor.ts';
import { createNote } from '../server/workspace/notes.ts';
import { NoteCreate, parse } from '../server/workspace/validation.ts';
import { migrateControlPlane } from '../tenancy/control-plane.ts';
import { createOrm } from '../tenancy/orm.ts';
import { provisionTenant } from '../tenancy/provision.ts';
import { loadTenantMigrations } from '../tenancy/templates.ts';
import { TenantContext, type UnitOfWork } from '../tenancy/unit-of-work.ts';
import { createBenchDatabase, type ScratchDatabase } from '../test/helpers/database.ts';
import { registerPerson, signOut } from './api-client.ts';
import { Child, type Ready } from './children.ts';

const THIS_FILE = fileURLToPath(import.meta.url);
const ADMIN = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const REDIS = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const log = (line: string) => process.stderr.write(`${line}\n`);
process.stderr.on('error', () => {});
process.stdout.on('error', () => {});
const round = (n: number, digits = 3) => Number(n.toFixed(digits));

const { values: args } = parseArgs({
  options: {
    child: { type: 'string' },
    iterations: { type: 'string', default: process.env.BENCH_ITERATIONS ?? '2000' },
    connections: { type: 'string', default: process.env.BENCH_CONNECTIONS ?? '1,8' },
    duration: { type: 'string', default: process.env.BENCH_DURATION ?? '8' },
    warmup: { type: 'string', default: process.env.BENCH_WARMUP ?? '2' },
    rounds: { type: 'string', default: process.env.BENCH_ROUNDS ?? '3' },
    'pool-size': { type: 'string', default: process.env.BENCH_POOL_SIZE ?? '10' },
  },
});

/** A note like one a person writes: a title, a few hundred characters of Markdown, two tags. */
function noteBody(i: number) {
  return {
    title: `Meeting notes ${i}`,
    body: `## Agenda\n\n- budget for *next quarter*\n- hiring: two engineers\n- ${'the rest of the discussion, '.repeat(10)}\n\nDecided: go ahead (${i}).`,
    tags: ['work', 'meetings'],
  };
}

/** The unit of work of a route that records nothing: the same object, its `audit` a no-op. */
function unaudited(uow: UnitOfWork): UnitOfWork {
  return { ...uow, audit: () => {} };
}

// --- the server child ---------------------------------------------------------

/**
 * The real server, assembled like server/lifecycle.ts does (control-plane
 * migrations, pools, TenantContext, buildWeb, createApp), plus one router that
 * exists only here: POST /bench/notes, the same as POST /api/v1/notes without
 * its audit event.
 */
async function serveWithBenchRoute(): Promise<void> {
  const config = loadConfig(process.env);
  const url = config.DATABASE_URL as string;
  const log = createLogger({ level: config.LOG_LEVEL });
  const { orm } = await createOrm(url, config.DB_POOL_SIZE);
  const pool = createPool(url, Math.max(2, Math.ceil(config.DB_POOL_SIZE / 2)), 'enclave-control');
  await migrateControlPlane(pool);
  const tenants = new TenantContext(orm, pool, { cacheMs: config.TENANT_CACHE_MS });
  // This benchmark never exports, so the manifest signer is never called.
  const auditSigner = {
    keyId: 'unused',
    sign: (): Buffer => {
      throw new Error('the write benchmark does not export');
    },
  };
  const web = await buildWeb({ config, log, pool, tenants, auditSigner });
  const bench = Router();
  bench.post('/bench/notes', requireWorkspace(tenants), async (req, res) => {
    res.setHeader('Cache-Control', 'no-store');
    const input = parse(NoteCreate, req.body, 'note');
    const by = actorOf(req, res);
    const note = await workspaceOf(req)((uow) => createNote(unaudited(uow), input, by));
    res.status(201).location(`/api/v1/notes/${note.id}`).json({ note });
  });
  const app = createApp({
    log,
    checks: { database: databaseCheck(pool), ...web.checks },
    middleware: web.middleware,
    routers: [...web.routers, bench],
  });
  const server = http.createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const stop = () => {
    server.close();
    Promise.allSettled([web.close(), orm.close(), pool.end()]).finally(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('disconnect', stop);
  const { port } = server.address() as AddressInfo;
  process.send?.({ type: 'ready', url: `http://127.0.0.1:${port}` } satisfies Ready);
}

// --- the load ---------------------------------------------------------------

interface LoadResult {
  requests: number;
  ok: number;
  statuses: Record<string, number>;
  perSecond: number;
  latencyMs: { mean: number; p50: number; p99: number };
}

let counter = 0;

/** Closed loop: each of `connections` workers posts a note, reads the answer, posts the next. */
async function load(
  base: string,
  route: string,
  headers: Record<string, string>,
  connections: number,
  seconds: number,
): Promise<LoadResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  const until = performance.now() + seconds * 1000;
  const started = performance.now();
  const post = (body: string) =>
    new Promise<number>((resolve, reject) => {
      const req = http.request(
        new URL(route, base),
        {
          agent,
          method: 'POST',
          headers: {
            ...headers,
            'content-type': 'application/json',
            'content-length': String(Buffer.byteLength(body)),
          },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  const worker = async () => {
    while (performance.now() < until) {
      const body = JSON.stringify(noteBody(++counter));
      const t0 = performance.now();
      const status = await post(body);
      latencies.push(performance.now() - t0);
      statuses[status] = (statuses[status] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: connections }, worker));
  const elapsed = (performance.now() - started) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  return {
    requests: latencies.length,
    ok: statuses['201'] ?? 0,
    statuses,
    perSecond: round(latencies.length / elapsed, 1),
    latencyMs: {
      mean: round(latencies.reduce((a, b) => a + b, 0) / Math.max(1, latencies.length), 2),
      p50: round(at(0.5), 2),
      p99: round(at(0.99), 2),
    },
  };
}

// --- part 1: SQL ------------------------------------------------------------

async function sqlPart(scratch: ScratchDatabase, iterations: number) {
  const t = await provisionTenant(scratch.pool, { displayName: 'bench sql' }, loadTenantMigrations());
  const { orm } = await createOrm(scratch.url, 4);
  const ctx = new TenantContext(orm, scratch.pool, { cacheMs: 60_000 });
  const insert = (uow: UnitOfWork, i: number) => {
    const n = noteBody(i);
    // The tags as an array literal: MikroORM's raw queries expand an array parameter into a list.
    return uow.query({
      text: 'INSERT INTO notes (title, body, tags) VALUES ($1, $2, $3::text[]) RETURNING id',
      values: [n.title, n.body, `{${n.tags.join(',')}}`],
    });
  };
  const variants: Record<string, (i: number) => Promise<unknown>> = {
    'insert a note': (i) => ctx.run(t.id, (u) => insert(u, i)),
    'insert a note + its audit event': (i) =>
      ctx.run(t.id, async (u) => {
        const [row] = (await insert(u, i)) as Array<{ id: number }>;
        const n = noteBody(i);
        u.audit({
          actor: { type: 'user', id: '6c1f1a52-0d4e-4c43-9a5e-2b0c4f1e9d11' },
          action: 'note.create',
          resource: { type: 'note', id: row?.id ?? null },
          outcome: 'success',
          context: { ip: '127.0.0.1', userAgent: 'bench', requestId: `bench-${i}` },
          details: { changes: { title: { from: null, to: n.title }, body: { from: null, to: n.body } } },
        });
      }),
  };
  const rows: Array<{ variant: string; round: number; msPerOp: number }> = [];
  let i = 0;
  for (let r = 1; r <= 3; r++) {
    for (const [name, fn] of Object.entries(variants)) {
      for (let w = 0; w < 200; w++) await fn(++i);
      const t0 = performance.now();
      for (let k = 0; k < iterations; k++) await fn(++i);
      rows.push({ variant: name, round: r, msPerOp: round((performance.now() - t0) / iterations) });
      log(`sql ${name} round ${r}: ${rows.at(-1)?.msPerOp} ms/op`);
    }
  }
  await orm.close();
  return rows;
}

// --- the parent ---------------------------------------------------------------

async function main(): Promise<void> {
  const connections = args.connections.split(',').map(Number);
  const seconds = Number(args.duration);
  const warmup = Number(args.warmup);
  const rounds = Number(args.rounds);
  const scratch = await createBenchDatabase(ADMIN, { poolSize: 4, migrate: true, log });
  let server: Child | undefined;
  const cleanup = async () => {
    await server?.stop().catch(() => {});
    await scratch.drop();
  };
  const onSignal = () => {
    cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  try {
    const sql = await sqlPart(scratch, Number(args.iterations));

    server = await new Child('server', [THIS_FILE, '--child', 'server'], {
      ...process.env,
      DATABASE_URL: scratch.url,
      REDIS_URL: REDIS,
      LOG_LEVEL: 'warn',
      DB_POOL_SIZE: args['pool-size'],
      AUDIT_SEAL_INTERVAL_SECONDS: '0',
      JOBS_IN_SERVER: 'false',
      DATA_DIR: path.join(os.tmpdir(), `enclave-audit-write-${process.pid}`),
    }).ready();
    const person = await registerPerson(server.url, scratch.pool, log);
    const headers = { cookie: person.cookie, 'x-csrf-token': person.csrf };
    const inbox = async () =>
      (await scratch.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM control.audit_inbox')).rows[0]
        ?.n ?? 0;
    // The two routes do what they say: one event per audited note, none otherwise.
    for (const [route, events] of [
      ['/api/v1/notes', 1],
      ['/bench/notes', 0],
    ] as const) {
      const before = await inbox();
      const res = await load(server.url, route, headers, 1, 0.2);
      if (res.ok !== res.requests || res.ok === 0)
        throw new Error(`${route}: ${JSON.stringify(res.statuses)}`);
      const written = (await inbox()) - before;
      if (written !== res.ok * events)
        throw new Error(`${route} wrote ${written} events for ${res.ok} notes`);
    }

    const routes = { audited: '/api/v1/notes', unaudited: '/bench/notes' } as const;
    const http: Array<{ variant: string; connections: number; round: number } & LoadResult> = [];
    for (const c of connections) {
      for (let r = 1; r <= rounds; r++) {
        const order = r % 2 ? (['audited', 'unaudited'] as const) : (['unaudited', 'audited'] as const);
        for (const v of order) {
          await load(server.url, routes[v], headers, c, warmup);
          const result = await load(server.url, routes[v], headers, c, seconds);
          if (result.ok !== result.requests) throw new Error(`${v}: ${JSON.stringify(result.statuses)}`);
          http.push({ variant: v, connections: c, round: r, ...result });
          log(`${v} c=${c} round ${r}: ${result.perSecond} req/s, p50 ${result.latencyMs.p50} ms`);
        }
      }
    }
    await signOut(server.url, person);

    const summary = connections.map((c) => {
      const of = (v: string) => http.filter((h) => h.connections === c && h.variant === v);
      const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
      const audited = mean(of('audited').map((h) => h.perSecond));
      const plain = mean(of('unaudited').map((h) => h.perSecond));
      return {
        connections: c,
        auditedPerSecond: round(audited, 1),
        unauditedPerSecond: round(plain, 1),
        ratio: round(audited / plain, 3),
        auditedP50: round(mean(of('audited').map((h) => h.latencyMs.p50)), 2),
        unauditedP50: round(mean(of('unaudited').map((h) => h.latencyMs.p50)), 2),
      };
    });
    const sqlMean = (v: string) => {
      const xs = sql.filter((s) => s.variant === v).map((s) => s.msPerOp);
      return round(xs.reduce((a, b) => a + b, 0) / xs.length);
    };
    const file = writeResults({
      options: args,
      node: process.version,
      cpus: os.cpus().length,
      loadavg: os.loadavg(),
      postgres: (await scratch.pool.query('SHOW server_version')).rows[0].server_version,
      sql,
      http,
      summary,
      inboxRowsAtEnd: await inbox(),
    });
    console.log('| SQL, one unit of work (3 rounds) | ms/op |\n| --- | ---: |');
    for (const v of ['insert a note', 'insert a note + its audit event'])
      console.log(`| ${v} | ${sqlMean(v)} |`);
    console.log(
      '\n| connections | audited req/s | unaudited req/s | ratio | audited p50 ms | unaudited p50 ms |\n| ---: | ---: | ---: | ---: | ---: | ---: |',
    );
    for (const s of summary)
      console.log(
        `| ${s.connections} | ${s.auditedPerSecond} | ${s.unauditedPerSecond} | ${s.ratio} | ${s.auditedP50} | ${s.unauditedP50} |`,
      );
    log(`results: ${file}`);
  } finally {
    process.off('SIGINT', onSignal);
    await cleanup();
  }
}

function writeResults(data: unknown): string {
  const dir = path.join(path.dirname(THIS_FILE), 'results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(
    dir,
    `audit-write-${new Date().toISOString().replace(/:/g, '-').replace(/\..+/, 'Z')}.json`,
  );
  writeFileSync(file, `${JSON.stringify(data, null, 2)}\n`);
  return file;
}

if (args.child === 'server') await serveWithBenchRoute();
else await main();
