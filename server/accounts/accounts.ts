// Registration, sign-in checks and password changes. Registration creates the
// user and provisions the workspace in ONE transaction: if provisioning fails,
// no user is left behind, and if the email is taken, no tenant is.
import { type Client, type Pool, run, transaction } from '../../tenancy/db.ts';
import { DatabaseError } from '../../tenancy/errors.ts';
import { provisionTenantInTransaction } from '../../tenancy/provision.ts';
import type { TenantMigration } from '../../tenancy/templates.ts';
import type { TenantRow } from '../../tenancy/tenant-sql.ts';
import { AuthenticationError, ConflictError, ProvisioningFailedError } from '../errors.ts';
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

export async function register(
  pool: Pool,
  input: RegistrationInput,
  migrations: readonly TenantMigration[],
): Promise<Registered> {
  const fields = checkRegistration(input);
  // Cheap early answer; the unique index still decides under a race.
  if ((await run(pool, sql.emailTaken(fields.normalized))).rowCount) {
    throw new ConflictError(EMAIL_TAKEN);
  }
  const passwordHash = await hashPassword(fields.password);
  try {
    return await transaction(pool, async (client) => {
      const tenant = await provisionTenantInTransaction(
        client,
        { displayName: fields.displayName },
        migrations,
      );
      const insert = sql.insertUser({ ...fields, passwordHash, role: 'user', tenantId: tenant.id });
      const user = (await client.query<sql.UserRow>(insert)).rows[0] as sql.UserRow;
      return { user, tenant };
    });
  } catch (err) {
    if (err instanceof DatabaseError && err.code === '23505') throw new ConflictError(EMAIL_TAKEN);
    throw new ProvisioningFailedError(err);
  }
}

/** The user for these credentials, or AuthenticationError; same work whether or not the email exists. */
export async function authenticate(pool: Pool, email: unknown, password: unknown): Promise<sql.UserRow> {
  let normalized: string | undefined;
  try {
    normalized = normalizeEmail(email).normalized;
  } catch {
    normalized = undefined;
  }
  const user = normalized ? (await run<sql.UserRow>(pool, sql.userByEmail(normalized))).rows[0] : undefined;
  const ok = await verifyPassword(user?.password_hash, typeof password === 'string' ? password : '');
  if (!user || !ok) throw new AuthenticationError();
  return user;
}

export async function findUser(pool: Pool, id: string): Promise<sql.UserRow | undefined> {
  return (await run<sql.UserRow>(pool, sql.userById(id))).rows[0];
}

/** Checks the current password, sets the new one and ends every other session of the user. */
export async function changePassword(
  pool: Pool,
  userId: string,
  current: unknown,
  next: unknown,
  keepSessionId: string | null,
): Promise<void> {
  const user = await findUser(pool, userId);
  if (!user || !(await verifyPassword(user.password_hash, typeof current === 'string' ? current : ''))) {
    throw new AuthenticationError('The current password is incorrect.');
  }
  const password = checkPasswordPolicy(next, { email: user.email });
  const passwordHash = await hashPassword(password);
  await transaction(pool, async (client) => {
    await client.query(sql.setPasswordHash(userId, passwordHash));
    await client.query(sql.revokeSessionsOfUser(userId, keepSessionId, 'password changed'));
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
): Promise<sql.UserRow> {
  return transaction(pool, (client) => createPrivilegedUserInTransaction(client, input));
}

export async function createPrivilegedUserInTransaction(
  client: Client,
  input: PrivilegedUserInput,
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
    return row;
  } catch (err) {
    await client.query('ROLLBACK TO SAVEPOINT create_user');
    if ((err as { code?: string }).code === '23505') throw new ConflictError(EMAIL_TAKEN);
    throw err;
  }
}
