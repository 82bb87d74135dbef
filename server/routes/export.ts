// GET /api/v1/export: the whole workspace as a .tar.gz download (session or
// API token, read scope is enough; owners only). All tables are read in ONE
// REPEATABLE READ transaction, so the archive is one consistent moment even
// while other sessions keep writing; see export/workspace-dump.ts for why the
// rows pass through temporary files on their way to the response.
//
// What one export may cost is bounded: a workspace runs at most
// TENANT_MAX_EXPORTS at once (429), the spool files of all exports of this
// process stay within EXPORT_SPOOL_BUDGET_MB (503), each file is deleted as
// soon as it has been sent, and a download still running after
// EXPORT_DEADLINE_SECONDS is cut off. Every way out removes the files.
import { mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { Router } from 'express';
import { writeTarGz } from '../../kernel/archive.ts';
import { run } from '../../kernel/db.ts';
import * as tenantSql from '../../tenancy/tenant-sql.ts';
import { requireWorkspace, workspaceOf } from '../auth/guards.ts';
import { ConflictError } from '../errors.ts';
import { dumpWorkspace, manifestOf } from '../export/workspace-dump.ts';
import type { Slot } from '../load/tenant-slots.ts';
import { requestIdOf } from '../request-id.ts';
import { actorOf } from '../workspace/actor.ts';
import type { RouteDeps } from './deps.ts';

export function exportRoutes(deps: RouteDeps): Router {
  const router = Router();

  router.get('/api/v1/export', requireWorkspace(deps.tenants), async (req, res) => {
    const user = req.user as Express.User;
    const tenantId = user.tenantId as string;
    const who = actorOf(req, res);
    const limits = deps.exports;
    // Refused before any work: the disk budget of this process is spent, or this workspace runs enough exports.
    const spool = limits.spool.open();
    let slot: Slot;
    try {
      slot = await deps.slots.acquire(tenantId, 'export');
    } catch (err) {
      spool.close();
      throw err;
    }
    // Stops the database reads if the client hangs up before the download starts.
    const gone = new AbortController();
    const onClose = () => {
      if (!res.writableFinished) gone.abort(new Error('the client closed the connection'));
    };
    res.on('close', onClose);
    // A reader too slow to finish in time is dropped: its files and slot are freed (the close above stops the work).
    const deadline = setTimeout(() => {
      deps.log.warn('export cut off at its deadline', {
        requestId: requestIdOf(res),
        deadlineSeconds: limits.deadlineMs / 1000,
      });
      res.destroy();
    }, limits.deadlineMs);
    let dir: string | undefined;
    try {
      dir = await mkdtemp(path.join(limits.dir, 'enclave-export-'));
      const spoolDir = dir;
      const versionBefore = await schemaVersion(deps, tenantId);
      const dump = await workspaceOf(req)(
        async (uow) => {
          const result = await dumpWorkspace(uow, spoolDir, {
            signal: gone.signal,
            take: (bytes) => spool.take(bytes),
          });
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
        { isolation: 'repeatable read', statementTimeoutMs: limits.statementTimeoutMs },
      );
      // The manifest names one schema version: refuse an export that straddled a fleet migration
      // (versions only grow, so equal before and after means the snapshot saw exactly this one).
      const versionAfter = await schemaVersion(deps, tenantId);
      if (versionAfter !== versionBefore) {
        throw new ConflictError('Your workspace was upgraded while it was being exported. Please try again.');
      }
      const manifest = manifestOf(dump, tenantId, versionBefore);
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
      // Each table's file is deleted (and its bytes given back to the budget) once it is in the stream.
      await writeTarGz(res, entries, dump.exportedAt, {
        onFileSent: async (entry) => {
          await rm(entry.file, { force: true });
          spool.giveBack(entry.size);
        },
      });
    } catch (err) {
      // The client hung up: there is nobody to answer, and nothing went wrong on our side.
      if (gone.signal.aborted) {
        if (!res.destroyed) res.destroy();
        return;
      }
      if (!res.headersSent) throw err;
      // Too late for an error body: the download is cut short, which the client sees as a broken archive.
      deps.log.warn('export stream failed', { requestId: requestIdOf(res), error: err });
      res.destroy();
    } finally {
      clearTimeout(deadline);
      res.off('close', onClose);
      if (dir) await rm(dir, { recursive: true, force: true });
      spool.close();
      slot.release();
    }
  });

  return router;
}

async function schemaVersion(deps: RouteDeps, tenantId: string): Promise<number> {
  const { rows } = await run<tenantSql.TenantRow>(deps.pool, tenantSql.selectTenant(tenantId));
  return rows[0]?.schema_version ?? 0;
}
