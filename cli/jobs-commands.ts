// `enclave worker` and `enclave jobs list|run|history` (docs/JOBS.md).
//
// The worker runs the audit sealer and every scheduled job, without an HTTP
// server, until SIGINT or SIGTERM. `jobs run NAME` runs one job now, in this
// process (a fan-out runs its tenants here too, BACKUP_CONCURRENCY at a time)
// and records it in the history like a scheduled run; its exit code is the
// run's outcome.
import type { Command } from 'commander';
import { Option } from 'commander';
import type { JobBase } from '../jobs/scheduler.ts';
import type { Logger } from '../kernel/logger.ts';
import type { CliContext } from './connect.ts';
import { notice, printJson, printTable } from './output.ts';
import { UsageError } from './usage-error.ts';

const json = () => new Option('--json', 'print machine-readable JSON');

function limit(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > 1000)
    throw new UsageError('--limit must be a whole number from 1 to 1000');
  return n;
}

export function registerJobCommands(program: Command): void {
  program
    .command('worker')
    .description('run the audit sealer and the scheduled jobs, without an HTTP server, until SIGINT/SIGTERM')
    .action(async () => {
      process.exitCode = await workerCommand();
    });
  const jobs = program.command('jobs').description('scheduled jobs: their schedules, history, and a run now');
  jobs
    .command('list')
    .description('every job: schedule, next run, last outcome, runs and failures in the last 24 hours')
    .addOption(json())
    .action(async (opts) => {
      process.exitCode = await listCommand(opts);
    });
  jobs
    .command('run')
    .description('run one job now, in this process, once (recorded in the history)')
    .argument('<name>', 'the job (see `enclave jobs list`)')
    .addOption(json())
    .action(async (name: string, opts) => {
      process.exitCode = await runCommand(name, opts);
    });
  jobs
    .command('history')
    .description('the newest job runs, newest first')
    .argument('[name]', 'only this job')
    .option('--failed', 'only failed runs')
    .option('--limit <n>', 'how many (default 50)', limit)
    .addOption(json())
    .action(async (name: string | undefined, opts) => {
      process.exitCode = await historyCommand(name, opts);
    });
}

async function withContext<T>(poolSize: number, fn: (ctx: CliContext) => Promise<T>): Promise<T> {
  const { connect } = await import('./connect.ts');
  const ctx = await connect(poolSize);
  try {
    return await fn(ctx);
  } finally {
    await ctx.close();
  }
}

/** What a job run from the CLI is handed: the CLI's pool, the signing key, the configured backups. */
export async function jobBase(
  ctx: CliContext,
  log: Logger,
): Promise<JobBase & { signer: import('../audit/signing.ts').Signer }> {
  const { loadSigner } = await import('../audit/signing.ts');
  const { createBackups } = await import('../backup/context.ts');
  const signer = await loadSigner(ctx.config, ctx.pool);
  return {
    pool: ctx.pool,
    log,
    config: ctx.config,
    clock: () => new Date(),
    backups: createBackups(ctx.config, ctx.pool, { signer, migrations: ctx.migrations }),
    signer,
    migrations: ctx.migrations,
  };
}

async function workerCommand(): Promise<number> {
  const { loadConfig } = await import('../kernel/config.ts');
  const { createLogger } = await import('../kernel/logger.ts');
  const config = loadConfig();
  const log = createLogger({ level: config.LOG_LEVEL });
  return withContext(Math.max(4, config.BACKUP_CONCURRENCY + 2), async (ctx) => {
    const { startJobRunner } = await import('../jobs/runner.ts');
    const { JOBS } = await import('../jobs/registry.ts');
    const base = await jobBase(ctx, log);
    const runner = await startJobRunner({
      connectionString: ctx.url,
      pool: ctx.pool,
      signer: base.signer,
      log,
      sealIntervalSeconds: ctx.config.AUDIT_SEAL_INTERVAL_SECONDS,
      scheduled: { jobs: JOBS, base },
    });
    log.info('worker started', { jobs: JOBS.length });
    const signal = await new Promise<NodeJS.Signals>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    log.info('worker stopping', { signal });
    await runner.stop();
    log.info('worker stopped');
    return 0;
  });
}

