// An admin ends a tenant's sessions: one (registry.revoke, `session.revoke`)
// or all of them at once (`session.revoke_all` on the tenant's chain, in the
// same transaction as the update). A revoked session stops at its next
// request (server/sessions/registry.ts).
import { type AuditBy, record } from '../../kernel/audit-inbox.ts';
import { type Pool, run, transaction } from '../../kernel/db.ts';
import { NotFoundError } from '../app-errors.ts';
import { isUuid, type SessionRegistry } from '../sessions/registry.ts';
import * as sql from './tenant-overview-sql.ts';

/** Ends every active session of the tenant's people; how many were ended. */
export async function endTenantSessions(
  pool: Pool,
  tenantId: string,
  reason: string,
  by: AuditBy,
): Promise<number> {
  return transaction(pool, async (client) => {
    const { rows } = await run<{ id: string; user_id: string }>(
      client,
      sql.revokeSessionsOfTenant(tenantId, reason),
    );
    await record(client, by, {
      tenantId,
      action: 'session.revoke_all',
      resource: { type: 'tenant', id: tenantId },
      outcome: 'success',
      details: { reason, sessionsEnded: rows.length, people: new Set(rows.map((r) => r.user_id)).size },
    });
    return rows.length;
  });
}

/** Ends one active session of the tenant (NotFoundError for any other id). */
export async function endTenantSession(
  pool: Pool,
  registry: SessionRegistry,
  tenantId: string,
  sessionId: string,
  reason: string,
  by: AuditBy,
): Promise<void> {
  if (!isUuid(sessionId) || !(await run(pool, sql.activeSessionOfTenant(sessionId, tenantId))).rowCount)
    throw new NotFoundError('No such session of this workspace (it may have ended already).');
  await registry.revoke(sessionId, null, reason, by);
}
