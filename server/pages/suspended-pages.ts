// The page a person of a suspended workspace gets instead of any workspace
// page (docs/LIFECYCLE.md): that it is suspended, why (inactivity, with
// since when, or an administrator's decision), that nothing was deleted yet,
// how to get it back (an administrator resumes it) and SUPPORT_CONTACT when
// set. None of the workspace's data: it is answered before the workspace
// routes, from the control plane alone. Registered in server/routes.ts before
// workspacePageGate; the JSON API answers the same with 403 tenant_suspended.
import { type NextFunction, type Request, type Response, Router } from 'express';
import { lifecycleOf } from '../../tenancy/inactivity.ts';
import { TenantSuspendedError } from '../../tenancy/tenancy-errors.ts';
import { type LifecycleConfig, lifecycleConfigOf } from '../api/lifecycle-api.ts';
import { signedIn } from '../auth/guards.ts';
import { render } from '../http/render.ts';
import type { RouteDeps } from '../http/route-deps.ts';

const DAY_MS = 24 * 3600 * 1000;

/** What the gate reads: the pool, the tenant context and the settings (SUPPORT_CONTACT, DROP_AFTER_SUSPENDED_DAYS). */
export type SuspendedPageDeps = Pick<RouteDeps, 'pool' | 'tenants'> & { config: LifecycleConfig };

export function suspendedPages(deps: SuspendedPageDeps): Router {
  return Router().use('/workspace', (req, res, next) => suspendedGate(deps, req, res, next));
}

async function suspendedGate(
  deps: SuspendedPageDeps,
  req: Request,
  res: Response,
  next: NextFunction,
): Promise<void> {
  const user = signedIn(req);
  if (user?.role !== 'user' || !user.tenantId) return next();
  const tenantId = user.tenantId;
  try {
    await deps.tenants.resolve(tenantId);
    return next();
  } catch (err) {
    // Any other refusal (deleted, unknown) is the workspace routes' to answer.
    if (!(err instanceof TenantSuspendedError)) return next();
  }
  const row = await lifecycleOf(deps.pool, tenantId);
  const inactive = row.suspend_reason === 'inactive' && row.stage !== null && row.stage !== 'flagged';
  const config = lifecycleConfigOf(deps);
  const drop = config.DROP_AFTER_SUSPENDED_DAYS;
  render(
    res,
    'suspended',
    {
      title: 'Workspace suspended',
      tenantId,
      inactive,
      inactiveSince: row.inactive_since,
      suspendedAt: row.suspended_at,
      dropDue:
        inactive && drop > 0 && row.suspended_at
          ? new Date(row.suspended_at.getTime() + drop * DAY_MS)
          : null,
      supportContact: config.SUPPORT_CONTACT ?? null,
    },
    403,
  );
}
