// The in-process lockout (no REDIS_URL: one instance) remembers at most `max`
// accounts, whatever names a client makes up (docs/OPERATIONS.md,
// "Instance-local state"), and keeps lockouts over early failures when full.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MemoryAttemptCounter } from '../../../server/abuse/lockout.ts';
import type { LockoutPolicy } from '../../../server/abuse/options.ts';

const POLICY: LockoutPolicy = {
  freeFailures: 2,
  baseDelayMs: 0,
  maxDelayMs: 0,
  lockoutAfter: 3,
  lockoutMs: 60_000,
  forgetAfterMs: 600_000,
};

describe('MemoryAttemptCounter bound', () => {
  test('failures on 10x max different accounts leave max accounts remembered', async () => {
    let clock = 1_000_000;
    const counter = new MemoryAttemptCounter(POLICY, () => clock, 50);
    for (let i = 0; i < 500; i++) {
      await counter.attempt(`made-up-${i}`);
      clock += 1;
      assert.ok(counter.size <= 50, `${counter.size} remembered after ${i + 1}`);
    }
    assert.equal(counter.size, 50);
  });

  test('when full, a locked account stays locked; unlocked ones are forgotten first', async () => {
    let clock = 1_000_000;
    const counter = new MemoryAttemptCounter(POLICY, () => clock, 10);
    for (let i = 0; i < 3; i++) await counter.attempt('target'); // the third failure locks it
    assert.equal((await counter.attempt('target')).allowed, false);
    for (let i = 0; i < 100; i++) {
      await counter.attempt(`flood-${i}`);
      clock += 1;
    }
    assert.equal(counter.size, 10);
    const after = await counter.attempt('target');
    assert.equal(after.allowed, false, 'the flood unlocked the account');
  });

  test('forgotten accounts (forgetAfterMs without an attempt) make room before live ones', async () => {
    let clock = 1_000_000;
    const counter = new MemoryAttemptCounter(POLICY, () => clock, 4);
    await counter.attempt('old-1');
    await counter.attempt('old-2');
    clock += POLICY.forgetAfterMs + 1;
    await counter.attempt('live-1');
    await counter.attempt('live-1');
    await counter.attempt('live-2');
    await counter.attempt('new-1'); // full: old-1 and old-2 go, not the live ones
    assert.equal(counter.size, 3);
    assert.deepEqual(await counter.attempt('live-1'), { allowed: true, failures: 3 });
  });

  test('max below 1 is refused', () => {
    assert.throws(() => new MemoryAttemptCounter(POLICY, Date.now, 0), RangeError);
  });
});
