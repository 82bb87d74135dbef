// Deleting one's own account: typed confirmation, a fresh password, the second
// factor when MFA is on; then, in ONE transaction, the workspace's schema and
// role are dropped, the person's row (with its sessions, tokens and recovery
// codes) is deleted, and the audit event is written. A crash at any point
// leaves either everything as it was or all of it done: DROP SCHEMA, DROP ROLE
// and the row changes are transactional in PostgreSQL, and the audit inbox has
// no foreign key to tenants or users, so the event outlives both.
//
// Deleted rather than anonymised: nothing of the person stays behind except
// the audit trail (actor id, address and device of the request), which is
// what the trail is for. Their email becomes free to register again.
import { z } from 'zod';
import { type AuditActor, type AuditBy, type AuditContext, record } from '../../kernel/audit-inbox.ts';
import { type Pool, transaction } from '../../kernel/db.ts';
import { InvalidInputError } from '../../kernel/errors.ts';
import { dropTenantInTransaction } from '../../tenancy/lifecycle.ts';
import { LegalHoldError } from '../../tenancy/tenancy-errors.ts';
import { AuthenticationError, ForbiddenError, MfaRequiredError } from '../app-errors.ts';
import * as sql from './account-deletion-sql.ts';
import { findUser } from './accounts.ts';
import { verifyPassword } from './credentials.ts';
import { checkSecondFactor } from './mfa.ts';
import { revokeSessionsOfUser } from './users-sql.ts';

/** What a person types to confirm: exact words, so a stray click or autofill cannot delete anything. */
export const DELETE_CONFIRMATION = 'DELETE MY ACCOUNT';

export const AccountDeletionBody = z.strictObject({
  confirm: z.string().max(200),
  password: z.string().max(256),
  totp: z.string().max(64).optional(),
});

/** The legal-hold refusal in words for the person rather than for ops (same 409 `legal_hold`). */
export class AccountUnderLegalHoldError extends LegalHoldError {
  override name = 'AccountUnderLegalHoldError';
  constructor(tenantId: string) {
    super(tenantId);
    this.message =
      'Your workspace is under a legal hold, so it cannot be deleted now. Nothing was changed. ' +
      'Please contact us; the account can be deleted once the hold is lifted.';
  }
}

export interface DeletionRequest {
  userId: string;
  tenantId: string;
  actor: AuditActor;
  context: AuditContext;
  /** The request body, checked here. */
  body: unknown;
}

export interface Deleted {
  tenantId: string;
  sessionsEnded: number;
}

/** Checks everything first (phrase, password, second factor); then deletes in one transaction. */
export async function deleteAccount(pool: Pool, request: DeletionRequest): Promise<Deleted> {
  const parsed = AccountDeletionBody.safeParse(request.body ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.length ? `${issue.path.join('.')}: ` : '';
    throw new InvalidInputError(`${where}${issue?.message ?? 'invalid request body'}`);
  }
  const { confirm, password, totp } = parsed.data;
  if (confirm.trim() !== DELETE_CONFIRMATION) {
    throw new InvalidInputError(`Type ${DELETE_CONFIRMATION} exactly (in capitals) to confirm.`);
  }
  const { userId, tenantId } = request;
  const user = await findUser(pool, userId);
  if (user?.role !== 'user' || user.tenant_id !== tenantId) {
    throw new ForbiddenError('Only a workspace owner can delete their account here.');
  }
  const refused = (code: string) =>
    recordRefusal(pool, request, code).catch(() => {
      // The refusal stands even if its audit row cannot be written.
    });
  if (!(await verifyPassword(user.password_hash, password))) {
    await refused('wrong_password');
    throw new AuthenticationError('The password is incorrect. Nothing was deleted.');
  }
  try {
    await checkSecondFactor(pool, user, totp, { actor: request.actor, context: request.context, tenantId });
  } catch (err) {
    if (!(err instanceof MfaRequiredError)) await refused('wrong_second_factor');
    throw err;
  }
  try {
    return await transaction(pool, async (client) => {
      // The tenant first (its advisory lock, then its row), as every tenant lifecycle step does.
      const tenant = await dropTenantInTransaction(client, tenantId, {
        actor: request.actor,
        context: request.context,
      });
      const locked = await client.query(sql.lockUser(userId));
      if (locked.rows[0]?.tenant_id !== tenantId) {
        throw new ForbiddenError('Only a workspace owner can delete their account here.');
      }
      // Every session ends: the rows are revoked (counted for the trail) and then go with the user.
      const ended = await client.query(revokeSessionsOfUser(userId, null, 'account deleted'));
      await client.query(sql.deleteUser(userId));
      await client.query(sql.forgetTenantName(tenantId));
      await record(client, byOf(request), {
        tenantId,
        action: 'account.delete',
        resource: { type: 'account', id: userId },
        outcome: 'success',
        details: {
          schemaVersion: tenant.schema_version,
          droppedSchema: tenant.schema_name,
          droppedRole: tenant.role_name,
          sessionsEnded: ended.rowCount ?? 0,
        },
      });
      return { tenantId, sessionsEnded: ended.rowCount ?? 0 };
    });
  } catch (err) {
    if (err instanceof LegalHoldError) {
      await refused('legal_hold');
      throw new AccountUnderLegalHoldError(tenantId);
    }
    throw err;
  }
}

/** A refused deletion is worth knowing about (a stolen session guessing the password, a legal hold). */
async function recordRefusal(pool: Pool, request: DeletionRequest, code: string): Promise<void> {
  await record(pool, byOf(request), {
    tenantId: request.tenantId,
    action: 'account.delete',
    resource: { type: 'account', id: request.userId },
    outcome: 'failure',
    code,
  });
}

const byOf = (request: DeletionRequest): AuditBy => ({ actor: request.actor, context: request.context });
