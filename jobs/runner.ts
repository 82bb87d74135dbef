// pg-boss, started with the server: the scheduled audit seal and the daily
// retention. pg-boss keeps its tables in its own schema, `control_jobs`, next
// to `control` (the job queue is part of the control plane; tenant roles have
// no access to it, like everything outside their own schema).
import { PgBoss } from 'pg-boss';
import type { Signer } from '../audit/signing.ts';
import type { Pool } from '../kernel/db.ts';
import type { Logger } from '../kernel/logger.ts';
import { schedulePruneAudit } from './prune-audit.ts';
import { scheduleSealAudit } from './seal-audit.ts';

export const JOBS_SCHEMA = 'control_jobs';

export interface JobRunnerOptions {
  connectionString: string;
  pool: Pool;
  signer: Signer;
  log: Logger;
  sealIntervalSeconds: number;
  retentionDays: number;
  clock?: () => Date;
}

export interface JobRunner {
  boss: PgBoss;
  /** Stops the ticker, lets a job in flight finish (bounded), closes pg-boss's connections. */
  stop(): Promise<void>;
}

export async function startJobRunner(options: JobRunnerOptions): Promise<JobRunner> {
  const { log } = options;
  const boss = new PgBoss({
    connectionString: options.connectionString,
    schema: JOBS_SCHEMA,
    application_name: 'enclave-jobs',
    max: 3,
  });
  boss.on('error', (err) => log.error('job queue error', { error: err }));
  await boss.start();
  const stops: Array<() => void> = [];
  try {
    const deps = { pool: options.pool, signer: options.signer, log, clock: options.clock };
    stops.push(await scheduleSealAudit(boss, deps, options.sealIntervalSeconds));
    await schedulePruneAudit(boss, { ...deps, retentionDays: options.retentionDays });
  } catch (err) {
    for (const stop of stops) stop();
    await boss.stop({ graceful: false });
    throw err;
  }
  log.info('jobs started', { schema: JOBS_SCHEMA, sealIntervalSeconds: options.sealIntervalSeconds });
  return {
    boss,
    stop: async () => {
      for (const stop of stops) stop();
      await boss.stop({ graceful: true, timeout: 10_000 });
    },
  };
}
