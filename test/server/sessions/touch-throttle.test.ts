// The session store's idle timer is renewed at most once per interval by this
// process (server/sessions/touch-throttle.ts), against the real Redis store.
// Its own Redis database, so other test files' keys are not disturbed.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { RedisStore } from 'connect-redis';
import type session from 'express-session';
import { createClient } from 'redis';
import { throttleTouch, touchIntervalMs } from '../../../server/sessions/touch-throttle.ts';
import { TEST_REDIS_URL } from '../../helpers/server.ts';

const REDIS_URL = `${TEST_REDIS_URL.replace(/\/\d*$/, '')}/12`;
const IDLE_SECONDS = 1800;
const PREFIX = 'touch-test:';

let redis: ReturnType<typeof createClient>;
before(async () => {
  redis = createClient({ url: REDIS_URL });
  await redis.connect();
});
after(async () => {
  for await (const keys of redis.scanIterator({ MATCH: `${PREFIX}*` }))
    if (keys.length) await redis.del(keys);
  await redis?.close();
});

const sess = { cookie: { originalMaxAge: IDLE_SECONDS * 1000 } } as unknown as session.SessionData;

function storeWith(clock: { now: number }, maxEntries = 100) {
  const store = new RedisStore({ client: redis, prefix: PREFIX, ttl: IDLE_SECONDS });
  return throttleTouch(store, { idleSeconds: IDLE_SECONDS, maxEntries, now: () => clock.now });
}
const call = (fn: (cb: (err?: unknown) => void) => void) =>
  new Promise<void>((resolve, reject) => fn((err) => (err ? reject(err) : resolve())));

async function saved(store: session.Store, sid: string): Promise<void> {
  await call((cb) => store.set(sid, sess, cb));
  await redis.expire(`${PREFIX}${sid}`, 5); // as if the timer had nearly run out
}
const ttl = (sid: string) => redis.ttl(`${PREFIX}${sid}`);
const touch = (store: session.Store, sid: string) => call((cb) => store.touch?.(sid, sess, cb));

describe('session touch throttle', () => {
  test('the interval is a tenth of the idle timeout, at most one minute', () => {
    assert.equal(touchIntervalMs(1800), 60_000);
    assert.equal(touchIntervalMs(300), 30_000);
    assert.equal(touchIntervalMs(60), 6_000);
  });

  test('the first touch renews the timer; another within the interval sends nothing', async () => {
    const clock = { now: 1_000_000 };
    const store = storeWith(clock);
    await saved(store, 'a');
    await touch(store, 'a');
    assert.ok((await ttl('a')) > IDLE_SECONDS - 5, 'renewed to the idle timeout');
    await redis.expire(`${PREFIX}a`, 5);
    clock.now += touchIntervalMs(IDLE_SECONDS) - 1;
    await touch(store, 'a');
    assert.ok((await ttl('a')) <= 5, 'not renewed again inside the interval');
  });

  test('a touch after the interval renews the timer again', async () => {
    const clock = { now: 2_000_000 };
    const store = storeWith(clock);
    await saved(store, 'b');
    await touch(store, 'b');
    await redis.expire(`${PREFIX}b`, 5);
    clock.now += touchIntervalMs(IDLE_SECONDS);
    await touch(store, 'b');
    assert.ok((await ttl('b')) > IDLE_SECONDS - 5);
  });

  test('a skipped touch answers on a later tick, never inside the call', async () => {
    const clock = { now: 3_000_000 };
    const store = storeWith(clock);
    await saved(store, 'c');
    await touch(store, 'c');
    let answered = false;
    const done = new Promise<void>((resolve) =>
      store.touch?.('c', sess, () => {
        answered = true;
        resolve();
      }),
    );
    assert.equal(answered, false, 'express-session writes its head after touch returns');
    await done;
    assert.equal(answered, true);
  });

  test('what the process remembers is bounded: the oldest session is forgotten and touched again', async () => {
    const clock = { now: 4_000_000 };
    const store = storeWith(clock, 2);
    for (const sid of ['d1', 'd2', 'd3']) {
      await saved(store, sid);
      await touch(store, sid);
      await redis.expire(`${PREFIX}${sid}`, 5);
    }
    await touch(store, 'd1'); // forgotten when d3 came: renewed
    await touch(store, 'd3'); // remembered: skipped
    assert.ok((await ttl('d1')) > IDLE_SECONDS - 5);
    assert.ok((await ttl('d3')) <= 5);
  });

  test('a destroyed session is forgotten, and 0 entries renews on every touch', async () => {
    const clock = { now: 5_000_000 };
    const store = storeWith(clock);
    await saved(store, 'e');
    await touch(store, 'e');
    await call((cb) => store.destroy('e', cb));
    await saved(store, 'e');
    await touch(store, 'e');
    assert.ok((await ttl('e')) > IDLE_SECONDS - 5, 'a new session under the same id is renewed');

    const every = storeWith(clock, 0);
    await saved(every, 'f');
    await touch(every, 'f');
    await redis.expire(`${PREFIX}f`, 5);
    await touch(every, 'f');
    assert.ok((await ttl('f')) > IDLE_SECONDS - 5);
  });
});
