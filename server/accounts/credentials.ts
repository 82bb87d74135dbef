// Emails, passwords and their hashes. Passwords are hashed with argon2id
// (OWASP's parameters: 19 MiB, 2 passes); an unknown email is verified against
// a dummy hash so that its answer takes as long as a known one's.
import { hash, verify } from '@node-rs/argon2';
import { dictionary } from '@zxcvbn-ts/language-common';
import { InvalidInputError } from '../../kernel/errors.ts';

const ARGON2 = { algorithm: 2 /* Argon2id */, memoryCost: 19456, timeCost: 2, parallelism: 1 } as const;
export const PASSWORD_MIN = 12;
export const PASSWORD_MAX = 256;

const COMMON = new Set((dictionary['passwords-common'] as string[]).map((p) => p.toLowerCase()));

/** Lower-cased and trimmed; unique regardless of case. Refuses anything that is not plausibly an address. */
export function normalizeEmail(raw: unknown): { email: string; normalized: string } {
  if (typeof raw !== 'string') throw new InvalidInputError('an email address is required');
  const email = raw.trim();
  // Refused here, not left to PostgreSQL: a NUL in a query parameter is a driver error (a 500).
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
  if (/[\u0000-\u001f\u007f]/.test(email)) {
    throw new InvalidInputError('an email address cannot contain control characters');
  }
  if (!email.isWellFormed()) throw new InvalidInputError('that does not look like an email address');
  if (email.length < 3 || email.length > 254 || !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email)) {
    throw new InvalidInputError('that does not look like an email address');
  }
  return { email, normalized: email.toLowerCase() };
}

/** Length 12 to 256, and not a common password (also not one with digits or symbols tacked on). */
export function checkPasswordPolicy(password: unknown, context: { email?: string } = {}): string {
  if (typeof password !== 'string' || password.length === 0)
    throw new InvalidInputError('a password is required');
  // A lone surrogate has no UTF-8 form: it would be hashed as U+FFFD and never typed again.
  if (!password.isWellFormed())
    throw new InvalidInputError('the password contains characters that are not valid');
  const length = [...password].length;
  if (length < PASSWORD_MIN)
    throw new InvalidInputError(`the password must be at least ${PASSWORD_MIN} characters`);
  if (length > PASSWORD_MAX)
    throw new InvalidInputError(`the password can be at most ${PASSWORD_MAX} characters`);
  const lower = password.toLowerCase();
  const stem = lower.replace(/[\d\W_]+$/u, '');
  if (COMMON.has(lower) || (stem.length >= 6 && COMMON.has(stem)) || /^(.)\1+$/u.test(password)) {
    throw new InvalidInputError('that password is too common; choose one that is hard to guess');
  }
  const local = context.email?.split('@')[0]?.toLowerCase();
  if (local && local.length >= 4 && lower.includes(local)) {
    throw new InvalidInputError('the password must not contain your email address');
  }
  return password;
}

export function hashPassword(password: string): Promise<string> {
  return hash(password, ARGON2);
}

let dummy: Promise<string> | undefined;

/** Verifies against the stored hash, or against a dummy one when there is none (same cost either way). */
export async function verifyPassword(stored: string | undefined, password: string): Promise<boolean> {
  if (typeof password !== 'string' || password.length > PASSWORD_MAX * 4) return false;
  if (!stored) {
    dummy ??= hashPassword('enclave-dummy-password-for-timing');
    await verify(await dummy, password).catch(() => false);
    return false;
  }
  try {
    return await verify(stored, password);
  } catch {
    return false;
  }
}

/** A person's display name: 1 to 200 characters, no control characters. */
export function checkPersonName(raw: unknown): string {
  if (typeof raw !== 'string' || raw.trim().length === 0)
    throw new InvalidInputError('a display name is required');
  const name = raw.trim();
  if (!name.isWellFormed())
    throw new InvalidInputError('a display name contains characters that are not valid');
  if ([...name].length > 200) throw new InvalidInputError('a display name can be at most 200 characters');
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
  if (/[\u0000-\u001f\u007f]/.test(name))
    throw new InvalidInputError('a display name cannot contain control characters');
  return name;
}
