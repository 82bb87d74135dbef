// Restore checks and backup health (docs/BACKUP.md, "Scheduled backups and
// restore checks"). A restore check takes a backup's archive, restores it
// into a scratch role and schema inside a transaction that always rolls back
// (verifyArchiveByRestore: the scratch is gone with the rollback), compares
// every table's row count and content SHA-256 with the signed manifest, and
// records the result twice: a row in control.restore_checks (the history ops
// and the health API read) and `tenant.backup.verify` on the tenant's audit
// chain, the same event an admin's `verify?restore=1` writes.
import { type AuditBy, record } from '../kernel/audit-inbox.ts';
import { type Pool, run, transaction } from '../kernel/db.ts';
import type { RestoreContext } from './restore.ts';
import { verifyArchiveByRestore } from './restore.ts';
import * as sql from './restore-checks-sql.ts';
import type { BackupStorage } from './storage.ts';

export interface RestoreCheck {
  id: number;
  backupId: string | null;
  tenantId: string;
  checkedAt: Date;
  outcome: 'ok' | 'failed';
  /** Tables restored and compared (null when the archive could not be read at all). */
  tables: number | null;
  rows: number | null;
  error: string | null;
  durationMs: number;
}

export interface CheckTarget {
  tenantId: string;
  backupId: string;
  location: string;
}

const toCheck = (r: sql.CheckRow): RestoreCheck => ({
  id: Number(r.id),
  backupId: r.backup_id,
  tenantId: r.tenant_id,
  checkedAt: r.checked_at,
  outcome: r.outcome,
  tables: r.tables,
  rows: r.rows === null ? null : Number(r.rows),
  error: r.error,
  durationMs: Math.round(r.duration_ms),
});

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** The live tenant ids, in id order. */
export async function liveTenantIds(pool: Pool): Promise<string[]> {
  return (await run<{ id: string }>(pool, sql.selectLiveTenantIds())).rows.map((r) => r.id);
}

/** A succeeded scheduled backup of the tenant started at or after `since`, if any. */
export async function backedUpSince(pool: Pool, tenantId: string, since: Date): Promise<string | null> {
  return (await run<{ id: string }>(pool, sql.selectBackedUpSince(tenantId, since))).rows[0]?.id ?? null;
}

/** Up to `n` latest good backups to check: never checked first, then checked longest ago (see selectSample). */
export async function sampleForRestoreCheck(pool: Pool, n: number): Promise<CheckTarget[]> {
  return (await run<sql.SampleRow>(pool, sql.selectSample(n))).rows.map((r) => ({
    tenantId: r.tenant_id,
    backupId: r.backup_id,
    location: r.location,
  }));
}

/**
 * Checks one backup by a restore into scratch and records the result (the
 * row, then the audit event). Never throws for a bad archive: a check that
 * fails is a result, `outcome: 'failed'` with the reason. It throws only when
 * the result cannot be recorded.
 */
export async function checkBackup(
  ctx: RestoreContext,
  storageAt: (location: string) => BackupStorage,
  target: CheckTarget,
  by: AuditBy,
): Promise<RestoreCheck> {
  const started = performance.now();
  let outcome: 'ok' | 'failed' = 'ok';
  let error: string | null = null;
  let tables: number | null = null;
  let rows: number | null = null;
  try {
    const result = await verifyArchiveByRestore(ctx, () => storageAt(target.location).open(target.location));
    tables = result.tables.length;
    rows = result.tables.reduce((n, t) => n + t.rows, 0);
    const bad = result.tables.filter((t) => !t.ok);
    if (result.manifest.tenant.id !== target.tenantId) {
      outcome = 'failed';
      error = `the archive is a backup of tenant ${result.manifest.tenant.id}, not of ${target.tenantId}`;
    } else if (bad.length) {
      outcome = 'failed';
      error = `restored rows differ from the manifest in ${bad
        .map((t) => `${t.name} (${t.rows} rows, manifest ${t.expectedRows})`)
        .join(', ')}`;
    }
  } catch (err) {
    outcome = 'failed';
    error = message(err) || 'the restore failed';
  }
  const durationMs = performance.now() - started;
  // The row and the event together: a check is in the history and on the tenant's chain, or in neither.
  const row = await transaction(ctx.pool, async (client) => {
    const inserted = (
      await run<sql.CheckRow>(
        client,
        sql.insertCheck({
          backupId: target.backupId,
          tenantId: target.tenantId,
          outcome,
          tables,
          rows,
          error,
          durationMs,
        }),
      )
    ).rows[0] as sql.CheckRow;
    // The event an admin's `POST …/backups/:id/verify?restore=1` writes (server/api/backup-api.ts).
    await record(client, by, {
      tenantId: target.tenantId,
      action: 'tenant.backup.verify',
      resource: { type: 'tenant', id: target.tenantId },
      outcome: outcome === 'ok' ? 'success' : 'failure',
      details: { backupId: target.backupId, restore: true, ...(error !== null ? { error } : {}) },
    });
    return inserted;
  });
  return toCheck(row);
}

