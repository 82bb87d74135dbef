// Audit retention (audit/retention.ts) as a scheduled job: payloads older
// than AUDIT_RETENTION_DAYS are pruned up to a signed checkpoint, daily by
// default (AUDIT_PRUNE_SCHEDULE).
import { pruneAuditPayloads } from '../audit/retention.ts';
import type { JobDefinition } from './job.ts';

export const auditPruneJob: JobDefinition = {
  name: 'audit-prune',
  title: 'prune audit payloads older than AUDIT_RETENTION_DAYS (the hash chains stay whole)',
  schedule: (config) => config.AUDIT_PRUNE_SCHEDULE,
  expireInSeconds: 3600,
  async run(ctx) {
    const result = await pruneAuditPayloads(ctx.pool, {
      retentionDays: ctx.config.AUDIT_RETENTION_DAYS,
      now: ctx.clock(),
    });
    return { pruned: result.pruned };
  },
};
