// passport with the local strategy. The session keeps only ids; every request
// rebuilds the principal from the session registry in one query, so a revoked
// session, a user moved to another tenant or an expired login is refused at
// once, not after some cache expires.
import { Passport } from 'passport';
import { Strategy as LocalStrategy } from 'passport-local';
import type { Pool } from '../../kernel/db.ts';
import { authenticate } from '../accounts/accounts.ts';
import type { UserRow } from '../accounts/users-sql.ts';
import type { SessionRegistry } from '../sessions/registry.ts';
import type { Principal, SerializedLogin } from './principal.ts';

export function principalFromRow(
  row: {
    user_id: string;
    email: string;
    display_name: string;
    role: UserRow['role'];
    tenant_id: string | null;
    mfa_enabled: boolean;
    mfa_required: boolean;
  },
  via: Principal['via'],
  extra: Partial<Principal> = {},
): Principal {
  return {
    userId: row.user_id,
    email: row.email,
    displayName: row.display_name,
    role: row.role,
    tenantId: row.tenant_id,
    via,
    scope: 'write',
    mfaEnabled: row.mfa_enabled,
    mfaRequired: row.mfa_required,
    ...extra,
  };
}

export function createPassport(pool: Pool, registry: SessionRegistry): InstanceType<typeof Passport> {
  const passport = new Passport();
  // Only ever run on credentials already read by auth/sign-in-credentials.ts
  // (auth/sign-in.ts authenticateLocal): its own lookup falls back to the query string.
  passport.use(
    new LocalStrategy(
      { usernameField: 'email', passwordField: 'password', session: false },
      (email, password, done) => {
        authenticate(pool, email, password).then(
          (user) => done(null, user as unknown as Express.User),
          (err) => done(err),
        );
      },
    ),
  );
  passport.serializeUser((user, done) => {
    if (!user.sessionId) return done(new Error('a session login needs a registry id'));
    const login: SerializedLogin = { s: user.sessionId, u: user.userId, t: user.tenantId };
    done(null, login);
  });
  passport.deserializeUser((login: SerializedLogin, done) => {
    principalOf(registry, login).then(
      (principal) => done(null, principal),
      (err: unknown) => done(err),
    );
  });
  return passport;
}

/** false: passport drops the login from the session and the request is anonymous. */
async function principalOf(registry: SessionRegistry, login: SerializedLogin): Promise<Principal | false> {
  const row = await registry.principal(login?.s);
  if (!row || row.user_id !== login.u || row.tenant_id !== login.t) return false;
  if (Date.now() - new Date(row.last_seen_at).getTime() > 60_000)
    registry.touch(row.session_id, null).catch(() => {});
  return principalFromRow(row, 'session', { sessionId: row.session_id });
}
