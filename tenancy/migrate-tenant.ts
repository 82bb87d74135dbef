// "Advisory lock, check version, apply, record version": the one code path that
// changes a tenant schema's version, used by provisioning and by fleet rollouts.
// Runs inside the caller's transaction; the caller commits or rolls back.
import type { Client } from '../kernel/db.ts';
import { tenantLock } from '../kernel/locks.ts';
import { renderMigration, type TenantMigration } from './templates.ts';
import { MigrationError, stateError, TenantNotFoundError } from './tenancy-errors.ts';
import * as sql from './tenant-sql.ts';

export interface MigrateResult {
  tenantId: string;
  from: number;
  to: number;
  applied: string[];
}

export interface StepHooks {
  /** Test seam: called after each step; throwing from it aborts the transaction. */
  afterStep?: (step: string, tenantId: string) => void | Promise<void>;
}

export async function migrateTenantInTransaction(
  client: Client,
  tenantId: string,
  migrations: readonly TenantMigration[],
  hooks: StepHooks = {},
): Promise<MigrateResult> {
  await client.query(tenantLock(tenantId));
  const { rows } = await client.query<sql.TenantRow>(sql.selectTenantForUpdate(tenantId));
  const tenant = rows[0];
  if (!tenant) throw new TenantNotFoundError(tenantId);
  if (tenant.state === 'deleted') throw stateError(tenantId, tenant.state);
  const from = tenant.schema_version;
  const pending = migrations.filter((m) => m.version > from);
  if (pending.length === 0) return { tenantId, from, to: from, applied: [] };

  const names = { schema: tenant.schema_name, role: tenant.role_name };
  await client.query(sql.setSearchPath(names.schema));
  for (const m of pending) {
    const started = performance.now();
    try {
      await client.query(renderMigration(m, names));
    } catch (err) {
      throw new MigrationError(m.name, err);
    }
    await client.query(sql.recordMigration(tenantId, m, performance.now() - started, 'applied', null));
    await hooks.afterStep?.(`migration:${m.name}`, tenantId);
  }
  const to = pending.at(-1)?.version ?? from;
  await client.query(sql.setVersion(tenantId, to));
  return { tenantId, from, to, applied: pending.map((m) => m.name) };
}
