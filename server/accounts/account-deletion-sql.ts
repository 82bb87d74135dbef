// Control-plane statements of account deletion: parameters in, { text, values } out.
import type { Statement } from '../../kernel/db.ts';

/** Locks the person's row for the deletion; nothing else may change it meanwhile. */
export const lockUser = (userId: string): Statement => ({
  text: 'SELECT id, tenant_id, role FROM control.users WHERE id = $1 FOR UPDATE',
  values: [userId],
});

/** The row goes; its sessions, API tokens and recovery codes go with it (ON DELETE CASCADE). */
export const deleteUser = (userId: string): Statement => ({
  text: 'DELETE FROM control.users WHERE id = $1',
  values: [userId],
});

/**
 * A workspace is named after the person at registration: the tenant row (kept
 * as 'deleted' for the migration ledger and ops) must not keep their name.
 */
export const forgetTenantName = (tenantId: string): Statement => ({
  text: "UPDATE control.tenants SET display_name = 'deleted account' WHERE id = $1",
  values: [tenantId],
});
