// The admin console's People (docs/ADMIN.md): find a person by email, tenant,
// role or state; see their recent sign-ins and refused attempts; deactivate
// and reactivate them, end their sessions, reset their two-step sign-in, and
// change their role between auditor and admin. Every change is one short
// transaction with its audit events, on the person's own chain (their
// tenant's, or the platform's for auditors and admins), the admin as actor.
//
// What the data model allows (migrations/control/0002_accounts.sql): a `user`
// owns exactly one workspace and auditors and admins own none, so a workspace
// owner's role never changes (their workspace would be left without an owner,
// or an admin would own one); auditor <-> admin is the role change there is.
//
// The last active admin can be neither deactivated nor demoted: both changes
// first lock every active admin's row (in id order), so two of them racing
// (each admin demoting the other) are serialised, and the second one counts
// the admins the first left.
import { type AuditBy, record } from '../../kernel/audit-inbox.ts';
import { type Client, type Pool, retryingTransaction, run } from '../../kernel/db.ts';
import { InvalidInputError } from '../../kernel/errors.ts';
import { isTenantId } from '../../kernel/identifiers.ts';
import { revokeAllTokensInTransaction } from '../accounts/api-tokens.ts';
import * as mfaSql from '../accounts/mfa-sql.ts';
import { addNotice } from '../accounts/notices.ts';
import { type Role, revokeSessionsOfUser } from '../accounts/users-sql.ts';
import { ConflictError, NotFoundError } from '../app-errors.ts';
import { describeDevice, isUuid } from '../sessions/registry.ts';
import * as sql from './people-sql.ts';

export const ROLES: readonly Role[] = ['user', 'auditor', 'admin'];
export const STATES = ['active', 'deactivated'] as const;
export type PersonState = (typeof STATES)[number];
export const REASON_MAX = 500;
export const PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 200;

/** How many of the chain's newest sealed entries are looked through for a person's refused attempts. */
const SCAN_SEALED = 5000;
/** The audit actions that are a check of someone's password or code that failed or was refused. */
const REFUSALS = ['auth.login', 'admin.reauth', 'auth.lockout'] as const;

export interface PeopleQuery {
  /** Part of an email address (case-insensitive). */
  q?: string | undefined;
  /** `contains` (default) or `prefix`. */
  match?: 'contains' | 'prefix' | undefined;
  tenant?: string | undefined;
  role?: Role | undefined;
  state?: PersonState | undefined;
  cursor?: string | undefined;
  limit?: number | undefined;
}

export interface PersonView {
  id: string;
  email: string;
  displayName: string;
  role: Role;
  tenantId: string | null;
  tenantState: string | null;
  state: PersonState;
  mfaEnabled: boolean;
  mfaRequired: boolean;
  createdAt: string;
  deactivatedAt: string | null;
  deactivatedBy: string | null;
  deactivationReason: string | null;
  lastSignInAt: string | null;
  /** Failed or refused checks of the password or codes since the last successful sign-in. */
  failedAttemptsSinceSignIn: number;
}

export interface PeoplePage {
  people: PersonView[];
  nextCursor: string | null;
}

export interface SignInEvent {
  at: string;
  outcome: 'success' | 'failure';
  /** auth.login, admin.reauth, ... */
  action: string;
  /** How it ended: `password`, `totp`, ... is not kept per session; for failures the reason (wrong_password, ...). */
  code: string | null;
  ip: string | null;
  device: string | null;
  /** For a success: whether the session is still live, or why it ended. */
  ended: string | null;
}

export interface PersonDetail {
  person: PersonView;
  liveSessions: number;
  liveTokens: number;
  unusedRecoveryCodes: number;
  signIns: SignInEvent[];
  refusals: SignInEvent[];
}

// --- reading ----------------------------------------------------------------------

/** `%` and `_` (and the escape itself) match literally. */
export function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}

export function likePattern(q: string, match: 'contains' | 'prefix' = 'contains'): string {
  const escaped = escapeLike(q.trim().toLowerCase());
  return match === 'prefix' ? `${escaped}%` : `%${escaped}%`;
}

export function encodeCursor(c: sql.PeopleCursor): string {
  return Buffer.from(JSON.stringify([c.email, c.id]), 'utf8').toString('base64url');
}

