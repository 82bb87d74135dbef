// The auditor's view of the sealed trail: search entries, the latest signed
// checkpoints, the pending (not yet sealed) count. Shared by the JSON API and
// the /audit pages (server/routes/audit-*.ts). Entries are shown as parsed
// from their exact sealed bytes, never from the inbox: what an auditor reads
// here is what a bundle holds and what the chain's hashes cover.
//
// Every call is itself audited (`audit.search`, `audit.checkpoints.read`), in
// the same transaction as the read, in the searched tenant's chain (or the
// platform chain for searches across tenants), like `audit.export`.

import { type ActorType, type AuditBy, record } from '../kernel/audit-inbox.ts';
import { type Client, type Pool, run, transaction } from '../kernel/db.ts';
import { DatabaseError, InvalidInputError } from '../kernel/errors.ts';
import { isTenantId } from '../kernel/identifiers.ts';
import * as sql from './search-sql.ts';
import { PLATFORM_CHAIN, tenantChain } from './verifier/entry.ts';

export const ACTOR_TYPES: readonly ActorType[] = [
  'user',
  'admin',
  'auditor',
  'token',
  'job',
  'system',
  'anonymous',
];
export const DEFAULT_PAGE = 50;
export const MAX_PAGE = 500;
/** A rare filter over a huge trail walks many rows: bounded, and then a 400 that says how to narrow it. */
const SEARCH_TIMEOUT_MS = 15_000;

export interface SearchFilter {
  /** A tenant id, `platform` (events without a tenant), or null for every chain. */
  tenant: string | null;
  actor: string | null;
  action: string | null;
  outcome: 'success' | 'failure' | null;
  from: Date | null;
  to: Date | null;
}

export const EMPTY_FILTER: SearchFilter = {
  tenant: null,
  actor: null,
  action: null,
  outcome: null,
  from: null,
  to: null,
};

const FILTER_KEYS = ['tenant', 'actor', 'action', 'outcome', 'from', 'to'] as const;
const ACTION = /^[a-z][a-z0-9_.]{0,63}\*?$/;
const ACTOR_ID = /^[\w.:@-]{1,200}$/;

/**
 * The filter from query parameters (API or the page's GET form). Empty values
 * mean "any"; anything else that is not understood is a 400, so a typo never
 * silently widens a search. `extra` names other parameters the caller accepts.
 */
export function parseFilter(query: Record<string, unknown>, extra: readonly string[] = []): SearchFilter {
  const known = new Set<string>([...FILTER_KEYS, ...extra]);
  const unknown = Object.keys(query).filter((k) => !known.has(k));
  if (unknown.length) throw new InvalidInputError(`unknown query parameter ${unknown.join(', ')}`);
  const text = (name: string): string | null => {
    const v = query[name];
    if (v === undefined) return null;
    if (typeof v !== 'string') throw new InvalidInputError(`${name} must be given once`);
    return v.trim() === '' ? null : v.trim();
  };
  const tenant = text('tenant');
  if (tenant !== null && tenant !== PLATFORM_CHAIN && !isTenantId(tenant))
    throw new InvalidInputError('tenant must be a tenant id (12 characters, a-z and 0-9) or "platform"');
  const actor = text('actor');
  if (actor !== null && !ACTOR_ID.test(actor))
    throw new InvalidInputError('actor must be an actor id or one of the actor types');
  const action = text('action');
  if (action !== null && !ACTION.test(action))
    throw new InvalidInputError('action must look like "auth.login", or end in * for a prefix ("tenant.*")');
  const outcome = text('outcome');
  if (outcome !== null && outcome !== 'success' && outcome !== 'failure')
    throw new InvalidInputError('outcome must be success or failure');
  const from = time(text('from'), 'from');
  const to = time(text('to'), 'to');
  if (from && to && from > to) throw new InvalidInputError('from is after to');
  return { tenant, actor, action, outcome, from, to };
}

function time(value: string | null, name: string): Date | null {
  if (value === null) return null;
  const ms = Date.parse(value);
  if (!/^\d{4}-\d\d-\d\d/.test(value) || Number.isNaN(ms))
    throw new InvalidInputError(`${name} must be an ISO 8601 time, e.g. 2026-11-22T17:00:00Z or 2026-11-22`);
  return new Date(ms);
}

/** The filter as query parameters (for links: the next page, the export of the same selection). */
export function filterParams(f: SearchFilter): Record<string, string> {
  const out: Record<string, string> = {};
  if (f.tenant) out.tenant = f.tenant;
  if (f.actor) out.actor = f.actor;
  if (f.action) out.action = f.action;
  if (f.outcome) out.outcome = f.outcome;
  if (f.from) out.from = f.from.toISOString();
  if (f.to) out.to = f.to.toISOString();
  return out;
}

/** The chain a tenant filter names: `t_<id>`, `platform`, or null for all. */
export function chainOfFilter(f: SearchFilter): string | null {
  if (f.tenant === null) return null;
  return f.tenant === PLATFORM_CHAIN ? PLATFORM_CHAIN : tenantChain(f.tenant);
}

export function encodeCursor(c: sql.EntryCursor): string {
  return Buffer.from(JSON.stringify([c.at, c.chain, c.seq])).toString('base64url');
}

export function decodeCursor(raw: unknown): sql.EntryCursor | null {
  if (raw === undefined || raw === '') return null;
  try {
    const [at, chain, seq] = JSON.parse(Buffer.from(String(raw), 'base64url').toString('utf8'));
    if (
      typeof at === 'string' &&
      /^\d{4}-\d\d-\d\dT[\d:.]+Z$/.test(at) &&
      typeof chain === 'string' &&
      /^(t_[a-z0-9]{12}|platform)$/.test(chain) &&
      Number.isSafeInteger(seq) &&
      seq >= 1
    )
      return { at, chain, seq };
  } catch {
    // falls through to the error below
  }
  throw new InvalidInputError('cursor is not one this server handed out');
}

