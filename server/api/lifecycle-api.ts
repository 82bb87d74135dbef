// The admin's lifecycle API (docs/LIFECYCLE.md, docs/HTTP-API.md): suspend,
// resume, archive, legal hold on and off, one call each, under
// /api/v1/admin/tenants/:tenantId/…; a tenant's lifecycle and step log; and
// the lifecycle's dry-run plan (GET /api/v1/admin/lifecycle: what each step
// would do, to whom, when, changing nothing). Admins only, from a browser
// session, like the rest of the admin API; suspend, archive and release (legal
// hold off) also need the admin's password confirmed recently (POST
// /api/v1/admin/reauth, else 403 reauth_required). Every change is audited on the
// tenant's chain by the service (tenant.suspend / resume / archive,
// tenant.legal_hold.on / off) with the admin as the actor. Ids that are not
// ids are a 404, unknown fields and query parameters a 400.
import { type Request, type Response, Router } from 'express';
import { z } from 'zod';
import type { Config } from '../../kernel/config.ts';
import { isTenantId } from '../../kernel/identifiers.ts';
import {
  archiveByOps,
  holdTenant,
  type LifecycleRow,
  lifecycleOf,
  lifecycleSettings,
  type PlannedStep,
  plan,
  resumeTenant,
  stepsOf,
  suspendByOps,
} from '../../tenancy/inactivity.ts';
import { ConflictError, NotFoundError } from '../app-errors.ts';
import { requireRole, requireSessionLogin } from '../auth/guards.ts';
import { requireRecentAuth } from '../auth/recent-auth.ts';
import { whoOf } from '../http/request-audit.ts';
import type { RouteDeps } from '../http/route-deps.ts';
import { parse } from '../workspace/validation.ts';

/** The lifecycle settings the routes read. */
export type LifecycleConfig = Pick<
  Config,
  'INACTIVE_AFTER_DAYS' | 'SUSPEND_AFTER_DAYS' | 'DROP_AFTER_SUSPENDED_DAYS' | 'SUPPORT_CONTACT'
>;
export type LifecycleRouteDeps = RouteDeps;

const BASE = '/api/v1/admin/tenants/:tenantId';
export const NoQuery = z.strictObject({});
export const NoBody = z.strictObject({});
export const PlanQuery = z.strictObject({
  within: z
    .string()
    .regex(/^\d{1,4}$/, 'a whole number of days, 0 to 9999')
    .optional(),
});

type Action = 'suspend' | 'resume' | 'archive' | 'hold' | 'release';

/** The destructive ones: the admin's password confirmed within ADMIN_REAUTH_MINUTES (else 403 reauth_required). */
const DESTRUCTIVE: ReadonlySet<Action> = new Set(['suspend', 'archive', 'release']);

/** The lifecycle's settings, from the server's configuration. */
export function lifecycleConfigOf(deps: { config: LifecycleConfig }): LifecycleConfig {
  return deps.config;
}

export function lifecycleApiRoutes(deps: LifecycleRouteDeps): Router {
  const admin = [requireSessionLogin, requireRole('admin')];
  const recent = requireRecentAuth(deps.config.ADMIN_REAUTH_MINUTES);
  const router = Router();
  for (const action of ['suspend', 'resume', 'archive', 'hold', 'release'] as const)
    router.post(`${BASE}/${action}`, ...admin, ...(DESTRUCTIVE.has(action) ? [recent] : []), (req, res) =>
      change(deps, action, req, res),
    );
  router.get(`${BASE}/lifecycle`, ...admin, (req, res) => showTenant(deps, req, res));
  router.get('/api/v1/admin/lifecycle', ...admin, (req, res) => showPlan(deps, req, res));
  return router;
}

