// Control-plane statements of the inactive-tenant lifecycle
// (migrations/control/0012_lifecycle.sql), as small pure functions:
// parameters in, { text, values } out (see tenant-sql.ts).
import type { Statement } from '../kernel/db.ts';
import type { TenantState } from './tenant-sql.ts';

export type Stage = 'flagged' | 'suspended' | 'final_backup' | 'backed_up' | 'verified' | 'dropped';
export type StepName = 'flag' | 'reset' | 'suspend' | 'final_backup' | 'verify' | 'drop';

/** A tenant with its lifecycle row (all lifecycle columns null when it is not in the lifecycle). */
export interface LifecycleRow {
  id: string;
  display_name: string;
  state: TenantState;
  legal_hold: boolean;
  created_at: Date;
  last_active_at: Date | null;
  stage: Stage | null;
  inactive_since: Date | null;
  flagged_at: Date | null;
  suspended_at: Date | null;
  suspend_reason: 'inactive' | null;
  final_backup_started_at: Date | null;
  final_backup_attempts: number | null;
  final_backup_id: string | null;
  verified_at: Date | null;
  dropped_at: Date | null;
}

const COLUMNS = `t.id, t.display_name, t.state, t.legal_hold, t.created_at, t.last_active_at,
  l.stage, l.inactive_since, l.flagged_at, l.suspended_at, l.suspend_reason, l.final_backup_started_at,
  l.final_backup_attempts, l.final_backup_id, l.verified_at, l.dropped_at`;

/**
 * Every tenant the lifecycle may have to look at: active ones whose activity
 * is older than `cutoff` (the first flag due by then), and every one with a
 * lifecycle row (dropped ones too, for their final backup).
 */
export const selectCandidates = (cutoff: Date): Statement => ({
  text: `SELECT ${COLUMNS}
           FROM control.tenants t LEFT JOIN control.tenant_lifecycle l ON l.tenant_id = t.id
          WHERE l.tenant_id IS NOT NULL
             OR (t.state = 'active' AND coalesce(t.last_active_at, t.created_at) <= $1)
          ORDER BY coalesce(t.last_active_at, t.created_at), t.id`,
  values: [cutoff],
});

/** One tenant and its lifecycle row, both locked (inside the step's transaction, under the tenant lock). */
export const selectForStep = (tenantId: string): Statement => ({
  text: `SELECT ${COLUMNS}
           FROM control.tenants t LEFT JOIN control.tenant_lifecycle l ON l.tenant_id = t.id
          WHERE t.id = $1
          FOR UPDATE OF t`,
  values: [tenantId],
});

export const selectOne = (tenantId: string): Statement => ({
  text: `SELECT ${COLUMNS}
           FROM control.tenants t LEFT JOIN control.tenant_lifecycle l ON l.tenant_id = t.id
          WHERE t.id = $1`,
  values: [tenantId],
});

export const lockRow = (tenantId: string): Statement => ({
  text: 'SELECT stage FROM control.tenant_lifecycle WHERE tenant_id = $1 FOR UPDATE',
  values: [tenantId],
});

export const insertFlag = (tenantId: string, inactiveSince: Date, asOf: Date): Statement => ({
  text: `INSERT INTO control.tenant_lifecycle (tenant_id, stage, inactive_since, flagged_at)
         VALUES ($1, 'flagged', $2, $3)`,
  values: [tenantId, inactiveSince, asOf],
});

export const markSuspended = (tenantId: string, asOf: Date): Statement => ({
  text: `UPDATE control.tenant_lifecycle
            SET stage = 'suspended', suspended_at = $2, suspend_reason = 'inactive', updated_at = now()
          WHERE tenant_id = $1 AND stage = 'flagged'`,
  values: [tenantId, asOf],
});

/** 'final_backup started': written (and committed) before the backup begins. */
export const markFinalBackupStarted = (tenantId: string, asOf: Date): Statement => ({
  text: `UPDATE control.tenant_lifecycle
            SET stage = 'final_backup', final_backup_started_at = $2,
                final_backup_attempts = final_backup_attempts + 1, final_backup_id = NULL,
                verified_at = NULL, updated_at = now()
          WHERE tenant_id = $1 AND stage IN ('suspended', 'final_backup')
          RETURNING final_backup_attempts`,
  values: [tenantId, asOf],
});

