// Control-plane statements of the admin console's People (server/admin/people.ts):
// parameters in, { text, values } out, like the other *-sql.ts files. The
// search pages by keyset over (email_normalized, id); a person's sign-ins are
// read from the session registry (successes) and the audit trail (failures
// and refusals: the unsealed inbox and the sealed log of their chain).
import type { Statement } from '../../kernel/db.ts';
import type { Role } from '../accounts/users-sql.ts';

export interface PersonRow {
  id: string;
  email: string;
  email_normalized: string;
  display_name: string;
  role: Role;
  tenant_id: string | null;
  tenant_state: string | null;
  mfa_enabled: boolean;
  mfa_required: boolean;
  created_at: Date;
  deactivated_at: Date | null;
  deactivated_by: string | null;
  deactivation_reason: string | null;
  failed_attempts: number;
  last_sign_in_at: Date | null;
}

const PERSON = `u.id, u.email, u.email_normalized, u.display_name, u.role, u.tenant_id, t.state AS tenant_state,
                u.mfa_enabled_at IS NOT NULL AS mfa_enabled, u.mfa_required, u.created_at,
                u.deactivated_at, u.deactivated_by, u.deactivation_reason, u.failed_attempts,
                (SELECT s.created_at FROM control.user_sessions s WHERE s.user_id = u.id
                  ORDER BY s.created_at DESC LIMIT 1) AS last_sign_in_at`;

export interface PeopleFilter {
  /** A LIKE pattern on email_normalized, already escaped (see people.ts likePattern). */
  emailLike: string | null;
  tenantId: string | null;
  role: Role | null;
  state: 'active' | 'deactivated' | null;
}

/** Keyset position: the (email_normalized, id) of the last person shown. */
export interface PeopleCursor {
  email: string;
  id: string;
}

/** One page of people in email order, `limit` rows after `cursor`. */
export const searchPeople = (f: PeopleFilter, cursor: PeopleCursor | null, limit: number): Statement => ({
  text: `SELECT ${PERSON}
           FROM control.users u
           LEFT JOIN control.tenants t ON t.id = u.tenant_id
          WHERE ($1::text IS NULL OR u.email_normalized LIKE $1::text ESCAPE '\\')
            AND ($2::text IS NULL OR u.tenant_id = $2::text)
            AND ($3::text IS NULL OR u.role = $3::text)
            AND ($4::text IS NULL OR ($4::text = 'active') = (u.deactivated_at IS NULL))
            AND ($5::text IS NULL OR (u.email_normalized, u.id) > ($5::text, $6::uuid))
          ORDER BY u.email_normalized, u.id
          LIMIT $7`,
  values: [f.emailLike, f.tenantId, f.role, f.state, cursor?.email ?? null, cursor?.id ?? null, limit],
});

export const personById = (id: string): Statement => ({
  text: `SELECT ${PERSON}
           FROM control.users u
           LEFT JOIN control.tenants t ON t.id = u.tenant_id
          WHERE u.id = $1`,
  values: [id],
});

export interface LockedUser {
  id: string;
  email: string;
  role: Role;
  tenant_id: string | null;
  deactivated_at: Date | null;
  mfa_enabled_at: Date | null;
  mfa_pending_secret: string | null;
}

/** The person's row, locked until the transaction ends (after activeAdminsLocked when both are taken). */
export const userForUpdate = (id: string): Statement => ({
  text: `SELECT id, email, role, tenant_id, deactivated_at, mfa_enabled_at, mfa_pending_secret
           FROM control.users WHERE id = $1 FOR NO KEY UPDATE`,
  values: [id],
});

/**
 * Every active admin, locked in id order: two changes that could each take
 * away an admin (a deactivation, a demotion) wait for each other here, and
 * the second one counts the admins the first left. Rows changed meanwhile are
 * read again by PostgreSQL when their lock is granted, so a demoted admin
 * drops out of the set. NO KEY UPDATE: signing in (a foreign key to the row)
 * is not held up.
 */
export const activeAdminsLocked = (): Statement => ({
  text: `SELECT id FROM control.users
          WHERE role = 'admin' AND deactivated_at IS NULL
          ORDER BY id FOR NO KEY UPDATE`,
  values: [],
});