async function listCommand(opts: { json?: boolean }): Promise<number> {
  return withContext(2, async (ctx) => {
    const { JOBS } = await import('../jobs/registry.ts');
    const { summarize } = await import('../jobs/history.ts');
    const { nextRuns } = await import('../jobs/scheduler.ts');
    const summaries = new Map(
      (
        await summarize(
          ctx.pool,
          JOBS.map((j) => j.name),
        )
      ).map((s) => [s.job, s]),
    );
    const rows = JOBS.map((job) => {
      const cron = job.schedule(ctx.config);
      const s = summaries.get(job.name);
      return {
        name: job.name,
        title: job.title,
        schedule: cron,
        nextRun: cron ? (nextRuns(cron, 1)[0] as Date).toISOString() : null,
        lastOutcome: s?.last?.outcome ?? null,
        lastStartedAt: s?.last?.startedAt.toISOString() ?? null,
        lastError: s?.last?.error ?? null,
        lastCounts: s?.last?.counts ?? null,
        runs24h: s?.runs24h ?? 0,
        failed24h: s?.failed24h ?? 0,
        running: s?.running ?? 0,
      };
    });
    if (opts.json) printJson({ jobs: rows });
    else
      printTable(
        rows.map((r) => ({
          ...r,
          schedule: r.schedule ?? (JOBS.find((j) => j.name === r.name)?.tenantOf ? '(per tenant)' : 'off'),
          last: r.lastOutcome ? `${r.lastOutcome} ${r.lastStartedAt}` : 'never',
          '24h': `${r.runs24h} runs, ${r.failed24h} failed`,
        })),
        ['name', 'schedule', 'nextRun', 'last', '24h', 'running'],
        'no jobs',
      );
    return 0;
  });
}

async function runCommand(name: string, opts: { json?: boolean }): Promise<number> {
  const { JOBS } = await import('../jobs/registry.ts');
  const { findJob, runJobNow, UnknownJobError } = await import('../jobs/scheduler.ts');
  let job: ReturnType<typeof findJob>;
  try {
    job = findJob(JOBS, name);
  } catch (err) {
    if (err instanceof UnknownJobError) throw new UsageError(err.message);
    throw err;
  }
  if (job.tenantOf)
    throw new UsageError(`${name} runs per tenant, started by its fleet job; run that one instead`);
  const { loadConfig } = await import('../kernel/config.ts');
  const { createLogger } = await import('../kernel/logger.ts');
  const config = loadConfig();
  // Progress (a line per finished tenant of a fan-out) on stderr, JSON on stdout alone.
  const log = createLogger({ level: config.LOG_LEVEL, stream: process.stderr });
  return withContext(Math.max(4, config.BACKUP_CONCURRENCY + 2), async (ctx) => {
    const base = await jobBase(ctx, log);
    const stop = new AbortController();
    const onSignal = () => stop.abort();
    process.once('SIGINT', onSignal);
    try {
      const counts = await runJobNow(job, base, stop.signal);
      if (opts.json) printJson({ job: name, outcome: 'succeeded', counts });
      else notice(`${name}: succeeded ${describeCounts(counts)}`);
      return counts.failed ? 1 : 0;
    } catch (err) {
      if (opts.json) printJson({ job: name, outcome: 'failed', error: (err as Error).message });
      throw err;
    } finally {
      process.off('SIGINT', onSignal);
    }
  });
}

function describeCounts(counts: Record<string, number>): string {
  const parts = Object.entries(counts).map(([k, v]) => `${k} ${v}`);
  return parts.length ? `(${parts.join(', ')})` : '';
}

async function historyCommand(
  name: string | undefined,
  opts: { failed?: boolean; limit?: number; json?: boolean },
): Promise<number> {
  return withContext(2, async (ctx) => {
    const { JOBS } = await import('../jobs/registry.ts');
    const { findJob, UnknownJobError } = await import('../jobs/scheduler.ts');
    if (name !== undefined) {
      try {
        findJob(JOBS, name);
      } catch (err) {
        if (err instanceof UnknownJobError) throw new UsageError(err.message);
        throw err;
      }
    }
    const { listRuns } = await import('../jobs/history.ts');
    const runs = await listRuns(ctx.pool, {
      ...(name ? { job: name } : {}),
      failedOnly: Boolean(opts.failed),
      limit: opts.limit ?? 50,
    });
    if (opts.json) printJson({ runs });
    else
      printTable(
        runs.map((r) => ({
          ...r,
          tenant: r.tenantId,
          counts: describeCounts(r.counts),
        })),
        ['startedAt', 'job', 'tenant', 'trigger', 'outcome', 'counts', 'error'],
        'no runs',
      );
    return 0;
  });
}
