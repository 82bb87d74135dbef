// The admin console's core pages (docs/ADMIN.md): /admin (the cards),
// /admin/tenants (the tenants table: sorted, filtered, searched, keyset-paged),
// /admin/jobs (schedules, run history, run now) and /admin/reauth (confirm the
// password, or the MFA code, before a destructive action). Admins only, from
// a browser session: anonymous visitors are sent to sign in, anyone else gets
// 403. They call the same services as the admin API (server/admin/), read
// the control plane only, and never show tenant content. No script, no
// inline style: admin.css.
import { type Request, type Response, Router } from 'express';
import { z } from 'zod';
import type { JobRun } from '../../jobs/history.ts';
import { runsPage } from '../../jobs/history.ts';
import { latestVersion } from '../../tenancy/templates.ts';
import { type JobInfo, jobsOverview, overview, startJobNow } from '../admin/console.ts';
import {
  DEFAULT_DIR,
  type DirectoryParams,
  type DirectoryTenant,
  directoryParams,
  PAGE_SIZE,
  parseDirectoryQuery,
  SORTS,
  type SortName,
  STATES,
  tenantDirectory,
} from '../admin/tenant-directory.ts';
import { ConflictError, NotFoundError } from '../app-errors.ts';
import { adminPageGuard, signedIn } from '../auth/guards.ts';
import { adminReturnPath, confirmRecentAuth, REAUTH_PAGE } from '../auth/recent-auth.ts';
import { assetUrl, displayTime, flash, render } from '../http/render.ts';
import type { RouteDeps } from '../http/route-deps.ts';
import { parse } from '../workspace/validation.ts';
import { field, formProblem } from './page-forms.ts';

const RUNS_PAGE = 50;
const JOB_NAME = /^[a-z][a-z0-9-]{0,62}$/;

export function adminPages(deps: RouteDeps): Router {
  const router = Router();
  router.use('/admin', adminPageGuard);
  router.get('/admin', (req, res) => showConsole(deps, req, res));
  router.get('/admin/tenants', (req, res) => showTenants(deps, req, res));
  router.get('/admin/jobs', (req, res) => showJobs(deps, req, res));
  router.post('/admin/jobs/:name/run', (req, res) => runJobFromForm(deps, req, res));
  router.get(REAUTH_PAGE, (req, res) => showReauth(deps, req, res));
  // Counted with sign-ins by the account lockout, like every password check.
  router.post(REAUTH_PAGE, deps.attempts.guard, (req, res) => reauthFromForm(deps, req, res));
  return router;
}

/** What every console page hands the layout. */
function common(title: string) {
  return { title, wide: true, stylesheets: [assetUrl('admin.css')] };
}

// --- formatting ---------------------------------------------------------------------

const UNITS = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];

/** 1.5 MiB (binary units, as the CLI). */
export function formatBytes(n: number | null): string {
  if (n === null) return '–';
  const sign = n < 0 ? '−' : '';
  let v = Math.abs(n);
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u += 1;
  }
  return `${sign}${u === 0 ? v : v.toFixed(1)} ${UNITS[u]}`;
}

const INT = new Intl.NumberFormat('en-GB');

