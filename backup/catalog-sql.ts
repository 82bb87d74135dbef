// Control-plane statements about backups and set-aside schemas, as small pure
// functions: parameters in, { text, values } out (see tenancy/tenant-sql.ts).
import type { Statement } from '../kernel/db.ts';

export interface BackupRow {
  id: string;
  tenant_id: string;
  kind: string;
  outcome: 'running' | 'succeeded' | 'failed';
  location: string | null;
  bytes: number | string | null;
  sha256: string | null;
  schema_version: number | null;
  rows: number | string | null;
  started_at: Date;
  finished_at: Date | null;
  duration_ms: number | null;
  created_by: string;
  error: string | null;
  encrypted: boolean;
  key_id: string | null;
  drift: number | null;
}

const COLUMNS = `id, tenant_id, kind, outcome, location, bytes, sha256, schema_version, rows, started_at,
  finished_at, duration_ms, created_by, error, encrypted, key_id, drift`;

/** A backup starts 'running', stamped with the backend that runs it (a later run can tell it died). */
export const insertRunning = (
  tenantId: string,
  kind: string,
  createdBy: string,
  encrypted: boolean,
  keyId: string | null,
  backendPid: number,
): Statement => ({
  text: `INSERT INTO control.backups (tenant_id, kind, created_by, encrypted, key_id, backend_pid, backend_start)
         VALUES ($1, $2, $3, $4, $5, $6, (SELECT backend_start FROM pg_stat_activity WHERE pid = $6))
         RETURNING ${COLUMNS}`,
  values: [tenantId, kind, createdBy, encrypted, keyId, backendPid],
});

export const finishSucceeded = (
  id: string,
  r: {
    location: string;
    bytes: number;
    sha256: string;
    schemaVersion: number;
    rows: number;
    drift: number | null;
    keyId: string | null;
  },
): Statement => ({
  text: `UPDATE control.backups
         SET outcome = 'succeeded', location = $2, bytes = $3, sha256 = $4, schema_version = $5, rows = $6,
             drift = $7, key_id = $8, finished_at = clock_timestamp(),
             duration_ms = extract(epoch FROM clock_timestamp() - started_at) * 1000
         WHERE id = $1 RETURNING ${COLUMNS}`,
  values: [id, r.location, r.bytes, r.sha256, r.schemaVersion, r.rows, r.drift, r.keyId],
});

export const finishFailed = (id: string, error: string, schemaVersion: number | null): Statement => ({
  text: `UPDATE control.backups
         SET outcome = 'failed', error = $2, schema_version = coalesce($3, schema_version),
             finished_at = clock_timestamp(), duration_ms = extract(epoch FROM clock_timestamp() - started_at) * 1000
         WHERE id = $1 AND outcome = 'running' RETURNING ${COLUMNS}`,
  values: [id, error.slice(0, 2000), schemaVersion],
});

/**
 * 'running' rows whose backend is gone (no session with that pid and start
 * time: a pid reused by a later session does not count), or that started more
 * than `maxAgeSeconds` ago, become 'failed'.
 */
export const failStale = (maxAgeSeconds: number): Statement => ({
  text: `UPDATE control.backups b
         SET outcome = 'failed', error = 'interrupted: the process that ran this backup is gone',
             finished_at = clock_timestamp(), duration_ms = extract(epoch FROM clock_timestamp() - started_at) * 1000
         WHERE b.outcome = 'running'
           AND (b.started_at < now() - make_interval(secs => $1)
                OR NOT EXISTS (SELECT 1 FROM pg_stat_activity a
                               WHERE a.pid = b.backend_pid
                                 -- NULL: another role's session, whose start we may not see: taken as alive
                                 AND (a.backend_start IS NULL OR b.backend_start IS NULL
                                      OR a.backend_start = b.backend_start)))
         RETURNING b.id`,
  values: [maxAgeSeconds],
});

export const listBackups = (tenantId: string | null): Statement => ({
  text: `SELECT ${COLUMNS} FROM control.backups ${tenantId ? 'WHERE tenant_id = $1' : ''}
         ORDER BY started_at DESC, id`,
  values: tenantId ? [tenantId] : [],
});

export const selectBackup = (id: string): Statement => ({
  text: `SELECT ${COLUMNS} FROM control.backups WHERE id = $1`,
  values: [id],
});

// --- set-aside schemas -----------------------------------------------------

export const insertAside = (schema: string, tenantId: string, keepHours: number): Statement => ({
  text: `INSERT INTO control.restore_asides (schema_name, tenant_id, drop_after)
         VALUES ($1, $2, now() + make_interval(secs => $3))`,
  values: [schema, tenantId, Math.max(0, keepHours) * 3600],
});

/** Set-aside schemas due at `now`, oldest first; never a tenant's under legal hold (kept until it is lifted). */
export const selectDueAsides = (now: Date): Statement => ({
  text: `SELECT a.schema_name, a.tenant_id FROM control.restore_asides a
         WHERE a.dropped_at IS NULL AND a.drop_after <= $1
           AND NOT EXISTS (SELECT 1 FROM control.tenants t WHERE t.id = a.tenant_id AND t.legal_hold)
         ORDER BY a.drop_after, a.schema_name`,
  values: [now],
});

/** One set-aside schema, still to drop, locked (two prunes never drop the same one twice). */
export const lockAside = (schema: string): Statement => ({
  text: `SELECT schema_name FROM control.restore_asides
         WHERE schema_name = $1 AND dropped_at IS NULL FOR UPDATE`,
  values: [schema],
});

export const markAsideDropped = (schema: string): Statement => ({
  text: 'UPDATE control.restore_asides SET dropped_at = now() WHERE schema_name = $1',
  values: [schema],
});

/** Restore: a re-applied migration (V+1..latest) is recorded unless the ledger already has it applied. */
export const recordReappliedMigration = (
  tenantId: string,
  m: { name: string; version: number; checksum: string },
  durationMs: number,
): Statement => ({
  text: `INSERT INTO control.tenant_migrations (tenant_id, migration, version, checksum, duration_ms, outcome)
         VALUES ($1, $2, $3, $4, $5, 'applied')
         ON CONFLICT (tenant_id, version) WHERE outcome = 'applied' DO NOTHING`,
  values: [tenantId, m.name, m.version, m.checksum, durationMs],
});
