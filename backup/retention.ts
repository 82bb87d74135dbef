// Retention of backups (docs/BACKUP.md, "Retention"): per tenant, the good
// (succeeded) backups beyond the newest `keepCount`, and those older than
// `keepDays`, are deleted (the archive file, then its catalog row, in one
// transaction, audited on the tenant's chain as `tenant.backup.delete`), but
// never the newest good backup of a tenant, and nothing at all of a tenant
// under legal hold (checked again, under a share lock, as each one is
// deleted). Failed and running rows are left as the history they are. Prune
// also fails 'running' rows whose process is gone, sweeps the temporary files
// crashed backups left, and drops set-aside schemas whose time is up. A
// 'final' backup (the one the inactive-tenant lifecycle takes before it drops
// a tenant, docs/LIFECYCLE.md) is never deleted, nor counted among the kept.
import type { AuditBy } from '../kernel/audit-inbox.ts';
import { record } from '../kernel/audit-inbox.ts';
import { type Pool, run, type Statement, transaction } from '../kernel/db.ts';
import { dropExpiredAsides, failStaleBackups } from './catalog.ts';
import { selectDueAsides } from './catalog-sql.ts';
import type { BackupStorage } from './storage.ts';

export interface PruneOptions {
  keepCount: number;
  keepDays: number;
  now?: Date;
  /** Report what would be deleted; change nothing. */
  dryRun?: boolean;
  /** Who prunes (the audit events of the deletions); default: the system. */
  by?: AuditBy;
  /** The storage an archive at `location` is removed through (default: `storage`). */
  storageFor?: (location: string) => BackupStorage;
}

export interface PrunedBackup {
  id: string;
  tenantId: string;
  location: string | null;
  bytes: number | null;
  startedAt: Date;
  /** `count`: beyond the newest keepCount; `age`: older than keepDays (both: `count`). */
  reason: 'count' | 'age';
}

export interface PruneResult {
  dryRun: boolean;
  /** Deleted (or, in a dry run, to be deleted). */
  deleted: PrunedBackup[];
  /** Good backups kept. */
  kept: number;
  /** Tenants under legal hold: none of their backups was looked at. */
  held: string[];
  /** Deletions that failed (the backup and its row are kept). */
  errors: Array<{ id: string; tenantId: string; error: string }>;
  /** 'running' rows whose process is gone, now failed (none in a dry run). */
  failedStale: string[];
  /** Leftover temporary files removed (0 in a dry run). */
  sweptTempFiles: number;
  /** Set-aside schemas dropped (in a dry run: due to be dropped). */
  droppedAsides: string[];
}

interface GoodRow {
  id: string;
  tenant_id: string;
  location: string | null;
  bytes: string | number | null;
  started_at: Date;
  legal_hold: boolean;
}

const selectGood: Statement = {
  text: `SELECT b.id, b.tenant_id, b.location, b.bytes, b.started_at, t.legal_hold
         FROM control.backups b JOIN control.tenants t ON t.id = b.tenant_id
         WHERE b.outcome = 'succeeded' AND b.kind <> 'final'
         ORDER BY b.tenant_id, b.started_at DESC, b.id DESC`,
  values: [],
};

const holdForShare = (tenantId: string): Statement => ({
  text: 'SELECT legal_hold FROM control.tenants WHERE id = $1 FOR SHARE',
  values: [tenantId],
});

/** The row, if it is still a good backup of a tenant and not the tenant's newest one. */
const deleteBackup = (id: string): Statement => ({
  text: `DELETE FROM control.backups b
         WHERE b.id = $1 AND b.outcome = 'succeeded' AND b.kind <> 'final'
           AND EXISTS (SELECT 1 FROM control.backups n
                       WHERE n.tenant_id = b.tenant_id AND n.outcome = 'succeeded' AND n.id <> b.id
                         AND (n.started_at, n.id) > (b.started_at, b.id))
         RETURNING b.location, b.sha256`,
  values: [id],
});

const DAY_MS = 24 * 3600 * 1000;

