// The admin's backup API (docs/BACKUP.md, docs/HTTP-API.md): a tenant's
// backups made, listed, downloaded, verified and restored, under
// /api/v1/admin/tenants/:id/backups. Admins only, and only from a browser
// session (like the rest of the admin API). Every step is audited on the
// tenant's chain: backups and restores by the engine (backup/), downloads
// and verifications here (`tenant.backup.download`, `tenant.backup.verify`:
// a download is a copy of the whole workspace leaving the server). Input is checked before anything
// runs: ids that are not ids are a 404, unknown fields and query parameters a
// 400, and a restore in place needs the tenant id typed back in `confirm`
// and the admin's password confirmed recently (POST /api/v1/admin/reauth).
import { pipeline } from 'node:stream/promises';
import { type Request, type Response, Router } from 'express';
import { z } from 'zod';
import { checkArchive } from '../../backup/archive-reader.ts';
import { backupTenant } from '../../backup/backup.ts';
import { type BackupRecord, getBackup, listBackups } from '../../backup/catalog.ts';
import { restoreTenant, verifyArchiveByRestore } from '../../backup/restore.ts';
import { type AuditBy, record } from '../../kernel/audit-inbox.ts';
import { run } from '../../kernel/db.ts';
import { isTenantId } from '../../kernel/identifiers.ts';
import * as tsql from '../../tenancy/tenant-sql.ts';
import { ConflictError, NotFoundError, ValidationError } from '../app-errors.ts';
import { requireRole, requireSessionLogin } from '../auth/guards.ts';
import { requireRecentAuth } from '../auth/recent-auth.ts';
import { whoOf } from '../http/request-audit.ts';
import type { RouteDeps } from '../http/route-deps.ts';
import { parse } from '../workspace/validation.ts';

const BASE = '/api/v1/admin/tenants/:tenantId/backups';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export const NoQuery = z.strictObject({});
export const NoBody = z.strictObject({});
export const VerifyQuery = z.strictObject({ restore: z.enum(['0', '1']).optional() });
export const RestoreBody = z.strictObject({
  confirm: z.string().max(100).optional(),
  asNew: z.string().max(1000).optional(),
});

export function backupApiRoutes(deps: RouteDeps): Router {
  const admin = [requireSessionLogin, requireRole('admin')];
  return (
    Router()
      .post(BASE, ...admin, (req, res) => createBackup(deps, req, res))
      .get(BASE, ...admin, (req, res) => listTenantBackups(deps, req, res))
      .get(`${BASE}/:backupId/download`, ...admin, (req, res) => downloadBackup(deps, req, res))
      .post(`${BASE}/:backupId/verify`, ...admin, (req, res) => verifyBackup(deps, req, res))
      // Destructive: the admin's password confirmed within ADMIN_REAUTH_MINUTES (else 403 reauth_required).
      .post(
        `${BASE}/:backupId/restore`,
        ...admin,
        requireRecentAuth(deps.config.ADMIN_REAUTH_MINUTES),
        (req, res) => restoreBackup(deps, req, res),
      )
  );
}

/** The public shape of a backup (the server's paths stay on the server: only the file name). */
export function backupJson(b: BackupRecord) {
  return {
    id: b.id,
    tenantId: b.tenantId,
    kind: b.kind,
    outcome: b.outcome,
    startedAt: b.startedAt.toISOString(),
    finishedAt: b.finishedAt?.toISOString() ?? null,
    durationMs: b.durationMs,
    schemaVersion: b.schemaVersion,
    rows: b.rows,
    bytes: b.bytes,
    sha256: b.sha256,
    encrypted: b.encrypted,
    keyId: b.keyId,
    drift: b.drift,
    createdBy: b.createdBy,
    file: b.location ? fileName(b.location) : null,
    error: b.error,
  };
}

const fileName = (location: string) => location.slice(location.lastIndexOf('/') + 1);

/** The tenant of the URL: a 404 for anything that is not an existing tenant's id. */
async function tenantOf(deps: RouteDeps, req: Request): Promise<tsql.TenantRow> {
  const id = String(req.params.tenantId);
  const tenant = isTenantId(id)
    ? (await run<tsql.TenantRow>(deps.pool, tsql.selectTenant(id))).rows[0]
    : undefined;
  if (!tenant) throw new NotFoundError('No such workspace.');
  return tenant;
}

/** A backup of that tenant (404 otherwise) that succeeded and has an archive (409 otherwise). */
async function archiveOf(
  deps: RouteDeps,
  req: Request,
): Promise<{ tenant: tsql.TenantRow; backup: BackupRecord; location: string }> {
  const tenant = await tenantOf(deps, req);
  const id = String(req.params.backupId);
  const backup = UUID.test(id) ? await getBackup(deps.pool, id) : null;
  if (!backup || backup.tenantId !== tenant.id) throw new NotFoundError('No such backup of this workspace.');
  if (backup.outcome !== 'succeeded' || !backup.location)
    throw new ConflictError(
      `Backup ${backup.id} ${backup.outcome === 'running' ? 'is still running' : 'failed'}: it has no archive.`,
    );
  return { tenant, backup, location: backup.location };
}

const noStore = (res: Response) => res.setHeader('Cache-Control', 'no-store');

