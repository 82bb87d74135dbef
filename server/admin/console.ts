// The admin console's services, shared by its pages (server/pages/admin-pages.ts)
// and its API (server/api/admin-tenants-api.ts): the cards of /admin, the jobs
// with their run history, and "run now". Control plane only.

import { type JobSummary, summarize } from '../../jobs/history.ts';
import { JOBS } from '../../jobs/registry.ts';
import { type JobBase, JobBusyError, nextRuns, runJobNow } from '../../jobs/scheduler.ts';
import { record } from '../../kernel/audit-inbox.ts';
import { type Pool, run } from '../../kernel/db.ts';
import { jobLockHeld } from '../../kernel/locks.ts';
import type { Logger } from '../../kernel/logger.ts';
import { fleetStats } from '../../tenancy/statistics.ts';
import { ConflictError, NotFoundError } from '../app-errors.ts';
import { whoOf } from '../http/request-audit.ts';
import type { RouteDeps } from '../http/route-deps.ts';
import * as sql from './console-sql.ts';
import { STATES } from './tenant-directory-sql.ts';

/** Live tenants without a good backup for this long count on the backups card. */
export const BACKUP_CARD_HOURS = 48;

export interface Overview {
  tenants: { total: number; byState: Record<(typeof STATES)[number], number> };
  size: { collectedAt: Date | null; totalBytes: number; rowsEstimate: number; measured: number };
  auditBacklog: { events: number; oldestAt: Date | null; oldestAgeSeconds: number | null };
  failedJobs24h: { runs: number; jobs: number };
  backups: { withoutGoodBackup: number; hours: number };
}

/** The /admin cards. */
export async function overview(pool: Pool, now: Date = new Date()): Promise<Overview> {
  const [states, fleet, backlog, failed, backups] = await Promise.all([
    run<{ state: (typeof STATES)[number]; n: number }>(pool, sql.tenantsByState()),
    fleetStats(pool, { sort: 'size', limit: 1 }),
    run<{ n: number; oldest: Date | null }>(pool, sql.auditBacklog()),
    run<{ n: number; jobs: number }>(pool, sql.failedRuns24h()),
    run<{ n: number }>(pool, sql.tenantsWithoutBackup(BACKUP_CARD_HOURS)),
  ]);
  const byState = Object.fromEntries(STATES.map((s) => [s, 0])) as Overview['tenants']['byState'];
  for (const r of states.rows) byState[r.state] = r.n;
  const oldest = backlog.rows[0]?.oldest ?? null;
  return {
    tenants: {
      total: Object.entries(byState).reduce((sum, [s, n]) => (s === 'deleted' ? sum : sum + n), 0),
      byState,
    },
    size: {
      collectedAt: fleet.collectedAt,
      totalBytes: fleet.totals.totalBytes,
      rowsEstimate: fleet.totals.rowsEstimate,
      measured: fleet.tenants,
    },
    auditBacklog: {
      events: backlog.rows[0]?.n ?? 0,
      oldestAt: oldest,
      oldestAgeSeconds: oldest ? Math.max(0, Math.round((now.getTime() - oldest.getTime()) / 1000)) : null,
    },
    failedJobs24h: { runs: failed.rows[0]?.n ?? 0, jobs: failed.rows[0]?.jobs ?? 0 },
    backups: { withoutGoodBackup: backups.rows[0]?.n ?? 0, hours: BACKUP_CARD_HOURS },
  };
}

export function overviewJson(o: Overview) {
  return {
    ...o,
    size: { ...o.size, collectedAt: o.size.collectedAt?.toISOString() ?? null },
    auditBacklog: { ...o.auditBacklog, oldestAt: o.auditBacklog.oldestAt?.toISOString() ?? null },
  };
}

// --- jobs ----------------------------------------------------------------------------

export interface JobInfo {
  name: string;
  title: string;
  schedule: string | null;
  perTenant: boolean;
  nextRun: Date | null;
  summary: JobSummary | null;
}

export async function jobsOverview(deps: Pick<RouteDeps, 'pool' | 'jobs'>): Promise<JobInfo[]> {
  const summaries = new Map(
    (
      await summarize(
        deps.pool,
        deps.jobs.map((j) => j.name),
      )
    ).map((s) => [s.job, s]),
  );
  return deps.jobs.map((j) => ({
    ...j,
    nextRun: j.schedule ? (nextRuns(j.schedule, 1)[0] ?? null) : null,
    summary: summaries.get(j.name) ?? null,
  }));
}

// --- run now -----------------------------------------------------------------------

/**
 * The context a job run started from the web gets. Job bodies do not sign
 * anything themselves (backups sign with `backups.signer`), so there is no
 * `signer` here (JobContext.signer is optional).
 */
export function webJobBase(deps: RouteDeps): JobBase {
  return {
    pool: deps.pool,
    log: deps.log,
    config: deps.config,
    clock: () => new Date(),
    backups: deps.backups,
    migrations: deps.migrations,
  };
}

/**
 * Starts `name` now, in this process, in the background (the request does
 * not wait for it): its outcome goes to the run history and the log. Audited
 * as `job.run` on the platform chain. A job another run holds is a
 * ConflictError ("already running"); a per-tenant job cannot be started
 * alone (its fleet job starts it); an unknown name is a NotFoundError.
 */
export async function startJobNow(
  deps: RouteDeps,
  req: Parameters<typeof whoOf>[0],
  name: string,
): Promise<{ job: string }> {
  const job = deps.jobs.find((j) => j.name === name) ? JOBS.find((j) => j.name === name) : undefined;
  if (!job) throw new NotFoundError(`There is no job named "${name}".`);
  const by = whoOf(req);
  const audit = (outcome: 'success' | 'failure', code?: string) =>
    record(deps.pool, by, {
      tenantId: null,
      action: 'job.run',
      resource: { type: 'job', id: name },
      outcome,
      ...(code ? { code } : {}),
      details: {},
    });
  if (job.tenantOf) {
    await audit('failure', 'per_tenant');
    throw new ConflictError(`${name} runs per tenant and is started by its fleet job; run that one instead.`);
  }
  const locked = (await run<{ locked: boolean }>(deps.pool, jobLockHeld(name))).rows[0]?.locked;
  if (locked) {
    await audit('failure', 'already_running');
    throw new ConflictError(`${name} is already running; wait for it to finish.`);
  }
  await audit('success');
  background(runJobNow(job, webJobBase(deps)), name, deps.log);
  return { job: name };
}

function background(run_: Promise<unknown>, job: string, log: Logger): void {
  run_.catch((err: unknown) => {
    // A failed run is already in the history and the log (scheduler.ts execute).
    if (err instanceof JobBusyError) log.warn('job started from the console was already running', { job });
  });
}
