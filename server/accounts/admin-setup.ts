// No default passwords: while there is no admin, each start makes a one-time
// setup link (valid one hour, stored only as a SHA-256 hash) and prints it in
// the log. Using it creates the first admin and burns every outstanding link.
import { createHash, randomBytes } from 'node:crypto';
import { type AuditBy, SYSTEM } from '../../kernel/audit-inbox.ts';
import { type Pool, run, transaction } from '../../kernel/db.ts';
import type { Logger } from '../../kernel/logger.ts';
import { AuthenticationError, ConflictError } from '../app-errors.ts';
import { createPrivilegedUserInTransaction } from './accounts.ts';
import * as sql from './users-sql.ts';

const VALID_MS = 60 * 60 * 1000;

const hashToken = (token: string) => createHash('sha256').update(token).digest();

export async function adminExists(pool: Pool): Promise<boolean> {
  return ((await run<{ n: number }>(pool, sql.countAdmins())).rows[0]?.n ?? 0) > 0;
}

/** A new one-time token, or undefined when an admin already exists. */
export async function issueSetupToken(pool: Pool): Promise<string | undefined> {
  if (await adminExists(pool)) return undefined;
  const token = randomBytes(32).toString('base64url');
  await run(pool, {
    text: 'INSERT INTO control.admin_setup_tokens (token_hash, expires_at) VALUES ($1, now() + make_interval(secs => $2))',
    values: [hashToken(token), VALID_MS / 1000],
  });
  return token;
}

/** Creates the first admin if `token` is a live setup token and no admin exists yet. */
export async function completeSetup(
  pool: Pool,
  token: unknown,
  input: { email: unknown; password: unknown; displayName: unknown },
  by: AuditBy = SYSTEM,
) {
  if (typeof token !== 'string' || token.length > 100)
    throw new AuthenticationError('This setup link is not valid.');
  return transaction(pool, async (client) => {
    // Serialises concurrent uses of links: only one first admin.
    await client.query('LOCK TABLE control.admin_setup_tokens IN EXCLUSIVE MODE');
    const live = await client.query(
      'SELECT 1 FROM control.admin_setup_tokens WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now()',
      [hashToken(token)],
    );
    if (!live.rowCount)
      throw new AuthenticationError(
        'This setup link is not valid or has expired. Restart the server for a new one.',
      );
    if (((await client.query<{ n: number }>(sql.countAdmins())).rows[0]?.n ?? 0) > 0) {
      throw new ConflictError('An admin already exists; sign in instead.');
    }
    // `account.create` by whoever holds the link (anonymous until the account exists), from where they are.
    const admin = await createPrivilegedUserInTransaction(
      client,
      { ...input, role: 'admin' },
      {
        ...by,
        details: { via: 'setup_link' },
      },
    );
    await client.query('UPDATE control.admin_setup_tokens SET used_at = now() WHERE used_at IS NULL');
    return admin;
  });
}

/** Logs a one-time setup link when no admin exists (the only secret we ever log, and it dies on use). */
export async function announceSetup(pool: Pool, baseUrl: string, log: Logger): Promise<void> {
  const token = await issueSetupToken(pool);
  if (!token) return;
  log.warn(
    `No admin account exists yet. Create one within an hour at ${baseUrl}/setup/admin?token=${token} ` +
      '(or run `npx enclave users create-admin`).',
    { setupLink: true },
  );
}
