// A backup of one tenant (docs/BACKUP.md): on one dedicated connection, the
// tenant's advisory lock at session level (so a schema change of that tenant
// waits for the backup, or the backup for it), then one REPEATABLE READ READ
// ONLY snapshot opened after the lock is held, ACCESS SHARE locks on that
// tenant's tables only, and each table streamed out with COPY into the archive
// writer. The snapshot and the lock are released before the archive is
// compressed into its final file; the catalog row and the audit event follow.
import { formatTime } from '../audit/verifier/entry.ts';
import { type AuditBy, type AuditEventOf, record } from '../kernel/audit-inbox.ts';
import { begin, type Client, type Pool, run } from '../kernel/db.ts';
import { checkTenantName, isTenantId } from '../kernel/identifiers.ts';
import { tenantSessionLock, tenantSessionUnlock } from '../kernel/locks.ts';
import { detectDrift } from '../tenancy/drift.ts';
import { latestVersion, type TenantMigration } from '../tenancy/templates.ts';
import * as tsql from '../tenancy/tenant-sql.ts';
import { type ArchiveManifest, archiveFileName } from './archive-format.ts';
import { spoolTables, type TableSource, writeArchive } from './archive-writer.ts';
import {
  type BackupRecord,
  failStaleBackups,
  finishFailed,
  finishSucceeded,
  insertRunning,
} from './catalog.ts';
import { schemaExists } from './restore-checks-sql.ts';
import { BackupRefusedError } from './restore-errors.ts';
import type { BackupStorage } from './storage.ts';
import {
  copySettings,
  copyTableOut,
  discoverTables,
  lockTables,
  readSequences,
  setLockTimeout,
} from './table-copy.ts';

export { dropExpiredAsides, failStaleBackups, getBackup, listBackups } from './catalog.ts';
export type { BackupRecord };

export interface BackupContext {
  pool: Pool;
  signer: { keyId: string; sign(b: Uint8Array): Buffer };
  storage: BackupStorage;
  migrations: readonly TenantMigration[];
  enclaveVersion: string;
  /** lock_timeout for the tenant's advisory lock and its tables (BACKUP_LOCK_TIMEOUT_MS). */
  lockTimeoutMs: number;
  /** age recipients: the archive is encrypted to them. */
  recipients?: string[];
  tmpDir?: string;
}

export interface BackupOptions {
  by: AuditBy;
  kind: 'manual' | 'safety' | 'scheduled' | 'final';
  onProgress?: (p: { table: string; rows: number }) => void;
  /**
   * This tenant's drift findings, checked beforehand (driftOfTenants: one
   * check for many tenants, as `backup create --all` wants); without it the
   * backup runs the drift check for this tenant itself.
   */
  drift?: ArchiveManifest['drift'];
  /** Test seam: called after each step ('registered', 'locked', 'snapshot', 'table:<name>', 'copied', 'written'). */
  hooks?: { afterStep?: (step: string) => void | Promise<void> };
}

const tenantEvent = (
  tenantId: string,
  action: string,
  outcome: 'success' | 'failure',
  details: Record<string, unknown>,
  code?: string,
): AuditEventOf => ({
  tenantId,
  action,
  resource: { type: 'tenant', id: tenantId },
  outcome,
  ...(code ? { code } : {}),
  details,
});

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** `tenant.backup` failure on the tenant's chain; never throws (the backup's own error is what counts). */
async function recordFailure(
  ctx: BackupContext,
  options: BackupOptions,
  tenantId: string,
  err: unknown,
  code: 'backup_refused' | 'backup_failed',
  backupId?: string,
): Promise<void> {
  const details = { ...(backupId ? { backupId } : {}), kind: options.kind, error: message(err) };
  await record(ctx.pool, options.by, tenantEvent(tenantId, 'tenant.backup', 'failure', details, code)).catch(
    () => {},
  );
}

/** The live tenant row, or a refusal. */
async function liveTenant(db: Pool | Client, tenantId: string): Promise<tsql.TenantRow> {
  if (!isTenantId(tenantId))
    throw new BackupRefusedError('tenant-missing', `no tenant ${JSON.stringify(tenantId)}`);
  const tenant = (await run<tsql.TenantRow>(db, tsql.selectTenant(tenantId))).rows[0];
  if (!tenant) throw new BackupRefusedError('tenant-missing', `no tenant ${tenantId}`);
  if (!tsql.LIVE_STATES.includes(tenant.state))
    throw new BackupRefusedError(
      'tenant-deleted',
      `tenant ${tenantId} is ${tenant.state}: it has no schema to back up`,
    );
  return tenant;
}

export async function readOrigin(db: Pool | Client): Promise<string> {
  const { rows } = await run<{ origin: string }>(db, {
    text: 'SELECT origin FROM control.audit_origin',
    values: [],
  });
  return rows[0]?.origin ?? 'enclave:unknown';
}

/**
 * The drift check's findings for each of `tenantIds`, in one check (one
 * scratch schema per schema version, not per tenant); `checked: false` for
 * all when it could not run.
 */
export async function driftOfTenants(
  pool: Pool,
  migrations: readonly TenantMigration[],
  tenantIds: readonly string[],
): Promise<Map<string, ArchiveManifest['drift']>> {
  const out = new Map<string, ArchiveManifest['drift']>();
  try {
    for (const t of await detectDrift(pool, migrations, { tenantIds }))
      out.set(t.tenantId, { checked: true, differences: t.differences });
  } catch {}
  for (const id of tenantIds) if (!out.has(id)) out.set(id, { checked: false, differences: [] });
  return out;
}

