// The restore-check job (docs/BACKUP.md, "Scheduled backups and restore
// checks"): on RESTORE_CHECK_SCHEDULE, the latest good backup of
// RESTORE_CHECK_SAMPLE tenants (never-checked first, then checked longest ago)
// is restored into scratch, compared with its manifest and the result
// recorded (control.restore_checks and the tenant's `tenant.backup.verify`).
// One at a time: a check loads a whole tenant inside one transaction, and a
// sample is small. A run with any failed check is a failed run: each failure
// is logged as an error, every backup of the sample is still checked, and the
// run throws at the end with its counts (failed > 0) in the error.
import { checkBackup, sampleForRestoreCheck } from '../backup/restore-checks.ts';
import { SYSTEM } from '../kernel/audit-inbox.ts';
import { type JobDefinition, JobRunFailedError } from './job.ts';

export const restoreCheckJob: JobDefinition = {
  name: 'restore-check',
  title: 'Restore the latest backup of a sample of tenants into scratch and compare it with its manifest',
  schedule: (config) => config.RESTORE_CHECK_SCHEDULE,
  concurrency: () => 1,
  expireInSeconds: 4 * 3600,
  async run(ctx) {
    const sample = await sampleForRestoreCheck(ctx.pool, ctx.config.RESTORE_CHECK_SAMPLE);
    const counts = { sampled: sample.length, checked: 0, ok: 0, failed: 0, rows: 0 };
    if (sample.length === 0) {
      ctx.log.info('restore check: no tenant has a good backup to check');
      return counts;
    }
    const restoreCtx = await ctx.backups.restoreContext();
    for (const target of sample) {
      ctx.signal.throwIfAborted();
      const check = await checkBackup(restoreCtx, ctx.backups.storageAt, target, SYSTEM);
      counts.checked += 1;
      counts.rows += check.rows ?? 0;
      if (check.outcome === 'ok') {
        counts.ok += 1;
        ctx.log.info('restore check passed', {
          tenantId: target.tenantId,
          backupId: target.backupId,
          tables: check.tables,
          rows: check.rows,
          durationMs: check.durationMs,
        });
      } else {
        counts.failed += 1;
        ctx.log.error('restore check FAILED', {
          tenantId: target.tenantId,
          backupId: target.backupId,
          error: check.error,
          durationMs: check.durationMs,
        });
      }
    }
    if (counts.failed > 0)
      throw new JobRunFailedError(
        `${counts.failed} of ${counts.checked} restore check(s) failed (see control.restore_checks)`,
        counts,
      );
    return counts;
  },
};
