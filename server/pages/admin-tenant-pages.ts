// The admin console's tenant page (/admin/tenants/:tenantId) and its actions:
// its size over time (an SVG chart drawn here), its tables and indexes, its
// migration ledger, its backups (back up now, download, verify, restore with
// the tenant id typed back after a page that says what will happen), its
// lifecycle (suspend, resume, legal hold on and off) and its active sessions
// (end one, end all). Admins only (adminPageGuard); the destructive actions
// (restore, suspend, legal hold off, ending sessions) also need the admin's
// password confirmed recently (requireRecentAuth: else 303 to /admin/reauth)
// and, but for ending one session, the tenant id typed in `confirm`. Every
// action is audited by the service it calls (backups and restores by the
// engine, lifecycle changes by tenancy/, sessions by the registry) or here
// (a verification, `tenant.backup.verify`, as the API records it). The page
// never shows the tenant's content: sizes, counts, names of tables.
import { type Request, type Response, Router } from 'express';
import { z } from 'zod';
import { checkArchive } from '../../backup/archive-reader.ts';
import { backupTenant } from '../../backup/backup.ts';
import { type BackupRecord, getBackup } from '../../backup/catalog.ts';
import { restoreTenant, verifyArchiveByRestore } from '../../backup/restore.ts';
import { record } from '../../kernel/audit-inbox.ts';
import { holdTenant, resumeTenant, suspendByOps } from '../../tenancy/inactivity.ts';
import { latestVersion } from '../../tenancy/templates.ts';
import type { TenantRow } from '../../tenancy/tenant-sql.ts';
import { findTenant, tenantOverview } from '../admin/tenant-overview.ts';
import { endTenantSession, endTenantSessions } from '../admin/tenant-sessions.ts';
import { ConflictError, NotFoundError } from '../app-errors.ts';
import { adminPageGuard } from '../auth/guards.ts';
import { requireRecentAuth } from '../auth/recent-auth.ts';
import { assetUrl, displayTime, flash, render } from '../http/render.ts';
import { whoOf } from '../http/request-audit.ts';
import type { RouteDeps } from '../http/route-deps.ts';
import { isUuid } from '../sessions/registry.ts';
import { formatBytes } from '../workspace/storage.ts';
import { parse } from '../workspace/validation.ts';
import { field, formProblem } from './page-forms.ts';

const TENANT = '/admin/tenants/:tenantId';
const NoQuery = z.strictObject({});

type LifecycleAction = 'suspend' | 'resume' | 'hold' | 'release';

export function adminTenantPages(deps: RouteDeps): Router {
  const recent = requireRecentAuth(deps.config.ADMIN_REAUTH_MINUTES);
  const admin = adminPageGuard;
  const router = Router();
  router.get(TENANT, admin, (req, res) => showTenant(deps, req, res));
  router.post(`${TENANT}/backups`, admin, (req, res) => backUpNow(deps, req, res));
  router.post(`${TENANT}/backups/:backupId/verify`, admin, (req, res) => verifyBackup(deps, req, res));
  router.get(`${TENANT}/backups/:backupId/restore`, admin, (req, res) => showRestore(deps, req, res));
  router.post(`${TENANT}/backups/:backupId/restore`, admin, recent, (req, res) => restore(deps, req, res));
  router.post(`${TENANT}/suspend`, admin, recent, (req, res) => lifecycle(deps, 'suspend', req, res));
  router.post(`${TENANT}/resume`, admin, (req, res) => lifecycle(deps, 'resume', req, res));
  router.post(`${TENANT}/hold`, admin, (req, res) => lifecycle(deps, 'hold', req, res));
  router.post(`${TENANT}/release`, admin, recent, (req, res) => lifecycle(deps, 'release', req, res));
  router.post(`${TENANT}/sessions/end-all`, admin, recent, (req, res) => endAll(deps, req, res));
  router.post(`${TENANT}/sessions/:sessionId/end`, admin, recent, (req, res) => endOne(deps, req, res));
  return router;
}

// --- what every admin page of this file shares -------------------------------------

/** The console's stylesheet (views/assets/admin.css) and the wide layout. */
function chrome() {
  return { stylesheets: [assetUrl('admin.css')], wide: true };
}

const pageOf = (id: string) => `/admin/tenants/${id}`;

