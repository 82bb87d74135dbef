// Control-plane statements about tenants, as small pure functions:
// parameters in, { text, values } out. Identifiers go through ident() only.
import type { Statement } from '../kernel/db.ts';
import { ident } from '../kernel/identifiers.ts';

export type TenantState = 'provisioning' | 'active' | 'suspended' | 'archived' | 'deleted';

export interface TenantRow {
  id: string;
  display_name: string;
  schema_name: string;
  role_name: string;
  state: TenantState;
  schema_version: number;
  created_at: Date;
  last_active_at: Date | null;
  legal_hold: boolean;
}

const COLUMNS =
  'id, display_name, schema_name, role_name, state, schema_version, created_at, last_active_at, legal_hold';

/** States whose schema exists and so must follow fleet migrations. */
export const LIVE_STATES: readonly TenantState[] = ['active', 'suspended', 'archived'];

export const insertProvisioning = (
  id: string,
  displayName: string,
  schema: string,
  role: string,
): Statement => ({
  text: `INSERT INTO control.tenants (id, display_name, schema_name, role_name, state)
         VALUES ($1, $2, $3, $4, 'provisioning') RETURNING ${COLUMNS}`,
  values: [id, displayName, schema, role],
});

export const selectTenant = (id: string): Statement => ({
  text: `SELECT ${COLUMNS} FROM control.tenants WHERE id = $1`,
  values: [id],
});

export const selectTenantForUpdate = (id: string): Statement => ({
  text: `SELECT ${COLUMNS} FROM control.tenants WHERE id = $1 FOR UPDATE`,
  values: [id],
});

export const listTenants = (includeDeleted: boolean): Statement => ({
  text: `SELECT ${COLUMNS} FROM control.tenants ${includeDeleted ? '' : "WHERE state <> 'deleted'"} ORDER BY created_at, id`,
  values: [],
});

/** Tenants behind `latest`: the only rows a fleet rollout has to visit. */
export const selectBehind = (latest: number, ids: readonly string[] | null): Statement => ({
  text: `SELECT ${COLUMNS} FROM control.tenants
         WHERE state = ANY($1) AND schema_version < $2 ${ids ? 'AND id = ANY($3)' : ''}
         ORDER BY id`,
  values: ids ? [LIVE_STATES, latest, ids] : [LIVE_STATES, latest],
});

export const setVersion = (id: string, version: number): Statement => ({
  text: 'UPDATE control.tenants SET schema_version = $2 WHERE id = $1',
  values: [id, version],
});

export const activate = (id: string): Statement => ({
  text: `UPDATE control.tenants SET state = 'active' WHERE id = $1 RETURNING ${COLUMNS}`,
  values: [id],
});

export const markDeleted = (id: string): Statement => ({
  text: `UPDATE control.tenants SET state = 'deleted', deleted_at = now() WHERE id = $1 RETURNING ${COLUMNS}`,
  values: [id],
});

/** Throttled: writes only when the stored time is older than `intervalSeconds`. */
export const touch = (id: string, intervalSeconds: number): Statement => ({
  text: `UPDATE control.tenants SET last_active_at = now()
         WHERE id = $1 AND (last_active_at IS NULL OR last_active_at < now() - make_interval(secs => $2))`,
  values: [id, intervalSeconds],
});

export const recordMigration = (
  tenantId: string,
  m: { name: string; version: number; checksum: string },
  durationMs: number,
  outcome: 'applied' | 'failed',
  error: string | null,
): Statement => ({
  text: `INSERT INTO control.tenant_migrations (tenant_id, migration, version, checksum, duration_ms, outcome, error)
         VALUES ($1, $2, $3, $4, $5, $6, $7)`,
  values: [tenantId, m.name, m.version, m.checksum, durationMs, outcome, error],
});

// --- provisioning in two round trips -----------------------------------------

/**
 * `main` with every statement of `writes` run as a data-modifying CTE of it:
 * one statement, one round trip, the parameters renumbered. PostgreSQL runs
 * every data-modifying CTE exactly once, referenced or not. For statements
 * whose text has no `$n` inside a literal (those built here and the audit insert).
 */
export function withWrites(main: Statement, writes: readonly Statement[]): Statement {
  const values = [...main.values];
  const ctes = writes.map((w, i) => {
    const offset = values.length;
    values.push(...w.values);
    return `w${i} AS (${w.text.replace(/\$(\d+)/g, (_, n: string) => `$${Number(n) + offset}`)})`;
  });
  return { text: ctes.length ? `WITH ${ctes.join(',\n')}\n${main.text}` : main.text, values };
}

/**
 * A generated value (tenant id, migration name, checksum) as an SQL literal,
 * for the simple-query script, which cannot carry parameters. Anything but
 * [A-Za-z0-9_] is refused, so no caller-supplied text can ever be inlined.
 */