/** An opaque cursor back to its position; anything else is a 400. */
export function decodeCursor(raw: string | undefined): sql.PeopleCursor | null {
  if (raw === undefined || raw === '') return null;
  try {
    if (raw.length > 800 || !/^[A-Za-z0-9_-]+$/.test(raw)) throw new Error('shape');
    const value = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as unknown;
    if (
      Array.isArray(value) &&
      value.length === 2 &&
      typeof value[0] === 'string' &&
      value[0].length <= 254 &&
      isUuid(value[1])
    )
      return { email: value[0], id: value[1] };
  } catch {
    // falls through to the refusal
  }
  throw new InvalidInputError('cursor is not one this server gave out: start again from the first page');
}

export async function searchPeople(pool: Pool, query: PeopleQuery): Promise<PeoplePage> {
  const tenant = query.tenant?.trim() || null;
  if (tenant !== null && !isTenantId(tenant))
    throw new InvalidInputError('tenant must be a tenant id: 12 lowercase letters and digits');
  const limit = query.limit ?? PAGE_SIZE;
  const q = query.q?.trim() ?? '';
  const filter: sql.PeopleFilter = {
    emailLike: q ? likePattern(q, query.match) : null,
    tenantId: tenant,
    role: query.role ?? null,
    state: query.state ?? null,
  };
  const { rows } = await run<sql.PersonRow>(
    pool,
    sql.searchPeople(filter, decodeCursor(query.cursor), limit + 1),
  );
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return {
    people: page.map(viewOf),
    nextCursor:
      rows.length > limit && last ? encodeCursor({ email: last.email_normalized, id: last.id }) : null,
  };
}

/** The person with this id; 404 for anything else (also for what is not an id). */
export async function findPerson(pool: Pool, id: string): Promise<PersonView> {
  const row = isUuid(id) ? (await run<sql.PersonRow>(pool, sql.personById(id))).rows[0] : undefined;
  if (!row) throw new NotFoundError('No such person.');
  return viewOf(row);
}

/** The person, what works for them right now, and their recent sign-ins and refused attempts. */
export async function personDetail(
  pool: Pool,
  id: string,
  absoluteSessionSeconds: number,
  limit = 20,
): Promise<PersonDetail> {
  const person = await findPerson(pool, id);
  const [live, sessions, pending, sealed] = await Promise.all([
    run<{ sessions: number; tokens: number; codes: number }>(
      pool,
      sql.liveCredentials(id, absoluteSessionSeconds),
    ),
    run<sql.SessionStartRow>(pool, sql.recentSessions(id, limit)),
    run<sql.RefusalRow>(pool, sql.pendingRefusals(id, REFUSALS, limit)),
    run<sql.RefusalRow>(
      pool,
      sql.sealedRefusals(
        person.tenantId ? `t_${person.tenantId}` : 'platform',
        id,
        REFUSALS,
        SCAN_SEALED,
        limit,
      ),
    ),
  ]);
  const counts = live.rows[0] ?? { sessions: 0, tokens: 0, codes: 0 };
  const expiredBefore = Date.now() - absoluteSessionSeconds * 1000;
  const signIns: SignInEvent[] = sessions.rows.map((s) => ({
    at: new Date(s.created_at).toISOString(),
    outcome: 'success',
    action: 'auth.login',
    code: null,
    ip: s.ip,
    device: describeDevice(s.user_agent),
    ended: s.revoked_at
      ? (s.revoked_reason ?? 'ended')
      : new Date(s.created_at).getTime() < expiredBefore
        ? 'expired'
        : null,
  }));
  const refusals: SignInEvent[] = [...pending.rows, ...sealed.rows]
    .map((r) => ({
      at: new Date(r.at).toISOString(),
      outcome: 'failure' as const,
      action: r.action,
      code: r.code,
      ip: r.ip,
      device: describeDevice(r.user_agent),
      ended: null,
    }))
    .sort((a, b) => b.at.localeCompare(a.at))
    .slice(0, limit);
  return {
    person,
    liveSessions: counts.sessions,
    liveTokens: counts.tokens,
    unusedRecoveryCodes: counts.codes,
    signIns,
    refusals,
  };
}

function viewOf(r: sql.PersonRow): PersonView {
  const iso = (d: Date | null) => (d ? new Date(d).toISOString() : null);
  return {
    id: r.id,
    email: r.email,
    displayName: r.display_name,
    role: r.role,
    tenantId: r.tenant_id,
    tenantState: r.tenant_state,
    state: r.deactivated_at ? 'deactivated' : 'active',
    mfaEnabled: r.mfa_enabled,
    mfaRequired: r.mfa_required,
    createdAt: new Date(r.created_at).toISOString(),
    deactivatedAt: iso(r.deactivated_at),
    deactivatedBy: r.deactivated_by,
    deactivationReason: r.deactivation_reason,
    lastSignInAt: iso(r.last_sign_in_at),
    failedAttemptsSinceSignIn: r.failed_attempts,
  };
}

