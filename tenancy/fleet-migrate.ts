// Fleet rollout: apply pending tenant migrations to every tenant (or a chosen
// list) with bounded concurrency. Each tenant is one transaction under its own
// advisory lock (migrate-tenant.ts), so a crash loses at most the tenants in
// flight, which a rerun picks up; a failing tenant stays at its old version and
// keeps serving while the others go on. Sequential is concurrency 1.
// Each tenant that moves gets a `tenant.migrate` audit event in its own
// transaction; a failed one gets its failure event once it has rolled back.
import { type AuditBy, type AuditEventOf, record, SYSTEM } from '../kernel/audit-inbox.ts';
import { type Pool, run, transaction } from '../kernel/db.ts';
import { migrateTenantInTransaction } from './migrate-tenant.ts';
import { latestVersion, type TenantMigration } from './templates.ts';
import { MigrationError } from './tenancy-errors.ts';
import * as sql from './tenant-sql.ts';

export interface FleetOptions {
  concurrency: number;
  /** Only these tenants; default: every tenant with a schema. */
  tenantIds?: readonly string[];
  /** Per-tenant lock wait limit, so a long query on one tenant cannot stall its requests behind our DDL. */
  lockTimeoutMs?: number;
  /** Stop taking new tenants; those in flight finish. */
  signal?: AbortSignal;
  onProgress?: (progress: FleetProgress) => void;
  /** Who runs the rollout, for the audit events (default: the system). */
  by?: AuditBy;
}

export interface FleetProgress {
  done: number;
  total: number;
  failed: number;
  tenantId: string;
}

export interface TenantOutcome {
  tenantId: string;
  status: 'migrated' | 'failed' | 'skipped';
  from: number;
  to: number;
  applied: string[];
  error?: string;
  migration?: string;
  durationMs: number;
}

export interface FleetSummary {
  latest: number;
  /** Tenants that needed work when the run started. */
  pending: number;
  migrated: number;
  failed: number;
  /** Already current (or taken by a concurrent run). */
  skipped: number;
  /** Left for a rerun because the run was interrupted. */
  notStarted: number;
  interrupted: boolean;
  durationMs: number;
  outcomes: TenantOutcome[];
}

export async function migrateFleet(
  pool: Pool,
  migrations: readonly TenantMigration[],
  options: FleetOptions,
): Promise<FleetSummary> {
  const started = performance.now();
  const latest = latestVersion(migrations);
  const ids = options.tenantIds ? [...new Set(options.tenantIds)] : null;
  const behind = (await run<sql.TenantRow>(pool, sql.selectBehind(latest, ids))).rows;
  const current = (await run<{ n: number }>(pool, sql.countCurrent(latest, ids))).rows[0]?.n ?? 0;

  const outcomes: TenantOutcome[] = [];
  let next = 0;
  let failed = 0;
  const worker = async () => {
    while (next < behind.length && !options.signal?.aborted) {
      const tenant = behind[next++] as sql.TenantRow;
      const outcome = await migrateOne(
        pool,
        tenant,
        migrations,
        options.lockTimeoutMs ?? 5000,
        options.by ?? SYSTEM,
      );
      outcomes.push(outcome);
      if (outcome.status === 'failed') failed++;
      options.onProgress?.({ done: outcomes.length, total: behind.length, failed, tenantId: tenant.id });
    }
  };
  const workers = Math.max(1, Math.min(options.concurrency, behind.length));
  await Promise.all(Array.from({ length: workers }, worker));

  const count = (s: TenantOutcome['status']) => outcomes.filter((o) => o.status === s).length;
  return {
    latest,
    pending: behind.length,
    migrated: count('migrated'),
    failed: count('failed'),
    skipped: count('skipped') + current,
    notStarted: behind.length - outcomes.length,
    interrupted: outcomes.length < behind.length,
    durationMs: performance.now() - started,
    outcomes,
  };
}

/**
 * How many live tenants are behind the newest template. The code serves the
 * newest version: a tenant left behind (a rollout not yet run, or one that
 * failed) may fail its requests until `enclave tenants migrate` brings it up.
 */
export async function countTenantsBehind(
  pool: Pool,
  migrations: readonly TenantMigration[],
): Promise<number> {
  return (await run<{ n: number }>(pool, sql.countBehind(latestVersion(migrations)))).rows[0]?.n ?? 0;
}

async function migrateOne(
  pool: Pool,
  tenant: sql.TenantRow,
  migrations: readonly TenantMigration[],
  lockTimeoutMs: number,
  by: AuditBy,
): Promise<TenantOutcome> {
  const started = performance.now();
  const base = { tenantId: tenant.id, from: tenant.schema_version };
  const event = (
    outcome: 'success' | 'failure',
    details: Record<string, unknown>,
    code?: string,
  ): AuditEventOf => ({
    tenantId: tenant.id,
    action: 'tenant.migrate',
    resource: { type: 'tenant', id: tenant.id },
    outcome,
    ...(code ? { code } : {}),
    details,
  });
  try {
    const result = await transaction(pool, async (client) => {
      await client.query(sql.setLockTimeout(lockTimeoutMs));
      const migrated = await migrateTenantInTransaction(client, tenant.id, migrations);
      if (migrated.applied.length > 0)
        await record(
          client,
          by,
          event('success', { from: migrated.from, to: migrated.to, applied: migrated.applied }),
        );
      return migrated;
    });
    return {
      ...base,
      from: result.from,
      to: result.to,
      applied: result.applied,
      status: result.applied.length ? 'migrated' : 'skipped',
      durationMs: performance.now() - started,
    };
  } catch (err) {
    const durationMs = performance.now() - started;
    const message = err instanceof Error ? err.message : String(err);
    const failedMigration =
      err instanceof MigrationError ? migrations.find((m) => m.name === err.migration) : undefined;
    if (failedMigration) {
      // The tenant's own transaction rolled back; the failure is recorded on its own.
      await run(pool, sql.recordMigration(tenant.id, failedMigration, durationMs, 'failed', message)).catch(
        () => {},
      );
    }
    const failure = { from: tenant.schema_version, migration: failedMigration?.name ?? null, error: message };
    await record(pool, by, event('failure', failure, 'migration_failed')).catch(() => {});
    return {
      ...base,
      to: tenant.schema_version,
      applied: [],
      status: 'failed',
      error: message,
      ...(failedMigration ? { migration: failedMigration.name } : {}),
      durationMs,
    };
  }
}
