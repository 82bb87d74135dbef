// A whole workspace as a .tar.gz download, from start to end: what the route
// GET /api/v1/export (api/export-api.ts) hands over once the guard has let the
// owner in. All tables are read in ONE REPEATABLE READ transaction, so the
// archive is one consistent moment even while other sessions keep writing; see
// workspace-dump.ts for why the rows pass through temporary files on their way
// to the response.
//
// What one export may cost is bounded: a workspace runs at most
// TENANT_MAX_EXPORTS at once (429), the spool files of all exports of this
// process stay within EXPORT_SPOOL_BUDGET_MB (503), each file is deleted as
// soon as it has been sent, and a download still running after
// EXPORT_DEADLINE_SECONDS is cut off. Every way out removes the files.
import { mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Response } from 'express';
import { writeTarGz } from '../../kernel/archive.ts';
import { type Pool, run } from '../../kernel/db.ts';
import type { Logger } from '../../kernel/logger.ts';
import * as tenantSql from '../../tenancy/tenant-sql.ts';
import type { RunOptions, UnitOfWork } from '../../tenancy/unit-of-work.ts';
import { ConflictError } from '../app-errors.ts';
import { requestIdOf } from '../http/request-id.ts';
import type { Slot, TenantSlots } from '../load/tenant-slots.ts';
import type { Actor } from '../workspace/actor.ts';
import type { ExportLimits, SpoolAccount } from './spool-budget.ts';
import { type Dump, dumpWorkspace, type Manifest, manifestOf } from './workspace-dump.ts';

export interface WorkspaceExportDeps {
  pool: Pool;
  log: Logger;
  slots: TenantSlots;
  exports: ExportLimits;
}

/** The owner's request: whose workspace, who asks, and their unit of work. */
export interface WorkspaceExportRequest {
  tenantId: string;
  who: Actor;
  workspace: <T>(fn: (uow: UnitOfWork) => Promise<T>, options?: RunOptions) => Promise<T>;
}

/** Streams the export into `res`, or throws before any byte is sent (the error handler answers). */
export async function sendWorkspaceExport(
  deps: WorkspaceExportDeps,
  request: WorkspaceExportRequest,
  res: Response,
): Promise<void> {
  const { spool, slot } = await reserve(deps, request.tenantId);
  const watch = watchDownload(deps, res);
  let dir: string | undefined;
  try {
    dir = await mkdtemp(path.join(deps.exports.dir, 'enclave-export-'));
    const { dump, schemaVersion } = await dumpConsistently(deps, request, dir, spool, watch.gone.signal);
    await streamArchive(res, dump, manifestOf(dump, request.tenantId, schemaVersion), spool);
  } catch (err) {
    failDownload(deps, res, watch.gone.signal, err);
  } finally {
    watch.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
    spool.close();
    slot.release();
  }
}

/** Refused before any work: the disk budget of this process is spent, or this workspace runs enough exports. */
async function reserve(
  deps: WorkspaceExportDeps,
  tenantId: string,
): Promise<{ spool: SpoolAccount; slot: Slot }> {
  const spool = deps.exports.spool.open();
  try {
    return { spool, slot: await deps.slots.acquire(tenantId, 'export') };
  } catch (err) {
    spool.close();
    throw err;
  }
}

/**
 * Stops the database reads if the client hangs up before the download starts, and drops a reader
 * too slow to finish in time (its files and slot are freed: the close stops the work).
 */
function watchDownload(deps: WorkspaceExportDeps, res: Response): { gone: AbortController; stop(): void } {
  const gone = new AbortController();
  const onClose = () => {
    if (!res.writableFinished) gone.abort(new Error('the client closed the connection'));
  };
  res.on('close', onClose);
  const deadline = setTimeout(() => {
    deps.log.warn('export cut off at its deadline', {
      requestId: requestIdOf(res),
      deadlineSeconds: deps.exports.deadlineMs / 1000,
    });
    res.destroy();
  }, deps.exports.deadlineMs);
  return {
    gone,
    stop() {
      clearTimeout(deadline);
      res.off('close', onClose);
    },
  };
}

/** Every table in one snapshot, audited in the same unit of work; refused if a fleet migration ran meanwhile. */
async function dumpConsistently(
  deps: WorkspaceExportDeps,
  request: WorkspaceExportRequest,
  dir: string,
  spool: SpoolAccount,
  signal: AbortSignal,
): Promise<{ dump: Dump; schemaVersion: number }> {
  const { tenantId, who } = request;
  const versionBefore = await schemaVersion(deps.pool, tenantId);
  const dump = await request.workspace(
    async (uow) => {
      const result = await dumpWorkspace(uow, dir, { signal, take: (bytes) => spool.take(bytes) });
      uow.audit({
        actor: who.actor,
        action: 'workspace.export',
        resource: { type: 'workspace', id: tenantId },
        outcome: 'success',
        context: who.context,
        details: {
          ...who.details,
          files: Object.fromEntries(result.files.map((f) => [f.name, { rows: f.rows, bytes: f.bytes }])),
        },
      });
      return result;
    },
    // Its reads take longer than a page's: their own statement budget (EXPORT_STATEMENT_TIMEOUT_MS).
    { isolation: 'repeatable read', statementTimeoutMs: deps.exports.statementTimeoutMs },
  );
  // The manifest names one schema version: refuse an export that straddled a fleet migration
  // (versions only grow, so equal before and after means the snapshot saw exactly this one).
  const versionAfter = await schemaVersion(deps.pool, tenantId);
  if (versionAfter !== versionBefore) {
    throw new ConflictError('Your workspace was upgraded while it was being exported. Please try again.');
  }
  return { dump, schemaVersion: versionBefore };
}

/** The headers, then the manifest and each table's file; each file is deleted once it is in the stream. */
async function streamArchive(
  res: Response,
  dump: Dump,
  manifest: Manifest,
  spool: SpoolAccount,
): Promise<void> {
  const day = manifest.exportedAt.slice(0, 10);
  res.status(200).set({
    'Content-Type': 'application/gzip',
    'Content-Disposition': `attachment; filename="enclave-export-${day}.tar.gz"`,
    'Cache-Control': 'no-store',
  });
  const entries = [
    // First, so a reader can check each file against it as the archive streams past.
    { name: 'manifest.json', body: Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`, 'utf8') },
    ...dump.files.map((f) => ({ name: f.name, file: f.path, size: f.bytes })),
  ];
  // Each file's bytes are given back to the budget once it is sent.
  await writeTarGz(res, entries, dump.exportedAt, {
    onFileSent: async (entry) => {
      await rm(entry.file, { force: true });
      spool.giveBack(entry.size);
    },
  });
}

/** Rethrows what can still be answered; otherwise cuts the download short (a broken archive to the client). */
function failDownload(deps: WorkspaceExportDeps, res: Response, gone: AbortSignal, err: unknown): void {
  // The client hung up: there is nobody to answer, and nothing went wrong on our side.
  if (gone.aborted) {
    if (!res.destroyed) res.destroy();
    return;
  }
  if (!res.headersSent) throw err;
  deps.log.warn('export stream failed', { requestId: requestIdOf(res), error: err });
  res.destroy();
}

async function schemaVersion(pool: Pool, tenantId: string): Promise<number> {
  const { rows } = await run<tenantSql.TenantRow>(pool, tenantSql.selectTenant(tenantId));
  return rows[0]?.schema_version ?? 0;
}
