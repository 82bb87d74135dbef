// Control-plane statements of the scheduled backups and restore checks
// (docs/BACKUP.md, "Scheduled backups and restore checks"), as small pure
// functions: parameters in, { text, values } out (see tenancy/tenant-sql.ts).
// A tenant's "latest good backup" is its newest succeeded backup with an
// archive, ordered as retention orders them (started_at, then id).
import type { Statement } from '../kernel/db.ts';
import { LIVE_STATES } from '../tenancy/tenant-sql.ts';

/** The live tenants (not deleted, not provisioning), in id order: what a scheduled backup visits. */
export const selectLiveTenantIds = (): Statement => ({
  text: 'SELECT id FROM control.tenants WHERE state = ANY($1) ORDER BY id',
  values: [LIVE_STATES],
});

/** The database's clock: the start of a fleet run, comparable with control.backups.started_at. */
export const selectNow: Statement = { text: 'SELECT now() AS now', values: [] };

/** Whether the schema exists now (a schema dropped behind the platform's back does not). */
export const schemaExists = (schema: string): Statement => ({
  text: 'SELECT to_regnamespace($1) IS NOT NULL AS exists',
  values: [schema],
});

/** A succeeded scheduled backup of the tenant started at or after `since` (this fleet run already did it). */
export const selectBackedUpSince = (tenantId: string, since: Date): Statement => ({
  text: `SELECT id FROM control.backups
         WHERE tenant_id = $1 AND kind = 'scheduled' AND outcome = 'succeeded' AND started_at >= $2
         LIMIT 1`,
  values: [tenantId, since],
});

export interface SampleRow {
  tenant_id: string;
  backup_id: string;
  location: string;
  started_at: Date;
  backup_checked_at: Date | null;
  tenant_checked_at: Date | null;
}

const LATEST_GOOD = `SELECT id, location, started_at FROM control.backups
   WHERE tenant_id = t.id AND outcome = 'succeeded' AND location IS NOT NULL
   ORDER BY started_at DESC, id DESC LIMIT 1`;

/**
 * The sample of a restore check: live tenants' latest good backups, those
 * never checked first, then those checked longest ago; ties (every backup of
 * last night is unchecked) go to the tenant whose last check of any backup is
 * oldest (never first), so the sample walks the whole fleet in turn.
 */
export const selectSample = (limit: number): Statement => ({
  text: `SELECT t.id AS tenant_id, b.id AS backup_id, b.location, b.started_at,
                bc.checked_at AS backup_checked_at, tc.checked_at AS tenant_checked_at
         FROM control.tenants t
         CROSS JOIN LATERAL (${LATEST_GOOD}) b
         LEFT JOIN LATERAL (SELECT max(checked_at) AS checked_at FROM control.restore_checks
                            WHERE backup_id = b.id) bc ON true
         LEFT JOIN LATERAL (SELECT max(checked_at) AS checked_at FROM control.restore_checks
                            WHERE tenant_id = t.id) tc ON true
         WHERE t.state = ANY($1)
         ORDER BY bc.checked_at ASC NULLS FIRST, tc.checked_at ASC NULLS FIRST, b.started_at ASC, t.id
         LIMIT $2`,
  values: [LIVE_STATES, limit],
});

export interface CheckRow {
  id: number;
  backup_id: string | null;
  tenant_id: string;
  checked_at: Date;
  outcome: 'ok' | 'failed';
  tables: number | null;
  rows: number | string | null;
  error: string | null;
  duration_ms: number;
}

const CHECK_COLUMNS = 'id, backup_id, tenant_id, checked_at, outcome, tables, rows, error, duration_ms';

export const insertCheck = (c: {
  backupId: string;
  tenantId: string;
  outcome: 'ok' | 'failed';
  tables: number | null;
  rows: number | null;
  error: string | null;
  durationMs: number;
}): Statement => ({
  text: `INSERT INTO control.restore_checks (backup_id, tenant_id, outcome, tables, rows, error, duration_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ${CHECK_COLUMNS}`,
  values: [
    c.backupId,
    c.tenantId,
    c.outcome,
    c.tables,
    c.rows,
    c.error === null ? null : c.error.slice(0, 2000),
    Math.max(0, c.durationMs),
  ],
});

/** A tenant's checks, newest first. */
export const listChecks = (tenantId: string | null, limit: number): Statement => ({
  text: `SELECT ${CHECK_COLUMNS} FROM control.restore_checks ${tenantId ? 'WHERE tenant_id = $2' : ''}
         ORDER BY checked_at DESC, id DESC LIMIT $1`,
  values: tenantId ? [limit, tenantId] : [limit],
});

// --- health ------------------------------------------------------------------

