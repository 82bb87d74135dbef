// Provisioning: a NOLOGIN role, a schema, every tenant migration, state active,
// all in one transaction. A failure or crash at any point leaves nothing: no
// row, no role, no schema (CREATE ROLE and CREATE SCHEMA are transactional).
// The `tenant.provision` audit event commits with it (the inbox is in the
// control plane, written as the application role in the same transaction).
import { type AuditBy, record, SYSTEM } from '../kernel/audit-inbox.ts';
import { type Client, type Pool, retryingTransaction } from '../kernel/db.ts';
import { InvalidInputError } from '../kernel/errors.ts';
import { newTenantId, tenantNames } from '../kernel/identifiers.ts';
import { migrateTenantInTransaction, type StepHooks } from './migrate-tenant.ts';
import type { TenantMigration } from './templates.ts';
import * as sql from './tenant-sql.ts';

export const PROVISION_STEPS = ['register', 'role', 'schema', 'activate'] as const;

export function checkDisplayName(raw: unknown): string {
  if (typeof raw !== 'string') throw new InvalidInputError('a workspace name is required');
  const name = raw.trim();
  if (name.length === 0) throw new InvalidInputError('a workspace name is required');
  if (name.length > 200) throw new InvalidInputError('a workspace name can be at most 200 characters');
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
  if (/[\u0000-\u001f\u007f]/.test(name))
    throw new InvalidInputError('a workspace name cannot contain control characters');
  return name;
}

export interface ProvisionOptions extends StepHooks {
  /** Who provisions, for the audit event (default: the system). */
  by?: AuditBy;
}

export async function provisionTenant(
  pool: Pool,
  input: { displayName: string },
  migrations: readonly TenantMigration[],
  hooks: ProvisionOptions = {},
): Promise<sql.TenantRow> {
  const displayName = checkDisplayName(input.displayName);
  return retryingTransaction(pool, (client) =>
    provisionTenantInTransaction(client, { displayName }, migrations, hooks),
  );
}

/** The same steps inside the caller's transaction (registration adds the user to it). */
export async function provisionTenantInTransaction(
  client: Client,
  input: { displayName: string },
  migrations: readonly TenantMigration[],
  hooks: ProvisionOptions = {},
): Promise<sql.TenantRow> {
  const displayName = checkDisplayName(input.displayName);
  const id = newTenantId();
  const names = tenantNames(id);
  const step = async (name: string) => hooks.afterStep?.(name, id);
  await client.query(sql.insertProvisioning(id, displayName, names.schema, names.role));
  await step('register');
  await client.query(sql.createRole(names.role));
  await client.query(sql.grantRoleToApp(names.role));
  await step('role');
  await client.query(sql.createSchema(names.schema));
  await client.query(sql.grantSchemaUsage(names.schema, names.role));
  await step('schema');
  await migrateTenantInTransaction(client, id, migrations, hooks);
  const { rows } = await client.query<sql.TenantRow>(sql.activate(id));
  const tenant = rows[0] as sql.TenantRow;
  await record(client, hooks.by ?? SYSTEM, {
    tenantId: id,
    action: 'tenant.provision',
    resource: { type: 'tenant', id },
    outcome: 'success',
    // Not the name: account deletion forgets it, and this log is append-only.
    details: { schemaVersion: tenant.schema_version },
  });
  await step('activate');
  return tenant;
}
