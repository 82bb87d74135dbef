// The scheduler: every job of jobs/registry.ts on pg-boss, and the same jobs
// run by hand. What it promises (docs/JOBS.md):
// - schedules are set at start with schedule() (idempotent; never unschedule
//   then schedule: pg-boss#592), in UTC, a missed run caught up once;
// - one run of a job at a time across all instances: the queue policy
//   (`stately`: one active and one waiting) and, because a job left 'active'
//   by a killed process would hold the queue until it expires, the job's
//   advisory lock too (released by PostgreSQL with the dead connection);
// - per-tenant fan-out: one pg-boss job per tenant, singletonKey = tenant, so
//   a tenant is never queued twice and instances share the work;
// - every run, scheduled, manual or per tenant, is in control.job_runs.
import { hostname } from 'node:os';
import { CronExpressionParser } from 'cron-parser';
import type { Job, PgBoss } from 'pg-boss';
import type { Pool } from '../kernel/db.ts';
import { jobTryLock, jobUnlock } from '../kernel/locks.ts';
import { finishRun, type RunTrigger, startRun, sweepHistory } from './history.ts';
import type { AnyJob, JobContext, JobCounts, JobDefinition } from './job.ts';

/** The context minus what the scheduler adds per run. */
export type JobBase = Omit<JobContext, 'signal' | 'fanOut'>;

/** Another run of the job holds its lock. */
export class JobBusyError extends Error {
  override name = 'JobBusyError';
  constructor(job: string) {
    super(`another run of ${job} is in progress`);
  }
}

export class UnknownJobError extends Error {
  override name = 'UnknownJobError';
  constructor(job: string, known: readonly string[]) {
    super(`no job named "${job}"; the jobs are: ${known.join(', ')}`);
  }
}

/** hostname:pid, to tell instances apart in the history. */
export const INSTANCE = `${hostname()}:${process.pid}`;

/** Fan-out items are inserted into pg-boss this many at a time. */
const INSERT_CHUNK = 500;
/** Completed and failed pg-boss jobs are kept a week; our own history (JOB_HISTORY_DAYS) is the record. */
const PGBOSS_KEEP_SECONDS = 7 * 24 * 3600;

interface RunOptions {
  trigger: RunTrigger;
  jobId: string | null;
  signal: AbortSignal;
  fanOut: JobContext['fanOut'];
}

/**
 * Runs one job body with its history row and, for whole-fleet jobs, its
 * advisory lock. A throw is recorded as a failed run, logged, and rethrown.
 */
async function execute<D extends object>(
  job: JobDefinition<D>,
  data: D,
  base: JobBase,
  options: RunOptions,
): Promise<JobCounts> {
  const { pool, log } = base;
  const tenantId = job.tenantOf?.(data) ?? null;
  // Per-tenant jobs are serialised by the tenant's own lock (backup, lifecycle); fleet jobs by the job's.
  const lock = tenantId === null ? await takeJobLock(pool, job.name) : null;
  try {
    const id = await startRun(pool, {
      job: job.name,
      jobId: options.jobId,
      tenantId,
      trigger: options.trigger,
      instance: INSTANCE,
    });
    const started = performance.now();
    try {
      const counts = await job.run({ ...base, signal: options.signal, fanOut: options.fanOut }, data);
      await finishRun(pool, id, { counts });
      log.info('job finished', {
        job: job.name,
        ...(tenantId ? { tenantId } : {}),
        trigger: options.trigger,
        durationMs: Math.round(performance.now() - started),
        counts,
      });
      return counts;
    } catch (err) {
      await finishRun(pool, id, { error: err }).catch((e: unknown) =>
        log.warn('could not record a failed job run', { job: job.name, error: e }),
      );
      log.error('job failed', { job: job.name, ...(tenantId ? { tenantId } : {}), error: err });
      throw err;
    }
  } finally {
    await lock?.release();
  }
}

async function takeJobLock(pool: Pool, name: string): Promise<{ release(): Promise<void> }> {
  const client = await pool.connect();
  try {
    const { rows } = await client.query<{ locked: boolean }>(jobTryLock(name));
    if (!rows[0]?.locked) throw new JobBusyError(name);
  } catch (err) {
    client.release();
    throw err;
  }
  return {
    release: async () => {
      try {
        await client.query(jobUnlock(name));
        client.release();
      } catch (err) {
        client.release(err as Error); // a broken connection: its lock went with it
      }
    },
  };
}

