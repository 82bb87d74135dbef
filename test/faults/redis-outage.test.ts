// Redis (sessions, rate limits) stopped and started again under load: session
// requests get a prompt 503, and so do API tokens (their rate limits count in
// Redis); after the restart tokens work again at once, and people whose
// sessions Redis lost (all of them: it keeps nothing on disk) sign in again.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  bodyFor,
  checkNotes,
  type InProcessServer,
  type Outcome,
  type Stage,
  signUpMany,
  sleep,
  startInProcess,
  startLoad,
  startStage,
  tally,
  until,
} from './harness.ts';

describe('Redis stopped and restarted under load', () => {
  let stage: Stage;
  let app: InProcessServer;

  before(async () => {
    stage = await startStage();
    app = await startInProcess(stage);
  });
  after(async () => {
    await app?.server.stop();
    await stage?.close();
  });

  test('session and API-token requests get a prompt 503 sessions_unavailable, and after the restart tokens work again, people sign in again, and nothing acknowledged is lost', async () => {
    const people = await signUpMany(app.url, 24);
    const scripts = people.slice(0, 8);
    const browsers = people.slice(8);
    for (const p of scripts) await p.makeToken('write');
    const sessionLoad = startLoad(browsers);
    const tokenLoad = startLoad(scripts, { auth: 'bearer' });
    await sleep(1500);

    const downAt = Date.now();
    await stage.redis.stop();
    await sleep(5000);
    const restartAt = Date.now();
    await stage.redis.start();
    const recoveredMs = await until(
      'the app to reach Redis again',
      15_000,
      async () => (await fetch(`${app.url}/readyz`)).status === 200,
    );
    // Every Redis client (sessions, rate limits) reconnects on its own backoff (at most 2 s apart).
    const scripts0 = scripts[0] as (typeof scripts)[number];
    const tokensBackMs = await until(
      'API tokens to work again',
      15_000,
      async () =>
        (await scripts0.call('GET', '/api/v1/notes?limit=1', undefined, 'bearer')).outcome.status === 200,
    );
    const tokensBackAt = Date.now();
    await sleep(1500);
    await sessionLoad.stop();
    await tokenLoad.stop();

    const during = (outcomes: Outcome[]) =>
      outcomes.filter((o) => o.at >= downAt + 200 && o.at + o.ms <= restartAt && !o.failure);
    const all = [...sessionLoad.outcomes, ...tokenLoad.outcomes];
    assert.deepEqual(
      all.filter((o) => o.failure === 'timeout'),
      [],
      `no request hung: ${JSON.stringify(tally(all))}`,
    );
    // Every request is answered: none loses its connection (server/http/http-errors.ts keeps
    // express-session from asking the failed store again on the way out, which cut it).
    const cut = all.filter((o) => o.failure === 'network');
    assert.deepEqual(cut, [], 'no request lost its connection');
    // Sessions live in Redis: during the outage every session request is refused, promptly.
    const sessionDuring = during(sessionLoad.outcomes);
    assert.ok(sessionDuring.length > 0);
    for (const o of sessionDuring) {
      assert.equal(o.status, 503, JSON.stringify(o));
      assert.equal(o.code, 'sessions_unavailable');
      assert.ok(Number(o.retryAfter) > 0, 'with Retry-After');
      assert.ok(o.ms < 5000, `a refusal took ${Math.round(o.ms)} ms`);
    }
    const tokenDuring = during(tokenLoad.outcomes);
    console.log(
      JSON.stringify({
        cutConnections: cut.length,
        outageMs: restartAt - downAt,
        readyMsAfterRestart: recoveredMs,
        tokensBackMsAfterReady: tokensBackMs,
        sessionDuring: tally(sessionDuring),
        tokenDuring: tally(tokenDuring),
        tokenAll: tally(tokenLoad.outcomes),
        sessionAll: tally(sessionLoad.outcomes),
      }),
    );
    // API tokens need no session, but their rate limits (tokenUse, tokenIp) count in Redis:
    // they are refused the same way, as promptly, and work again, with the same token, after.
    assert.ok(tokenDuring.length > 0);
    for (const o of tokenDuring) {
      assert.equal(o.status, 503, JSON.stringify(o));
      assert.equal(o.code, 'sessions_unavailable');
      assert.ok(o.ms < 5000, `a refusal took ${Math.round(o.ms)} ms`);
    }
    assert.ok(
      recoveredMs + tokensBackMs < 10_000,
      `tokens back ${recoveredMs + tokensBackMs} ms after the restart`,
    );
    const tokenAfter = tokenLoad.outcomes.filter((o) => o.at > tokensBackAt);
    assert.ok(tokenAfter.length > 0);
    for (const o of tokenAfter) assert.ok(o.status === 200 || o.status === 201, JSON.stringify(o));

    // Redis kept nothing: each session is gone (401), signing in again works, and so does writing.
    for (const p of browsers) {
      const me = await p.call('GET', '/api/v1/me');
      assert.equal(me.outcome.status, 401, JSON.stringify(me.outcome));
      assert.equal((await p.login()).status, 200);
      const w = await p.call('POST', '/api/v1/notes', {
        title: 'signed in again',
        body: bodyFor('signed in again'),
      });
      assert.equal(w.outcome.status, 201);
    }
    await checkNotes(stage.db, sessionLoad);
    await checkNotes(stage.db, tokenLoad);
  });
});