export async function backupTenant(
  ctx: BackupContext,
  tenantId: string,
  options: BackupOptions,
): Promise<BackupRecord> {
  const step = async (name: string) => options.hooks?.afterStep?.(name);
  let tenant: tsql.TenantRow;
  try {
    tenant = await liveTenant(ctx.pool, tenantId);
    const latest = latestVersion(ctx.migrations);
    if (tenant.schema_version > latest)
      throw new BackupRefusedError(
        'future-schema',
        `tenant ${tenantId} is at schema version ${tenant.schema_version} but the installed templates only go to ${latest}`,
      );
  } catch (err) {
    if (isTenantId(tenantId)) await recordFailure(ctx, options, tenantId, err, 'backup_refused');
    throw err;
  }
  // Rows left 'running' by a backup that died (kill -9, lost connection) are failed now.
  await failStaleBackups(ctx.pool).catch(() => {});

  const startedAt = new Date();
  const client = await ctx.pool.connect();
  let broken: unknown;
  let row: BackupRecord | undefined;
  let spooled: Awaited<ReturnType<typeof spoolTables>> | undefined;
  let schemaVersion: number | null = null;
  let inTransaction = false;
  try {
    const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]
      ?.pid as number;
    row = await insertRunning(ctx.pool, {
      tenantId,
      kind: options.kind,
      by: options.by,
      encrypted: (ctx.recipients?.length ?? 0) > 0,
      keyId: ctx.signer.keyId,
      backendPid: pid,
    });
    await step('registered');

    // The lock first, at session level, then the snapshot: a migration that
    // committed before we got the lock is in the snapshot, none can start after.
    await client.query("SELECT set_config('lock_timeout', $1, false)", [
      `${Math.max(0, Math.trunc(ctx.lockTimeoutMs))}ms`,
    ]);
    await client.query(tenantSessionLock(tenantId));
    await client.query('RESET lock_timeout');
    await step('locked');
    const drift =
      options.drift ??
      ((await driftOfTenants(ctx.pool, ctx.migrations, [tenantId])).get(
        tenantId,
      ) as ArchiveManifest['drift']);

    await client.query(begin({ isolation: 'repeatable read', readOnly: true }));
    inTransaction = true;
    await client.query(copySettings);
    await client.query(setLockTimeout(ctx.lockTimeoutMs));
    tenant = await liveTenant(client, tenantId);
    schemaVersion = tenant.schema_version;
    const schema = checkTenantName(tenant.schema_name);
    // A live tenant whose schema is gone (dropped outside Enclave) would give an empty "good" archive.
    if (!(await client.query<{ exists: boolean }>(schemaExists(schema))).rows[0]?.exists)
      throw new BackupRefusedError(
        'schema-missing',
        `tenant ${tenantId} is ${tenant.state} but its schema ${schema} does not exist (dropped outside Enclave?)`,
      );
    const tables = await discoverTables(client, schema);
    const lock = lockTables(
      schema,
      tables.map((t) => t.name),
      'ACCESS SHARE',
    );
    if (lock) await client.query(lock);
    await step('snapshot');
    const sequences = await readSequences(client, schema);

    const sources: TableSource[] = tables.map((t) => ({
      name: t.name,
      columns: t.columns,
      copyTo: async (sink) => {
        await copyTableOut(client, schema, t, sink, { end: false });
        await step(`table:${t.name}`);
      },
    }));
    spooled = await spoolTables(sources, {
      ...(ctx.tmpDir ? { tmpDir: ctx.tmpDir } : {}),
      ...(ctx.recipients ? { recipients: ctx.recipients } : {}),
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    });
    await client.query('COMMIT');
    inTransaction = false;
    await client.query(tenantSessionUnlock(tenantId));
    await step('copied');

    const templates = ctx.migrations
      .filter((m) => m.version <= tenant.schema_version)
      .map((m) => ({ version: m.version, name: m.name, checksum: m.checksum }));
    const written = await writeArchive(
      ctx.storage,
      archiveFileName(tenantId, startedAt),
      spooled,
      {
        enclaveVersion: ctx.enclaveVersion,
        origin: await readOrigin(ctx.pool),
        tenant: { id: tenantId, name: tenant.display_name },
        schemaVersion: tenant.schema_version,
        templates,
        createdAt: formatTime(startedAt),
        sequences,
        drift,
      },
      ctx.signer,
      {
        ...(ctx.tmpDir ? { tmpDir: ctx.tmpDir } : {}),
        ...(ctx.recipients ? { recipients: ctx.recipients } : {}),
      },
    );
    await step('written');
    const rows = written.manifest.tables.reduce((n, t) => n + t.rows, 0);
    const finished = await finishSucceeded(ctx.pool, row.id, {
      location: written.location,
      bytes: written.bytes,
      sha256: written.sha256,
      schemaVersion: tenant.schema_version,
      rows,
      drift: drift.checked ? drift.differences.length : null,
      keyId: ctx.signer.keyId,
    });
    await record(
      ctx.pool,
      options.by,
      tenantEvent(tenantId, 'tenant.backup', 'success', {
        backupId: finished.id,
        kind: options.kind,
        schemaVersion: tenant.schema_version,
        rows,
        bytes: written.bytes,
        sha256: written.sha256,
        encrypted: finished.encrypted,
        drift: finished.drift,
      }),
    );
    return finished;
  } catch (err) {
    broken = err;
    if (inTransaction) await client.query('ROLLBACK').catch(() => {});
    if (row) await finishFailed(ctx.pool, row.id, message(err), schemaVersion).catch(() => {});
    await recordFailure(ctx, options, tenantId, err, 'backup_failed', row?.id);
    throw err;
  } finally {
    await spooled?.dispose();
    // A failed backup's connection is destroyed: that also releases the session lock it may hold.
    client.release(broken === undefined ? undefined : true);
  }
}
