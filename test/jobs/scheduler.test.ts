// The scheduler (jobs/scheduler.ts) on real PostgreSQL and real pg-boss:
// every run is in the history with its outcome; a fleet job runs once at a
// time anywhere; a fan-out is one job per tenant, never queued twice for a
// tenant; schedules are set idempotently and switched off by the
// configuration; runs left by a dead process are marked interrupted.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PgBoss } from 'pg-boss';
import { listRuns, summarize } from '../../jobs/history.ts';
import type { JobDefinition } from '../../jobs/job.ts';
import { JOBS_SCHEMA } from '../../jobs/runner.ts';
import { JobBusyError, nextRuns, runJobNow, type Scheduler, startScheduler } from '../../jobs/scheduler.ts';
import { jobTryLock, jobUnlock } from '../../kernel/locks.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';
import { jobContext, type TestJobContext } from '../helpers/jobs.ts';

let db: TestDatabase;
let ctx: TestJobContext;

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const base = () => {
  const { signal: _s, fanOut: _f, captured: _c, dir: _d, cleanup: _x, ...rest } = ctx;
  return rest;
};

function job(name: string, run: JobDefinition['run'], extra: Partial<JobDefinition> = {}): JobDefinition {
  return { name, title: name, schedule: () => null, expireInSeconds: 60, run, ...extra };
}

interface TenantItem {
  tenantId: string;
}

async function newBoss(): Promise<PgBoss> {
  const boss = new PgBoss({ connectionString: db.url, schema: JOBS_SCHEMA, max: 2 });
  boss.on('error', () => {});
  await boss.start();
  return boss;
}

