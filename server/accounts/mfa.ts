// Second factor: enrolment, sign-in check, recovery codes, turning it off.
//
// - Enrolment is two steps: a new secret is stored as *pending* and shown
//   (QR code + text); only a valid code from it, with the current password,
//   turns MFA on, so a person who never finishes is not locked out, and a
//   stolen session cannot lock the owner out of their account.
// - Every change except using a recovery code needs the current password.
// - A TOTP code is accepted once: the time step of every accepted code is
//   recorded (control.users.mfa_last_step) and only a later step passes.
// - Ten recovery codes are made when MFA is turned on and on request; they are
//   shown once and stored as SHA-256 (they are random, so a slow hash buys
//   nothing), each usable once.
// - Every change (on, off, new codes, a recovery code used) writes its audit
//   event in the same transaction; a refused code or password is recorded as
//   a failure once the transaction has rolled back. Never the secret or a code.
//   On, off and new codes also leave a notice for the owner's next sign-in.
import { createHash, randomBytes } from 'node:crypto';
import { generateSecret, generateURI, verify } from 'otplib';
import QRCode from 'qrcode';
import { type AuditBy, record, SYSTEM } from '../../kernel/audit-inbox.ts';
import { type Client, type Pool, run, transaction } from '../../kernel/db.ts';
import { InvalidInputError } from '../../kernel/errors.ts';
import { AuthenticationError, ConflictError, MfaRequiredError } from '../app-errors.ts';
import { verifyPassword } from './credentials.ts';
import * as sql from './mfa-sql.ts';
import { addNotice } from './notices.ts';
import type { UserRow } from './users-sql.ts';
import { revokeSessionsOfUser } from './users-sql.ts';

export const ISSUER = 'Enclave';
export const RECOVERY_CODE_COUNT = 10;
/** One period either side: tolerates a phone clock a little off, and a code typed as it rolls over. */
const EPOCH_TOLERANCE_SECONDS = 30;

const WRONG_CODE = 'That code is not valid. Check your authenticator app and try again.';
const REUSED_CODE = 'That code was already used. Wait for the next code in your authenticator app.';
const NO_CODE = 'Enter the 6-digit code from your authenticator app.';
const NO_PASSWORD = 'Enter your current password to confirm this change.';
const WRONG_PASSWORD = 'The password is incorrect.';
const WRONG_PASSWORD_OR_CODE = 'The password or the code is incorrect.';

/** A code or password refused: the person sees the message, the audit trail the reason. */
export class MfaRefusedError extends AuthenticationError {
  override name = 'MfaRefusedError';
  readonly reason: 'wrong_code' | 'reused_code' | 'wrong_password';
  constructor(reason: MfaRefusedError['reason'], message: string) {
    super(message);
    this.reason = reason;
  }
}

export const hashRecoveryCode = (code: string) =>
  createHash('sha256').update(code.replace(/[\s-]/g, '').toLowerCase()).digest();

// 32 symbols without 0/o, 1/l: easy to read off paper. 10 symbols = 50 bits.
const ALPHABET = 'abcdefghijkmnpqrstuvwxyz23456789';

/** Ten fresh codes like `k7m2q-x9d4f`; never six digits, so they cannot be taken for a TOTP code. */
export function newRecoveryCodes(count = RECOVERY_CODE_COUNT): string[] {
  return Array.from({ length: count }, () => {
    const chars = [...randomBytes(10)].map((b) => ALPHABET[b & 31]).join('');
    return `${chars.slice(0, 5)}-${chars.slice(5)}`;
  });
}

export interface MfaSetup {
  /** Base32 secret, for typing into an app that cannot scan. */
  secret: string;
  otpauthUrl: string;
  /** The otpauth URL as an SVG QR code: markup only, no script or style. */
  qrSvg: string;
}

export interface MfaStatus {
  enabled: boolean;
  required: boolean;
  pending: boolean;
  recoveryCodesLeft: number;
}

/**
 * Passes if the user has no second factor or `code` is a valid, unused TOTP or
 * recovery code. A recovery code used is recorded (`mfa.recovery_code.use`)
 * in the transaction that marks it used.
 */
export async function checkSecondFactor(
  pool: Pool,
  user: UserRow,
  code: unknown,
  by: AuditBy = SYSTEM,
): Promise<'none' | 'totp' | 'recovery'> {
  if (!user.mfa_enabled_at || !user.mfa_secret) return 'none';
  if (typeof code !== 'string' || code.trim() === '') throw new MfaRequiredError();
  const secret = user.mfa_secret;
  return transaction(pool, async (client) => {
    const kind = await consumeCode(client, user.id, secret, code);
    if (kind === 'recovery') {
      const left = (await run<{ n: number }>(client, sql.unusedRecoveryCodes(user.id))).rows[0]?.n ?? 0;
      await record(client, by, {
        tenantId: user.tenant_id,
        action: 'mfa.recovery_code.use',
        resource: { type: 'user', id: user.id },
        outcome: 'success',
        details: { codesLeft: left },
      });
    }
    return kind;
  });
}

