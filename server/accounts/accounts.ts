// Registration, sign-in checks and password changes. Registration creates the
// user and provisions the workspace in ONE transaction: if provisioning fails,
// no user is left behind, and if the email is taken, no tenant is. Every
// change here writes its audit event in its own transaction.
import { randomUUID } from 'node:crypto';
import { type AuditBy, record, SYSTEM } from '../../kernel/audit-inbox.ts';
import { type Client, type Pool, retryingTransaction, run, transaction } from '../../kernel/db.ts';
import { DatabaseError } from '../../kernel/errors.ts';
import { provisionTenantInTransaction } from '../../tenancy/provision.ts';
import type { TenantMigration } from '../../tenancy/templates.ts';
import type { TenantRow } from '../../tenancy/tenant-sql.ts';
import { AuthenticationError, ConflictError, ProvisioningFailedError } from '../app-errors.ts';
import { revokeAllTokensInTransaction } from './api-tokens.ts';
import {
  checkPasswordPolicy,
  checkPersonName,
  hashPassword,
  normalizeEmail,
  verifyPassword,
} from './credentials.ts';
import * as sql from './users-sql.ts';

export interface RegistrationInput {
  email: unknown;
  password: unknown;
  displayName: unknown;
}

export interface Registered {
  user: sql.UserRow;
  tenant: TenantRow;
}

const EMAIL_TAKEN = 'An account with this email already exists. Sign in instead, or use another address.';

/** Checks every field before any work, so a bad request changes nothing. */
export function checkRegistration(input: RegistrationInput) {
  const { email, normalized } = normalizeEmail(input.email);
  const displayName = checkPersonName(input.displayName);
  const password = checkPasswordPolicy(input.password, { email });
  return { email, normalized, displayName, password };
}

/**
 * Registration: `by` is where the request came from; the new person is the
 * actor of both events (`tenant.provision`, `account.register`), so their id
 * is chosen before the rows exist.
 */
export async function register(
  pool: Pool,
  input: RegistrationInput,
  migrations: readonly TenantMigration[],
  by: AuditBy = SYSTEM,
): Promise<Registered> {
  const fields = checkRegistration(input);
  // Cheap early answer; the unique index still decides under a race.
  if ((await run(pool, sql.emailTaken(fields.normalized))).rowCount) {
    throw new ConflictError(EMAIL_TAKEN);
  }
  const passwordHash = await hashPassword(fields.password);
  const userId = randomUUID();
  const self: AuditBy = { ...by, actor: { type: 'user', id: userId } };
  try {
    return await retryingTransaction(pool, async (client) => {
      const tenant = await provisionTenantInTransaction(
        client,
        { displayName: fields.displayName },
        migrations,
        { by: self },
      );
      const insert = sql.insertUser({
        ...fields,
        passwordHash,
        role: 'user',
        tenantId: tenant.id,
        id: userId,
      });
      const user = (await client.query<sql.UserRow>(insert)).rows[0] as sql.UserRow;
      await record(client, self, {
        tenantId: tenant.id,
        action: 'account.register',
        resource: { type: 'user', id: userId },
        outcome: 'success',
        details: { role: 'user' },
      });
      return { user, tenant };
    });
  } catch (err) {
    if (err instanceof DatabaseError && err.code === '23505') throw new ConflictError(EMAIL_TAKEN);
    throw new ProvisioningFailedError(err);
  }
}

/**
 * A failed sign-in. The person sees the same words either way; the audit trail
 * gets the reason and, for a known account, who it was. The one exception is
 * a deactivated account with the RIGHT password: only someone who knows the
 * password is told that the account is deactivated (never before the password
 * is checked, and after the same work as a wrong one).
 */
export class LoginFailedError extends AuthenticationError {
  override name = 'LoginFailedError';
  readonly reason: 'unknown_account' | 'wrong_password' | 'account_deactivated';
  /** The account tried, when the email belongs to one. */
  readonly user: { userId: string; role: sql.Role; tenantId: string | null } | undefined;
  /** The normalised email that was tried (for a keyed hash in the trail, never stored as is). */
  readonly email: string | undefined;
  constructor(
    reason: LoginFailedError['reason'],
    user: sql.UserRow | undefined,
    email: string | undefined,
    message?: string,
  ) {
    super(message);
    this.reason = reason;
    this.user = user ? { userId: user.id, role: user.role, tenantId: user.tenant_id } : undefined;
    // Not enumerable: an error that reaches a log line must not carry the address.
    Object.defineProperty(this, 'email', { value: email, enumerable: false });
  }
}

/** What the right password of a deactivated account hears (docs/ADMIN.md, People). */
export const DEACTIVATED =
  'This account has been deactivated by an administrator, so it cannot sign in. Ask your administrator if you think this is a mistake.';

