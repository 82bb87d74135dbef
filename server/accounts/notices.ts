// What an account's owner hears at their next sign-in, there being no email:
// how many password or code checks on the account failed or were refused
// since they last signed in (one failure every 15 minutes keeps an account
// locked for good), and the security changes made to it meanwhile (two-step
// sign-in turned on or off, new recovery codes), each with where it came from.
import type { AuditBy } from '../../kernel/audit-inbox.ts';
import type { Statement } from '../../kernel/db.ts';
import { type Client, type Pool, run } from '../../kernel/db.ts';
import type { Logger } from '../../kernel/logger.ts';
import type { AttemptTally } from '../abuse/lockout.ts';
import { describeDevice } from '../sessions/registry.ts';
import * as sql from './notices-sql.ts';

export interface AccountNotice {
  /** The audit action of the change, e.g. `mfa.enable`. */
  kind: string;
  at: string;
  ip: string | null;
  device: string | null;
}

export interface SignInNotices {
  failedAttemptsSinceLastSignIn: number;
  notices: AccountNotice[];
}

/** Counts failed and refused attempts for their owner; never fails or slows the request that made them. */
export function attemptTally(pool: Pool, log: Logger): AttemptTally {
  const count = (statement: Statement) => {
    run(pool, statement).catch((err: unknown) =>
      log.warn('could not count a failed attempt for its owner', { error: (err as Error).message }),
    );
  };
  return {
    refusedSignIn: (normalizedEmail) => count(sql.countAttemptOfEmail(normalizedEmail)),
    refusedOrFailed: (userId) => count(sql.countAttemptOfUser(userId)),
  };
}

/** One failed or refused attempt on the account, for its owner's next sign-in. */
export async function countFailedAttempt(pool: Pool, userId: string): Promise<void> {
  await run(pool, sql.countAttemptOfUser(userId));
}

/** A notice of `kind` for the owner, written in the transaction of the change itself. */
export async function addNotice(client: Client, userId: string, kind: string, by: AuditBy): Promise<void> {
  await client.query(sql.insertNotice(userId, kind, by.context?.ip ?? null, by.context?.userAgent ?? null));
}

/** At a successful sign-in: what happened since the last one. Each is told once. */
export async function takeSignInNotices(pool: Pool, userId: string): Promise<SignInNotices> {
  const { rows } = await run<{ failed_attempts: number; notices: sql.NoticeRow[] }>(
    pool,
    sql.takeSignInNotices(userId),
  );
  const row = rows[0];
  return {
    failedAttemptsSinceLastSignIn: row?.failed_attempts ?? 0,
    notices: (row?.notices ?? []).map((n) => ({
      kind: n.kind,
      at: new Date(n.created_at).toISOString(),
      ip: n.ip,
      device: describeDevice(n.user_agent),
    })),
  };
}

const CHANGES: Record<string, string> = {
  'mfa.enable': 'Two-step sign-in was turned on for your account',
  'mfa.disable': 'Two-step sign-in was turned off for your account',
  'mfa.recovery_codes.regenerate':
    'New recovery codes were made for your account (the old ones stopped working)',
  'mfa.reset':
    'An administrator reset two-step sign-in for your account (your recovery codes stopped working)',
};

/** The notice of a sign-in that kept a workspace flagged as inactive (docs/LIFECYCLE.md); `at`: inactive since. */
export const INACTIVE_NOTICE = 'workspace.inactive';

export function inactivityNotice(inactiveSince: Date): AccountNotice {
  return { kind: INACTIVE_NOTICE, at: inactiveSince.toISOString(), ip: null, device: null };
}

/** The notices as sentences for a person, with `displayTime` for the dates. */
export function describeSignInNotices(found: SignInNotices, displayTime: (at: string) => string): string[] {
  const lines = found.notices.map((n) => {
    if (n.kind === INACTIVE_NOTICE)
      return `Your workspace had not been used since ${displayTime(n.at)}, and was marked inactive: unused workspaces are suspended, then deleted. Signing in has kept it, so there is nothing more to do.`;
    const where = [n.ip && `from ${n.ip}`, n.device && `(${n.device})`].filter(Boolean).join(' ');
    const what = CHANGES[n.kind] ?? `A security setting of your account was changed (${n.kind})`;
    return `${what} on ${displayTime(n.at)}${where ? ` ${where}` : ''}. If that was not you, change your password now.`;
  });
  const n = found.failedAttemptsSinceLastSignIn;
  if (n > 0) {
    const attempts = n === 1 ? '1 attempt' : `${n} attempts`;
    lines.unshift(
      `Since you last signed in, ${attempts} to sign in or to confirm your password failed or ${n === 1 ? 'was' : 'were'} refused. If that was not you, make sure your password is strong and two-step sign-in is on.`,
    );
  }
  return lines;
}