async function createBackup(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  parse(NoQuery, req.query, 'query');
  parse(NoBody, req.body ?? {}, 'body');
  const tenant = await tenantOf(deps, req);
  const record = await backupTenant(deps.backups.backupContext(), tenant.id, {
    by: whoOf(req),
    kind: 'manual',
  });
  noStore(res);
  res.status(201).json({ backup: backupJson(record) });
}

async function listTenantBackups(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  parse(NoQuery, req.query, 'query');
  const tenant = await tenantOf(deps, req);
  noStore(res);
  res.json({ backups: (await listBackups(deps.pool, tenant.id)).map(backupJson) });
}

/** An admin's look at a tenant's archive, on the tenant's chain. */
function audited(
  deps: RouteDeps,
  by: AuditBy,
  tenantId: string,
  action: string,
  outcome: 'success' | 'failure',
  details: Record<string, unknown>,
) {
  return record(deps.pool, by, {
    tenantId,
    action,
    resource: { type: 'tenant', id: tenantId },
    outcome,
    details,
  });
}

async function downloadBackup(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  parse(NoQuery, req.query, 'query');
  const { tenant, backup, location } = await archiveOf(deps, req);
  const stream = await deps.backups.storageAt(location).open(location);
  // Recorded before a byte leaves: no audit event, no download.
  await audited(deps, whoOf(req), tenant.id, 'tenant.backup.download', 'success', {
    backupId: backup.id,
    bytes: backup.bytes,
    sha256: backup.sha256,
  }).catch((err: unknown) => {
    stream.destroy();
    throw err;
  });
  noStore(res);
  res.setHeader('Content-Type', 'application/octet-stream');
  res.setHeader('Content-Disposition', `attachment; filename="${fileName(location)}"`);
  if (backup.bytes !== null) res.setHeader('Content-Length', String(backup.bytes));
  if (backup.sha256)
    res.setHeader('Repr-Digest', `sha-256=:${Buffer.from(backup.sha256, 'hex').toString('base64')}:`);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  // A read error half-way cuts the connection: the client sees a short body, never a complete-looking one.
  await pipeline(stream, res).catch((err: unknown) => {
    if (!res.headersSent) throw err;
    res.destroy();
  });
}

async function verifyBackup(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  const query = parse(VerifyQuery, req.query, 'query');
  parse(NoBody, req.body ?? {}, 'body');
  const { tenant, backup, location } = await archiveOf(deps, req);
  const ctx = await deps.backups.restoreContext();
  const open = () => deps.backups.storageAt(location).open(location);
  const restore = query.restore === '1';
  const by = whoOf(req);
  let answer: Record<string, unknown>;
  try {
    if (restore) {
      const result = await verifyArchiveByRestore(ctx, open);
      answer = {
        ok: result.tables.every((t) => t.ok),
        backupId: backup.id,
        manifest: manifestJson(result.manifest),
        tables: result.tables,
      };
    } else {
      const manifest = await checkArchive(open, {
        keys: ctx.keys,
        ...(ctx.identities ? { identities: ctx.identities } : {}),
      });
      answer = { ok: true, backupId: backup.id, manifest: manifestJson(manifest) };
    }
  } catch (err) {
    await audited(deps, by, tenant.id, 'tenant.backup.verify', 'failure', {
      backupId: backup.id,
      restore,
      error: err instanceof Error ? err.message : String(err),
    }).catch(() => {});
    throw err;
  }
  await audited(deps, by, tenant.id, 'tenant.backup.verify', answer.ok ? 'success' : 'failure', {
    backupId: backup.id,
    restore,
  });
  noStore(res);
  res.json(answer);
}

function manifestJson(m: Awaited<ReturnType<typeof checkArchive>>) {
  return {
    tenant: m.tenant,
    schemaVersion: m.schemaVersion,
    createdAt: m.createdAt,
    enclaveVersion: m.enclaveVersion,
    keyId: m.keyId,
    tables: m.tables.map((t) => ({ name: t.name, rows: t.rows })),
    drift: m.drift,
  };
}

async function restoreBackup(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  parse(NoQuery, req.query, 'query');
  const body = parse(RestoreBody, req.body ?? {}, 'body');
  const { tenant, backup, location } = await archiveOf(deps, req);
  if (body.confirm !== undefined && body.asNew !== undefined)
    throw new ValidationError(
      'Invalid body: give "confirm" (restore in place) or "asNew" (a new workspace), not both.',
      [{ path: '', message: 'confirm and asNew together' }],
    );
  let target: { tenantId: string } | { asNew: string };
  if (body.asNew !== undefined) target = { asNew: body.asNew };
  else if (body.confirm === tenant.id) target = { tenantId: tenant.id };
  else
    throw new ValidationError(
      `A restore replaces every row of workspace ${tenant.id}: type its id in "confirm" to go ahead (or give "asNew" to restore as a new workspace).`,
      [
        {
          path: 'confirm',
          message: body.confirm === undefined ? 'required' : 'does not match the workspace id',
        },
      ],
    );
  const ctx = await deps.backups.restoreContext();
  const result = await restoreTenant(ctx, () => deps.backups.storageAt(location).open(location), target, {
    by: whoOf(req),
  });
  noStore(res);
  res.status('asNew' in target ? 201 : 200).json({
    restore: {
      tenantId: result.tenantId,
      fromBackup: backup.id,
      fromVersion: result.fromVersion,
      toVersion: result.toVersion,
      rows: result.rows,
      asideSchema: result.asideSchema,
      safetyBackup: result.safetyBackup ? backupJson(result.safetyBackup) : null,
    },
  });
}
