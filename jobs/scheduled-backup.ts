// The scheduled backup (docs/BACKUP.md, "Scheduled backups and restore
// checks"). Two jobs:
//
// - `backup-fleet`, on BACKUP_SCHEDULE, once across instances: lists the live
//   tenants (active, suspended, archived; never deleted or provisioning),
//   runs the drift check for all of them in a few batched calls
//   (driftOfTenants, DRIFT_BATCH tenants per call: one scratch schema per
//   schema version per call, not per tenant, and no transaction held open
//   over the whole fleet), fans out one `backup-tenant` job per tenant with
//   its drift findings, then prunes (retention, BACKUP_KEEP_COUNT/DAYS).
// - `backup-tenant`, fed by the fan-out only: one tenant's backup in the
//   backup issue's format (backupTenant, kind 'scheduled', by the system),
//   BACKUP_CONCURRENCY at once per worker process; under pg-boss the
//   singletonKey is the tenant, so a tenant is never backed up twice at once.
//   A failed backup is recorded failed in control.backups and on the
//   tenant's chain by backupTenant, logged here as an error, and the job run
//   fails (throws), so it shows in the job history and the health API.
//
// Why the prune is in the fleet job and not a job of its own or per tenant:
// retention is one pass over the whole catalog (one query, plus the sweep of
// crashed temporary files and the set-aside schemas due), and BACKUP_SCHEDULE
// is documented as "back up and prune". Under pg-boss the fan-out only
// enqueues, so the prune runs while this run's backups are still queued: it
// applies retention to what earlier runs made, and this run's archives are
// pruned by the next run (a tenant may hold BACKUP_KEEP_COUNT + 1 good
// backups in between). That is safe: prune never deletes a tenant's newest
// good backup, and never a temporary file still being written.
import type { ArchiveManifest } from '../backup/archive-format.ts';
import { backupTenant, driftOfTenants } from '../backup/backup.ts';
import { backedUpSince, databaseNow, liveTenantIds } from '../backup/restore-checks.ts';
import { pruneBackups } from '../backup/retention.ts';
import { SYSTEM } from '../kernel/audit-inbox.ts';
import { run } from '../kernel/db.ts';
import * as tsql from '../tenancy/tenant-sql.ts';
import { type JobCounts, type JobDefinition, JobRunFailedError } from './job.ts';

/** Tenants per drift-check call: each call is one rolled-back transaction over that many schemas. */
export const DRIFT_BATCH = 500;

export interface BackupTenantData {
  tenantId: string;
  /** The tenant's drift findings, checked by the fleet run (without them the backup checks itself). */
  drift?: ArchiveManifest['drift'];
  /**
   * The fleet run's start (ISO, the database's clock): a tenant that already
   * has a good scheduled backup started since then is skipped (a retried or
   * repeated job of the same run does not back it up twice).
   */
  since?: string;
}

export const backupTenantJob: JobDefinition<BackupTenantData> = {
  name: 'backup-tenant',
  title: "Back up one tenant (fed by backup-fleet's fan-out)",
  schedule: () => null,
  concurrency: (config) => config.BACKUP_CONCURRENCY,
  expireInSeconds: 3600,
  tenantOf: (data) => data.tenantId,
  async run(ctx, data): Promise<JobCounts> {
    const tenant = (await run<tsql.TenantRow>(ctx.pool, tsql.selectTenant(data.tenantId))).rows[0];
    if (!tenant || !tsql.LIVE_STATES.includes(tenant.state)) {
      // Deleted (or dropped by the lifecycle) since the fleet run listed it: nothing to back up.
      ctx.log.info('scheduled backup skipped: the tenant is no longer live', {
        tenantId: data.tenantId,
        state: tenant?.state ?? null,
      });
      return { skipped: 1 };
    }
    if (data.since) {
      const done = await backedUpSince(ctx.pool, tenant.id, new Date(data.since));
      if (done) {
        ctx.log.info('scheduled backup skipped: already backed up in this run', {
          tenantId: tenant.id,
          backupId: done,
        });
        return { skipped: 1 };
      }
    }
    try {
      const made = await backupTenant(ctx.backups.backupContext(), tenant.id, {
        by: SYSTEM,
        kind: 'scheduled',
        ...(data.drift ? { drift: data.drift } : {}),
      });
      if (made.drift)
        ctx.log.warn(
          'scheduled backup of a drifted tenant: a restore rebuilds the templates, not the drift',
          {
            tenantId: tenant.id,
            backupId: made.id,
            drift: made.drift,
          },
        );
      return { backups: 1, rows: made.rows ?? 0, bytes: made.bytes ?? 0, drifted: made.drift ? 1 : 0 };
    } catch (err) {
      ctx.log.error('scheduled backup FAILED', { tenantId: tenant.id, error: err });
      throw err;
    }
  },
};

export const backupFleetJob: JobDefinition = {
  name: 'backup-fleet',
  title: 'Back up every live tenant (fan-out to backup-tenant), then prune old backups',
  schedule: (config) => config.BACKUP_SCHEDULE,
  concurrency: () => 1,
  // Inline (`enclave jobs run backup-fleet`) the backups run inside this run; under pg-boss it only enqueues.
  expireInSeconds: 12 * 3600,
  async run(ctx): Promise<JobCounts> {
    const since = (await databaseNow(ctx.pool)).toISOString();
    const ids = await liveTenantIds(ctx.pool);
    const items: BackupTenantData[] = [];
    let driftChecked = 0;
    for (let i = 0; i < ids.length; i += DRIFT_BATCH) {
      ctx.signal.throwIfAborted();
      const batch = ids.slice(i, i + DRIFT_BATCH);
      const drifts = await driftOfTenants(ctx.pool, ctx.migrations, batch);
      for (const tenantId of batch) {
        const drift = drifts.get(tenantId);
        if (drift?.checked) driftChecked += 1;
        // Unchecked (the check could not run): the backup checks this tenant itself.
        items.push({ tenantId, since, ...(drift?.checked ? { drift } : {}) });
      }
    }
    ctx.log.info('scheduled backup: fanning out', { tenants: ids.length, driftChecked });
    const fanned = await ctx.fanOut(backupTenantJob, items);
    ctx.signal.throwIfAborted();
    const pruned = await pruneBackups(ctx.pool, ctx.backups.storage, {
      keepCount: ctx.backups.keepCount,
      keepDays: ctx.backups.keepDays,
      now: ctx.clock(),
      by: SYSTEM,
      storageFor: ctx.backups.storageAt,
    });
    for (const e of pruned.errors)
      ctx.log.error('prune could not delete a backup', {
        backupId: e.id,
        tenantId: e.tenantId,
        error: e.error,
      });
    const counts: JobCounts = {
      tenants: ids.length,
      driftChecked,
      ...fanned,
      pruned: pruned.deleted.length,
      pruneErrors: pruned.errors.length,
      failedStale: pruned.failedStale.length,
      droppedAsides: pruned.droppedAsides.length,
    };
    ctx.log.info('scheduled backup ran', counts);
    // Inline, the fan-out ran the backups here: any failure fails this run too (each failed tenant's own run says which).
    if ((fanned.failed ?? 0) > 0 || pruned.errors.length > 0)
      throw new JobRunFailedError(
        `${fanned.failed ?? 0} of ${ids.length} tenant backup(s) failed, ${pruned.errors.length} prune error(s)`,
        counts,
      );
    return counts;
  },
};
