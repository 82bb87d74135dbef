// Second factor at sign-in: a TOTP code from the authenticator app, or one of
// the ten single-use recovery codes (stored as SHA-256: they are random, so a
// slow hash buys nothing). Enrolment lives beside this (see mfa routes).
import { createHash } from 'node:crypto';
import { verify } from 'otplib';
import { type Pool, run } from '../../tenancy/db.ts';
import { AuthenticationError, MfaRequiredError } from '../errors.ts';
import type { UserRow } from './users-sql.ts';

export const hashRecoveryCode = (code: string) =>
  createHash('sha256').update(code.replace(/[\s-]/g, '').toLowerCase()).digest();

/** Passes if the user has no second factor or `code` is a valid TOTP or unused recovery code. */
export async function checkSecondFactor(
  pool: Pool,
  user: UserRow,
  code: unknown,
): Promise<'none' | 'totp' | 'recovery'> {
  if (!user.mfa_enabled_at || !user.mfa_secret) return 'none';
  if (typeof code !== 'string' || code.trim() === '') throw new MfaRequiredError();
  const compact = code.replace(/\s/g, '');
  if (/^\d{6}$/.test(compact)) {
    const result = await verify({ secret: user.mfa_secret, token: compact, epochTolerance: 30 });
    if (result.valid) return 'totp';
  } else if (compact.length <= 64) {
    const used = await run(pool, {
      text: `UPDATE control.recovery_codes SET used_at = now()
              WHERE id = (SELECT id FROM control.recovery_codes
                           WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL LIMIT 1 FOR UPDATE)
              RETURNING id`,
      values: [user.id, hashRecoveryCode(compact)],
    });
    if (used.rowCount) return 'recovery';
  }
  throw new AuthenticationError('That code is not valid. Check your authenticator app and try again.');
}
