// Provisioning: a NOLOGIN role, a schema, every tenant migration, state active,
// all in one transaction. A failure or crash at any point leaves nothing: no
// row, no role, no schema (CREATE ROLE and CREATE SCHEMA are transactional).
// The `tenant.provision` audit event commits with it (the inbox is in the
// control plane, written as the application role in the same transaction).
import pg from 'pg';
import { type AuditBy, eventBy, insertAuditEvent, SYSTEM } from '../kernel/audit-inbox.ts';
import { type Client, type Pool, retryingTransaction, type Statement } from '../kernel/db.ts';
import { InvalidInputError } from '../kernel/errors.ts';
import { newTenantId, tenantNames } from '../kernel/identifiers.ts';
import { tenantLock } from '../kernel/locks.ts';
import type { StepHooks } from './migrate-tenant.ts';
import { renderMigration, type TenantMigration } from './templates.ts';
import { MigrationError } from './tenancy-errors.ts';
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

/**
 * Round trip 1: the tenant advisory lock, the control-plane row (state
 * provisioning) and the `tenant.provision` event, as one parameterised statement.
 */
export function registerStatement(
  id: string,
  displayName: string,
  names: { schema: string; role: string },
  migrations: readonly TenantMigration[],
  by: AuditBy,
): Statement {
  const event = insertAuditEvent(
    eventBy(by, {
      tenantId: id,
      action: 'tenant.provision',
      resource: { type: 'tenant', id },
      outcome: 'success',
      // Not the name: account deletion forgets it, and this log is append-only.
      details: { schemaVersion: migrations.at(-1)?.version ?? 0 },
    }),
  );
  return sql.withWrites(tenantLock(id), [
    sql.insertProvisioning(id, displayName, names.schema, names.role),
    event,
  ]);
}

/**
 * The script of round trip 2: role, schema, every migration with its ledger
 * row, version and state. Only generated identifiers (quoted by ident()) and
 * generated values (ids, names, checksums, versions) are written into it.
 * Each statement ends on a line of its own, so a template whose text ends in
 * a comment still ends where it should.
 */
export function provisionScript(
  id: string,
  names: { schema: string; role: string },
  migrations: readonly TenantMigration[],
): string {
  const version = migrations.at(-1)?.version ?? 0;
  const statements = [
    sql.createRole(names.role),
    sql.grantRoleToApp(names.role),
    sql.createSchema(names.schema),
    sql.grantSchemaUsage(names.schema, names.role),
    sql.setSearchPathTo(names.schema),
    ...migrations.flatMap((m) => [
      sql.markMigrationStart(m.name),
      renderMigration(m, names),
      sql.recordMigrationSinceMark(id, m),
    ]),
    ...(migrations.length ? [sql.setVersionOf(id, version)] : []),
    sql.activateOf(id),
  ];
  return `${statements.map((s) => s.trim().replace(/;$/, '')).join('\n;\n')}\n;\n`;
}

/** Runs a multi-statement script (simple query protocol), naming the last migration marker seen. */
function runScript(client: Client, text: string): Promise<pg.QueryResult[]> {
  let migration: string | null = null;
  return new Promise((resolve, reject) => {
    const query = new pg.Query(text, (err, results) => {
      if (!err) resolve(results as unknown as pg.QueryResult[]);
      else reject(migration ? new MigrationError(migration, err) : err);
    });
    query.on('row', (row: Record<string, unknown>) => {
      if (!(sql.MIGRATION_MARKER in row)) return;
      const marker = row[sql.MIGRATION_MARKER];
      migration = typeof marker === 'string' ? marker : null;
    });
    client.query(query);
  });
}

/**
 * The same steps inside the caller's transaction (registration adds the user
 * to it), in two round trips:
 *  1. one parameterised statement: the tenant advisory lock, the control-plane
 *     row (state provisioning) and the `tenant.provision` audit event;
 *  2. one simple-query script (provisionScript): role, grant to the application,
 *     schema, usage grant, every rendered migration each followed by its ledger
 *     row, the schema version, state active.
 * A failure anywhere fails the caller's transaction, which then rolls back all
 * of it. The `afterStep` hooks run after both, in step order, before the caller
 * commits (a throwing hook still rolls everything back).
 */
export async function provisionTenantInTransaction(
  client: Client,
  input: { displayName: string },
  migrations: readonly TenantMigration[],
  hooks: ProvisionOptions = {},
): Promise<sql.TenantRow> {
  const displayName = checkDisplayName(input.displayName);
  const id = newTenantId();
  const names = tenantNames(id);
  await client.query(registerStatement(id, displayName, names, migrations, hooks.by ?? SYSTEM));
  const results = await runScript(client, provisionScript(id, names, migrations));
  const tenant = results.at(-1)?.rows[0] as sql.TenantRow;
  for (const step of [
    ...PROVISION_STEPS.slice(0, 3),
    ...migrations.map((m) => `migration:${m.name}`),
    'activate',
  ]) {
    await hooks.afterStep?.(step, id);
  }
  return tenant;
}