/** The backup's id, once it succeeded: only onto the attempt that started it. */
export const markBackedUp = (tenantId: string, attempt: number, backupId: string): Statement => ({
  text: `UPDATE control.tenant_lifecycle
            SET stage = 'backed_up', final_backup_id = $3, updated_at = now()
          WHERE tenant_id = $1 AND stage = 'final_backup' AND final_backup_attempts = $2`,
  values: [tenantId, attempt, backupId],
});

export const markVerified = (tenantId: string, backupId: string, asOf: Date): Statement => ({
  text: `UPDATE control.tenant_lifecycle
            SET stage = 'verified', verified_at = $3, updated_at = now()
          WHERE tenant_id = $1 AND stage = 'backed_up' AND final_backup_id = $2`,
  values: [tenantId, backupId, asOf],
});

/** A final backup that did not verify: the next run takes a new one. */
export const markVerifyFailed = (tenantId: string, backupId: string): Statement => ({
  text: `UPDATE control.tenant_lifecycle
            SET stage = 'final_backup', final_backup_id = NULL, updated_at = now()
          WHERE tenant_id = $1 AND stage = 'backed_up' AND final_backup_id = $2`,
  values: [tenantId, backupId],
});

export const markDropped = (tenantId: string, asOf: Date): Statement => ({
  text: `UPDATE control.tenant_lifecycle SET stage = 'dropped', dropped_at = $2, updated_at = now()
          WHERE tenant_id = $1 AND stage = 'verified'`,
  values: [tenantId, asOf],
});

/** Out of the lifecycle (reset, resume, ops suspension); a dropped tenant's row stays. */
export const deleteRow = (tenantId: string): Statement => ({
  text: `DELETE FROM control.tenant_lifecycle WHERE tenant_id = $1 AND stage <> 'dropped'
         RETURNING stage, inactive_since`,
  values: [tenantId],
});

export const insertStep = (
  tenantId: string,
  step: StepName,
  outcome: 'started' | 'done' | 'failed',
  asOf: Date,
  details: Record<string, unknown>,
): Statement => ({
  text: `INSERT INTO control.tenant_lifecycle_steps (tenant_id, step, outcome, as_of, details)
         VALUES ($1, $2, $3, $4, $5)`,
  values: [tenantId, step, outcome, asOf, JSON.stringify(details)],
});

export interface StepRow {
  id: string;
  tenant_id: string;
  step: StepName;
  outcome: 'started' | 'done' | 'failed';
  as_of: Date;
  at: Date;
  details: Record<string, unknown>;
}

export const selectSteps = (tenantId: string): Statement => ({
  text: `SELECT id, tenant_id, step, outcome, as_of, at, details FROM control.tenant_lifecycle_steps
          WHERE tenant_id = $1 ORDER BY id`,
  values: [tenantId],
});

/**
 * A sign-in by someone of the tenant: activity now, and the warning (a
 * 'flagged' row) gone, in one statement. Returns the tenant, and the flag if
 * there was one. Only an active tenant's activity counts (a suspended one
 * needs an admin's resume).
 */
export const signInActivity = (userId: string): Statement => ({
  text: `WITH touched AS (
           UPDATE control.tenants t SET last_active_at = now()
             FROM control.users u
            WHERE u.id = $1 AND t.id = u.tenant_id AND t.state = 'active'
           RETURNING t.id
         ), cleared AS (
           DELETE FROM control.tenant_lifecycle l USING touched
            WHERE l.tenant_id = touched.id AND l.stage = 'flagged'
           RETURNING l.tenant_id, l.inactive_since, l.flagged_at
         )
         SELECT touched.id AS tenant_id, cleared.inactive_since, cleared.flagged_at
           FROM touched LEFT JOIN cleared ON cleared.tenant_id = touched.id`,
  values: [userId],
});

/** A resume: fresh activity, so the lifecycle starts again from now. */
export const touchNow = (tenantId: string): Statement => ({
  text: 'UPDATE control.tenants SET last_active_at = now() WHERE id = $1',
  values: [tenantId],
});

export const selectBackupForStep = (backupId: string): Statement => ({
  text: `SELECT id, tenant_id, kind, outcome, location, sha256, bytes, rows FROM control.backups WHERE id = $1`,
  values: [backupId],
});