/** "3 h", "2 d", "45 min" since `at`. */
export function age(at: Date, now: Date = new Date()): string {
  const s = Math.max(0, Math.round((now.getTime() - at.getTime()) / 1000));
  if (s < 90) return `${s} s`;
  if (s < 90 * 60) return `${Math.round(s / 60)} min`;
  if (s < 48 * 3600) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} d`;
}

// --- /admin ------------------------------------------------------------------------------

async function showConsole(deps: RouteDeps, _req: Request, res: Response): Promise<void> {
  const o = await overview(deps.pool);
  const tenants = (params: Record<string, string>) => `/admin/tenants?${new URLSearchParams(params)}`;
  render(res, 'admin/home', {
    ...common('Admin console'),
    states: STATES.map((s) => ({
      state: s,
      count: o.tenants.byState[s],
      href: tenants({ state: s }),
    })),
    total: o.tenants.total,
    size: {
      total: formatBytes(o.size.totalBytes),
      rows: INT.format(o.size.rowsEstimate),
      measured: o.size.measured,
      collectedAt: o.size.collectedAt ? displayTime(o.size.collectedAt) : null,
      collectedIso: o.size.collectedAt?.toISOString() ?? null,
      href: tenants({ sort: 'size' }),
    },
    backlog: {
      events: INT.format(o.auditBacklog.events),
      oldest: o.auditBacklog.oldestAt ? age(o.auditBacklog.oldestAt) : null,
      oldestIso: o.auditBacklog.oldestAt?.toISOString() ?? null,
      late: (o.auditBacklog.oldestAgeSeconds ?? 0) > 300,
    },
    failed: { ...o.failedJobs24h, href: '/admin/jobs?failed=1' },
    backups: {
      ...o.backups,
      href: tenants({ noBackupHours: String(o.backups.hours), sort: 'backup' }),
    },
  });
}

// --- /admin/tenants ----------------------------------------------------------------------

const SORT_LABELS: Record<SortName, string> = {
  name: 'Name',
  size: 'Size',
  growth: 'Growth (7 d)',
  activity: 'Last activity',
  backup: 'Latest good backup',
};

async function showTenants(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  const latest = latestVersion(deps.migrations);
  const values = formValues(req.query as Record<string, unknown>);
  let params: DirectoryParams;
  try {
    params = parseDirectoryQuery(req.query);
    const page = await tenantDirectory(deps.pool, params, latest);
    const base = directoryParams(params);
    render(res, 'admin/tenants', {
      ...common('Tenants'),
      values,
      states: STATES,
      latest,
      headers: headersOf(params, base),
      rows: page.tenants.map((t) => rowOf(t)),
      paged: params.cursor !== null,
      first: `/admin/tenants?${new URLSearchParams(base)}`,
      next: page.nextCursor
        ? `/admin/tenants?${new URLSearchParams({ ...base, cursor: page.nextCursor })}`
        : null,
      pageSize: params.limit,
    });
  } catch (err) {
    const problem = formProblem(res, err);
    params = parseDirectoryQuery({});
    render(
      res,
      'admin/tenants',
      {
        ...common('Tenants'),
        values,
        states: STATES,
        latest,
        headers: headersOf(params, {}),
        rows: [],
        paged: false,
        first: '/admin/tenants',
        next: null,
        pageSize: PAGE_SIZE,
        error: problem.message,
      },
      problem.status,
    );
  }
}

/** The filter form's fields as typed, so a refused search shows them again. */
function formValues(query: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of ['state', 'inactiveDays', 'noBackupHours', 'behind', 'drift', 'q', 'sort', 'dir']) {
    const v = query[name];
    out[name] = typeof v === 'string' ? v : '';
  }
  return out;
}

/** The table's headers: sortable ones link to their sort (the current one to its other direction), with aria-sort. */
function headersOf(p: DirectoryParams, base: Record<string, string>) {
  return SORTS.map((sort) => {
    const current = p.sort === sort;
    const dir = current ? (p.dir === 'asc' ? 'desc' : 'asc') : DEFAULT_DIR[sort];
    const { sort: _s, dir: _d, ...rest } = base;
    const link: Record<string, string> = { ...rest };
    if (sort !== 'name') link.sort = sort;
    if (dir !== DEFAULT_DIR[sort]) link.dir = dir;
    return {
      sort,
      label: SORT_LABELS[sort],
      ariaSort: current ? (p.dir === 'asc' ? 'ascending' : 'descending') : 'none',
      href: `/admin/tenants?${new URLSearchParams(link)}`,
      hint: current
        ? `sorted ${p.dir === 'asc' ? 'ascending' : 'descending'}${sort === 'backup' ? ' by age' : ''}; sort ${dir === 'asc' ? 'ascending' : 'descending'}`
        : `sort ${dir === 'asc' ? 'ascending' : 'descending'}`,
    };
  });
}

function rowOf(t: DirectoryTenant) {
  return {
    id: t.id,
    href: `/admin/tenants/${t.id}`,
    name: t.displayName,
    state: t.state,
    legalHold: t.legalHold,
    size: formatBytes(t.totalBytes),
    rows: t.rowsEstimate === null ? '–' : INT.format(t.rowsEstimate),
    growth: t.growthBytes === null ? '–' : `${t.growthBytes > 0 ? '+' : ''}${formatBytes(t.growthBytes)}`,
    lastActive: t.lastActiveAt ? `${age(t.lastActiveAt)} ago` : 'never',
    lastActiveIso: t.lastActiveAt?.toISOString() ?? null,
    lastActiveTitle: t.lastActiveAt ? displayTime(t.lastActiveAt) : null,
    schemaVersion: t.schemaVersion,
    behindBy: t.state === 'deleted' ? 0 : t.behindBy,
    drift: t.drift,
    backup: t.latestBackup
      ? {
          age: `${age(t.latestBackup.finishedAt)} ago`,
          iso: t.latestBackup.finishedAt.toISOString(),
          title: displayTime(t.latestBackup.finishedAt),
        }
      : null,
  };
}

// --- /admin/jobs ---------------------------------------------------------------------

const JobsQuery = z.strictObject({
  job: z.string().regex(JOB_NAME, 'must be a job name such as backup-fleet').optional(),
  failed: z.enum(['0', '1']).optional(),
  cursor: z.string().max(200).optional(),
});

async function showJobs(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  const jobs = await jobsOverview(deps);
  const raw = { ...(req.query as Record<string, unknown>) };
  for (const k of Object.keys(raw)) if (raw[k] === '') delete raw[k];
  const view = {
    ...common('Jobs'),
    jobs: jobs.map(jobRow),
    values: {
      job: typeof raw.job === 'string' ? raw.job : '',
      failed: raw.failed === '1',
    },
  };
  try {
    const q = parse(JobsQuery, raw, 'query');
    const filter: Record<string, string> = {};
    if (q.job) filter.job = q.job;
    if (q.failed === '1') filter.failed = '1';
    const page = await runsPage(deps.pool, {
      ...(q.job ? { job: q.job } : {}),
      failedOnly: q.failed === '1',
      cursor: q.cursor ?? null,
      limit: RUNS_PAGE,
    });
    render(res, 'admin/jobs', {
      ...view,
      runs: page.runs.map(runRow),
      paged: Boolean(q.cursor),
      first: `/admin/jobs?${new URLSearchParams(filter)}#history`,
      next: page.nextCursor
        ? `/admin/jobs?${new URLSearchParams({ ...filter, cursor: page.nextCursor })}#history`
        : null,
    });
  } catch (err) {
    const problem = formProblem(res, err);
    render(
      res,
      'admin/jobs',
      { ...view, runs: [], paged: false, first: '/admin/jobs', next: null, error: problem.message },
      problem.status,
    );
  }
}

