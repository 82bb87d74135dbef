// Every pooled connection held by slow work (requests waiting on a lock the
// test holds): other requests wait at most DB_CONNECT_TIMEOUT_MS for a
// connection, then get 503 with Retry-After; when the slow work ends, the
// server serves again by itself and the held requests complete.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ident } from '../../kernel/identifiers.ts';
import {
  bodyFor,
  checkNotes,
  type InProcessServer,
  type Person,
  type Stage,
  signUpMany,
  sleep,
  startInProcess,
  startLoad,
  startStage,
  tally,
  until,
} from './harness.ts';

const POOL = 4;
const CONNECT_TIMEOUT_MS = 1500;

describe('a database pool held by slow work', () => {
  let stage: Stage;
  let app: InProcessServer;

  before(async () => {
    stage = await startStage();
    app = await startInProcess(stage, {
      DB_POOL_SIZE: String(POOL),
      DB_CONNECT_TIMEOUT_MS: String(CONNECT_TIMEOUT_MS),
      // The held requests wait on the lock for longer than the default 5 s allows.
      TENANT_STATEMENT_TIMEOUT_MS: '30000',
      TENANT_IDLE_IN_TRANSACTION_MS: '30000',
    });
  });
  after(async () => {
    await app?.server.stop();
    await stage?.close();
  });

  test('new requests wait at most DB_CONNECT_TIMEOUT_MS then get 503 with Retry-After, and the server recovers when the slow work ends', async () => {
    const people = await signUpMany(app.url, 4 + 12);
    const holders = people.slice(0, POOL) as Person[];
    const others = people.slice(POOL);

    // One workspace connection per holder, each waiting on a lock of the test's: the pool is full.
    const locker = await stage.db.pool.connect();
    await locker.query('BEGIN');
    for (const h of holders) await locker.query(`LOCK TABLE ${ident(`t_${h.tenantId}`)}.notes IN SHARE MODE`);
    const held = holders.map((h, i) => {
      const title = `held ${i}`;
      return h.call('POST', '/api/v1/notes', { title, body: bodyFor(title) });
    });
    await until('every pooled connection to wait on the lock', 10_000, async () => {
      const { rows } = await stage.db.pool.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
      );
      return rows[0]?.n === POOL;
    });

    const load = startLoad(others);
    await sleep(4000);
    const releasedAt = Date.now();
    await locker.query('COMMIT');
    locker.release();
    const heldOutcomes = (await Promise.all(held)).map((w) => w.outcome);
    const first = others[0] as Person;
    const recoveredMs = await until('a write to go through again', 10_000, async () => {
      const w = await first.call('POST', '/api/v1/notes', { title: 'after', body: bodyFor('after') });
      return w.outcome.status === 201;
    });
    const recoveredAt = Date.now();
    await sleep(1500);
    await load.stop();

    const outcomes = load.outcomes;
    const t = tally(outcomes);
    assert.deepEqual(
      outcomes.filter((o) => o.failure),
      [],
      `no request hung: ${JSON.stringify(t)}`,
    );
    const during = outcomes.filter((o) => o.at + o.ms < releasedAt);
    assert.ok(during.length > 0);
    for (const o of during) {
      // Loading the signed-in person uses the control pool, which is free: only workspace work waits.
      assert.equal(o.status, 503, JSON.stringify(o));
      assert.equal(o.code, 'database_unavailable');
      assert.ok(Number(o.retryAfter) > 0, 'with Retry-After');
      assert.ok(o.ms >= CONNECT_TIMEOUT_MS - 100, `refused after ${Math.round(o.ms)} ms: it waited its turn`);
      assert.ok(o.ms < CONNECT_TIMEOUT_MS + 2500, `refused after ${Math.round(o.ms)} ms`);
    }
    for (const o of heldOutcomes)
      assert.equal(o.status, 201, `the held write completed: ${JSON.stringify(o)}`);
    const afterwards = outcomes.filter((o) => o.at > recoveredAt);
    assert.ok(afterwards.length > 0);
    for (const o of afterwards) assert.ok(o.status === 200 || o.status === 201, JSON.stringify(o));
    assert.ok(recoveredMs < 5000, `recovered ${recoveredMs} ms after the slow work ended`);
    const { acknowledged } = await checkNotes(stage.db, load);
    console.log(
      JSON.stringify({
        refused: during.length,
        slowestRefusalMs: Math.round(Math.max(...during.map((o) => o.ms))),
        recoveredMs,
        acknowledged,
        tally: t,
      }),
    );
  });
});
