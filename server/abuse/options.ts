// The numbers of abuse protection, in one place. The defaults are for
// production; tests pass small windows so a limit can be seen to lift in a
// second or two. Every per-IP limit is per client address as Express sees it
// (`req.ip`, which believes X-Forwarded-For only as far as TRUST_PROXY says).

/** At most `limit` requests per `windowMs` (a fixed window). */
export interface WindowLimit {
  limit: number;
  windowMs: number;
}

/**
 * Per account (the sign-in email, hashed): the first `freeFailures` failures
 * cost nothing; each one after that makes the next attempt wait
 * `baseDelayMs * 2^k` (k = 0, 1, ...; at most `maxDelayMs`); from the
 * `lockoutAfter`-th failure on, the account is locked for `lockoutMs` after
 * every failure. A success clears it all; so does `forgetAfterMs` without any
 * attempt.
 */
export interface LockoutPolicy {
  freeFailures: number;
  baseDelayMs: number;
  maxDelayMs: number;
  lockoutAfter: number;
  lockoutMs: number;
  forgetAfterMs: number;
}

export interface AbuseOptions {
  /** Prefix of every Redis key written here (tests use their own). */
  prefix: string;
  /** Failed sign-ins per IP (successful ones are not counted, so a busy office is not locked out). */
  login: WindowLimit;
  /** Registrations per IP: each one provisions a workspace. */
  register: WindowLimit;
  /** Second-factor submissions per IP: at sign-in (`totp` given) and on any MFA route. */
  mfa: WindowLimit;
  /** Requests per API token. */
  tokenUse: WindowLimit;
  /** Requests with any API token per IP: bounds guessing tokens from one address. */
  tokenIp: WindowLimit;
  lockout: LockoutPolicy;
}

export type AbuseOverrides = Partial<Omit<AbuseOptions, 'lockout'>> & { lockout?: Partial<LockoutPolicy> };

const MINUTE = 60_000;

export const DEFAULT_ABUSE_OPTIONS: AbuseOptions = {
  prefix: 'enclave:abuse:',
  login: { limit: 20, windowMs: MINUTE },
  register: { limit: 5, windowMs: MINUTE },
  mfa: { limit: 10, windowMs: MINUTE },
  tokenUse: { limit: 600, windowMs: MINUTE },
  tokenIp: { limit: 1200, windowMs: MINUTE },
  lockout: {
    freeFailures: 5,
    baseDelayMs: 2000, // 2, 4, 8, 16 s after failures 6 to 9; locked from the 10th
    maxDelayMs: MINUTE,
    lockoutAfter: 10,
    lockoutMs: 15 * MINUTE,
    forgetAfterMs: 60 * MINUTE,
  },
};

/** The defaults with `overrides` on top; refuses numbers that would switch protection off by accident. */
export function resolveAbuseOptions(overrides: AbuseOverrides = {}): AbuseOptions {
  const options: AbuseOptions = {
    ...DEFAULT_ABUSE_OPTIONS,
    ...overrides,
    lockout: { ...DEFAULT_ABUSE_OPTIONS.lockout, ...overrides.lockout },
  };
  for (const name of ['login', 'register', 'mfa', 'tokenUse', 'tokenIp'] as const) {
    const { limit, windowMs } = options[name];
    if (!(Number.isInteger(limit) && limit >= 1 && windowMs >= 1)) {
      throw new RangeError(`abuse.${name}: limit must be a whole number >= 1 and windowMs >= 1`);
    }
  }
  const l = options.lockout;
  if (!(Number.isInteger(l.freeFailures) && l.freeFailures >= 0 && Number.isInteger(l.lockoutAfter))) {
    throw new RangeError('abuse.lockout: freeFailures and lockoutAfter must be whole numbers');
  }
  if (l.lockoutAfter < 1 || l.lockoutAfter < l.freeFailures) {
    throw new RangeError('abuse.lockout: lockoutAfter must be >= 1 and >= freeFailures');
  }
  if (!(l.baseDelayMs >= 0 && l.maxDelayMs >= 0 && l.lockoutMs >= 1 && l.forgetAfterMs >= 1)) {
    throw new RangeError('abuse.lockout: delays must be >= 0 and lockoutMs, forgetAfterMs >= 1');
  }
  return options;
}
