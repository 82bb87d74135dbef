// Per-tenant statistics as a scheduled job (docs/STATISTICS.md): every
// STATS_SCHEDULE (default every 15 minutes), one catalog pass over all tenant
// schemas stored in the control plane, then the history downsampled. Both use
// the job's clock, so a run is reproducible in a test.
import { downsampleStats, recordStats } from '../tenancy/statistics.ts';
import type { JobDefinition } from './job.ts';

export const tenantStatsJob: JobDefinition = {
  name: 'tenant-stats',
  title: 'collect per-tenant sizes, row estimates and dead tuples; downsample the history',
  schedule: (config) => config.STATS_SCHEDULE,
  expireInSeconds: 900,
  async run(ctx) {
    const now = ctx.clock();
    const recorded = await recordStats(ctx.pool, now);
    ctx.signal.throwIfAborted();
    const downsampled = await downsampleStats(ctx.pool, now);
    ctx.log.info('tenant statistics collected', {
      tenants: recorded.tenants,
      relations: recorded.relations,
      totalBytes: recorded.totalBytes,
      ms: recorded.ms,
      ...downsampled,
    });
    return {
      tenants: recorded.tenants,
      relations: recorded.relations,
      totalBytes: recorded.totalBytes,
      collectMs: recorded.ms,
      removed: recorded.removed,
      expired: downsampled.expired,
      reducedDaily: downsampled.daily,
      reducedHourly: downsampled.hourly,
    };
  },
};
