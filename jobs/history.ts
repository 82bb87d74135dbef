// The job-run history (control.job_runs): every run of a scheduled job, and
// every tenant of a fan-out, with its outcome, counts and error, kept
// JOB_HISTORY_DAYS (pg-boss forgets its jobs after a week).
import type { Pool } from '../kernel/db.ts';
import { run } from '../kernel/db.ts';
import { InvalidInputError } from '../kernel/errors.ts';
import * as sql from './history-sql.ts';

export type { RunOutcome, RunTrigger } from './history-sql.ts';

export interface JobRun {
  id: string;
  job: string;
  jobId: string | null;
  tenantId: string | null;
  trigger: sql.RunTrigger;
  instance: string;
  startedAt: Date;
  finishedAt: Date | null;
  outcome: sql.RunOutcome;
  counts: Record<string, number>;
  error: string | null;
}

export interface JobSummary {
  job: string;
  last: Pick<JobRun, 'startedAt' | 'finishedAt' | 'outcome' | 'error' | 'counts'> | null;
  runs24h: number;
  failed24h: number;
  running: number;
}

/** Errors are stored as one line of at most this many characters. */
const MAX_ERROR = 2000;

export async function startRun(
  pool: Pool,
  run_: {
    job: string;
    jobId: string | null;
    tenantId: string | null;
    trigger: sql.RunTrigger;
    instance: string;
  },
): Promise<string> {
  const { rows } = await run<{ id: string }>(
    pool,
    sql.insertRun(run_.job, run_.jobId, run_.tenantId, run_.trigger, run_.instance),
  );
  return (rows[0] as { id: string }).id;
}

export async function finishRun(
  pool: Pool,
  id: string,
  result: { counts: Record<string, number> } | { error: unknown },
): Promise<void> {
  if ('counts' in result) await run(pool, sql.finishRun(id, 'succeeded', result.counts, null));
  else {
    const counts = (result.error as { counts?: unknown }).counts;
    const kept = counts && typeof counts === 'object' ? (counts as Record<string, number>) : {};
    await run(pool, sql.finishRun(id, 'failed', kept, errorLine(result.error)));
  }
}

export function errorLine(err: unknown): string {
  const text =
    err instanceof Error ? `${err.name === 'Error' ? '' : `${err.name}: `}${err.message}` : String(err);
  return text.replace(/\s+/g, ' ').trim().slice(0, MAX_ERROR) || 'failed without a message';
}

/** Marks runs of `job` interrupted that are older than its expiry (their process died); forgets old runs. */
export async function sweepHistory(
  pool: Pool,
  jobs: ReadonlyArray<{ name: string; expireInSeconds: number }>,
  keepDays: number,
): Promise<void> {
  for (const job of jobs) await run(pool, sql.markInterrupted(job.name, job.expireInSeconds + 60));
  await run(pool, sql.deleteOlderThan(keepDays));
}

export interface RunsPage {
  runs: JobRun[];
  /** Opaque: hand it back as `cursor` for the next page; null on the last one. */
  nextCursor: string | null;
}

const RUN_CURSOR = /^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{1,6})?[+-]\d\d(:\d\d)?)\|([1-9]\d{0,18})$/;

/** The run history, newest first, keyset-paged (cursor: base64url of started_at and id). */
export async function runsPage(
  pool: Pool,
  options: { job?: string; failedOnly?: boolean; cursor?: string | null; limit?: number } = {},
): Promise<RunsPage> {
  const limit = options.limit ?? 50;
  let after: { at: string; id: string } | null = null;
  if (options.cursor) {
    const m = RUN_CURSOR.exec(Buffer.from(options.cursor, 'base64url').toString('utf8'));
    if (!m?.[1] || !m[4]) throw new InvalidInputError('cursor: not a cursor of this list');
    after = { at: m[1], id: m[4] };
  }
  const { rows } = await run<sql.JobRunRow & { started_key: string }>(
    pool,
    sql.listRuns(options.job ?? null, options.failedOnly ?? false, after, limit + 1),
  );
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return {
    runs: page.map(toJobRun),
    nextCursor:
      rows.length > limit && last
        ? Buffer.from(`${last.started_key}|${last.id}`).toString('base64url')
        : null,
  };
}

/** The newest runs (one page), newest first. */
export async function listRuns(
  pool: Pool,
  options: { job?: string; failedOnly?: boolean; limit?: number } = {},
): Promise<JobRun[]> {
  return (await runsPage(pool, options)).runs;
}

function toJobRun(r: sql.JobRunRow): JobRun {
  return {
    id: r.id,
    job: r.job,
    jobId: r.job_id,
    tenantId: r.tenant_id,
    trigger: r.trigger,
    instance: r.instance,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    outcome: r.outcome,
    counts: r.counts,
    error: r.error,
  };
}

interface SummaryRow {
  job: string;
  last_started_at: Date | null;
  last_finished_at: Date | null;
  last_outcome: sql.RunOutcome | null;
  last_error: string | null;
  last_counts: Record<string, number> | null;
  failed_24h: number;
  runs_24h: number;
  running: number;
}

export async function summarize(pool: Pool, jobs: readonly string[]): Promise<JobSummary[]> {
  const { rows } = await run<SummaryRow>(pool, sql.summary(jobs));
  return rows.map((r) => ({
    job: r.job,
    last:
      r.last_started_at && r.last_outcome
        ? {
            startedAt: r.last_started_at,
            finishedAt: r.last_finished_at,
            outcome: r.last_outcome,
            error: r.last_error,
            counts: r.last_counts ?? {},
          }
        : null,
    runs24h: r.runs_24h,
    failed24h: r.failed_24h,
    running: r.running,
  }));
}
