// The admin's view of the scheduled jobs (docs/JOBS.md): each job with its
// schedule, next run and last outcome, and the run history (failed runs of
// the last days at a glance). Admins only, from a browser session.
import { type Request, type Response, Router } from 'express';
import { z } from 'zod';
import { runsPage, summarize } from '../../jobs/history.ts';
import { nextRuns } from '../../jobs/scheduler.ts';
import { requireRole, requireSessionLogin } from '../auth/guards.ts';
import type { RouteDeps } from '../http/route-deps.ts';
import { parse } from '../workspace/validation.ts';

export const NoQuery = z.strictObject({});
export const RunsQuery = z.strictObject({
  job: z
    .string()
    .regex(/^[a-z][a-z0-9-]{0,62}$/, 'must be a job name such as backup-fleet')
    .optional(),
  failed: z.enum(['0', '1']).optional(),
  cursor: z.string().max(200).optional(),
  limit: z
    .string()
    .regex(/^\d{1,4}$/, 'must be a whole number from 1 to 1000')
    .refine((v) => Number(v) >= 1 && Number(v) <= 1000, 'must be a whole number from 1 to 1000')
    .optional(),
});

export function jobsApiRoutes(deps: RouteDeps): Router {
  const admin = [requireSessionLogin, requireRole('admin')];
  return Router()
    .get('/api/v1/admin/jobs', ...admin, (req, res) => listJobs(deps, req, res))
    .get('/api/v1/admin/jobs/runs', ...admin, (req, res) => listJobRuns(deps, req, res));
}

async function listJobs(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  parse(NoQuery, req.query, 'query');
  const summaries = new Map(
    (
      await summarize(
        deps.pool,
        deps.jobs.map((j) => j.name),
      )
    ).map((s) => [s.job, s]),
  );
  res.json({
    jobs: deps.jobs.map((j) => {
      const s = summaries.get(j.name);
      return {
        name: j.name,
        title: j.title,
        schedule: j.schedule,
        perTenant: j.perTenant,
        nextRun: j.schedule ? (nextRuns(j.schedule, 1)[0] as Date).toISOString() : null,
        last: s?.last
          ? {
              outcome: s.last.outcome,
              startedAt: s.last.startedAt.toISOString(),
              finishedAt: s.last.finishedAt?.toISOString() ?? null,
              counts: s.last.counts,
              error: s.last.error,
            }
          : null,
        runs24h: s?.runs24h ?? 0,
        failed24h: s?.failed24h ?? 0,
        running: s?.running ?? 0,
      };
    }),
  });
}

async function listJobRuns(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  const q = parse(RunsQuery, req.query, 'query');
  const page = await runsPage(deps.pool, {
    ...(q.job ? { job: q.job } : {}),
    failedOnly: q.failed === '1',
    cursor: q.cursor ?? null,
    limit: q.limit ? Number(q.limit) : 50,
  });
  res.json({
    nextCursor: page.nextCursor,
    runs: page.runs.map((r) => ({
      ...r,
      startedAt: r.startedAt.toISOString(),
      finishedAt: r.finishedAt?.toISOString() ?? null,
    })),
  });
}