export async function mfaStatus(pool: Pool, userId: string): Promise<MfaStatus> {
  const user = await stateOf(pool, userId);
  const left = await run<{ n: number }>(pool, sql.unusedRecoveryCodes(userId));
  return {
    enabled: user.mfa_enabled_at !== null,
    required: user.mfa_required,
    pending: user.mfa_pending_secret !== null,
    recoveryCodesLeft: user.mfa_enabled_at ? (left.rows[0]?.n ?? 0) : 0,
  };
}

/** Step 1: a new pending secret (replacing any earlier unfinished one) and its QR code. */
export async function startEnrolment(pool: Pool, userId: string): Promise<MfaSetup> {
  const user = await stateOf(pool, userId);
  if (user.mfa_enabled_at) throw alreadyOn();
  const secret = generateSecret();
  const stored = await run(pool, sql.setPendingSecret(userId, secret));
  if (!stored.rowCount) throw alreadyOn();
  const otpauthUrl = generateURI({ issuer: ISSUER, label: user.email, secret });
  const qrSvg = await QRCode.toString(otpauthUrl, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
  return { secret, otpauthUrl, qrSvg };
}

/**
 * Step 2: the current password and a valid code from the pending secret turn
 * MFA on. The password, because a stolen session alone must not be able to do
 * this: the new factor and its recovery codes would be the thief's, and the
 * owner locked out of their own account. Returns the recovery codes (the only
 * time they exist in clear). Every other session of the user ends: they were
 * opened without the second factor.
 */
export async function confirmEnrolment(
  pool: Pool,
  userId: string,
  password: unknown,
  code: unknown,
  keepSessionId: string | null,
  by: AuditBy = SYSTEM,
): Promise<string[]> {
  const typed = passwordInput(password);
  const token = totpInput(code);
  return recordingRefusals(pool, by, 'mfa.enable', userId, async () => {
    const { password_hash } = await stateOf(pool, userId);
    if (!(await verifyPassword(password_hash, typed))) {
      throw new MfaRefusedError('wrong_password', WRONG_PASSWORD);
    }
    return transaction(pool, async (client) => {
      const user = await lockedStateOf(client, userId);
      if (user.mfa_enabled_at) throw alreadyOn();
      if (!user.mfa_pending_secret) {
        throw new ConflictError(
          'Start setting up two-step sign-in first: the setup was not started or has ended.',
        );
      }
      const step = await totpStep(user.mfa_pending_secret, token);
      if (step === undefined) throw new MfaRefusedError('wrong_code', WRONG_CODE);
      await client.query(sql.activateMfa(userId, step));
      const ended = await client.query(
        revokeSessionsOfUser(userId, keepSessionId, 'two-step sign-in turned on'),
      );
      await recordMfaChange(client, by, 'mfa.enable', userId, { sessionsEnded: ended.rowCount ?? 0 });
      return replaceRecoveryCodes(client, userId);
    });
  });
}

/** Turns MFA off; needs the password and a current code (TOTP or recovery code). */
export async function disableMfa(
  pool: Pool,
  userId: string,
  password: unknown,
  code: unknown,
  by: AuditBy = SYSTEM,
): Promise<void> {
  if (typeof code !== 'string' || code.trim() === '') throw new InvalidInputError(NO_CODE);
  const user = await stateOf(pool, userId);
  if (!user.mfa_enabled_at) throw notOn();
  await recordingRefusals(pool, by, 'mfa.disable', userId, async () => {
    // One message for either mistake: this must not tell a session thief which half was right.
    const ok = await verifyPassword(user.password_hash, typeof password === 'string' ? password : '');
    if (!ok) throw new MfaRefusedError('wrong_password', WRONG_PASSWORD_OR_CODE);
    await transaction(pool, async (client) => {
      const locked = await lockedStateOf(client, userId);
      if (!locked.mfa_enabled_at || !locked.mfa_secret) throw notOn();
      await consumeCode(client, userId, locked.mfa_secret, code, WRONG_PASSWORD_OR_CODE);
      await client.query(sql.deactivateMfa(userId));
      await client.query(sql.deleteRecoveryCodes(userId));
      await recordMfaChange(client, by, 'mfa.disable', userId, {});
    });
  });
}

/**
 * New recovery codes (the old ones stop working); needs the password and a
 * current code, like turning MFA off: a code alone may be one the thief of a
 * session just read off a shoulder, and new codes are a way in for good.
 */
export async function regenerateRecoveryCodes(
  pool: Pool,
  userId: string,
  password: unknown,
  code: unknown,
  by: AuditBy = SYSTEM,
): Promise<string[]> {
  const typed = passwordInput(password);
  if (typeof code !== 'string' || code.trim() === '') throw new InvalidInputError(NO_CODE);
  const user = await stateOf(pool, userId);
  if (!user.mfa_enabled_at) throw notOn();
  return recordingRefusals(pool, by, 'mfa.recovery_codes.regenerate', userId, async () => {
    // One message for either mistake, as for turning it off.
    if (!(await verifyPassword(user.password_hash, typed))) {
      throw new MfaRefusedError('wrong_password', WRONG_PASSWORD_OR_CODE);
    }
    return transaction(pool, async (client) => {
      const locked = await lockedStateOf(client, userId);
      if (!locked.mfa_enabled_at || !locked.mfa_secret) throw notOn();
      await consumeCode(client, userId, locked.mfa_secret, code, WRONG_PASSWORD_OR_CODE);
      await recordMfaChange(client, by, 'mfa.recovery_codes.regenerate', userId, {
        count: RECOVERY_CODE_COUNT,
      });
      return replaceRecoveryCodes(client, userId);
    });
  });
}

// --- pieces -------------------------------------------------------------------

/**
 * Accepts `code` once: a TOTP code whose time step is later than any accepted
 * before, or an unused recovery code (then marked used). Throws otherwise.
 */
async function consumeCode(
  db: Pool | Client,
  userId: string,
  secret: string,
  code: string,
  wrong = WRONG_CODE,
): Promise<'totp' | 'recovery'> {
  const compact = code.replace(/\s/g, '');
  if (/^\d{6}$/.test(compact)) {
    const step = await totpStep(secret, compact);
    if (step === undefined) throw new MfaRefusedError('wrong_code', wrong);
    const claimed = await run(db, sql.claimTimeStep(userId, step));
    if (!claimed.rowCount) throw new MfaRefusedError('reused_code', REUSED_CODE);
    return 'totp';
  }
  if (compact.length <= 64) {
    const used = await run(db, sql.useRecoveryCode(userId, hashRecoveryCode(compact)));
    if (used.rowCount) return 'recovery';
  }
  throw new MfaRefusedError('wrong_code', wrong);
}

/**
 * The event of one MFA change, in the change's transaction (the user's own
 * chain), and a notice of it for the owner's next sign-in: if it was not
 * them, that is where they learn of it.
 */
async function recordMfaChange(
  client: Client,
  by: AuditBy,
  action: string,
  userId: string,
  details: Record<string, unknown>,
): Promise<void> {
  await record(client, by, { action, resource: { type: 'user', id: userId }, outcome: 'success', details });
  await addNotice(client, userId, action, by);
}

/** Runs fn; a refused code or password is recorded as a failure of `action` (after fn's rollback) and rethrown. */
async function recordingRefusals<T>(
  pool: Pool,
  by: AuditBy,
  action: string,
  userId: string,
  fn: () => Promise<T>,
): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof MfaRefusedError) {
      // The refusal stands even if its audit row cannot be written.
      await record(pool, by, {
        action,
        resource: { type: 'user', id: userId },
        outcome: 'failure',
        code: err.reason,
      }).catch(() => {});
    }
    throw err;
  }
}