export interface HealthSummaryRow {
  now: Date;
  tenants: number;
  without_good_backup: number;
  never_backed_up: number;
  failed_backups: number;
  tenants_with_failed_backups: number;
  checks: number;
  failed_checks: number;
  latest_check_failed: number;
  oldest_good_backup_at: Date | null;
}

/** The fleet's backup health over the last `withinHours` hours (live tenants; counts over the window). */
export const selectHealthSummary = (withinHours: number): Statement => ({
  text: `WITH live AS (SELECT id FROM control.tenants WHERE state = ANY($1)),
              latest AS (SELECT l.id, b.started_at FROM live l
                         LEFT JOIN LATERAL (SELECT started_at FROM control.backups
                                            WHERE tenant_id = l.id AND outcome = 'succeeded' AND location IS NOT NULL
                                            ORDER BY started_at DESC LIMIT 1) b ON true),
              last_check AS (SELECT l.id, c.outcome FROM live l
                             JOIN LATERAL (SELECT outcome FROM control.restore_checks
                                           WHERE tenant_id = l.id ORDER BY checked_at DESC, id DESC LIMIT 1) c ON true)
         SELECT now() AS now,
                (SELECT count(*) FROM live)::int AS tenants,
                (SELECT count(*) FROM latest
                 WHERE started_at IS NULL OR started_at < now() - make_interval(hours => $2))::int AS without_good_backup,
                (SELECT count(*) FROM latest WHERE started_at IS NULL)::int AS never_backed_up,
                (SELECT count(*) FROM control.backups
                 WHERE outcome = 'failed' AND started_at >= now() - make_interval(hours => $2))::int AS failed_backups,
                (SELECT count(DISTINCT tenant_id) FROM control.backups
                 WHERE outcome = 'failed' AND started_at >= now() - make_interval(hours => $2))::int
                  AS tenants_with_failed_backups,
                (SELECT count(*) FROM control.restore_checks
                 WHERE checked_at >= now() - make_interval(hours => $2))::int AS checks,
                (SELECT count(*) FROM control.restore_checks
                 WHERE outcome = 'failed' AND checked_at >= now() - make_interval(hours => $2))::int AS failed_checks,
                (SELECT count(*) FROM last_check WHERE outcome = 'failed')::int AS latest_check_failed,
                (SELECT min(started_at) FROM latest) AS oldest_good_backup_at`,
  values: [LIVE_STATES, withinHours],
});

export interface TenantHealthRow {
  tenant_id: string;
  display_name: string;
  state: string;
  legal_hold: boolean;
  good_id: string | null;
  good_at: Date | null;
  good_kind: string | null;
  failed_id: string | null;
  failed_at: Date | null;
  failed_error: string | null;
  check_backup_id: string | null;
  checked_at: Date | null;
  check_outcome: 'ok' | 'failed' | null;
  check_error: string | null;
}

/**
 * Per live tenant: its latest good backup, its latest failed one, its latest
 * restore check; the stalest first (no good backup, then the oldest). With
 * `attention`, only tenants without a good backup in the window, whose latest
 * attempt failed, or whose latest check failed.
 */
export const selectTenantHealth = (withinHours: number, limit: number, attention: boolean): Statement => ({
  text: `SELECT t.id AS tenant_id, t.display_name, t.state, t.legal_hold,
                g.id AS good_id, g.started_at AS good_at, g.kind AS good_kind,
                f.id AS failed_id, f.started_at AS failed_at, f.error AS failed_error,
                c.backup_id AS check_backup_id, c.checked_at, c.outcome AS check_outcome, c.error AS check_error
         FROM control.tenants t
         LEFT JOIN LATERAL (SELECT id, started_at, kind FROM control.backups
                            WHERE tenant_id = t.id AND outcome = 'succeeded' AND location IS NOT NULL
                            ORDER BY started_at DESC, id DESC LIMIT 1) g ON true
         LEFT JOIN LATERAL (SELECT id, started_at, error FROM control.backups
                            WHERE tenant_id = t.id AND outcome = 'failed'
                            ORDER BY started_at DESC, id DESC LIMIT 1) f ON true
         LEFT JOIN LATERAL (SELECT backup_id, checked_at, outcome, error FROM control.restore_checks
                            WHERE tenant_id = t.id ORDER BY checked_at DESC, id DESC LIMIT 1) c ON true
         WHERE t.state = ANY($1)
           ${
             attention
               ? `AND (g.started_at IS NULL OR g.started_at < now() - make_interval(hours => $2)
                       OR f.started_at > g.started_at OR c.outcome = 'failed')`
               : 'AND $2::int IS NOT NULL'
           }
         ORDER BY g.started_at ASC NULLS FIRST, t.id
         LIMIT $3`,
  values: [LIVE_STATES, withinHours, limit],
});