export function generatedLiteral(value: string | number): string {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new Error(`not a generated integer: ${value}`);
    return String(value);
  }
  if (!/^[A-Za-z0-9_]+$/.test(value)) throw new Error(`not a generated value: ${JSON.stringify(value)}`);
  return `'${value}'`;
}

/** The column a migration marker returns; provisioning watches it to name a failing migration. */
export const MIGRATION_MARKER = 'enclave_migration';

/**
 * Before each migration of the provisioning script: notes the server clock
 * (transaction-local) and names the migration in its one result row.
 */
export const markMigrationStart = (migration: string) =>
  `SELECT set_config('enclave.migration_started', extract(epoch FROM clock_timestamp())::text, true), ${generatedLiteral(migration)} AS ${MIGRATION_MARKER}`;

/**
 * The ledger row of one migration of the provisioning script, its duration
 * measured by the server from its marker to this row (clock_timestamp()).
 * Its result row clears the marker: a later failure is not the migration's.
 */
export const recordMigrationSinceMark = (
  tenantId: string,
  m: { name: string; version: number; checksum: string },
) =>
  `INSERT INTO control.tenant_migrations (tenant_id, migration, version, checksum, duration_ms, outcome, error)
   VALUES (${generatedLiteral(tenantId)}, ${generatedLiteral(m.name)}, ${generatedLiteral(m.version)}, ${generatedLiteral(m.checksum)},
           (extract(epoch FROM clock_timestamp()) - current_setting('enclave.migration_started')::numeric) * 1000,
           'applied', NULL)
   RETURNING NULL::text AS ${MIGRATION_MARKER}`;

export const setSearchPathTo = (schema: string) => `SET LOCAL search_path TO ${ident(schema)}`;
export const setVersionOf = (id: string, version: number) =>
  `UPDATE control.tenants SET schema_version = ${generatedLiteral(version)} WHERE id = ${generatedLiteral(id)}`;
export const activateOf = (id: string) =>
  `UPDATE control.tenants SET state = 'active' WHERE id = ${generatedLiteral(id)} RETURNING ${COLUMNS}`;

// --- DDL: role and schema of one tenant ------------------------------------

export const createRole = (role: string) =>
  `CREATE ROLE ${ident(role)} NOLOGIN NOINHERIT NOCREATEDB NOCREATEROLE`;
/** Lets the application's login role SET ROLE to the tenant role (and nothing more). */
export const grantRoleToApp = (role: string) => `GRANT ${ident(role)} TO CURRENT_USER`;
export const createSchema = (schema: string) => `CREATE SCHEMA ${ident(schema)}`;
export const grantSchemaUsage = (schema: string, role: string) =>
  `GRANT USAGE ON SCHEMA ${ident(schema)} TO ${ident(role)}`;
export const setSearchPath = (schema: string): Statement => ({
  text: "SELECT set_config('search_path', $1, true)",
  values: [ident(schema)],
});
export const dropSchema = (schema: string) => `DROP SCHEMA IF EXISTS ${ident(schema)} CASCADE`;
export const dropOwned = (role: string) => `DROP OWNED BY ${ident(role)} CASCADE`;
export const dropRole = (role: string) => `DROP ROLE IF EXISTS ${ident(role)}`;
export const roleExists = (role: string): Statement => ({
  text: 'SELECT 1 FROM pg_roles WHERE rolname = $1',
  values: [role],
});

/** Tenants with a schema that are already at (or past) `latest`. */
export const countCurrent = (latest: number, ids: readonly string[] | null): Statement => ({
  text: `SELECT count(*)::int AS n FROM control.tenants
         WHERE state = ANY($1) AND schema_version >= $2 ${ids ? 'AND id = ANY($3)' : ''}`,
  values: ids ? [LIVE_STATES, latest, ids] : [LIVE_STATES, latest],
});

/** Live tenants behind `latest`: the server warns at start when there are any. */
export const countBehind = (latest: number): Statement => ({
  text: `SELECT count(*)::int AS n FROM control.tenants WHERE state = ANY($1) AND schema_version < $2`,
  values: [LIVE_STATES, latest],
});

export const selectExisting = (ids: readonly string[]): Statement => ({
  text: `SELECT id FROM control.tenants WHERE id = ANY($1) AND state <> 'deleted'`,
  values: [ids],
});

export const setLockTimeout = (ms: number): Statement => ({
  text: "SELECT set_config('lock_timeout', $1, true)",
  values: [`${Math.max(0, Math.trunc(ms))}ms`],
});

export const setState = (id: string, state: TenantState): Statement => ({
  text: `UPDATE control.tenants SET state = $2 WHERE id = $1 RETURNING ${COLUMNS}`,
  values: [id, state],
});

export const setLegalHold = (id: string, hold: boolean): Statement => ({
  text: `UPDATE control.tenants SET legal_hold = $2 WHERE id = $1 AND state <> 'deleted' RETURNING ${COLUMNS}`,
  values: [id, hold],
});