describe('the job scheduler', () => {
  before(async () => {
    db = await createTestDatabase(8);
    ctx = await jobContext(db);
  });
  after(async () => {
    ctx.cleanup();
    await db.drop();
  });

  test('a run by hand is recorded with its counts; a failing one with its error on one line', async () => {
    const ok = job('test-ok', async () => ({ things: 3 }));
    assert.deepEqual(await runJobNow(ok, base()), { things: 3 });
    const bad = job('test-bad', async () => {
      throw new Error('the disk\nis full');
    });
    await assert.rejects(runJobNow(bad, base()), /the disk/);
    const runs = await listRuns(db.pool, { limit: 10 });
    const okRun = runs.find((r) => r.job === 'test-ok');
    const badRun = runs.find((r) => r.job === 'test-bad');
    assert.equal(okRun?.outcome, 'succeeded');
    assert.equal(okRun?.trigger, 'manual');
    assert.deepEqual(okRun?.counts, { things: 3 });
    assert.ok(okRun?.finishedAt instanceof Date);
    assert.equal(badRun?.outcome, 'failed');
    assert.equal(badRun?.error, 'the disk is full');
    const [summary] = await summarize(db.pool, ['test-bad']);
    assert.equal(summary?.failed24h, 1);
    assert.equal(summary?.last?.outcome, 'failed');
  });

  test('a fleet job whose lock another run holds is refused and leaves no history row', async () => {
    const holder = await db.pool.connect();
    try {
      assert.equal((await holder.query(jobTryLock('test-locked'))).rows[0].locked, true);
      let ran = false;
      const locked = job('test-locked', async () => {
        ran = true;
        return {};
      });
      await assert.rejects(runJobNow(locked, base()), JobBusyError);
      assert.equal(ran, false);
      assert.equal((await listRuns(db.pool, { job: 'test-locked' })).length, 0);
    } finally {
      await holder.query(jobUnlock('test-locked'));
      holder.release();
    }
  });

  test('an inline fan-out runs each tenant as its own run, at most `concurrency` at once, and counts failures', async () => {
    let active = 0;
    let most = 0;
    const perTenant: JobDefinition<TenantItem> = {
      name: 'test-tenant',
      title: 'per tenant',
      schedule: () => null,
      concurrency: () => 2,
      expireInSeconds: 60,
      tenantOf: (d) => d.tenantId,
      async run(_ctx, data) {
        active += 1;
        most = Math.max(most, active);
        await new Promise((r) => setTimeout(r, 30));
        active -= 1;
        if (data.tenantId === 'tenant000003') throw new Error('tenant 3 broke');
        return { rows: 1 };
      },
    };
    const fleet = job('test-fleet', async (c) =>
      c.fanOut(
        perTenant,
        Array.from({ length: 6 }, (_, i) => ({ tenantId: `tenant00000${i}` })),
      ),
    );
    assert.deepEqual(await runJobNow(fleet, base()), { succeeded: 5, failed: 1 });
    assert.equal(most, 2);
    const runs = await listRuns(db.pool, { job: 'test-tenant' });
    assert.equal(runs.length, 6);
    assert.ok(runs.every((r) => r.trigger === 'fanout'));
    assert.deepEqual(runs.find((r) => r.outcome === 'failed')?.tenantId, 'tenant000003');
  });

  test('under pg-boss a fan-out is one job per tenant with the tenant as singletonKey, never queued twice', async () => {
    const boss = await newBoss();
    const seen: string[] = [];
    const perTenant: JobDefinition<TenantItem> = {
      name: 'test-queued-tenant',
      title: 'per tenant',
      schedule: () => null,
      concurrency: () => 2,
      expireInSeconds: 60,
      tenantOf: (d) => d.tenantId,
      async run(_c, data) {
        seen.push(data.tenantId);
        return {};
      },
    };
    let fanned: Record<string, number> = {};
    const fleet = job('test-queued-fleet', async (c) => {
      // The same tenant twice in one fan-out: the second is not queued.
      fanned = await c.fanOut(perTenant, [
        { tenantId: 'aaaaaaaaaaa1' },
        { tenantId: 'aaaaaaaaaaa2' },
        { tenantId: 'aaaaaaaaaaa1' },
      ]);
      return fanned;
    });
    let scheduler: Scheduler | undefined;
    try {
      scheduler = await startScheduler(boss, [fleet, perTenant], base());
      await boss.send(fleet.name, { trigger: 'manual' });
      await waitFor('both tenants to run', async () => seen.length >= 2);
      await new Promise((r) => setTimeout(r, 2500)); // a third run would have shown by now
      assert.deepEqual(fanned, { enqueued: 2, skipped: 1 });
      assert.deepEqual([...seen].sort(), ['aaaaaaaaaaa1', 'aaaaaaaaaaa2']);
      const fleetRuns = await listRuns(db.pool, { job: fleet.name });
      assert.equal(fleetRuns.length, 1);
      assert.equal(fleetRuns[0]?.trigger, 'manual');
      assert.ok(fleetRuns[0]?.jobId, 'the pg-boss job id is kept');
      const tenantRuns = await listRuns(db.pool, { job: perTenant.name });
      assert.deepEqual(tenantRuns.map((r) => r.tenantId).sort(), ['aaaaaaaaaaa1', 'aaaaaaaaaaa2']);
    } finally {
      await scheduler?.stop();
      await boss.stop({ graceful: false });
    }
  });

  test('schedules are set idempotently by every instance (UTC, missed runs caught up once) and removed when off', async () => {
    const one = await newBoss();
    const two = await newBoss();
    const scheduled = job('test-cron', async () => ({}), { schedule: () => '*/5 * * * *' });
    try {
      const a = await startScheduler(one, [scheduled], base());
      const b = await startScheduler(two, [scheduled], base());
      const schedules = await one.getSchedules('test-cron');
      assert.equal(schedules.length, 1);
      assert.equal(schedules[0]?.cron, '*/5 * * * *');
      assert.equal(schedules[0]?.timezone, 'UTC');
      assert.equal(schedules[0]?.options?.missed, 'once');
      await a.stop();
      await b.stop();
      const off = await startScheduler(one, [{ ...scheduled, schedule: () => null }], base());
      assert.equal((await one.getSchedules('test-cron')).length, 0);
      await off.stop();
    } finally {
      await one.stop({ graceful: false });
      await two.stop({ graceful: false });
    }
  });

  test('a run left running by a dead process is marked interrupted when a scheduler starts', async () => {
    await db.pool.query(
      `INSERT INTO control.job_runs (job, trigger, instance, started_at)
       VALUES ('test-dead', 'schedule', 'gone:1', now() - interval '2 hours'),
              ('test-dead', 'schedule', 'alive:1', now())`,
    );
    const boss = await newBoss();
    try {
      const s = await startScheduler(
        boss,
        [job('test-dead', async () => ({}), { expireInSeconds: 600 })],
        base(),
      );
      await s.stop();
    } finally {
      await boss.stop({ graceful: false });
    }
    const runs = await listRuns(db.pool, { job: 'test-dead' });
    assert.deepEqual(runs.map((r) => [r.instance, r.outcome]).sort(), [
      ['alive:1', 'running'],
      ['gone:1', 'interrupted'],
    ]);
  });

  test('next runs of a schedule are computed in UTC', () => {
    const from = new Date('2026-12-02T10:07:30Z');
    assert.deepEqual(
      nextRuns('*/15 * * * *', 2, from).map((d) => d.toISOString()),
      ['2026-12-02T10:15:00.000Z', '2026-12-02T10:30:00.000Z'],
    );
  });
});