/** The tenant of the URL: a 404 for anything that is not an existing tenant's id. */
async function tenantOf(deps: RouteDeps, req: Request): Promise<LifecycleRow> {
  const id = String(req.params.tenantId);
  if (!isTenantId(id)) throw new NotFoundError('No such workspace.');
  try {
    return await lifecycleOf(deps.pool, id);
  } catch {
    throw new NotFoundError('No such workspace.');
  }
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

/** The public shape of a tenant and its place in the lifecycle. */
export function lifecycleJson(r: LifecycleRow) {
  return {
    id: r.id,
    name: r.display_name,
    state: r.state,
    legalHold: r.legal_hold,
    lastActiveAt: iso(r.last_active_at ?? r.created_at),
    lifecycle: r.stage
      ? {
          stage: r.stage,
          inactiveSince: iso(r.inactive_since),
          flaggedAt: iso(r.flagged_at),
          suspendedAt: iso(r.suspended_at),
          suspendReason: r.suspend_reason,
          finalBackupStartedAt: iso(r.final_backup_started_at),
          finalBackupAttempts: r.final_backup_attempts,
          finalBackupId: r.final_backup_id,
          verifiedAt: iso(r.verified_at),
          droppedAt: iso(r.dropped_at),
        }
      : null,
  };
}

export function stepJson(s: PlannedStep) {
  return {
    tenantId: s.tenantId,
    tenantName: s.tenantName,
    state: s.state,
    stage: s.stage,
    step: s.step,
    due: iso(s.due),
    dueNow: s.dueNow,
    blocked: s.blocked,
    lastActiveAt: iso(s.lastActive),
    finalBackupId: s.finalBackupId,
    action: s.action,
  };
}

async function change(deps: RouteDeps, action: Action, req: Request, res: Response): Promise<void> {
  parse(NoQuery, req.query, 'query');
  parse(NoBody, req.body ?? {}, 'body');
  const tenant = await tenantOf(deps, req);
  if (tenant.state === 'deleted' || tenant.state === 'provisioning')
    throw new ConflictError(`Workspace ${tenant.id} is ${tenant.state}: it cannot be changed.`);
  const by = whoOf(req);
  if (action === 'suspend') await suspendByOps(deps.pool, tenant.id, by);
  else if (action === 'resume') await resumeTenant(deps.pool, tenant.id, by);
  else if (action === 'archive') await archiveByOps(deps.pool, tenant.id, by);
  else await holdTenant(deps.pool, tenant.id, action === 'hold', by);
  // This instance stops (or starts) serving it at once; others within TENANT_CACHE_MS.
  deps.tenants.invalidate(tenant.id);
  res.setHeader('Cache-Control', 'no-store');
  res.json({ tenant: lifecycleJson(await lifecycleOf(deps.pool, tenant.id)) });
}

async function showTenant(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  parse(NoQuery, req.query, 'query');
  const tenant = await tenantOf(deps, req);
  const steps = await stepsOf(deps.pool, tenant.id);
  res.setHeader('Cache-Control', 'no-store');
  res.json({
    tenant: lifecycleJson(tenant),
    steps: steps.map((s) => ({
      step: s.step,
      outcome: s.outcome,
      asOf: s.as_of.toISOString(),
      at: s.at.toISOString(),
      details: s.details,
    })),
  });
}

async function showPlan(deps: LifecycleRouteDeps, req: Request, res: Response): Promise<void> {
  const query = parse(PlanQuery, req.query, 'query');
  const settings = lifecycleSettings(lifecycleConfigOf(deps));
  const within = query.within === undefined ? 0 : Number(query.within);
  const result = await plan(deps.pool, settings, new Date(), within);
  res.setHeader('Cache-Control', 'no-store');
  res.json({
    asOf: result.asOf.toISOString(),
    settings: result.settings,
    enabled: settings.inactiveAfterDays > 0,
    steps: result.steps.map(stepJson),
    dropped: result.dropped.map((d) => ({
      tenantId: d.tenantId,
      tenantName: d.tenantName,
      droppedAt: d.droppedAt.toISOString(),
      finalBackupId: d.finalBackupId,
    })),
  });
}