function jobRow(j: JobInfo) {
  const last = j.summary?.last ?? null;
  return {
    name: j.name,
    title: j.title,
    schedule: j.schedule ?? (j.perTenant ? 'per tenant, from its fleet job' : 'off'),
    nextRun: j.nextRun ? displayTime(j.nextRun) : null,
    nextIso: j.nextRun?.toISOString() ?? null,
    perTenant: j.perTenant,
    last: last
      ? {
          outcome: last.outcome,
          failed: last.outcome !== 'succeeded',
          at: displayTime(last.startedAt),
          iso: last.startedAt.toISOString(),
          error: last.error,
        }
      : null,
    runs24h: j.summary?.runs24h ?? 0,
    failed24h: j.summary?.failed24h ?? 0,
    running: j.summary?.running ?? 0,
    historyHref: `/admin/jobs?${new URLSearchParams({ job: j.name })}#history`,
  };
}

function runRow(r: JobRun) {
  const counts = Object.entries(r.counts ?? {})
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  return {
    job: r.job,
    tenantId: r.tenantId,
    tenantHref: r.tenantId ? `/admin/tenants/${r.tenantId}` : null,
    trigger: r.trigger,
    at: displayTime(r.startedAt),
    iso: r.startedAt.toISOString(),
    duration: r.finishedAt ? duration(r.finishedAt.getTime() - r.startedAt.getTime()) : null,
    outcome: r.outcome,
    failed: r.outcome === 'failed' || r.outcome === 'interrupted',
    counts,
    error: r.error,
  };
}

function duration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.round(ms / 60_000)} min`;
}

async function runJobFromForm(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  const name = String(req.params.name);
  if (!JOB_NAME.test(name)) throw new NotFoundError(`There is no job named "${name}".`);
  try {
    await startJobNow(deps, req, name);
    flash(req, 'success', `Started ${name}. Its run appears in the history below; reload to follow it.`);
  } catch (err) {
    if (!(err instanceof ConflictError)) throw err;
    flash(req, 'error', err.message); // already a sentence, starting with the job's name
  }
  res.redirect(303, `/admin/jobs?${new URLSearchParams({ job: name })}#history`);
}

// --- /admin/reauth ---------------------------------------------------------------------

function showReauth(
  deps: RouteDeps,
  req: Request,
  res: Response,
  extra: Record<string, unknown> = {},
  status = 200,
) {
  const user = signedIn(req) as Express.User;
  const next = adminReturnPath(req.method === 'GET' ? req.query.next : field(req, 'next'));
  render(
    res,
    'admin/reauth',
    {
      ...common('Confirm it is you'),
      wide: false,
      next,
      mfa: Boolean(user.mfaEnabled),
      minutes: deps.config.ADMIN_REAUTH_MINUTES,
      ...extra,
    },
    status,
  );
}

async function reauthFromForm(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  const next = adminReturnPath(field(req, 'next'));
  try {
    await confirmRecentAuth(deps, req, res, {
      password: field(req, 'password'),
      ...(field(req, 'totp') ? { totp: field(req, 'totp') } : {}),
    });
  } catch (err) {
    const problem = formProblem(res, err);
    return showReauth(deps, req, res, { error: problem.message }, problem.status);
  }
  flash(
    req,
    'success',
    `Confirmed. For the next ${deps.config.ADMIN_REAUTH_MINUTES} minutes this session can take destructive actions.`,
  );
  res.redirect(303, next);
}
