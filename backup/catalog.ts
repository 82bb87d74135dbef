// control.backups (one row per backup attempt) and control.restore_asides (a
// tenant's previous schemas, kept for RESTORE_KEEP_PREVIOUS_HOURS after an
// in-place restore). A backup killed mid-way leaves its row 'running': the
// next backup or prune marks such rows failed once the connection that ran
// them is gone (failStaleBackups), so 'running' never outlives its process.
import type { AuditBy } from '../kernel/audit-inbox.ts';
import { type Client, type Pool, run, transaction } from '../kernel/db.ts';
import { checkAsideSchemaName, ident } from '../kernel/identifiers.ts';
import { tenantLock } from '../kernel/locks.ts';
import * as sql from './catalog-sql.ts';

export interface BackupRecord {
  id: string;
  tenantId: string;
  kind: string;
  outcome: 'running' | 'succeeded' | 'failed';
  location: string | null;
  bytes: number | null;
  sha256: string | null;
  schemaVersion: number | null;
  rows: number | null;
  startedAt: Date;
  finishedAt: Date | null;
  durationMs: number | null;
  createdBy: string;
  error: string | null;
  encrypted: boolean;
  keyId: string | null;
  drift: number | null;
}

/** A 'running' row older than this is failed whatever its backend says. */
export const STALE_RUNNING_SECONDS = 24 * 3600;

const num = (v: number | string | null): number | null => (v === null ? null : Number(v));

export function toRecord(r: sql.BackupRow): BackupRecord {
  return {
    id: r.id,
    tenantId: r.tenant_id,
    kind: r.kind,
    outcome: r.outcome,
    location: r.location,
    bytes: num(r.bytes),
    sha256: r.sha256,
    schemaVersion: r.schema_version,
    rows: num(r.rows),
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    durationMs: r.duration_ms === null ? null : Math.round(r.duration_ms),
    createdBy: r.created_by,
    error: r.error,
    encrypted: r.encrypted,
    keyId: r.key_id,
    drift: r.drift,
  };
}

/** "admin:<id>", "system"...: who a catalog row says made the backup. */
export function createdBy(by: AuditBy): string {
  return by.actor.id ? `${by.actor.type}:${by.actor.id}` : by.actor.type;
}

export async function insertRunning(
  db: Pool | Client,
  input: {
    tenantId: string;
    kind: string;
    by: AuditBy;
    encrypted: boolean;
    keyId: string | null;
    backendPid: number;
  },
): Promise<BackupRecord> {
  const { rows } = await run<sql.BackupRow>(
    db,
    sql.insertRunning(
      input.tenantId,
      input.kind,
      createdBy(input.by),
      input.encrypted,
      input.keyId,
      input.backendPid,
    ),
  );
  return toRecord(rows[0] as sql.BackupRow);
}

export async function finishSucceeded(
  db: Pool | Client,
  id: string,
  result: Parameters<typeof sql.finishSucceeded>[1],
): Promise<BackupRecord> {
  const { rows } = await run<sql.BackupRow>(db, sql.finishSucceeded(id, result));
  return toRecord(rows[0] as sql.BackupRow);
}

export async function finishFailed(
  db: Pool | Client,
  id: string,
  error: string,
  schemaVersion: number | null,
): Promise<BackupRecord | null> {
  const { rows } = await run<sql.BackupRow>(db, sql.finishFailed(id, error, schemaVersion));
  return rows[0] ? toRecord(rows[0]) : null;
}

/** Marks 'running' rows whose process is gone (or that are older than a day) failed; their ids. */
export async function failStaleBackups(
  db: Pool | Client,
  maxAgeSeconds = STALE_RUNNING_SECONDS,
): Promise<string[]> {
  const { rows } = await run<{ id: string }>(db, sql.failStale(maxAgeSeconds));
  return rows.map((r) => r.id);
}

/** Every backup, or one tenant's, newest first. */
export async function listBackups(pool: Pool, tenantId?: string): Promise<BackupRecord[]> {
  const { rows } = await run<sql.BackupRow>(pool, sql.listBackups(tenantId ?? null));
  return rows.map(toRecord);
}

export async function getBackup(pool: Pool, id: string): Promise<BackupRecord | null> {
  const { rows } = await run<sql.BackupRow>(pool, sql.selectBackup(id));
  return rows[0] ? toRecord(rows[0]) : null;
}

/** Records a set-aside schema, inside the restore's transaction. */
export async function recordAside(
  client: Client,
  schema: string,
  tenantId: string,
  keepHours: number,
): Promise<void> {
  await run(client, sql.insertAside(checkAsideSchemaName(schema), tenantId, keepHours));
}

/**
 * Drops the set-aside schemas due at `now` (each in its own transaction, under
 * its tenant's lock); returns the names dropped.
 */
export async function dropExpiredAsides(pool: Pool, now: Date = new Date()): Promise<string[]> {
  const due = (await run<{ schema_name: string; tenant_id: string }>(pool, sql.selectDueAsides(now))).rows;
  const dropped: string[] = [];
  for (const { schema_name, tenant_id } of due) {
    const schema = checkAsideSchemaName(schema_name);
    const done = await transaction(pool, async (client) => {
      await client.query(tenantLock(tenant_id));
      if (!(await run(client, sql.lockAside(schema))).rowCount) return false;
      await client.query(`DROP SCHEMA IF EXISTS ${ident(schema)} CASCADE`);
      await run(client, sql.markAsideDropped(schema));
      return true;
    });
    if (done) dropped.push(schema);
  }
  return dropped;
}
