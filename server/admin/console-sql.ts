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
