// pg-boss, started with the server or the worker (`enclave worker`): the
// audit sealer's ticker (jobs/seal-audit.ts) and the scheduled jobs
// (jobs/scheduler.ts, jobs/registry.ts). pg-boss keeps its tables in its own
// schema, `control_jobs`, next to `control` (the job queue is part of the
// control plane; tenant roles have no access to it).
import { PgBoss } from 'pg-boss';
import type { Signer } from '../audit/signing.ts';
import type { Pool } from '../kernel/db.ts';
import type { Logger } from '../kernel/logger.ts';
import type { AnyJob } from './job.ts';
import { type JobBase, type Scheduler, startScheduler } from './scheduler.ts';
import { scheduleSealAudit } from './seal-audit.ts';

export const JOBS_SCHEMA = 'control_jobs';

/** pg-boss's cron pass runs this often (≤ 30 s keeps a minute's occurrence from being missed: pg-boss#914). */
export const CRON_MONITOR_SECONDS = 30;

export interface JobRunnerOptions {
  connectionString: string;
  pool: Pool;
  signer: Signer;
  log: Logger;
  /** 0: no sealer ticker here. */
  sealIntervalSeconds: number;
  /** The scheduled jobs and what they run with; absent: the sealer only. */
  scheduled?: { jobs: readonly AnyJob[]; base: JobBase };
  clock?: () => Date;
}

export interface JobRunner {
  boss: PgBoss;
  /** Stops the ticker and the workers, lets a job in flight finish (bounded), closes pg-boss's connections. */
  stop(): Promise<void>;
}

export async function startJobRunner(options: JobRunnerOptions): Promise<JobRunner> {
  const { log } = options;
  const boss = new PgBoss({
    connectionString: options.connectionString,
    schema: JOBS_SCHEMA,
    application_name: 'enclave-jobs',
    max: 3,
    cronMonitorIntervalSeconds: CRON_MONITOR_SECONDS,
  });
  boss.on('error', (err) => log.error('job queue error', { error: err }));
  await boss.start();
  const stops: Array<() => void | Promise<void>> = [];
  let scheduler: Scheduler | undefined;
  try {
    if (options.sealIntervalSeconds > 0) {
      const deps = { pool: options.pool, signer: options.signer, log, clock: options.clock };
      stops.push(await scheduleSealAudit(boss, deps, options.sealIntervalSeconds));
    }
    if (options.scheduled) {
      scheduler = await startScheduler(boss, options.scheduled.jobs, options.scheduled.base);
      stops.push(() => scheduler?.stop());
    }
  } catch (err) {
    for (const stop of stops) await stop();
    await boss.stop({ graceful: false });
    throw err;
  }
  log.info('jobs started', { schema: JOBS_SCHEMA, sealIntervalSeconds: options.sealIntervalSeconds });
  return {
    boss,
    stop: async () => {
      for (const stop of stops) await stop();
      await boss.stop({ graceful: true, timeout: 10_000 });
    },
  };
}
