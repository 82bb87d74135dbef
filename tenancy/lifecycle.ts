// Tenant lifecycle steps after provisioning: suspend / resume / archive, legal
// hold, and drop. Each is one transaction under the tenant's advisory lock,
// and each writes its audit event (`tenant.*`) in that same transaction: the
// inbox is in the control plane, so a committed step always has its event.
import { type AuditBy, type AuditEventOf, record, SYSTEM } from '../kernel/audit-inbox.ts';
import { type Client, type Pool, type Statement, transaction } from '../kernel/db.ts';
import { checkAsideSchemaName, checkTenantName } from '../kernel/identifiers.ts';
import { tenantLock } from '../kernel/locks.ts';
import { LegalHoldError, stateError, TenantNotFoundError } from './tenancy-errors.ts';
import * as sql from './tenant-sql.ts';

/** Schema and role go; the row stays as 'deleted' (its ledger outlives it). Refused under legal hold. */
export async function dropTenant(pool: Pool, tenantId: string, by: AuditBy = SYSTEM): Promise<sql.TenantRow> {
  return transaction(pool, (client) => dropTenantInTransaction(client, tenantId, by));
}

/** The same steps inside the caller's transaction (account deletion adds the user and its audit row to it). */
export async function dropTenantInTransaction(
  client: Client,
  tenantId: string,
  by: AuditBy = SYSTEM,
  details: Record<string, unknown> = {},
): Promise<sql.TenantRow> {
  await client.query(tenantLock(tenantId));
  const tenant = (await client.query<sql.TenantRow>(sql.selectTenantForUpdate(tenantId))).rows[0];
  if (!tenant) throw new TenantNotFoundError(tenantId);
  if (tenant.state === 'deleted') throw stateError(tenantId, 'already deleted');
  if (tenant.legal_hold) throw new LegalHoldError(tenantId);
  const schema = checkTenantName(tenant.schema_name);
  const role = checkTenantName(tenant.role_name);
  await client.query(sql.dropSchema(schema));
  // Schemas an in-place restore set aside (control.restore_asides) go with the tenant.
  const asides = await client.query<{ schema_name: string }>(selectLiveAsides(tenantId));
  for (const { schema_name } of asides.rows)
    await client.query(sql.dropSchema(checkAsideSchemaName(schema_name)));
  if (asides.rowCount) await client.query(markAsidesDropped(tenantId));
  if ((await client.query(sql.roleExists(role))).rowCount) {
    await client.query(sql.dropOwned(role));
    await client.query(sql.dropRole(role));
  }
  const dropped = (await client.query<sql.TenantRow>(sql.markDeleted(tenantId))).rows[0] as sql.TenantRow;
  await record(
    client,
    by,
    tenantEvent(tenantId, 'tenant.drop', {
      ...details,
      from: tenant.state,
      schemaVersion: tenant.schema_version,
    }),
  );
  return dropped;
}

// The set-aside schemas of a tenant (backup/restore.ts), dropped with it.
const selectLiveAsides = (tenantId: string): Statement => ({
  text: 'SELECT schema_name FROM control.restore_asides WHERE tenant_id = $1 AND dropped_at IS NULL FOR UPDATE',
  values: [tenantId],
});
const markAsidesDropped = (tenantId: string): Statement => ({
  text: 'UPDATE control.restore_asides SET dropped_at = now() WHERE tenant_id = $1 AND dropped_at IS NULL',
  values: [tenantId],
});

/** `tenant.suspend`, `tenant.archive` or `tenant.resume`, by the state it moves to. */
const STATE_ACTIONS = { active: 'tenant.resume', suspended: 'tenant.suspend', archived: 'tenant.archive' };

/** Ops switch for a tenant's availability; the unit of work refuses anything but 'active'. */
export async function setTenantState(
  pool: Pool,
  tenantId: string,
  state: 'active' | 'suspended' | 'archived',
  by: AuditBy = SYSTEM,
): Promise<sql.TenantRow> {
  return transaction(pool, (client) => setTenantStateInTransaction(client, tenantId, state, by));
}

/** The same inside the caller's transaction (the lifecycle records its own row with it); `details` join the event's. */
export async function setTenantStateInTransaction(
  client: Client,
  tenantId: string,
  state: 'active' | 'suspended' | 'archived',
  by: AuditBy = SYSTEM,
  details: Record<string, unknown> = {},
): Promise<sql.TenantRow> {
  await client.query(tenantLock(tenantId));
  const tenant = (await client.query<sql.TenantRow>(sql.selectTenantForUpdate(tenantId))).rows[0];
  if (!tenant) throw new TenantNotFoundError(tenantId);
  if (tenant.state === 'deleted' || tenant.state === 'provisioning') throw stateError(tenantId, tenant.state);
  const row = (await client.query<sql.TenantRow>(sql.setState(tenantId, state))).rows[0] as sql.TenantRow;
  await record(
    client,
    by,
    tenantEvent(tenantId, STATE_ACTIONS[state], { ...details, from: tenant.state, to: state }),
  );
  return row;
}

export async function setLegalHold(
  pool: Pool,
  tenantId: string,
  hold: boolean,
  by: AuditBy = SYSTEM,
): Promise<sql.TenantRow> {
  return transaction(pool, async (client) => {
    await client.query(tenantLock(tenantId));
    const row = (await client.query<sql.TenantRow>(sql.setLegalHold(tenantId, hold))).rows[0];
    if (!row) throw new TenantNotFoundError(tenantId);
    await record(
      client,
      by,
      tenantEvent(tenantId, hold ? 'tenant.legal_hold.on' : 'tenant.legal_hold.off', {}),
    );
    return row;
  });
}

/** A successful step on the tenant, in its own chain. */
const tenantEvent = (tenantId: string, action: string, details: Record<string, unknown>): AuditEventOf => ({
  tenantId,
  action,
  resource: { type: 'tenant', id: tenantId },
  outcome: 'success',
  details,
});
