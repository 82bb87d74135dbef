// The session registry (control.user_sessions): one row per sign-in, read on
// every request. It is what makes revocation immediate: a revoked row stops its
// session on the very next request, whatever the session store still holds.
// Opening and ending sessions write their audit events (`auth.login`,
// `auth.logout`, `session.revoke`, `session.revoke_all`) in the same
// transaction as the registry row.
import { type AuditBy, record } from '../../kernel/audit-inbox.ts';
import { type Client, type Pool, run, transaction } from '../../kernel/db.ts';
import * as sql from '../accounts/users-sql.ts';
import { NotFoundError } from '../app-errors.ts';

export interface SessionView {
  id: string;
  current: boolean;
  ip: string | null;
  device: string | null;
  createdAt: Date;
  lastSeenAt: Date;
}

export class SessionRegistry {
  readonly #pool: Pool;
  readonly #absoluteSeconds: number;

  constructor(pool: Pool, absoluteSeconds: number) {
    this.#pool = pool;
    this.#absoluteSeconds = absoluteSeconds;
  }

  /** A new session: its row and the `auth.login` event (with `details`, e.g. how the person signed in). */
  async open(
    userId: string,
    tenantId: string | null,
    ip: string | null,
    userAgent: string | null,
    by: AuditBy,
    details: Record<string, unknown> = {},
  ): Promise<string> {
    return transaction(this.#pool, async (client) => {
      const { rows } = await run<sql.SessionRow>(client, sql.insertSession(userId, tenantId, ip, userAgent));
      const id = (rows[0] as sql.SessionRow).id;
      await record(client, by, {
        tenantId,
        action: 'auth.login',
        resource: { type: 'session', id },
        outcome: 'success',
        details,
      });
      return id;
    });
  }

  /** The principal of a live session, or undefined if it was revoked, expired or never existed. */
  async principal(sessionId: string) {
    if (!isUuid(sessionId)) return undefined;
    const { rows } = await run<PrincipalRow>(
      this.#pool,
      sql.sessionPrincipal(sessionId, this.#absoluteSeconds),
    );
    return rows[0];
  }

  /** Throttled in SQL: writes at most once a minute per session. */
  async touch(sessionId: string, ip: string | null): Promise<void> {
    await run(this.#pool, sql.touchSession(sessionId, ip));
  }

  async list(userId: string, currentId: string | undefined): Promise<SessionView[]> {
    const { rows } = await run<sql.SessionRow>(
      this.#pool,
      sql.activeSessionsOfUser(userId, this.#absoluteSeconds),
    );
    return rows.map((r) => ({
      id: r.id,
      current: r.id === currentId,
      ip: r.ip,
      device: describeDevice(r.user_agent),
      createdAt: r.created_at,
      lastSeenAt: r.last_seen_at,
    }));
  }

  /** An admin's look at a tenant's sessions: recorded (`admin.sessions.list`) in the tenant's chain. */
  async listForTenant(tenantId: string, by: AuditBy) {
    return transaction(this.#pool, async (client) => {
      const { rows } = await run(client, sql.activeSessionsOfTenant(tenantId, this.#absoluteSeconds));
      // A tenant id that names no tenant goes to the platform chain: probing must not make chains.
      const known = (await run(client, sql.tenantExists(tenantId))).rowCount;
      await record(client, by, {
        tenantId: known ? tenantId : null,
        action: 'admin.sessions.list',
        resource: { type: 'tenant', id: tenantId },
        outcome: 'success',
        details: { sessions: rows.length },
      });
      return rows;
    });
  }

  /**
   * Ends one session of `userId` (or of anyone when userId is null, for
   * admins); 404 if there is none. `action` is `auth.logout` for signing out,
   * `session.revoke` otherwise; the event goes to the session owner's chain.
   */
  async revoke(
    sessionId: string,
    userId: string | null,
    reason: string,
    by: AuditBy,
    action: 'session.revoke' | 'auth.logout' = 'session.revoke',
  ): Promise<void> {
    if (!isUuid(sessionId)) throw new NotFoundError('No such session.');
    await transaction(this.#pool, async (client) => {
      const { rows } = await run<{ user_id: string; tenant_id: string | null }>(
        client,
        sql.revokeSession(sessionId, userId, reason),
      );
      const row = rows[0];
      if (!row) throw new NotFoundError('No such session.');
      await record(client, by, {
        tenantId: row.tenant_id,
        action,
        resource: { type: 'session', id: sessionId },
        outcome: 'success',
        details: { reason, owner: row.user_id },
      });
    });
  }

  /**
   * Ends every session of `userId` but `keep`, in the caller's transaction:
   * sign-out-everywhere.ts ends the API tokens in the same one.
   */
  async revokeAllOfUserInTransaction(
    client: Client,
    userId: string,
    keep: string | null,
    reason: string,
    by: AuditBy,
  ): Promise<number> {
    const ended = (await run(client, sql.revokeSessionsOfUser(userId, keep, reason))).rowCount ?? 0;
    await record(client, by, {
      action: 'session.revoke_all',
      resource: { type: 'user', id: userId },
      outcome: 'success',
      details: { reason, sessionsEnded: ended },
    });
    return ended;
  }
}

export interface PrincipalRow {
  session_id: string;
  last_seen_at: Date;
  user_id: string;
  email: string;
  display_name: string;
  role: sql.Role;
  tenant_id: string | null;
  mfa_enabled: boolean;
  mfa_required: boolean;
  tenant_state: string | null;
}

export function isUuid(value: unknown): value is string {
  return (
    typeof value === 'string' && /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value)
  );
}

/** A short, human description of a user agent ("Firefox on Linux"), not a fingerprint. */
export function describeDevice(userAgent: string | null): string | null {
  if (!userAgent) return null;
  const browser = /Edg\//.test(userAgent)
    ? 'Edge'
    : /Firefox\//.test(userAgent)
      ? 'Firefox'
      : /Chrome\//.test(userAgent)
        ? 'Chrome'
        : /Safari\//.test(userAgent)
          ? 'Safari'
          : /curl\//.test(userAgent)
            ? 'curl'
            : undefined;
  const os = /Windows/.test(userAgent)
    ? 'Windows'
    : /Android/.test(userAgent)
      ? 'Android'
      : /iPhone|iPad/.test(userAgent)
        ? 'iOS'
        : /Mac OS X/.test(userAgent)
          ? 'macOS'
          : /Linux/.test(userAgent)
            ? 'Linux'
            : undefined;
  if (browser && os) return `${browser} on ${os}`;
  return browser ?? os ?? userAgent.slice(0, 60);
}
