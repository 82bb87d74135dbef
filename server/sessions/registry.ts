// The session registry (control.user_sessions): one row per sign-in, read on
// every request. It is what makes revocation immediate: a revoked row stops its
// session on the very next request, whatever the session store still holds.
import { type Pool, run } from '../../tenancy/db.ts';
import * as sql from '../accounts/users-sql.ts';
import { NotFoundError } from '../errors.ts';

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

  async open(
    userId: string,
    tenantId: string | null,
    ip: string | null,
    userAgent: string | null,
  ): Promise<string> {
    const { rows } = await run<sql.SessionRow>(
      this.#pool,
      sql.insertSession(userId, tenantId, ip, userAgent),
    );
    return (rows[0] as sql.SessionRow).id;
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

  async listForTenant(tenantId: string) {
    return (await run(this.#pool, sql.activeSessionsOfTenant(tenantId, this.#absoluteSeconds))).rows;
  }

  /** Ends one session of `userId` (or of anyone when userId is null, for admins); 404 if there is none. */
  async revoke(sessionId: string, userId: string | null, reason: string): Promise<void> {
    if (!isUuid(sessionId)) throw new NotFoundError('No such session.');
    const { rowCount } = await run(this.#pool, sql.revokeSession(sessionId, userId, reason));
    if (!rowCount) throw new NotFoundError('No such session.');
  }

  async revokeAllOfUser(userId: string, keep: string | null, reason: string): Promise<number> {
    return (await run(this.#pool, sql.revokeSessionsOfUser(userId, keep, reason))).rowCount ?? 0;
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