/** What retention would delete of these rows (newest first per tenant), pure. */
export function selectForPruning(
  rows: readonly GoodRow[],
  keepCount: number,
  keepDays: number,
  now: Date,
): { deleted: PrunedBackup[]; kept: number; held: string[] } {
  const cutoff = now.getTime() - keepDays * DAY_MS;
  const byTenant = new Map<string, GoodRow[]>();
  for (const r of rows) {
    const list = byTenant.get(r.tenant_id) ?? [];
    list.push(r);
    byTenant.set(r.tenant_id, list);
  }
  const deleted: PrunedBackup[] = [];
  const held: string[] = [];
  let kept = 0;
  for (const [tenantId, list] of byTenant) {
    if (list.some((r) => r.legal_hold)) {
      held.push(tenantId);
      kept += list.length;
      continue;
    }
    const newestFirst = [...list].sort(
      (a, b) => b.started_at.getTime() - a.started_at.getTime() || (a.id < b.id ? 1 : -1),
    );
    newestFirst.forEach((r, i) => {
      // The newest good backup is never deleted, whatever its age.
      const beyondCount = i >= Math.max(1, keepCount);
      const tooOld = i > 0 && r.started_at.getTime() < cutoff;
      if (!beyondCount && !tooOld) {
        kept++;
        return;
      }
      deleted.push({
        id: r.id,
        tenantId,
        location: r.location,
        bytes: r.bytes === null ? null : Number(r.bytes),
        startedAt: r.started_at,
        reason: beyondCount ? 'count' : 'age',
      });
    });
  }
  return { deleted, kept, held: held.sort() };
}

export async function pruneBackups(
  pool: Pool,
  storage: BackupStorage,
  options: PruneOptions,
): Promise<PruneResult> {
  const now = options.now ?? new Date();
  const dryRun = options.dryRun ?? false;
  const by: AuditBy = options.by ?? { actor: { type: 'system', id: null } };
  const storageFor = options.storageFor ?? (() => storage);
  const failedStale = dryRun ? [] : await failStaleBackups(pool);
  const rows = (await run<GoodRow>(pool, selectGood)).rows;
  const plan = selectForPruning(rows, options.keepCount, options.keepDays, now);
  const result: PruneResult = {
    dryRun,
    deleted: [],
    kept: plan.kept,
    held: plan.held,
    errors: [],
    failedStale,
    sweptTempFiles: 0,
    droppedAsides: [],
  };
  if (dryRun) {
    result.deleted = plan.deleted;
    result.droppedAsides = (await run<{ schema_name: string }>(pool, selectDueAsides(now))).rows.map(
      (r) => r.schema_name,
    );
    return result;
  }
  for (const b of plan.deleted) {
    try {
      const done = await transaction(pool, async (client) => {
        // A legal hold placed since the plan was made wins; the share lock keeps one from landing mid-way.
        const hold = (await run<{ legal_hold: boolean }>(client, holdForShare(b.tenantId))).rows[0];
        if (!hold || hold.legal_hold) return false;
        const gone = (
          await run<{ location: string | null; sha256: string | null }>(client, deleteBackup(b.id))
        ).rows[0];
        if (!gone) return false;
        await record(client, by, {
          tenantId: b.tenantId,
          action: 'tenant.backup.delete',
          resource: { type: 'tenant', id: b.tenantId },
          outcome: 'success',
          details: {
            backupId: b.id,
            reason: b.reason,
            startedAt: b.startedAt.toISOString(),
            sha256: gone.sha256,
            keepCount: options.keepCount,
            keepDays: options.keepDays,
          },
        });
        // The file last: if removing it fails, the row (and the file) stay.
        if (gone.location) await storageFor(gone.location).remove(gone.location);
        return true;
      });
      if (done) result.deleted.push(b);
      else result.kept++;
    } catch (err) {
      result.errors.push({ id: b.id, tenantId: b.tenantId, error: (err as Error).message });
    }
  }
  result.sweptTempFiles = await storage.sweep();
  result.droppedAsides = await dropExpiredAsides(pool, now);
  return result;
}
