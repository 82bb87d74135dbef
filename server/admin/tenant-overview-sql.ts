// The statements of the admin console's tenant page (tenant-overview.ts) that
// no service already has: the tenant's migration ledger. Sizes, backups,
// lifecycle and sessions come from their own modules.
import type { Statement } from '../../kernel/db.ts';

export interface LedgerRow {
  id: string;
  version: number;
  migration: string;
  applied_at: Date;
  duration_ms: number;
  outcome: 'applied' | 'failed';
}

/** The tenant's migration attempts, newest first (at most `limit`). */
export const migrationLedger = (tenantId: string, limit: number): Statement => ({
  // Not `error`: a failed migration's message may quote the tenant's rows (a duplicate key's value).
  text: `SELECT id, version, migration, applied_at, duration_ms, outcome
           FROM control.tenant_migrations
          WHERE tenant_id = $1
          ORDER BY applied_at DESC, id DESC
          LIMIT $2`,
  values: [tenantId, limit],
});

/** Ends every active session of the tenant's people; the ids and owners of those ended. */
export const revokeSessionsOfTenant = (tenantId: string, reason: string): Statement => ({
  text: `UPDATE control.user_sessions SET revoked_at = now(), revoked_reason = $2
          WHERE tenant_id = $1 AND revoked_at IS NULL
          RETURNING id, user_id`,
  values: [tenantId, reason],
});

/** Whether the session is an active one of the tenant. */
export const activeSessionOfTenant = (sessionId: string, tenantId: string): Statement => ({
  text: 'SELECT 1 FROM control.user_sessions WHERE id = $1 AND tenant_id = $2 AND revoked_at IS NULL',
  values: [sessionId, tenantId],
});
