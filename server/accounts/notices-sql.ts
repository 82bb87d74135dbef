// Control-plane statements for what an account's owner hears at their next
// sign-in (migrations/control/0008_account_notices.sql).
import type { Statement } from '../../kernel/db.ts';

export const countAttemptOfUser = (userId: string): Statement => ({
  text: 'UPDATE control.users SET failed_attempts = failed_attempts + 1 WHERE id = $1',
  values: [userId],
});

/** The same by sign-in email: no row for an address that is no account's. */
export const countAttemptOfEmail = (normalizedEmail: string): Statement => ({
  text: 'UPDATE control.users SET failed_attempts = failed_attempts + 1 WHERE email_normalized = $1',
  values: [normalizedEmail],
});

export const insertNotice = (
  userId: string,
  kind: string,
  ip: string | null,
  userAgent: string | null,
): Statement => ({
  text: 'INSERT INTO control.account_notices (user_id, kind, ip, user_agent) VALUES ($1, $2, $3, $4)',
  values: [userId, kind, ip, userAgent?.slice(0, 400) ?? null],
});

export interface NoticeRow {
  kind: string;
  ip: string | null;
  user_agent: string | null;
  created_at: string;
}

/**
 * In one statement: the failed attempts since the last sign-in (reset to 0,
 * the row locked first so a count made meanwhile is not lost) and the
 * notices not shown yet (deleted).
 */
export const takeSignInNotices = (userId: string): Statement => ({
  text: `WITH before AS (
           SELECT id, failed_attempts FROM control.users WHERE id = $1 FOR UPDATE
         ), reset AS (
           UPDATE control.users u SET failed_attempts = 0 FROM before
            WHERE u.id = before.id AND before.failed_attempts > 0
         ), shown AS (
           DELETE FROM control.account_notices WHERE user_id = $1
           RETURNING kind, ip, user_agent, created_at
         )
         SELECT coalesce((SELECT failed_attempts FROM before), 0) AS failed_attempts,
                coalesce((SELECT json_agg(shown ORDER BY created_at) FROM shown), '[]'::json) AS notices`,
  values: [userId],
});