/** Restore checks, newest first (one tenant's, or all). */
export async function listRestoreChecks(
  pool: Pool,
  options: { tenantId?: string; limit?: number } = {},
): Promise<RestoreCheck[]> {
  const { rows } = await run<sql.CheckRow>(
    pool,
    sql.listChecks(options.tenantId ?? null, options.limit ?? 100),
  );
  return rows.map(toCheck);
}

export interface TenantBackupHealth {
  tenantId: string;
  name: string;
  state: string;
  legalHold: boolean;
  latestGood: { backupId: string; startedAt: Date; kind: string; ageSeconds: number } | null;
  lastFailed: { backupId: string; startedAt: Date; error: string | null } | null;
  lastCheck: {
    backupId: string | null;
    checkedAt: Date;
    outcome: 'ok' | 'failed';
    error: string | null;
  } | null;
}

export interface BackupHealth {
  now: Date;
  withinHours: number;
  summary: {
    tenants: number;
    /** Live tenants with no good backup started in the window (never backed up included). */
    withoutGoodBackup: number;
    neverBackedUp: number;
    failedBackups: number;
    tenantsWithFailedBackups: number;
    checks: number;
    failedChecks: number;
    /** Live tenants whose most recent restore check failed (whenever it ran). */
    latestCheckFailed: number;
    /** Age of the stalest latest good backup among tenants that have one. */
    oldestGoodBackupAgeSeconds: number | null;
  };
  tenants: TenantBackupHealth[];
}

const ageSeconds = (now: Date, at: Date) => Math.max(0, Math.round((now.getTime() - at.getTime()) / 1000));

/** The fleet's backup health: a summary over the window and the stalest `limit` tenants (or only those needing attention). */
export async function backupHealth(
  pool: Pool,
  options: { withinHours: number; limit: number; attention: boolean },
): Promise<BackupHealth> {
  const s = (await run<sql.HealthSummaryRow>(pool, sql.selectHealthSummary(options.withinHours)))
    .rows[0] as sql.HealthSummaryRow;
  const rows = (
    await run<sql.TenantHealthRow>(
      pool,
      sql.selectTenantHealth(options.withinHours, options.limit, options.attention),
    )
  ).rows;
  const now = s.now;
  return {
    now,
    withinHours: options.withinHours,
    summary: {
      tenants: s.tenants,
      withoutGoodBackup: s.without_good_backup,
      neverBackedUp: s.never_backed_up,
      failedBackups: s.failed_backups,
      tenantsWithFailedBackups: s.tenants_with_failed_backups,
      checks: s.checks,
      failedChecks: s.failed_checks,
      latestCheckFailed: s.latest_check_failed,
      oldestGoodBackupAgeSeconds: s.oldest_good_backup_at ? ageSeconds(now, s.oldest_good_backup_at) : null,
    },
    tenants: rows.map((r) => ({
      tenantId: r.tenant_id,
      name: r.display_name,
      state: r.state,
      legalHold: r.legal_hold,
      latestGood:
        r.good_id && r.good_at
          ? {
              backupId: r.good_id,
              startedAt: r.good_at,
              kind: r.good_kind ?? '',
              ageSeconds: ageSeconds(now, r.good_at),
            }
          : null,
      lastFailed:
        r.failed_id && r.failed_at
          ? { backupId: r.failed_id, startedAt: r.failed_at, error: r.failed_error }
          : null,
      lastCheck:
        r.checked_at && r.check_outcome
          ? {
              backupId: r.check_backup_id,
              checkedAt: r.checked_at,
              outcome: r.check_outcome,
              error: r.check_error,
            }
          : null,
    })),
  };
}

/** The database's now(): what control.backups.started_at is measured against. */
export async function databaseNow(pool: Pool): Promise<Date> {
  return (await run<{ now: Date }>(pool, sql.selectNow)).rows[0]?.now as Date;
}
