// A request stuck in PostgreSQL: a statement that would wait forever is
// cancelled at TENANT_STATEMENT_TIMEOUT_MS (503 query_timeout), a transaction
// left idle is ended at TENANT_IDLE_IN_TRANSACTION_MS; neither keeps a
// connection of the pool or a lock of the tenant afterwards.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { QueryTimeoutError } from '../../kernel/errors.ts';
import { ident } from '../../kernel/identifiers.ts';
import { createOrm } from '../../tenancy/orm.ts';
import { TenantContext } from '../../tenancy/unit-of-work.ts';
import {
  bodyFor,
  type InProcessServer,
  type Person,
  type Stage,
  signUpMany,
  sleep,
  startInProcess,
  startStage,
} from './harness.ts';

const STATEMENT_MS = 1500;
const IDLE_MS = 1000;

describe('a request stuck in the database', () => {
  let stage: Stage;
  let app: InProcessServer;
  let a: Person;
  let b: Person;

  before(async () => {
    stage = await startStage();
    app = await startInProcess(stage, {
      // Two connections: one leaked by a stuck request would show at once.
      DB_POOL_SIZE: '2',
      TENANT_STATEMENT_TIMEOUT_MS: String(STATEMENT_MS),
      TENANT_IDLE_IN_TRANSACTION_MS: String(IDLE_MS),
    });
    [a, b] = (await signUpMany(app.url, 2)) as [Person, Person];
  });
  after(async () => {
    await app?.server.stop();
    await stage?.close();
  });

  // The app's backends (not the test's own pool, application_name enclave).
  const appBackends = async (where: string) =>
    (
      await stage.db.pool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE datname = current_database() AND application_name <> 'enclave' AND ${where}`,
      )
    ).rows[0]?.n;

  test('a statement that would wait forever is cancelled at TENANT_STATEMENT_TIMEOUT_MS with 503, and leaves no connection or lock behind', async () => {
    const schema = ident(`t_${a.tenantId}`);
    const locker = await stage.db.pool.connect();
    try {
      await locker.query('BEGIN');
      await locker.query(`LOCK TABLE ${schema}.notes IN SHARE MODE`);
      for (let i = 0; i < 4; i++) {
        const title = `stuck ${i}`;
        const [stuck, other] = await Promise.all([
          a.call('POST', '/api/v1/notes', { title, body: bodyFor(title) }),
          // Another workspace is served meanwhile (the pool has a connection for it).
          b.call('POST', '/api/v1/notes', { title, body: bodyFor(title) }),
        ]);
        assert.equal(stuck.outcome.status, 503, JSON.stringify(stuck.outcome));
        assert.equal(stuck.outcome.code, 'query_timeout');
        assert.ok(stuck.outcome.ms >= STATEMENT_MS - 100 && stuck.outcome.ms < STATEMENT_MS + 2500);
        assert.equal(other.outcome.status, 201);
        // Nothing of the app still waits on the lock or sits in a transaction.
        assert.equal(await appBackends("wait_event_type = 'Lock'"), 0);
        assert.equal(await appBackends("state LIKE 'idle in transaction%'"), 0);
      }
    } finally {
      await locker.query('COMMIT');
      locker.release();
    }
    // The app holds no lock on the workspace's tables, and the workspace works.
    const { rows } = await stage.db.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_locks l JOIN pg_stat_activity s ON s.pid = l.pid
        WHERE l.relation = $1::regclass AND s.application_name <> 'enclave'`,
      [`t_${a.tenantId}.notes`],
    );
    assert.equal(rows[0]?.n, 0);
    const w = await a.call('POST', '/api/v1/notes', { title: 'unstuck', body: bodyFor('unstuck') });
    assert.equal(w.outcome.status, 201);
    const { rows: notes } = await stage.db.pool.query<{ title: string }>(
      `SELECT title FROM ${schema}.notes ORDER BY id`,
    );
    assert.deepEqual(
      notes.map((n) => n.title),
      ['unstuck'],
      'cancelled writes left nothing',
    );
  });

  test('a transaction left idle holding a row lock is ended at TENANT_IDLE_IN_TRANSACTION_MS, and the work waiting on that row goes on', async () => {
    const created = await a.call('POST', '/api/v1/notes', { title: 'contested', body: bodyFor('contested') });
    const note = created.json?.note as { id: number } | undefined;
    assert.ok(note, JSON.stringify(created.outcome));
    const id = note.id;
    const { orm } = await createOrm(stage.env.DATABASE_URL as string, 2);
    try {
      const ctx = new TenantContext(orm, stage.db.pool, {
        cacheMs: 0,
        statementTimeoutMs: 10_000,
        idleInTransactionMs: IDLE_MS,
      });
      const started = performance.now();
      const idle = ctx.run(a.tenantId, async (uow) => {
        await uow.query({ text: 'UPDATE notes SET title = $1 WHERE id = $2', values: ['idle', id] });
        await sleep(4000); // holds the row lock, sending nothing
        await uow.query('SELECT 1');
      });
      await sleep(200);
      const waiting = ctx.run(a.tenantId, (uow) =>
        uow.query({ text: 'UPDATE notes SET title = $1 WHERE id = $2 RETURNING id', values: ['next', id] }),
      );
      await waiting;
      const waitedMs = performance.now() - started;
      await assert.rejects(idle, (err: unknown) => err instanceof QueryTimeoutError);
      assert.ok(waitedMs < 3500, `the waiting write went on after ${Math.round(waitedMs)} ms`);
      assert.equal(await appBackends("state LIKE 'idle in transaction%'"), 0);
      const { rows } = await stage.db.pool.query<{ title: string }>(
        `SELECT title FROM ${ident(`t_${a.tenantId}`)}.notes WHERE id = $1`,
        [id],
      );
      assert.equal(rows[0]?.title, 'next', 'the idle transaction was rolled back');
    } finally {
      await orm.close();
    }
  });
});
