// What GET /metrics reads from the control plane: one short statement per
// area, each bounded by an index (never one query per tenant or per job row
// scanned on every scrape). server/http/metrics.ts runs them at most once per
// cache period, whatever the number of scrapers.
import type { Statement } from '../../kernel/db.ts';
import { LIVE_STATES } from '../../tenancy/tenant-sql.ts';

export interface TenantStateRow {
  state: string;
  n: number;
}

/** Tenants by state (control.tenants is one row per tenant: tens of thousands at most). */
export const tenantsByState = (): Statement => ({
  text: 'SELECT state, count(*)::int AS n FROM control.tenants GROUP BY state',
  values: [],
});

export interface AuditRow {
  backlog: number;
  oldest: Date | null;
  last_seal: Date | null;
}

/**
 * The audit inbox (rows not yet sealed), the time of its oldest row (by id:
 * the primary key, no scan) and the newest registry checkpoint: every seal
 * that sealed anything signs one (audit/sealer.ts), found by
 * audit_checkpoints_time_idx (chain, created_at).
 */
export const auditState = (): Statement => ({
  text: `SELECT (SELECT count(*) FROM control.audit_inbox)::bigint AS backlog,
                (SELECT occurred_at FROM control.audit_inbox ORDER BY id LIMIT 1) AS oldest,
                (SELECT max(created_at) FROM control.audit_checkpoints WHERE chain = 'registry') AS last_seal`,
  values: [],
});

export interface BackupAgeRow {
  live: number;
  without: number;
  oldest_latest: Date | null;
}

/**
 * Over live tenants (schema exists: LIVE_STATES), each one's newest succeeded
 * backup (backups_tenant_idx, newest first, stops at the first success): the
 * oldest of those, and how many live tenants have none at all. Aggregated
 * here, never one series per tenant (see docs/METRICS.md).
 */
export const backupAges = (): Statement => ({
  text: `SELECT count(*)::int AS live,
                count(*) FILTER (WHERE b.finished_at IS NULL)::int AS without,
                min(b.finished_at) AS oldest_latest
           FROM control.tenants t
           LEFT JOIN LATERAL (
             SELECT finished_at FROM control.backups
              WHERE tenant_id = t.id AND outcome = 'succeeded'
              ORDER BY started_at DESC LIMIT 1
           ) b ON true
          WHERE t.state = ANY($1)`,
  values: [LIVE_STATES],
});

export interface JobRow {
  job: string;
  /** Runs started within the window, by outcome (running included). */
  recent: Record<string, number>;
  last_outcome: string | null;
  last_finished_at: Date | null;
  last_seconds: number | null;
  last_succeeded_at: Date | null;
  last_failed_at: Date | null;
}

/**
 * Per job of control.job_runs (a fan-out writes one row per tenant, so the
 * table holds millions of rows over JOB_HISTORY_DAYS): the job names by a
 * loose index scan (a recursive CTE hopping through job_runs_job_idx), then
 * for each job index range scans only: runs started in the window by
 * outcome, the newest finished run (outcome, time, duration), the newest
 * success and the newest failure (job_runs_failed_idx).
 */
export const jobState = (windowSeconds: number): Statement => ({
  text: `WITH RECURSIVE jobs(job) AS (
           (SELECT job FROM control.job_runs ORDER BY job LIMIT 1)
           UNION ALL
           SELECT (SELECT r.job FROM control.job_runs r WHERE r.job > jobs.job ORDER BY r.job LIMIT 1)
             FROM jobs WHERE jobs.job IS NOT NULL
         )
         SELECT j.job,
                recent.by_outcome AS recent,
                last_done.outcome AS last_outcome,
                last_done.finished_at AS last_finished_at,
                last_done.seconds AS last_seconds,
                (SELECT r.finished_at FROM control.job_runs r
                  WHERE r.job = j.job AND r.outcome = 'succeeded'
                  ORDER BY r.started_at DESC LIMIT 1) AS last_succeeded_at,
                (SELECT r.finished_at FROM control.job_runs r
                  WHERE r.outcome = 'failed' AND r.job = j.job
                  ORDER BY r.started_at DESC LIMIT 1) AS last_failed_at
           FROM jobs j
          CROSS JOIN LATERAL (
            SELECT coalesce(jsonb_object_agg(c.outcome, c.n), '{}'::jsonb) AS by_outcome
              FROM (SELECT r.outcome, count(*)::int AS n FROM control.job_runs r
                     WHERE r.job = j.job AND r.started_at >= now() - make_interval(secs => $1)
                     GROUP BY r.outcome) c
          ) recent
           LEFT JOIN LATERAL (
             SELECT r.outcome, r.finished_at,
                    extract(epoch FROM r.finished_at - r.started_at)::float8 AS seconds
               FROM control.job_runs r
              WHERE r.job = j.job AND r.outcome <> 'running'
              ORDER BY r.started_at DESC LIMIT 1
           ) last_done ON true
          WHERE j.job IS NOT NULL
          ORDER BY j.job`,
  values: [windowSeconds],
});

export interface ThreatFlagRow {
  rule: string;
  severity: string;
  open: number;
  total: number;
}

/**
 * Threat flags (control.threat_flags) by rule and severity: how many are open
 * and how many were raised at all. Flags are few (one open per rule and
 * subject; bursts are counted in Redis, not as rows).
 */
export const threatFlags = (): Statement => ({
  text: `SELECT rule, severity,
                count(*) FILTER (WHERE acknowledged_at IS NULL)::int AS open,
                count(*)::int AS total
           FROM control.threat_flags GROUP BY rule, severity`,
  values: [],
});
