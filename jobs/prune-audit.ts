// Daily audit retention (audit/retention.ts) on a pg-boss cron schedule, which
// pg-boss runs once across all instances.
import type { PgBoss } from 'pg-boss';
import { type PruneResult, pruneAuditPayloads } from '../audit/retention.ts';
import type { Pool } from '../kernel/db.ts';
import type { Logger } from '../kernel/logger.ts';

export const PRUNE_QUEUE = 'audit-prune';
const DAILY_AT = '17 3 * * *'; // 03:17 UTC, off the hour

export interface PruneAuditDeps {
  pool: Pool;
  log: Logger;
  retentionDays: number;
  clock?: () => Date;
}

export async function pruneAudit(deps: PruneAuditDeps): Promise<PruneResult> {
  const result = await pruneAuditPayloads(deps.pool, {
    retentionDays: deps.retentionDays,
    now: deps.clock?.(),
  });
  deps.log.info('audit retention ran', { pruned: result.pruned, cutoff: result.cutoff.toISOString() });
  return result;
}

export async function schedulePruneAudit(boss: PgBoss, deps: PruneAuditDeps): Promise<void> {
  await boss.createQueue(PRUNE_QUEUE, { retryLimit: 3, retryBackoff: true });
  await boss.schedule(PRUNE_QUEUE, DAILY_AT, null, { tz: 'UTC', missed: 'once' });
  await boss.work(PRUNE_QUEUE, async () => {
    await pruneAudit(deps);
  });
}