/**
 * The user for these credentials, or LoginFailedError; same work whether or
 * not the email exists. A deactivated account is refused after its password
 * is checked, with words of its own.
 */
export async function authenticate(pool: Pool, email: unknown, password: unknown): Promise<sql.UserRow> {
  let normalized: string | undefined;
  try {
    normalized = normalizeEmail(email).normalized;
  } catch {
    normalized = undefined;
  }
  const user = normalized ? (await run<sql.UserRow>(pool, sql.userByEmail(normalized))).rows[0] : undefined;
  const ok = await verifyPassword(user?.password_hash, typeof password === 'string' ? password : '');
  if (!user) throw new LoginFailedError('unknown_account', undefined, normalized);
  if (!ok) throw new LoginFailedError('wrong_password', user, normalized);
  if (user.deactivated_at) throw new LoginFailedError('account_deactivated', user, normalized, DEACTIVATED);
  return user;
}

export async function findUser(pool: Pool, id: string): Promise<sql.UserRow | undefined> {
  return (await run<sql.UserRow>(pool, sql.userById(id))).rows[0];
}

/** What a password change ended besides the password. */
export interface PasswordChanged {
  sessionsEnded: number;
  tokensEnded: number;
}

/**
 * Checks the current password, sets the new one and ends every other session
 * and every API token of the user (someone who had the old password may have
 * made one): `account.password.change`, `session.revoke_all` and a
 * `token.revoke` per token in the same transaction; a wrong current password
 * is recorded as a failure.
 */
export async function changePassword(
  pool: Pool,
  userId: string,
  current: unknown,
  next: unknown,
  keepSessionId: string | null,
  by: AuditBy = SYSTEM,
): Promise<PasswordChanged> {
  const user = await findUser(pool, userId);
  const resource = { type: 'user', id: userId };
  if (!user || !(await verifyPassword(user.password_hash, typeof current === 'string' ? current : ''))) {
    await record(pool, by, {
      action: 'account.password.change',
      resource,
      outcome: 'failure',
      code: 'wrong_password',
    }).catch(() => {});
    throw new AuthenticationError('The current password is incorrect.');
  }
  const password = checkPasswordPolicy(next, { email: user.email });
  const passwordHash = await hashPassword(password);
  return transaction(pool, async (client) => {
    await client.query(sql.setPasswordHash(userId, passwordHash));
    const ended = (await client.query(sql.revokeSessionsOfUser(userId, keepSessionId, 'password changed')))
      .rowCount;
    const tenantId = user.tenant_id;
    await record(client, by, { tenantId, action: 'account.password.change', resource, outcome: 'success' });
    await record(client, by, {
      tenantId,
      action: 'session.revoke_all',
      resource,
      outcome: 'success',
      details: { reason: 'password changed', sessionsEnded: ended ?? 0 },
    });
    const tokensEnded = await revokeAllTokensInTransaction(client, userId, 'password changed', by, tenantId);
    return { sessionsEnded: ended ?? 0, tokensEnded };
  });
}

export interface PrivilegedUserInput {
  email: unknown;
  password: unknown;
  displayName: unknown;
  role: 'admin' | 'auditor';
  mfaRequired?: boolean;
}

/** Admins and auditors own no workspace; `mfaRequired` makes them enrol MFA before anything else. */
export async function createPrivilegedUser(
  pool: Pool,
  input: PrivilegedUserInput,
  by: AuditBy = SYSTEM,
): Promise<sql.UserRow> {
  return transaction(pool, (client) => createPrivilegedUserInTransaction(client, input, by));
}

/** The same inside the caller's transaction; `account.create` (platform chain) commits with it. */
export async function createPrivilegedUserInTransaction(
  client: Client,
  input: PrivilegedUserInput,
  by: AuditBy = SYSTEM,
): Promise<sql.UserRow> {
  const { email, normalized } = normalizeEmail(input.email);
  const displayName = checkPersonName(input.displayName);
  const password = checkPasswordPolicy(input.password, { email });
  const passwordHash = await hashPassword(password);
  const insert = sql.insertUser({
    email,
    normalized,
    displayName,
    passwordHash,
    role: input.role,
    tenantId: null,
    mfaRequired: input.mfaRequired ?? false,
  });
  await client.query('SAVEPOINT create_user');
  try {
    const row = (await client.query<sql.UserRow>(insert)).rows[0] as sql.UserRow;
    await client.query('RELEASE SAVEPOINT create_user');
    await record(client, by, {
      tenantId: null,
      action: 'account.create',
      resource: { type: 'user', id: row.id },
      outcome: 'success',
      details: { role: row.role, mfaRequired: row.mfa_required },
    });
    return row;
  } catch (err) {
    await client.query('ROLLBACK TO SAVEPOINT create_user');
    if ((err as { code?: string }).code === '23505') throw new ConflictError(EMAIL_TAKEN);
    throw err;
  }
}
