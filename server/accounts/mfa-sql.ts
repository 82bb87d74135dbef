// Control-plane statements for the second factor: parameters in,
// { text, values } out (the style of users-sql.ts). Each state change is one
// conditional UPDATE, so two requests racing each other cannot both win.
import type { Statement } from '../../kernel/db.ts';

export interface MfaStateRow {
  id: string;
  email: string;
  password_hash: string;
  mfa_secret: string | null;
  mfa_enabled_at: Date | null;
  mfa_pending_secret: string | null;
  mfa_required: boolean;
}

const STATE = 'id, email, password_hash, mfa_secret, mfa_enabled_at, mfa_pending_secret, mfa_required';

export const mfaState = (userId: string): Statement => ({
  text: `SELECT ${STATE} FROM control.users WHERE id = $1`,
  values: [userId],
});

/** The same row, locked until the transaction ends: one enrolment change at a time per user. */
export const mfaStateForUpdate = (userId: string): Statement => ({
  text: `SELECT ${STATE} FROM control.users WHERE id = $1 FOR UPDATE`,
  values: [userId],
});

/** Stores a new secret awaiting its first code; refused once MFA is on. */
export const setPendingSecret = (userId: string, secret: string): Statement => ({
  text: `UPDATE control.users SET mfa_pending_secret = $2
          WHERE id = $1 AND mfa_enabled_at IS NULL RETURNING id`,
  values: [userId, secret],
});

/** The pending secret becomes the secret; `step` is the time step of the code that proved it. */
export const activateMfa = (userId: string, step: number): Statement => ({
  text: `UPDATE control.users
            SET mfa_secret = mfa_pending_secret, mfa_pending_secret = NULL,
                mfa_enabled_at = now(), mfa_last_step = $2
          WHERE id = $1 AND mfa_enabled_at IS NULL AND mfa_pending_secret IS NOT NULL
      RETURNING id`,
  values: [userId, step],
});

export const deactivateMfa = (userId: string): Statement => ({
  text: `UPDATE control.users
            SET mfa_secret = NULL, mfa_enabled_at = NULL, mfa_pending_secret = NULL, mfa_last_step = NULL
          WHERE id = $1 RETURNING id`,
  values: [userId],
});

/**
 * Claims a TOTP time step: succeeds (one row) only if no code of this or a
 * later step was accepted before. This is the replay check, done atomically.
 */
export const claimTimeStep = (userId: string, step: number): Statement => ({
  text: `UPDATE control.users SET mfa_last_step = $2
          WHERE id = $1 AND mfa_enabled_at IS NOT NULL AND (mfa_last_step IS NULL OR mfa_last_step < $2)
      RETURNING id`,
  values: [userId, step],
});

/** Marks one unused recovery code with this hash as used; a row back means it was valid. */
export const useRecoveryCode = (userId: string, codeHash: Buffer): Statement => ({
  text: `UPDATE control.recovery_codes SET used_at = now()
          WHERE id = (SELECT id FROM control.recovery_codes
                       WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL
                       LIMIT 1 FOR UPDATE)
      RETURNING id`,
  values: [userId, codeHash],
});

export const deleteRecoveryCodes = (userId: string): Statement => ({
  text: 'DELETE FROM control.recovery_codes WHERE user_id = $1',
  values: [userId],
});

export const insertRecoveryCodes = (userId: string, codeHashes: readonly Buffer[]): Statement => ({
  text: 'INSERT INTO control.recovery_codes (user_id, code_hash) SELECT $1, unnest($2::bytea[])',
  values: [userId, codeHashes],
});

export const unusedRecoveryCodes = (userId: string): Statement => ({
  text: 'SELECT count(*)::int AS n FROM control.recovery_codes WHERE user_id = $1 AND used_at IS NULL',
  values: [userId],
});