// --- input ------------------------------------------------------------------------

/**
 * An admin's reason: trimmed, 1 to 500 characters on one line (it is stored in
 * the audit trail as written, and shown on the person's page). `required`
 * false: empty means none.
 */
export function checkReason(raw: unknown, required: boolean): string | null {
  if (raw === undefined || raw === null || raw === '') {
    if (required) throw new InvalidInputError('a reason is required: say in one line why');
    return null;
  }
  if (typeof raw !== 'string') throw new InvalidInputError('the reason must be text');
  const reason = raw.trim();
  if (reason === '') {
    if (required) throw new InvalidInputError('a reason is required: say in one line why');
    return null;
  }
  if ([...reason].length > REASON_MAX)
    throw new InvalidInputError(`the reason can be at most ${REASON_MAX} characters`);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: one line of text, no control characters
  if (/[\u0000-\u001f\u007f\u2028\u2029]/.test(reason))
    throw new InvalidInputError('the reason must be one line, without control characters');
  return reason;
}

export function checkRole(raw: unknown): Role {
  if (typeof raw === 'string' && (ROLES as readonly string[]).includes(raw)) return raw as Role;
  throw new InvalidInputError('role must be one of user, auditor, admin');
}

// --- changes ----------------------------------------------------------------------

/** Who is acting (the admin's user id, for "not yourself") and how the trail names them. */
export interface AdminActor {
  userId: string;
  by: AuditBy;
}

export interface Deactivated {
  sessionsEnded: number;
  tokensEnded: number;
}

/**
 * Deactivates the person: sign-in refused from now on, and every session and
 * API token ended in the same transaction (a session stops at its next
 * request; the per-request lookups refuse a deactivated account as well).
 * Not oneself, and never the last active admin.
 */
export async function deactivatePerson(
  pool: Pool,
  actor: AdminActor,
  id: string,
  rawReason: unknown,
): Promise<Deactivated> {
  const reason = checkReason(rawReason, false);
  const person = await findPerson(pool, id);
  if (id === actor.userId)
    throw new ConflictError('You cannot deactivate your own account. Ask another admin to do it.');
  return retryingTransaction(pool, async (client) => {
    const admins = await lockActiveAdmins(client);
    const user = await lockUser(client, person.id);
    if (user.deactivated_at) throw new ConflictError(`${user.email} is already deactivated.`);
    if (user.role === 'admin' && admins.length <= 1 && admins.includes(user.id))
      throw new ConflictError(
        `${user.email} is the last active admin and cannot be deactivated. Make another admin first.`,
      );
    await run(client, sql.deactivateUser(user.id, actor.userId, reason));
    const ended = await endAll(client, actor.by, user, 'account deactivated');
    const tokensEnded = await revokeAllTokensInTransaction(
      client,
      user.id,
      'account deactivated',
      actor.by,
      user.tenant_id,
    );
    await record(client, actor.by, {
      tenantId: user.tenant_id,
      action: 'user.deactivate',
      resource: { type: 'user', id: user.id },
      outcome: 'success',
      // Not `tokensEnded`: the audit writer redacts keys that look like secrets.
      details: {
        ...(reason ? { reason } : {}),
        role: user.role,
        sessionsEnded: ended,
        apiCredentialsEnded: tokensEnded,
      },
    });
    return { sessionsEnded: ended, tokensEnded };
  });
}

/** Lets a deactivated person sign in again (their old sessions and tokens stay ended). */
export async function reactivatePerson(pool: Pool, actor: AdminActor, id: string): Promise<void> {
  const person = await findPerson(pool, id);
  await retryingTransaction(pool, async (client) => {
    const user = await lockUser(client, person.id);
    if (!user.deactivated_at) throw new ConflictError(`${user.email} is not deactivated.`);
    await run(client, sql.reactivateUser(user.id));
    await record(client, actor.by, {
      tenantId: user.tenant_id,
      action: 'user.reactivate',
      resource: { type: 'user', id: user.id },
      outcome: 'success',
      details: { role: user.role, deactivatedAt: new Date(user.deactivated_at).toISOString() },
    });
  });
}

