// The admin console's cards and job pages (server/admin/console.ts): counts
// from the control plane, each one statement on an index.
import type { Statement } from '../../kernel/db.ts';
import { LATEST_GOOD_BACKUP } from './tenant-directory-sql.ts';

/** The console's cards: tenants by state. */
export const tenantsByState = (): Statement => ({
  text: 'SELECT state, count(*)::int AS n FROM control.tenants GROUP BY state',
  values: [],
});

/** The audit events recorded and not sealed yet (the sealer deletes what it seals), and the oldest one's time. */
export const auditBacklog = (): Statement => ({
  text: 'SELECT count(*)::int AS n, min(occurred_at) AS oldest FROM control.audit_inbox',
  values: [],
});

/** Failed job runs started in the last 24 hours (index job_runs_failed_idx). */
export const failedRuns24h = (): Statement => ({
  text: `SELECT count(*)::int AS n, count(DISTINCT job)::int AS jobs FROM control.job_runs
         WHERE outcome = 'failed' AND started_at > now() - interval '24 hours'`,
  values: [],
});

/** Live tenants without a good backup in `hours` (for the backups card). */
export const tenantsWithoutBackup = (hours: number): Statement => ({
  text: `SELECT count(*)::int AS n FROM control.tenants t
         ${LATEST_GOOD_BACKUP}
         WHERE t.state IN ('active', 'suspended', 'archived')
           AND (b.finished_at IS NULL OR b.finished_at < now() - make_interval(hours => $1))`,
  values: [hours],
});

/** Whether a run of `job` holds its advisory lock right now (kernel/locks.ts jobTryLock: two-key form). */
export const jobLocked = (namespace: number, job: string): Statement => ({
  text: `SELECT EXISTS (
           SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 2
             AND classid = $1::int4::oid AND objid = hashtext($2)::oid) AS locked`,
  values: [namespace, job],
});

/** The run history, newest first, keyset-paged on (started_at, id); of one job and only failures when asked. */
export const runsPage = (
  job: string | null,
  failedOnly: boolean,
  after: { at: string; id: string } | null,
  limit: number,
): Statement => ({
  text: `SELECT id::text, job, tenant_id, trigger, instance, started_at, started_at::text AS started_key,
                finished_at, outcome, counts, error
         FROM control.job_runs
         WHERE ($1::text IS NULL OR job = $1) AND (NOT $2 OR outcome = 'failed')
           AND ($3::timestamptz IS NULL OR (started_at, id) < ($3::timestamptz, $4::bigint))
         ORDER BY started_at DESC, id DESC LIMIT $5`,
  values: [job, failedOnly, after?.at ?? null, after?.id ?? null, limit],
});