/** Runs items here, `concurrency` at a time, each its own recorded run; failures are counted, not thrown. */
function inlineFanOut(base: JobBase, signal: AbortSignal): JobContext['fanOut'] {
  const fanOut: JobContext['fanOut'] = async (job, items) => {
    const counts = { succeeded: 0, failed: 0 };
    let next = 0;
    const worker = async () => {
      while (next < items.length && !signal.aborted) {
        const item = items[next++] as (typeof items)[number];
        try {
          await execute(job, item, base, { trigger: 'fanout', jobId: null, signal, fanOut });
          counts.succeeded += 1;
        } catch {
          counts.failed += 1; // recorded and logged by execute
        }
      }
    };
    const width = Math.max(1, Math.min(job.concurrency?.(base.config) ?? 1, items.length));
    await Promise.all(Array.from({ length: width }, worker));
    return counts;
  };
  return fanOut;
}

/** `enclave jobs run NAME`: the job now, in this process, its fan-out too. */
export async function runJobNow(
  job: AnyJob,
  base: JobBase,
  signal: AbortSignal = new AbortController().signal,
): Promise<JobCounts> {
  return execute(job, {}, base, {
    trigger: 'manual',
    jobId: null,
    signal,
    fanOut: inlineFanOut(base, signal),
  });
}

export function findJob(jobs: readonly AnyJob[], name: string): AnyJob {
  const job = jobs.find((j) => j.name === name);
  if (!job)
    throw new UnknownJobError(
      name,
      jobs.map((j) => j.name),
    );
  return job;
}

export interface Scheduler {
  stop(): Promise<void>;
}

/**
 * Creates the queues, sets the schedules and starts this process's workers.
 * pg-boss must be started (and stopped) by the caller: jobs/runner.ts.
 */
export async function startScheduler(
  boss: PgBoss,
  jobs: readonly AnyJob[],
  base: JobBase,
): Promise<Scheduler> {
  const stopping = new AbortController();
  const { config, log } = base;
  const fanOut: JobContext['fanOut'] = async (job, items) => {
    let enqueued = 0;
    for (let i = 0; i < items.length; i += INSERT_CHUNK) {
      const chunk = items.slice(i, i + INSERT_CHUNK).map((data) => ({
        data,
        ...(job.tenantOf?.(data) ? { singletonKey: job.tenantOf(data) } : {}),
      }));
      // A tenant already queued is skipped by the queue policy (ON CONFLICT DO NOTHING): only new ids come back.
      const ids = await boss.insert(job.name, chunk, { returnId: true });
      enqueued += ids?.length ?? 0;
    }
    return { enqueued, skipped: items.length - enqueued };
  };
  for (const job of jobs) {
    await boss.createQueue(job.name, {
      policy: 'stately',
      retryLimit: 0, // the next scheduled run is the retry; a failed tenant shows in the history
      expireInSeconds: job.expireInSeconds,
      deleteAfterSeconds: PGBOSS_KEEP_SECONDS,
    });
    const cron = job.schedule(config);
    if (cron) await boss.schedule(job.name, cron, { trigger: 'schedule' }, { tz: 'UTC', missed: 'once' });
    else if ((await boss.getSchedules(job.name)).length > 0) await boss.unschedule(job.name);
    await boss.work<object>(
      job.name,
      { localConcurrency: job.concurrency?.(config) ?? 1, pollingIntervalSeconds: 2 },
      async ([pgJob]: Job<object>[]) => {
        if (!pgJob) return;
        const signal = AbortSignal.any([stopping.signal, pgJob.signal]);
        const data = (pgJob.data ?? {}) as Record<string, unknown>;
        const trigger: RunTrigger = job.tenantOf
          ? 'fanout'
          : data.trigger === 'manual'
            ? 'manual'
            : 'schedule';
        try {
          await execute(job, data, base, { trigger, jobId: pgJob.id, signal, fanOut });
        } catch (err) {
          if (err instanceof JobBusyError) return; // another instance is at it: this turn is done
          throw err; // pg-boss marks the job failed
        }
      },
    );
  }
  const sweep = () =>
    sweepHistory(base.pool, jobs, config.JOB_HISTORY_DAYS).catch((err: unknown) =>
      log.warn('could not sweep the job history', { error: err }),
    );
  await sweep();
  const timer = setInterval(sweep, 3600_000);
  timer.unref();
  log.info('scheduler started', {
    jobs: jobs.map((j) => ({ name: j.name, schedule: j.schedule(config) ?? 'off' })),
  });
  return {
    stop: async () => {
      clearInterval(timer);
      stopping.abort();
    },
  };
}

/** The next `count` times a cron expression (UTC) fires after `from`. */
export function nextRuns(cron: string, count: number, from: Date = new Date()): Date[] {
  const interval = CronExpressionParser.parse(cron, { tz: 'UTC', currentDate: from });
  return Array.from({ length: count }, () => interval.next().toDate());
}
