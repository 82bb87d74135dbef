// The one reading of a sign-in request's credentials, shared by the account
// lockout (server/abuse/lockout.ts) and the password check (auth/sign-in.ts,
// through passport-local). Two readers that disagree are a bypass: the lockout
// once read `body.email || query.email` and skipped anything that was not a
// string, while passport-local fell back to `?email=` and checked the password
// of the account the query named.
//
// So: strings from the body only, never the query string; anything else (an
// object, an array from a repeated form field, nothing, a NUL, a huge value)
// is refused with 400 before the lockout and before any password check. A
// request that gets past this always names exactly one account, so the lockout
// always has a key for it.
import type { Request } from 'express';
import { InvalidInputError } from '../../kernel/errors.ts';
import { normalizeEmail, PASSWORD_MAX } from '../accounts/credentials.ts';

export interface SignInCredentials {
  /** As typed (trimmed). */
  email: string;
  /** Lower-cased: the account key. */
  normalizedEmail: string;
  password: string;
  /** The second-factor code when one was sent (the JSON API sends it with the password). */
  totp: string | undefined;
}

/** Longer than any TOTP or recovery code, however it is spaced. */
const CODE_MAX = 64;

// Parsed once per request: the lockout and the route must see the very same values.
const parsed = new WeakMap<Request, SignInCredentials | InvalidInputError>();

/** The credentials of a sign-in request, or InvalidInputError (400) saying what to fix. */
export function signInCredentials(req: Request): SignInCredentials {
  let result = parsed.get(req);
  if (!result) {
    try {
      result = parse(req.body);
    } catch (err) {
      if (!(err instanceof InvalidInputError)) throw err;
      result = err;
    }
    parsed.set(req, result);
  }
  if (result instanceof InvalidInputError) throw result;
  return result;
}

function parse(body: unknown): SignInCredentials {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new InvalidInputError('Send your email address and password in the request body.');
  }
  const fields = body as Record<string, unknown>;
  const email = text(fields.email, 'email address', 254);
  if (!email) throw new InvalidInputError('Enter your email address.');
  // Its shape, control characters (a NUL) and invalid Unicode: refused as registration refuses them.
  const { email: trimmed, normalized } = normalizeEmail(email);
  const password = text(fields.password, 'password', PASSWORD_MAX);
  if (!password) throw new InvalidInputError('Enter your password.');
  const totp = text(fields.totp, 'code', CODE_MAX);
  return { email: trimmed, normalizedEmail: normalized, password, totp };
}

/** A text field: undefined when absent; refused when repeated, not text, too long or not valid Unicode. */
function text(value: unknown, name: string, max: number): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (Array.isArray(value)) throw new InvalidInputError(`Send the ${name} only once.`);
  if (typeof value !== 'string') throw new InvalidInputError(`The ${name} must be text.`);
  if ([...value].length > max) throw new InvalidInputError(`The ${name} can be at most ${max} characters.`);
  if (!value.isWellFormed())
    throw new InvalidInputError(`The ${name} contains characters that are not valid.`);
  return value;
}
