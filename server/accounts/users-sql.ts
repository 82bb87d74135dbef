// Control-plane statements about people and their sessions: parameters in,
// { text, values } out (see tenancy/tenant-sql.ts for the same style).
import type { Statement } from '../../kernel/db.ts';

export type Role = 'user' | 'auditor' | 'admin';

export interface UserRow {
  id: string;
  email: string;
  email_normalized: string;
  display_name: string;
  password_hash: string;
  role: Role;
  tenant_id: string | null;
  mfa_secret: string | null;
  mfa_enabled_at: Date | null;
  mfa_required: boolean;
  created_at: Date;
  password_changed_at: Date;
  /** Set while an admin has the account deactivated: no sign-in, no session, no API token. */
  deactivated_at: Date | null;
}

const USER = `id, email, email_normalized, display_name, password_hash, role, tenant_id, mfa_secret,
              mfa_enabled_at, mfa_required, created_at, password_changed_at, deactivated_at`;

export const insertUser = (u: {
  email: string;
  normalized: string;
  displayName: string;
  passwordHash: string;
  role: Role;
  tenantId: string | null;
  mfaRequired?: boolean;
  /** Chosen by the caller when it must name the user before the row exists (registration's audit events). */
  id?: string;
}): Statement => ({
  text: `INSERT INTO control.users (id, email, email_normalized, display_name, password_hash, role, tenant_id, mfa_required)
         VALUES (coalesce($8::uuid, gen_random_uuid()), $1, $2, $3, $4, $5, $6, $7) RETURNING ${USER}`,
  values: [
    u.email,
    u.normalized,
    u.displayName,
    u.passwordHash,
    u.role,
    u.tenantId,
    u.mfaRequired ?? false,
    u.id ?? null,
  ],
});

export const userByEmail = (normalized: string): Statement => ({
  text: `SELECT ${USER} FROM control.users WHERE email_normalized = $1`,
  values: [normalized],
});

export const userById = (id: string): Statement => ({
  text: `SELECT ${USER} FROM control.users WHERE id = $1`,
  values: [id],
});

export const emailTaken = (normalized: string): Statement => ({
  text: 'SELECT 1 FROM control.users WHERE email_normalized = $1',
  values: [normalized],
});

export const setPasswordHash = (id: string, passwordHash: string): Statement => ({
  text: 'UPDATE control.users SET password_hash = $2, password_changed_at = now() WHERE id = $1',
  values: [id, passwordHash],
});

export const countAdmins = (): Statement => ({
  text: "SELECT count(*)::int AS n FROM control.users WHERE role = 'admin'",
  values: [],
});

// --- session registry -------------------------------------------------------

export interface SessionRow {
  id: string;
  user_id: string;
  tenant_id: string | null;
  ip: string | null;
  user_agent: string | null;
  created_at: Date;
  last_seen_at: Date;
  revoked_at: Date | null;
}

const SESSION = 'id, user_id, tenant_id, ip, user_agent, created_at, last_seen_at, revoked_at';

export const insertSession = (
  userId: string,
  tenantId: string | null,
  ip: string | null,
  userAgent: string | null,
): Statement => ({
  text: `INSERT INTO control.user_sessions (user_id, tenant_id, ip, user_agent) VALUES ($1, $2, $3, $4) RETURNING ${SESSION}`,
  values: [userId, tenantId, ip, userAgent?.slice(0, 400) ?? null],
});

/**
 * Everything a request needs to trust its session, in one round trip: the
 * registry row (not revoked, within its absolute lifetime), the user (not
 * deactivated), and the state of the user's tenant.
 */
export const sessionPrincipal = (sessionId: string, absoluteSeconds: number): Statement => ({
  text: `SELECT s.id AS session_id, s.last_seen_at, u.id AS user_id, u.email, u.display_name, u.role, u.tenant_id,
                u.mfa_enabled_at IS NOT NULL AS mfa_enabled, u.mfa_required, t.state AS tenant_state
           FROM control.user_sessions s
           JOIN control.users u ON u.id = s.user_id
           LEFT JOIN control.tenants t ON t.id = u.tenant_id
          WHERE s.id = $1 AND s.revoked_at IS NULL AND s.created_at > now() - make_interval(secs => $2)
            AND u.deactivated_at IS NULL`,
  values: [sessionId, absoluteSeconds],
});

export const touchSession = (sessionId: string, ip: string | null): Statement => ({
  text: `UPDATE control.user_sessions SET last_seen_at = now(), ip = coalesce($2, ip)
          WHERE id = $1 AND last_seen_at < now() - interval '60 seconds'`,
  values: [sessionId, ip],
});

export const activeSessionsOfUser = (userId: string, absoluteSeconds: number): Statement => ({
  text: `SELECT ${SESSION} FROM control.user_sessions
          WHERE user_id = $1 AND revoked_at IS NULL AND created_at > now() - make_interval(secs => $2)
          ORDER BY last_seen_at DESC`,
  values: [userId, absoluteSeconds],
});

export const activeSessionsOfTenant = (tenantId: string, absoluteSeconds: number): Statement => ({
  text: `SELECT s.id, s.user_id, u.email, s.tenant_id, s.ip, s.user_agent, s.created_at, s.last_seen_at
           FROM control.user_sessions s JOIN control.users u ON u.id = s.user_id
          WHERE s.tenant_id = $1 AND s.revoked_at IS NULL AND s.created_at > now() - make_interval(secs => $2)
          ORDER BY s.last_seen_at DESC`,
  values: [tenantId, absoluteSeconds],
});

/** Revokes one session; `userId` null means any owner (admins). Returns the row if it was active. */
export const revokeSession = (sessionId: string, userId: string | null, reason: string): Statement => ({
  text: `UPDATE control.user_sessions SET revoked_at = now(), revoked_reason = $3
          WHERE id = $1 AND revoked_at IS NULL AND ($2::uuid IS NULL OR user_id = $2::uuid)
          RETURNING id, user_id, tenant_id`,
  values: [sessionId, userId, reason],
});

/** Revokes every session of a user except `keep` (null: all of them). */
export const revokeSessionsOfUser = (userId: string, keep: string | null, reason: string): Statement => ({
  text: `UPDATE control.user_sessions SET revoked_at = now(), revoked_reason = $3
          WHERE user_id = $1 AND revoked_at IS NULL AND ($2::uuid IS NULL OR id <> $2::uuid) RETURNING id`,
  values: [userId, keep, reason],
});

export const tenantExists = (tenantId: string): Statement => ({
  text: 'SELECT 1 FROM control.tenants WHERE id = $1',
  values: [tenantId],
});