/** "1.2 s", "340 ms". */
function duration(ms: number | null): string {
  if (ms === null) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(Math.round(ms / 100) / 10).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

const signedBytes = (n: number | null) =>
  n === null ? null : n > 0 ? `+${formatBytes(n)}` : n < 0 ? `−${formatBytes(-n)}` : 'no change';

const helpers = { bytes: formatBytes, signedBytes, duration, displayTime };

/** The tenant of the URL (404 for a malformed or unknown id). */
const tenantOf = (deps: RouteDeps, req: Request) => findTenant(deps.pool, String(req.params.tenantId));

/** A backup of that tenant with an archive: 404 for any other id, 409 when it has no archive. */
async function archiveOf(
  deps: RouteDeps,
  req: Request,
): Promise<{ tenant: TenantRow; backup: BackupRecord; location: string }> {
  const tenant = await tenantOf(deps, req);
  const id = String(req.params.backupId);
  const backup = isUuid(id) ? await getBackup(deps.pool, id.toLowerCase()) : null;
  if (!backup || backup.tenantId !== tenant.id) throw new NotFoundError('No such backup of this workspace.');
  if (backup.outcome !== 'succeeded' || !backup.location)
    throw new ConflictError(
      `Backup ${backup.id} ${backup.outcome === 'running' ? 'is still running' : 'failed'}: it has no archive.`,
    );
  return { tenant, backup, location: backup.location };
}

/** The typed confirmation: the tenant id, exactly. */
const confirmed = (req: Request, tenant: TenantRow) => field(req, 'confirm').trim() === tenant.id;

// --- the page ------------------------------------------------------------------------

async function showTenant(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  parse(NoQuery, req.query, 'query');
  const overview = await tenantOverview(deps, String(req.params.tenantId), whoOf(req));
  render(res, 'admin/tenant', {
    title: `Tenant ${overview.tenant.name}`,
    ...chrome(),
    ...helpers,
    ...overview,
    base: pageOf(overview.tenant.id),
    api: `/api/v1/admin/tenants/${overview.tenant.id}`,
    live: ['active', 'suspended', 'archived'].includes(overview.tenant.state),
  });
}

// --- backups ---------------------------------------------------------------------------

async function backUpNow(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  const tenant = await tenantOf(deps, req);
  try {
    const made = await backupTenant(deps.backups.backupContext(), tenant.id, {
      by: whoOf(req),
      kind: 'manual',
    });
    flash(
      req,
      'success',
      `Backed up: backup ${made.id}, ${made.rows ?? 0} rows, ${formatBytes(made.bytes ?? 0)} in ${duration(made.durationMs)}.`,
    );
  } catch (err) {
    flash(req, 'error', `The backup failed. ${formProblem(res, err).message}`);
  }
  res.redirect(303, `${pageOf(tenant.id)}#backups-title`);
}

async function verifyBackup(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  const { tenant, backup, location } = await archiveOf(deps, req);
  const by = whoOf(req);
  const audited = (outcome: 'success' | 'failure', details: Record<string, unknown>) =>
    record(deps.pool, by, {
      tenantId: tenant.id,
      action: 'tenant.backup.verify',
      resource: { type: 'tenant', id: tenant.id },
      outcome,
      details: { backupId: backup.id, restore: true, ...details },
    });
  try {
    const ctx = await deps.backups.restoreContext();
    const result = await verifyArchiveByRestore(ctx, () => deps.backups.storageAt(location).open(location));
    const bad = result.tables.filter((t) => !t.ok);
    await audited(bad.length ? 'failure' : 'success', {});
    if (bad.length)
      flash(
        req,
        'error',
        `Backup ${backup.id} did not verify: ${bad.map((t) => `${t.name} (${t.rows} of ${t.expectedRows} rows)`).join(', ')}.`,
      );
    else
      flash(
        req,
        'success',
        `Backup ${backup.id} verified: its ${result.tables.length} tables were restored into a scratch schema and match the archive (${result.tables.reduce((n, t) => n + t.rows, 0)} rows).`,
      );
  } catch (err) {
    await audited('failure', { error: err instanceof Error ? err.message : String(err) }).catch(() => {});
    flash(req, 'error', `Backup ${backup.id} did not verify. ${formProblem(res, err).message}`);
  }
  res.redirect(303, `${pageOf(tenant.id)}#backups-title`);
}

/** What a restore would do: read from the archive (checked whole, signature included) and the tenant. */
async function restorePlan(deps: RouteDeps, tenant: TenantRow, backup: BackupRecord, location: string) {
  const base = {
    tenant: { id: tenant.id, name: tenant.display_name, state: tenant.state, legalHold: tenant.legal_hold },
    backup,
    schemaNow: tenant.schema_version,
    latest: latestVersion(deps.migrations),
    keepHours: deps.config.RESTORE_KEEP_PREVIOUS_HOURS,
    base: pageOf(tenant.id),
    action: `${pageOf(tenant.id)}/backups/${backup.id}/restore`,
  };
  try {
    const ctx = await deps.backups.restoreContext();
    const manifest = await checkArchive(() => deps.backups.storageAt(location).open(location), {
      keys: ctx.keys,
      ...(ctx.identities ? { identities: ctx.identities } : {}),
    });
    return {
      ...base,
      archiveError: null,
      schemaThen: manifest.schemaVersion,
      createdAt: manifest.createdAt,
      tables: manifest.tables.map((t) => ({ name: t.name, rows: t.rows })),
      totalRows: manifest.tables.reduce((n, t) => n + t.rows, 0),
    };
  } catch (err) {
    return {
      ...base,
      archiveError: `The archive cannot be restored: ${err instanceof Error ? err.message : String(err)}`,
      schemaThen: backup.schemaVersion,
      createdAt: null,
      tables: [],
      totalRows: 0,
    };
  }
}

async function showRestore(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  parse(NoQuery, req.query, 'query');
  const { tenant, backup, location } = await archiveOf(deps, req);
  render(res, 'admin/restore-confirm', {
    title: `Restore ${tenant.display_name}`,
    ...chrome(),
    ...helpers,
    ...(await restorePlan(deps, tenant, backup, location)),
    error: null,
    typed: '',
  });
}

async function restore(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  const { tenant, backup, location } = await archiveOf(deps, req);
  const again = async (error: string, status: number) =>
    render(
      res,
      'admin/restore-confirm',
      {
        title: `Restore ${tenant.display_name}`,
        ...chrome(),
        ...helpers,
        ...(await restorePlan(deps, tenant, backup, location)),
        error,
        typed: field(req, 'confirm').slice(0, 100),
      },
      status,
    );
  if (!confirmed(req, tenant))
    return again(
      `Nothing was restored: type the workspace id ${tenant.id} in the box to confirm the restore.`,
      400,
    );
  try {
    const ctx = await deps.backups.restoreContext();
    const result = await restoreTenant(
      ctx,
      () => deps.backups.storageAt(location).open(location),
      { tenantId: tenant.id },
      { by: whoOf(req) },
    );
    deps.tenants.invalidate(tenant.id);
    const safety = result.safetyBackup ? ` A safety backup (${result.safetyBackup.id}) was taken first.` : '';
    const aside = result.asideSchema
      ? ` The previous data is kept aside as ${result.asideSchema} for ${deps.config.RESTORE_KEEP_PREVIOUS_HOURS} hours.`
      : '';
    flash(
      req,
      'success',
      `Restored ${tenant.display_name} from backup ${backup.id}: ${result.rows} rows, schema version ${result.fromVersion} brought to ${result.toVersion}.${safety}${aside}`,
    );
    res.redirect(303, pageOf(tenant.id));
  } catch (err) {
    const problem = formProblem(res, err);
    await again(`Nothing was restored. ${problem.message}`, problem.status);
  }
}

// --- lifecycle ---------------------------------------------------------------------------

const DONE: Record<LifecycleAction, string> = {
  suspend: 'Suspended: its people see the suspended page and none of its data.',
  resume: 'Resumed: the workspace is active again.',
  hold: 'Legal hold on: the lifecycle takes no step for this workspace.',
  release: 'Legal hold off: the lifecycle applies to this workspace again.',
};

async function lifecycle(
  deps: RouteDeps,
  action: LifecycleAction,
  req: Request,
  res: Response,
): Promise<void> {
  const tenant = await tenantOf(deps, req);
  const back = `${pageOf(tenant.id)}#lifecycle-title`;
  if ((action === 'suspend' || action === 'release') && !confirmed(req, tenant)) {
    flash(
      req,
      'error',
      `Nothing changed: type the workspace id ${tenant.id} to confirm ${action === 'suspend' ? 'the suspension' : 'ending the legal hold'}.`,
    );
    return res.redirect(303, back);
  }
  try {
    if (tenant.state === 'deleted' || tenant.state === 'provisioning')
      throw new ConflictError(`Workspace ${tenant.id} is ${tenant.state}: it cannot be changed.`);
    const by = whoOf(req);
    if (action === 'suspend') await suspendByOps(deps.pool, tenant.id, by);
    else if (action === 'resume') await resumeTenant(deps.pool, tenant.id, by);
    else await holdTenant(deps.pool, tenant.id, action === 'hold', by);
    // This instance stops (or starts) serving it at once; others within TENANT_CACHE_MS.
    deps.tenants.invalidate(tenant.id);
    flash(req, 'success', DONE[action]);
  } catch (err) {
    flash(req, 'error', `Nothing changed. ${formProblem(res, err).message}`);
  }
  res.redirect(303, back);
}

// --- sessions ------------------------------------------------------------------------------

const reasonOf = (req: Request) => `ended by admin ${(req.user as Express.User).userId}`;

async function endAll(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  const tenant = await tenantOf(deps, req);
  const back = `${pageOf(tenant.id)}#sessions-title`;
  if (!confirmed(req, tenant)) {
    flash(req, 'error', `No session was ended: type the workspace id ${tenant.id} to confirm.`);
    return res.redirect(303, back);
  }
  const n = await endTenantSessions(deps.pool, tenant.id, reasonOf(req), whoOf(req));
  flash(
    req,
    'success',
    n === 0 ? 'There were no active sessions.' : `Ended ${n === 1 ? '1 session' : `${n} sessions`}.`,
  );
  res.redirect(303, back);
}

async function endOne(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  const tenant = await tenantOf(deps, req);
  if (!isUuid(String(req.params.sessionId))) throw new NotFoundError('No such session.');
  try {
    await endTenantSession(
      deps.pool,
      deps.registry,
      tenant.id,
      String(req.params.sessionId),
      reasonOf(req),
      whoOf(req),
    );
    flash(req, 'success', 'The session has been ended.');
  } catch (err) {
    if (!(err instanceof NotFoundError)) throw err;
    flash(req, 'info', 'That session had already ended.');
  }
  res.redirect(303, `${pageOf(tenant.id)}#sessions-title`);
}
