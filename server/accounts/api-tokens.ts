// API tokens for scripts. A token is `enc_` plus 32 random bytes (base64url):
// the prefix makes a leaked one easy to recognise (secret scanners, logs), the
// 256 random bits make guessing hopeless. The secret is shown once, at
// creation; the database keeps only its SHA-256. A fast hash is right here:
// unlike a password, the input has full entropy, so there is nothing for a
// slow hash to protect, and every API request pays for the lookup.
import { createHash, randomBytes } from 'node:crypto';
import { type AuditBy, record, SYSTEM } from '../../kernel/audit-inbox.ts';
import { type Client, type Pool, run, transaction } from '../../kernel/db.ts';
import { InvalidInputError } from '../../kernel/errors.ts';
import { ConflictError, NotFoundError } from '../app-errors.ts';
import { isUuid } from '../sessions/registry.ts';
import * as sql from './api-tokens-sql.ts';
import type { Role } from './users-sql.ts';

export type TokenScope = sql.TokenScope;

export const TOKEN_PREFIX = 'enc_';
/** What a well-formed token looks like: checked before any database work. */
export const TOKEN_PATTERN = /^enc_[A-Za-z0-9_-]{43}$/;
export const TOKEN_NAME_MAX = 100;
/** Live tokens per person: generous for real use, a stop for a script creating them in a loop. */
export const TOKENS_PER_USER = 100;

export interface TokenView {
  id: string;
  name: string;
  scope: TokenScope;
  createdAt: Date;
  lastUsedAt: Date | null;
}

export interface CreatedToken {
  token: TokenView;
  /** The only time the secret exists outside the caller's hands. */
  secret: string;
}

/** Who a valid token speaks for (the bearer middleware makes a Principal of it). */
export interface TokenPrincipal {
  tokenId: string;
  scope: TokenScope;
  userId: string;
  email: string;
  displayName: string;
  role: Role;
  tenantId: string;
  mfaEnabled: boolean;
  mfaRequired: boolean;
}

export function hashToken(secret: string): Buffer {
  return createHash('sha256').update(secret, 'utf8').digest();
}

export function newSecret(): string {
  return `${TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
}

/** `{ name, scope }` and nothing else: name 1 to 100 characters (trimmed, no control characters). */
export function checkTokenInput(body: unknown): { name: string; scope: TokenScope } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new InvalidInputError('send a JSON object { "name": ..., "scope": "read" | "write" }');
  }
  const unknown = Object.keys(body).filter((k) => k !== 'name' && k !== 'scope');
  if (unknown.length) {
    throw new InvalidInputError(
      `unknown field ${unknown.map((k) => JSON.stringify(k)).join(', ')}: only name and scope are accepted`,
    );
  }
  const { name, scope } = body as { name?: unknown; scope?: unknown };
  if (typeof name !== 'string' || name.trim() === '') throw new InvalidInputError('a token name is required');
  const trimmed = name.trim();
  if ([...trimmed].length > TOKEN_NAME_MAX) {
    throw new InvalidInputError(`a token name can be at most ${TOKEN_NAME_MAX} characters`);
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
  if (/[\u0000-\u001f\u007f]/.test(trimmed)) {
    throw new InvalidInputError('a token name cannot contain control characters');
  }
  if (scope !== 'read' && scope !== 'write') {
    throw new InvalidInputError('scope must be "read" (read-only) or "write" (read and write)');
  }
  return { name: trimmed, scope };
}

/**
 * Makes a token for `userId`. The caller has checked that this is a workspace
 * owner signed in with a session (see routes/tokens.ts); authenticate() checks
 * the owner again on every use.
 */
export async function createToken(
  pool: Pool,
  userId: string,
  input: unknown,
  by: AuditBy = SYSTEM,
): Promise<CreatedToken> {
  const { name, scope } = checkTokenInput(input);
  const secret = newSecret();
  return transaction(pool, async (client) => {
    const { rows } = await run<sql.ApiTokenRow>(
      client,
      sql.insertToken({ userId, name, scope, hash: hashToken(secret), limit: TOKENS_PER_USER }),
    );
    const row = rows[0];
    if (!row) {
      throw new ConflictError(
        `You already have ${TOKENS_PER_USER} API tokens. Revoke one you no longer use, then try again.`,
      );
    }
    // The name and scope, never the secret (nor its hash).
    await record(client, by, {
      action: 'token.create',
      resource: { type: 'api_token', id: row.id },
      outcome: 'success',
      details: { name, scope },
    });
    return { token: view(row), secret };
  });
}

/** The live tokens of `userId`, newest first; never the secret (which is not stored anyway). */
export async function listTokens(pool: Pool, userId: string): Promise<TokenView[]> {
  return (await run<sql.ApiTokenRow>(pool, sql.liveTokensOfUser(userId))).rows.map(view);
}

/**
 * Revokes one of `userId`'s tokens: it stops working on its very next request
 * (every request looks the token up). Someone else's token, a revoked one and
 * one that never existed all get the same 404, so ids cannot be probed.
 */
export async function revokeToken(
  pool: Pool,
  userId: string,
  tokenId: string,
  by: AuditBy = SYSTEM,
): Promise<void> {
  if (!isUuid(tokenId)) throw new NotFoundError('No such API token.');
  await transaction(pool, async (client) => {
    const { rowCount } = await run(client, sql.revokeToken(tokenId, userId));
    if (!rowCount) throw new NotFoundError('No such API token.');
    await record(client, by, {
      action: 'token.revoke',
      resource: { type: 'api_token', id: tokenId },
      outcome: 'success',
    });
  });
}

/**
 * Ends every live token of `userId` in the caller's transaction, one
 * `token.revoke` event each (with `reason`). A password change and "sign out
 * everywhere" call this: a token made from a stolen session must not outlive
 * the owner taking their account back. `tenantId` is the events' chain (by
 * default the actor's). Returns how many tokens ended.
 */
export async function revokeAllTokensInTransaction(
  client: Client,
  userId: string,
  reason: string,
  by: AuditBy,
  tenantId?: string | null,
): Promise<number> {
  const { rows } = await run<{ id: string }>(client, sql.revokeTokensOfUser(userId));
  for (const { id } of rows) {
    await record(client, by, {
      ...(tenantId === undefined ? {} : { tenantId }),
      action: 'token.revoke',
      resource: { type: 'api_token', id },
      outcome: 'success',
      details: { reason },
    });
  }
  return rows.length;
}

/** Who `secret` speaks for, or undefined for a malformed, unknown or revoked token. */
export async function authenticate(pool: Pool, secret: string): Promise<TokenPrincipal | undefined> {
  if (!TOKEN_PATTERN.test(secret)) return undefined;
  const { rows } = await run<sql.TokenPrincipalRow>(pool, sql.tokenPrincipal(hashToken(secret)));
  const row = rows[0];
  if (!row) return undefined;
  return {
    tokenId: row.token_id,
    scope: row.scope,
    userId: row.user_id,
    email: row.email,
    displayName: row.display_name,
    role: row.role,
    tenantId: row.tenant_id,
    mfaEnabled: row.mfa_enabled,
    mfaRequired: row.mfa_required,
  };
}

function view(row: sql.ApiTokenRow): TokenView {
  return {
    id: row.id,
    name: row.name,
    scope: row.scope,
    createdAt: row.created_at,
    lastUsedAt: row.last_used_at,
  };
}
