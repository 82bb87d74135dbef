// control.job_runs statements (migrations/control/0010_job_runs.sql).
import type { Statement } from '../kernel/db.ts';

export type RunTrigger = 'schedule' | 'manual' | 'fanout';
export type RunOutcome = 'running' | 'succeeded' | 'failed' | 'interrupted';

export interface JobRunRow {
  id: string;
  job: string;
  job_id: string | null;
  tenant_id: string | null;
  trigger: RunTrigger;
  instance: string;
  started_at: Date;
  finished_at: Date | null;
  outcome: RunOutcome;
  counts: Record<string, number>;
  error: string | null;
}

const COLUMNS =
  'id::text, job, job_id, tenant_id, trigger, instance, started_at, finished_at, outcome, counts, error';

export const insertRun = (
  job: string,
  jobId: string | null,
  tenantId: string | null,
  trigger: RunTrigger,
  instance: string,
): Statement => ({
  text: `INSERT INTO control.job_runs (job, job_id, tenant_id, trigger, instance)
         VALUES ($1, $2, $3, $4, $5) RETURNING id::text`,
  values: [job, jobId, tenantId, trigger, instance],
});

export const finishRun = (
  id: string,
  outcome: 'succeeded' | 'failed',
  counts: Record<string, number>,
  error: string | null,
): Statement => ({
  text: `UPDATE control.job_runs SET finished_at = clock_timestamp(), outcome = $2, counts = $3, error = $4
         WHERE id = $1`,
  values: [id, outcome, JSON.stringify(counts), error],
});

/** Runs still 'running' long after their job would have expired: their process is gone. */
export const markInterrupted = (job: string, olderThanSeconds: number): Statement => ({
  text: `UPDATE control.job_runs SET outcome = 'interrupted', finished_at = clock_timestamp(),
                error = 'the process running it stopped before it finished'
         WHERE outcome = 'running' AND job = $1 AND started_at < now() - make_interval(secs => $2)`,
  values: [job, olderThanSeconds],
});

export const deleteOlderThan = (days: number): Statement => ({
  text: 'DELETE FROM control.job_runs WHERE started_at < now() - make_interval(days => $1)',
  values: [days],
});

/** The newest runs, newest first, keyset-paged on (started_at, id); of one job, and only failures, when asked. */
export const listRuns = (
  job: string | null,
  failedOnly: boolean,
  after: { at: string; id: string } | null,
  limit: number,
): Statement => ({
  text: `SELECT ${COLUMNS}, started_at::text AS started_key FROM control.job_runs
         WHERE ($1::text IS NULL OR job = $1) AND (NOT $2 OR outcome = 'failed')
           AND ($3::timestamptz IS NULL OR (started_at, id) < ($3::timestamptz, $4::bigint))
         ORDER BY started_at DESC, id DESC LIMIT $5`,
  values: [job, failedOnly, after?.at ?? null, after?.id ?? null, limit],
});

/** Per job: its last finished run (any trigger), and how its runs of the last day ended. */
export const summary = (jobs: readonly string[]): Statement => ({
  text: `SELECT j.job,
                last.started_at AS last_started_at, last.finished_at AS last_finished_at,
                last.outcome AS last_outcome, last.error AS last_error, last.counts AS last_counts,
                (SELECT count(*)::int FROM control.job_runs r
                  WHERE r.job = j.job AND r.started_at > now() - interval '1 day' AND r.outcome = 'failed') AS failed_24h,
                (SELECT count(*)::int FROM control.job_runs r
                  WHERE r.job = j.job AND r.started_at > now() - interval '1 day') AS runs_24h,
                (SELECT count(*)::int FROM control.job_runs r
                  WHERE r.job = j.job AND r.outcome = 'running') AS running
         FROM unnest($1::text[]) AS j(job)
         LEFT JOIN LATERAL (
           SELECT * FROM control.job_runs r WHERE r.job = j.job AND r.outcome <> 'running'
           ORDER BY r.started_at DESC, r.id DESC LIMIT 1) last ON true`,
  values: [jobs],
});
