// The inactive-tenant lifecycle as a scheduled job (docs/LIFECYCLE.md): on
// LIFECYCLE_SCHEDULE, off when INACTIVE_AFTER_DAYS is 0. The body takes the
// steps due as of ctx.clock() (tenancy/inactivity.ts); the final backup is
// backup/backup.ts's with kind 'final', verified by loading it into a scratch
// schema and comparing every table (backup/restore.ts verifyArchiveByRestore).
// `enclave tenants lifecycle` runs the same body.
import { backupTenant } from '../backup/backup.ts';
import { verifyArchiveByRestore } from '../backup/restore.ts';
import type { AuditBy } from '../kernel/audit-inbox.ts';
import {
  type FinalBackup,
  type LifecycleCounts,
  type LifecycleDeps,
  lifecycleSettings,
  runLifecycle,
} from '../tenancy/inactivity.ts';
import { type JobContext, type JobDefinition, JobRunFailedError } from './job.ts';

/** Who takes the lifecycle's steps, in the audit trail. */
export const LIFECYCLE_BY: AuditBy = { actor: { type: 'job', id: 'tenant-lifecycle' } };

/** The lifecycle's dependencies from a job context (tests and the kill-test child add hooks). */
export function lifecycleDeps(
  ctx: Pick<JobContext, 'pool' | 'config' | 'clock' | 'backups' | 'log'> & { signal?: AbortSignal },
  hooks?: LifecycleDeps['hooks'],
): LifecycleDeps {
  return {
    pool: ctx.pool,
    settings: lifecycleSettings(ctx.config),
    now: ctx.clock(),
    by: LIFECYCLE_BY,
    log: ctx.log,
    ...(ctx.signal ? { signal: ctx.signal } : {}),
    ...(hooks ? { hooks } : {}),
    finalBackup: async (tenantId): Promise<FinalBackup> => {
      const b = await backupTenant(ctx.backups.backupContext(), tenantId, {
        by: LIFECYCLE_BY,
        kind: 'final',
      });
      return { id: b.id, location: b.location, sha256: b.sha256, bytes: b.bytes, rows: b.rows };
    },
    verify: async (backup) => {
      const location = backup.location as string;
      const result = await verifyArchiveByRestore(await ctx.backups.restoreContext(), () =>
        ctx.backups.storageAt(location).open(location),
      );
      return {
        ok: result.tables.every((t) => t.ok),
        tables: result.tables.length,
        rows: result.tables.reduce((n, t) => n + t.rows, 0),
      };
    },
  };
}

/** "flagged 1, suspended 0, ...": a run's counts in one line. */
export function describeCounts(counts: LifecycleCounts): string {
  return Object.entries(counts)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
}

export const lifecycleJob: JobDefinition = {
  name: 'tenant-lifecycle',
  title: 'inactive tenants: flag, suspend, final backup + verify, drop (docs/LIFECYCLE.md)',
  schedule: (config) => (config.INACTIVE_AFTER_DAYS === 0 ? null : config.LIFECYCLE_SCHEDULE),
  // A drop day backs up and verifies each tenant due: hours for a big fleet.
  expireInSeconds: 6 * 3600,
  async run(ctx): Promise<LifecycleCounts> {
    const counts = await runLifecycle(lifecycleDeps(ctx));
    // A failed step (a final backup that failed or did not verify) fails the run, so it shows
    // in the job history; the other tenants' steps were taken, and the next run retries it.
    if (counts.failed > 0)
      throw new JobRunFailedError(
        `lifecycle: ${counts.failed} tenant(s) failed a step (see the log); ${describeCounts(counts)}`,
        { ...counts },
      );
    return counts;
  },
};
