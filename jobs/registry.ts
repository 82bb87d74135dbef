// Every scheduled job, in the order `enclave jobs list` shows them. A new job
// is one module exporting a JobDefinition (jobs/job.ts) and one line here.
// The audit sealer is not here: it runs every few seconds on its own ticker
// (jobs/seal-audit.ts) and would flood the history.
import type { AnyJob } from './job.ts';
import { lifecycleJob } from './lifecycle.ts';
import { auditPruneJob } from './prune-audit.ts';
import { restoreCheckJob } from './restore-check.ts';
import { backupFleetJob, backupTenantJob } from './scheduled-backup.ts';
import { tenantStatsJob } from './tenant-stats.ts';

export const JOBS: readonly AnyJob[] = [
  tenantStatsJob,
  auditPruneJob,
  backupFleetJob,
  backupTenantJob,
  restoreCheckJob,
  lifecycleJob,
];