/** Ends every session of the person (their API tokens keep working: deactivate to stop those too). */
export async function endSessionsOfPerson(pool: Pool, actor: AdminActor, id: string): Promise<number> {
  const person = await findPerson(pool, id);
  return retryingTransaction(pool, async (client) => {
    const user = await lockUser(client, person.id);
    return endAll(client, actor.by, user, 'ended by an admin');
  });
}

/**
 * Turns the person's two-step sign-in off (secret, pending enrolment and
 * recovery codes gone), for someone who lost their phone and their codes: the
 * reason is required and kept in the trail (`user.mfa.reset`), and the owner
 * hears of it at their next sign-in. An account that must use MFA is asked to
 * set it up again at that sign-in. Their sessions stay.
 */
export async function resetMfaOfPerson(
  pool: Pool,
  actor: AdminActor,
  id: string,
  rawReason: unknown,
): Promise<{ codesDeleted: number }> {
  const reason = checkReason(rawReason, true) as string;
  const person = await findPerson(pool, id);
  return retryingTransaction(pool, async (client) => {
    const user = await lockUser(client, person.id);
    if (!user.mfa_enabled_at && !user.mfa_pending_secret)
      throw new ConflictError(`${user.email} has no two-step sign-in to reset.`);
    await run(client, mfaSql.deactivateMfa(user.id));
    const codesDeleted = (await run(client, mfaSql.deleteRecoveryCodes(user.id))).rowCount ?? 0;
    await record(client, actor.by, {
      tenantId: user.tenant_id,
      action: 'user.mfa.reset',
      resource: { type: 'user', id: user.id },
      outcome: 'success',
      details: { reason, wasEnabled: user.mfa_enabled_at !== null, codesDeleted },
    });
    await addNotice(client, user.id, 'mfa.reset', actor.by);
    return { codesDeleted };
  });
}

export interface RoleChanged {
  from: Role;
  to: Role;
  changed: boolean;
}

/**
 * auditor <-> admin. A workspace owner (`user`) keeps their role and
 * workspace, and an auditor or admin cannot become an owner (they have no
 * workspace): both are a 409 that says so. The last active admin cannot be
 * demoted. Their sessions pick the new role up at their next request (the
 * principal is read from the database on every request, nothing is cached).
 */
export async function changeRoleOfPerson(
  pool: Pool,
  actor: AdminActor,
  id: string,
  rawRole: unknown,
): Promise<RoleChanged> {
  const to = checkRole(rawRole);
  const person = await findPerson(pool, id);
  return retryingTransaction(pool, async (client) => {
    const admins = await lockActiveAdmins(client);
    const user = await lockUser(client, person.id);
    if (user.role === to) return { from: user.role, to, changed: false };
    if (user.role === 'user')
      throw new ConflictError(
        `${user.email} owns a workspace, and a workspace owner's role cannot change (auditors and admins own none). Create a separate ${to} account for them instead (enclave users create-admin).`,
      );
    if (to === 'user')
      throw new ConflictError(
        `${user.email} is an ${user.role} and owns no workspace, so they cannot become a user. They can register a workspace with another email address.`,
      );
    if (user.role === 'admin' && admins.length <= 1 && admins.includes(user.id))
      throw new ConflictError(
        `${user.email} is the last active admin and cannot be demoted. Make another admin first.`,
      );
    await run(client, sql.setRole(user.id, to));
    await record(client, actor.by, {
      tenantId: user.tenant_id,
      action: 'user.role.change',
      resource: { type: 'user', id: user.id },
      outcome: 'success',
      details: { from: user.role, to, self: user.id === actor.userId },
    });
    return { from: user.role, to, changed: true };
  });
}

// --- pieces -----------------------------------------------------------------------

async function lockActiveAdmins(client: Client): Promise<string[]> {
  return (await run<{ id: string }>(client, sql.activeAdminsLocked())).rows.map((r) => r.id);
}

async function lockUser(client: Client, id: string): Promise<sql.LockedUser> {
  const user = (await run<sql.LockedUser>(client, sql.userForUpdate(id))).rows[0];
  if (!user) throw new NotFoundError('No such person.');
  return user;
}

/** Every live session of `user` ended, with `session.revoke_all` on their chain. */
async function endAll(client: Client, by: AuditBy, user: sql.LockedUser, reason: string): Promise<number> {
  const ended = (await run(client, revokeSessionsOfUser(user.id, null, reason))).rowCount ?? 0;
  await record(client, by, {
    tenantId: user.tenant_id,
    action: 'session.revoke_all',
    resource: { type: 'user', id: user.id },
    outcome: 'success',
    details: { reason, sessionsEnded: ended },
  });
  return ended;
}