export interface FoundEntry {
  chain: string;
  seq: number;
  /** hash_seq of the chain, hex. */
  hash: string;
  /** The sealed entry, parsed from its exact bytes (docs/AUDIT-FORMAT.md, "Entry"). */
  entry: Record<string, unknown>;
}

export interface SearchPage {
  entries: FoundEntry[];
  /** Pass as `cursor` for the next (older) page; null on the last page. */
  nextCursor: string | null;
  /** Events of the searched chain(s) written but not sealed yet: not searchable until the next seal. */
  pending: number;
}

/** One page of sealed entries, newest first, matching `filter`; records `audit.search`. */
export async function searchEntries(
  pool: Pool,
  filter: SearchFilter,
  options: { cursor?: sql.EntryCursor | null; limit?: number; by: AuditBy },
): Promise<SearchPage> {
  const limit = options.limit ?? DEFAULT_PAGE;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_PAGE)
    throw new InvalidInputError(`limit must be a whole number from 1 to ${MAX_PAGE}`);
  const chain = chainOfFilter(filter);
  const actorIsType = filter.actor !== null && ACTOR_TYPES.includes(filter.actor as ActorType);
  const actionIsPrefix = filter.action?.endsWith('*') ?? false;
  const statement = sql.selectEntries(
    {
      chain,
      actor: filter.actor,
      actorIsType,
      action: actionIsPrefix ? (filter.action as string).slice(0, -1) : filter.action,
      actionIsPrefix,
      outcome: filter.outcome,
      from: filter.from?.toISOString() ?? null,
      to: filter.to?.toISOString() ?? null,
    },
    options.cursor ?? null,
    limit + 1,
  );
  return bounded(pool, async (client) => {
    const { rows } = await run<sql.EntryRow>(client, statement);
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    const pending = (await run<{ n: number }>(client, sql.countPending(chain))).rows[0]?.n ?? 0;
    await recordAuditor(client, options.by, filter.tenant, 'audit.search', {
      filter: filterParams(filter),
      ...(options.cursor ? { page: 'next' } : {}),
      results: page.length,
    });
    return {
      entries: page.map((r) => ({
        chain: r.chain,
        seq: Number(r.seq),
        hash: r.hash.toString('hex'),
        entry: JSON.parse(r.entry.toString('utf8')) as Record<string, unknown>,
      })),
      nextCursor:
        rows.length > limit && last
          ? encodeCursor({ at: last.at, chain: last.chain, seq: Number(last.seq) })
          : null,
      pending,
    };
  });
}

export interface LatestCheckpoint {
  chain: string;
  size: number;
  /** The signed checkpoint and its signature: the form `enclave audit verify --prev` reads. */
  checkpoint: Record<string, unknown>;
  signature: string;
}

/** The newest signed checkpoint of each chain (or of one tenant's), chains in order; records `audit.checkpoints.read`. */
export async function latestCheckpoints(
  pool: Pool,
  options: { tenant: string | null; after?: string | null; limit?: number; by: AuditBy },
): Promise<{ checkpoints: LatestCheckpoint[]; nextAfter: string | null }> {
  const limit = options.limit ?? 1000;
  const chain = chainOfFilter({ ...EMPTY_FILTER, tenant: options.tenant });
  return bounded(pool, async (client) => {
    const { rows } = await run<sql.CheckpointRow>(
      client,
      sql.selectLatestCheckpoints(chain, options.after ?? null, limit + 1),
    );
    const page = rows.slice(0, limit);
    await recordAuditor(client, options.by, options.tenant, 'audit.checkpoints.read', {
      chains: page.length,
    });
    return {
      checkpoints: page.map((r) => ({
        chain: r.chain,
        size: Number(r.size),
        checkpoint: JSON.parse(r.checkpoint.toString('utf8')) as Record<string, unknown>,
        signature: r.signature.toString('base64'),
      })),
      nextAfter: rows.length > limit ? (page.at(-1)?.chain ?? null) : null,
    };
  });
}

/** Records an auditor's action that reads rather than changes (`audit.keys.read`, ...). */
export async function recordAuditorRead(
  pool: Pool,
  by: AuditBy,
  action: string,
  details: Record<string, unknown>,
): Promise<void> {
  await transaction(pool, (client) => recordAuditor(client, by, null, action, details));
}

/**
 * Reads under a time limit, in one transaction with the auditor's own event
 * (so it is not READ ONLY; nothing else is written).
 */
async function bounded<T>(pool: Pool, fn: (client: Client) => Promise<T>): Promise<T> {
  try {
    return await transaction(pool, async (client) => {
      await client.query(`SET LOCAL statement_timeout = ${SEARCH_TIMEOUT_MS}`);
      return fn(client);
    });
  } catch (err) {
    if (err instanceof DatabaseError && err.code === '57014')
      throw new InvalidInputError('The search took too long: narrow it with a tenant or a time range.');
    throw err;
  }
}

/**
 * The auditor's event: in the searched tenant's chain when that tenant exists
 * (a search for an unknown id must not start a chain), else the platform's.
 */
async function recordAuditor(
  client: Client,
  by: AuditBy,
  tenant: string | null,
  action: string,
  details: Record<string, unknown>,
): Promise<void> {
  let tenantId: string | null = null;
  if (tenant !== null && tenant !== PLATFORM_CHAIN && (await run(client, sql.tenantKnown(tenant))).rowCount)
    tenantId = tenant;
  await record(client, by, {
    tenantId,
    action,
    resource: { type: 'audit_trail', id: tenant },
    outcome: 'success',
    details,
  });
}
