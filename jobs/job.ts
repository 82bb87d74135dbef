// What a scheduled job is, for the scheduler (jobs/scheduler.ts) and for the
// job modules that define one. A job's body is a plain async function of a
// JobContext: it runs the same under pg-boss, from `enclave jobs run NAME`
// and in a test, and knows nothing of HTTP.
import type { Signer } from '../audit/signing.ts';
import type { Backups } from '../backup/context.ts';
import type { Config } from '../kernel/config.ts';
import type { Pool } from '../kernel/db.ts';
import type { Logger } from '../kernel/logger.ts';
import type { TenantMigration } from '../tenancy/templates.ts';

/** What a run did, by name ("tenants": 2000, "failed": 2): stored with the run in control.job_runs. */
export type JobCounts = Record<string, number>;

/**
 * A run that did its work but found failures (a tenant's backup, a restore
 * check): the scheduler records it as failed, with its counts and the message.
 */
export class JobRunFailedError extends Error {
  override name = 'JobRunFailedError';
  readonly counts: JobCounts;
  constructor(message: string, counts: JobCounts) {
    super(message);
    this.counts = counts;
  }
}

export interface JobContext {
  /** The control pool (the service role: control plane and every tenant schema). */
  pool: Pool;
  log: Logger;
  config: Config;
  /** "Now" for the job: the lifecycle's clock is controllable in tests. */
  clock: () => Date;
  /** Aborted when the process stops or pg-boss expires the job: stop at the next safe point. */
  signal: AbortSignal;
  /** Backups made and checked with the configured storage and keys. */
  backups: Backups;
  /**
   * The audit signing key. No job body uses it (backups sign with `backups.signer`);
   * a run started from the web console has none.
   */
  signer?: Signer;
  migrations: readonly TenantMigration[];
  /**
   * Fan-out: one job of `job` per item. Under pg-boss each is sent to the job's
   * queue with singletonKey = job.tenantOf(item) (returns { enqueued });
   * inline (`enclave jobs run`, tests) they run here with the job's
   * concurrency, each recorded as its own run (returns { succeeded, failed }).
   */
  fanOut: <D extends object>(job: JobDefinition<D>, items: D[]) => Promise<JobCounts>;
}

// biome-ignore lint/suspicious/noExplicitAny: a definition of any data shape fits the list
export type AnyJob = JobDefinition<any>;

export interface JobDefinition<Data extends object = Record<string, never>> {
  /** The pg-boss queue name and the name people type: `enclave jobs run tenant-stats`. */
  name: string;
  /** One line for `enclave jobs list`. */
  title: string;
  /** The cron expression from the configuration, or null: not scheduled (off, or fed by fan-out only). */
  schedule: (config: Config) => string | null;
  /** Jobs this process works at once (default 1). */
  concurrency?: (config: Config) => number;
  /** pg-boss expires a job running longer than this (and the scheduler aborts it). */
  expireInSeconds: number;
  /** Per-tenant jobs: the tenant id in the data, for the history and singletonKey. */
  tenantOf?: (data: Data) => string | undefined;
  run(ctx: JobContext, data: Data): Promise<JobCounts>;
}
