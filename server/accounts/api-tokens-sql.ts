// Control-plane statements about API tokens: parameters in, { text, values }
// out (the style of users-sql.ts). The secret itself never reaches SQL: only
// its SHA-256, and a token is found by that hash through the unique index.
import type { Statement } from '../../kernel/db.ts';
import type { Role } from './users-sql.ts';

export type TokenScope = 'read' | 'write';

export interface ApiTokenRow {
  id: string;
  name: string;
  scope: TokenScope;
  created_at: Date;
  last_used_at: Date | null;
}

const TOKEN = 'id, name, scope, created_at, last_used_at';

/**
 * Inserts a token unless the user already has `limit` live ones; no row back
 * means the limit was reached. (Two creations racing may both pass: the limit
 * is a guard against runaway scripts, not an exact quota.)
 */
export const insertToken = (t: {
  userId: string;
  name: string;
  scope: TokenScope;
  hash: Buffer;
  limit: number;
}): Statement => ({
  text: `INSERT INTO control.api_tokens (user_id, name, token_hash, scope)
         SELECT $1, $2, $3, $4
          WHERE (SELECT count(*) FROM control.api_tokens WHERE user_id = $1 AND revoked_at IS NULL) < $5
         RETURNING ${TOKEN}`,
  values: [t.userId, t.name, t.hash, t.scope, t.limit],
});

export const liveTokensOfUser = (userId: string): Statement => ({
  text: `SELECT ${TOKEN} FROM control.api_tokens
          WHERE user_id = $1 AND revoked_at IS NULL
          ORDER BY created_at DESC, id`,
  values: [userId],
});

/** Revokes one live token of `userId`; no row back means there is no such token of theirs. */
export const revokeToken = (tokenId: string, userId: string): Statement => ({
  text: `UPDATE control.api_tokens SET revoked_at = now()
          WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL RETURNING id`,
  values: [tokenId, userId],
});

/** Revokes every live token of `userId`, one row back per token ended. */
export const revokeTokensOfUser = (userId: string): Statement => ({
  text: `UPDATE control.api_tokens SET revoked_at = now()
          WHERE user_id = $1 AND revoked_at IS NULL RETURNING id`,
  values: [userId],
});

export interface TokenPrincipalRow {
  token_id: string;
  scope: TokenScope;
  user_id: string;
  email: string;
  display_name: string;
  role: Role;
  tenant_id: string;
  mfa_enabled: boolean;
  mfa_required: boolean;
}

/**
 * Everything a request needs to trust a token, in one round trip: the live
 * token and its owner, who must be a workspace owner (a token of anyone else
 * is refused here too, not only at creation) whose account is not deactivated. The same statement records the
 * use, at most once a minute per token: the WHERE clause makes concurrent
 * requests (on any number of instances) write once, and a data-modifying CTE
 * runs whether or not the outer query reads it.
 */
export const tokenPrincipal = (hash: Buffer): Statement => ({
  text: `WITH t AS (
           SELECT a.id AS token_id, a.scope, a.last_used_at, u.id AS user_id, u.email, u.display_name, u.role,
                  u.tenant_id, u.mfa_enabled_at IS NOT NULL AS mfa_enabled, u.mfa_required
             FROM control.api_tokens a
             JOIN control.users u ON u.id = a.user_id
            WHERE a.token_hash = $1 AND a.revoked_at IS NULL AND u.role = 'user' AND u.tenant_id IS NOT NULL
              AND u.deactivated_at IS NULL
         ), touched AS (
           UPDATE control.api_tokens a SET last_used_at = now()
             FROM t
            WHERE a.id = t.token_id AND (a.last_used_at IS NULL OR a.last_used_at < now() - interval '60 seconds')
           RETURNING a.id
         )
         SELECT token_id, scope, user_id, email, display_name, role, tenant_id, mfa_enabled, mfa_required FROM t`,
  values: [hash],
});