export const deactivateUser = (id: string, by: string | null, reason: string | null): Statement => ({
  text: `UPDATE control.users SET deactivated_at = now(), deactivated_by = $2, deactivation_reason = $3
          WHERE id = $1 AND deactivated_at IS NULL RETURNING id`,
  values: [id, by, reason],
});

export const reactivateUser = (id: string): Statement => ({
  text: `UPDATE control.users SET deactivated_at = NULL, deactivated_by = NULL, deactivation_reason = NULL
          WHERE id = $1 AND deactivated_at IS NOT NULL RETURNING id`,
  values: [id],
});

export const setRole = (id: string, role: Role): Statement => ({
  text: 'UPDATE control.users SET role = $2 WHERE id = $1 RETURNING id',
  values: [id, role],
});

/** What the person has that works right now: live sessions and API tokens. */
export const liveCredentials = (userId: string, absoluteSeconds: number): Statement => ({
  text: `SELECT (SELECT count(*)::int FROM control.user_sessions
                  WHERE user_id = $1 AND revoked_at IS NULL
                    AND created_at > now() - make_interval(secs => $2)) AS sessions,
                (SELECT count(*)::int FROM control.api_tokens
                  WHERE user_id = $1 AND revoked_at IS NULL) AS tokens,
                (SELECT count(*)::int FROM control.recovery_codes
                  WHERE user_id = $1 AND used_at IS NULL) AS codes`,
  values: [userId, absoluteSeconds],
});

export interface SessionStartRow {
  id: string;
  created_at: Date;
  ip: string | null;
  user_agent: string | null;
  revoked_at: Date | null;
  revoked_reason: string | null;
}

/** The person's latest sign-ins (registry rows, revoked ones too), newest first. */
export const recentSessions = (userId: string, limit: number): Statement => ({
  text: `SELECT id, created_at, ip, user_agent, revoked_at, revoked_reason
           FROM control.user_sessions WHERE user_id = $1
          ORDER BY created_at DESC LIMIT $2`,
  values: [userId, limit],
});

export interface RefusalRow {
  at: Date;
  action: string;
  code: string | null;
  ip: string | null;
  user_agent: string | null;
}

/**
 * Failed and refused checks of the person's credentials not sealed yet
 * (the inbox is a short queue: the sealer empties it every few seconds).
 */
export const pendingRefusals = (userId: string, actions: readonly string[], limit: number): Statement => ({
  text: `SELECT occurred_at AS at, action, outcome_code AS code, ip, user_agent
           FROM control.audit_inbox
          WHERE resource_type = 'user' AND resource_id = $1 AND outcome = 'failure' AND action = ANY($2::text[])
          ORDER BY occurred_at DESC LIMIT $3`,
  values: [userId, actions, limit],
});

/**
 * The same from the sealed log of `chain` (the person's own chain: their
 * tenant's, or `platform`), looking at the newest `scan` entries only, so the
 * page costs the same however long the chain is.
 */
export const sealedRefusals = (
  chain: string,
  userId: string,
  actions: readonly string[],
  scan: number,
  limit: number,
): Statement => ({
  text: `SELECT l.occurred_at AS at, e.j ->> 'action' AS action, e.j -> 'outcome' ->> 'code' AS code,
                e.j -> 'where' ->> 'ip' AS ip, e.j -> 'where' ->> 'ua' AS user_agent
           FROM (SELECT occurred_at, entry FROM control.audit_log
                  WHERE chain = $1 AND entry IS NOT NULL
                  ORDER BY occurred_at DESC LIMIT $4) l
           CROSS JOIN LATERAL (SELECT convert_from(l.entry, 'UTF8')::jsonb AS j) e
          WHERE e.j -> 'resource' ->> 'type' = 'user' AND e.j -> 'resource' ->> 'id' = $2
            AND e.j -> 'outcome' ->> 'result' = 'failure' AND e.j ->> 'action' = ANY($3::text[])
          ORDER BY l.occurred_at DESC LIMIT $5`,
  values: [chain, userId, actions, scan, limit],
});
