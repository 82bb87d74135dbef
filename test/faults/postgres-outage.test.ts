// PostgreSQL stopped and started again under load: requests during the outage
// get a prompt 503 with Retry-After (never a hang), the service comes back by
// itself, and every acknowledged write is there afterwards.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  bodyFor,
  checkNotes,
  type InProcessServer,
  REQUEST_BOUND_MS,
  type Stage,
  signUpMany,
  sleep,
  startInProcess,
  startLoad,
  startStage,
  tally,
  until,
} from './harness.ts';

const CONNECT_TIMEOUT_MS = 2000;

describe('PostgreSQL stopped and restarted under load', () => {
  let stage: Stage;
  let app: InProcessServer;

  before(async () => {
    stage = await startStage();
    app = await startInProcess(stage, {
      DB_CONNECT_TIMEOUT_MS: String(CONNECT_TIMEOUT_MS),
      DB_POOL_SIZE: '10',
    });
  });
  after(async () => {
    await app?.server.stop();
    await stage?.close();
  });

  test('requests during the outage get a prompt 503 with Retry-After, service recovers by itself, and no acknowledged write is lost', async () => {
    const people = await signUpMany(app.url, 24);
    const load = startLoad(people);
    await sleep(1500);

    const downAt = Date.now();
    await stage.pg.stop('fast');
    await sleep(3000);
    await stage.pg.start();
    const upAt = Date.now();
    // Ready again, and a write goes through, without anything restarting the app.
    const recoveredMs = await until('the app to serve again', 20_000, async () => {
      const ready = await fetch(`${app.url}/readyz`);
      if (ready.status !== 200) return false;
      const w = await people[0]?.call('POST', '/api/v1/notes', {
        title: 'after the restart',
        body: bodyFor('after the restart'),
      });
      return w?.outcome.status === 201;
    });
    await sleep(1500);
    await load.stop();

    const outcomes = load.outcomes;
    const t = tally(outcomes);
    // Never a hang: every request answered within the client's bound.
    assert.deepEqual(
      outcomes.filter((o) => o.failure),
      [],
      `requests that hit the ${REQUEST_BOUND_MS} ms bound or lost their connection: ${JSON.stringify(t)}`,
    );
    // Nothing but success or a 503 to retry: no 500.
    const odd = outcomes.filter((o) => o.status !== 200 && o.status !== 201 && o.status !== 503);
    assert.deepEqual(odd, [], JSON.stringify(t));
    const refused = outcomes.filter((o) => o.status === 503);
    assert.ok(refused.length > 0, `the outage was seen by the load: ${JSON.stringify(t)}`);
    for (const o of refused) {
      assert.equal(o.code, 'database_unavailable', JSON.stringify(o));
      assert.ok(Number(o.retryAfter) > 0, `503 without Retry-After: ${JSON.stringify(o)}`);
      assert.match(o.message ?? '', /try again/i);
      // Prompt: the pool gives up within DB_CONNECT_TIMEOUT_MS, plus some slack for a busy machine.
      assert.ok(o.ms < CONNECT_TIMEOUT_MS + 4000, `a 503 took ${Math.round(o.ms)} ms`);
    }
    assert.ok(recoveredMs < 10_000, `recovered ${recoveredMs} ms after the restart`);
    const worst = Math.max(...outcomes.map((o) => o.ms));
    const { acknowledged, stored } = await checkNotes(stage.db, load);
    assert.ok(acknowledged > 0);
    console.log(
      JSON.stringify({
        outage: { downMs: upAt - downAt, recoveredMsAfterStart: recoveredMs },
        requests: outcomes.length,
        refused503: refused.length,
        slowestMs: Math.round(worst),
        acknowledged,
        stored,
        tally: t,
      }),
    );
  });
});
