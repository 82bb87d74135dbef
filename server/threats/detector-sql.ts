// The statements of the threat flags (control.threat_flags, migrations/control/0015).
import type { Statement } from '../../kernel/db.ts';
import type { Severity } from './rules.ts';

export interface FlagRow {
  id: string;
  rule: string;
  severity: Severity;
  subject: string;
  first_seen: Date;
  last_seen: Date;
  count: string;
  details: Record<string, unknown>;
  acknowledged_at: Date | null;
  acknowledged_by: string | null;
  acknowledged_by_email: string | null;
  ack_note: string | null;
}

const COLUMNS = `f.id::text AS id, f.rule, f.severity, f.subject, f.first_seen, f.last_seen, f.count::text AS count,
  f.details, f.acknowledged_at, f.acknowledged_by, u.email AS acknowledged_by_email, f.ack_note`;

/**
 * Opens a flag, or bumps the open one of this rule and subject: `count` more
 * hits, last seen now, details merged. `opened` tells which.
 */
export const upsertFlag = (
  rule: string,
  severity: Severity,
  subject: string,
  count: number,
  details: Record<string, unknown>,
): Statement => ({
  text: `INSERT INTO control.threat_flags AS f (rule, severity, subject, count, details)
         VALUES ($1, $2, $3, $4, $5::jsonb)
         ON CONFLICT (rule, subject) WHERE acknowledged_at IS NULL DO UPDATE
            SET count = f.count + EXCLUDED.count,
                last_seen = greatest(f.last_seen, now()),
                details = f.details || EXCLUDED.details
         RETURNING f.id::text AS id, f.count::text AS count, (f.xmax = 0) AS opened`,
  values: [rule, severity, subject, count, JSON.stringify(details)],
});

export interface ListFilter {
  state: 'open' | 'acknowledged' | 'all';
  severity: Severity | null;
  /** Flags older than this id (keyset, newest first). */
  before: string | null;
  limit: number;
}

/** Newest first by id (stable under bumps), one more than the page to know if there is a next one. */
export const listFlags = (f: ListFilter): Statement => ({
  text: `SELECT ${COLUMNS}
           FROM control.threat_flags f
           LEFT JOIN control.users u ON u.id = f.acknowledged_by
          WHERE ($1 = 'all' OR ($1 = 'open') = (f.acknowledged_at IS NULL))
            AND ($2::text IS NULL OR f.severity = $2)
            AND ($3::bigint IS NULL OR f.id < $3::bigint)
          ORDER BY f.id DESC
          LIMIT $4`,
  values: [f.state, f.severity, f.before, f.limit + 1],
});

export const flagById = (id: string): Statement => ({
  text: `SELECT ${COLUMNS} FROM control.threat_flags f
           LEFT JOIN control.users u ON u.id = f.acknowledged_by
          WHERE f.id = $1::bigint`,
  values: [id],
});

/** Acknowledges an open flag; no row when it is not open (already acknowledged). */
export const acknowledgeFlag = (id: string, userId: string, note: string): Statement => ({
  text: `UPDATE control.threat_flags
            SET acknowledged_at = now(), acknowledged_by = $2, ack_note = $3
          WHERE id = $1::bigint AND acknowledged_at IS NULL
          RETURNING id::text AS id, rule, severity, subject, count::text AS count`,
  values: [id, userId, note],
});

/** Open flags by severity (the page's summary). */
export const openBySeverity = (): Statement => ({
  text: `SELECT severity, count(*)::int AS n FROM control.threat_flags
          WHERE acknowledged_at IS NULL GROUP BY severity`,
  values: [],
});

export interface SignInHistoryRow {
  before: number;
  same_address: number;
}

/**
 * A privileged account's sign-ins before this one (`except`): how many at all,
 * and how many from this address within `days` (user_sessions_user_created_idx).
 */
export const signInHistory = (userId: string, ip: string, except: string, days: number): Statement => ({
  text: `SELECT count(*)::int AS before,
                count(*) FILTER (WHERE ip = $2 AND created_at > now() - make_interval(days => $4))::int
                  AS same_address
           FROM control.user_sessions
          WHERE user_id = $1 AND id <> $3::uuid`,
  values: [userId, ip, except, days],
});

/** The account with this normalised email, for a lockout's subject. */
export const accountByEmail = (normalized: string): Statement => ({
  text: 'SELECT id FROM control.users WHERE email_normalized = $1',
  values: [normalized],
});