/** The time step `token` belongs to under `secret`, or undefined if it matches none in the window. */
async function totpStep(secret: string, token: string): Promise<number | undefined> {
  const result = await verify({ secret, token, epochTolerance: EPOCH_TOLERANCE_SECONDS });
  return result.valid && 'timeStep' in result ? result.timeStep : undefined;
}

function passwordInput(password: unknown): string {
  if (typeof password !== 'string' || password === '') throw new InvalidInputError(NO_PASSWORD);
  return password;
}

function totpInput(code: unknown): string {
  const compact = typeof code === 'string' ? code.replace(/\s/g, '') : '';
  if (!/^\d{6}$/.test(compact)) throw new InvalidInputError(NO_CODE);
  return compact;
}

async function replaceRecoveryCodes(client: Client, userId: string): Promise<string[]> {
  const codes = newRecoveryCodes();
  await client.query(sql.deleteRecoveryCodes(userId));
  await client.query(sql.insertRecoveryCodes(userId, codes.map(hashRecoveryCode)));
  return codes;
}

async function stateOf(pool: Pool, userId: string): Promise<sql.MfaStateRow> {
  const row = (await run<sql.MfaStateRow>(pool, sql.mfaState(userId))).rows[0];
  if (!row) throw new AuthenticationError('Please sign in again.');
  return row;
}

async function lockedStateOf(client: Client, userId: string): Promise<sql.MfaStateRow> {
  const row = (await run<sql.MfaStateRow>(client, sql.mfaStateForUpdate(userId))).rows[0];
  if (!row) throw new AuthenticationError('Please sign in again.');
  return row;
}

const alreadyOn = () =>
  new ConflictError('Two-step sign-in is already on. Turn it off first to set up a new authenticator.');
const notOn = () => new ConflictError('Two-step sign-in is not on for this account.');
