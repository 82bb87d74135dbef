// The threat detector (docs/ADMIN.md, "Threats"): hears what the platform
// already sees (failed sign-ins, lockouts, 404s on workspace ids, rejected API
// tokens, CSRF failures, privileged sign-ins, permission-denied errors in a
// tenant unit of work) and raises flags in control.threat_flags.
//
// Burst rules count hits per rule and subject in a fixed window of
// THREAT_WINDOW_MINUTES: in Redis when there is one (the abuse counters'
// Redis and key prefix, so every instance counts together), else in a bounded
// map in this process. Raising a flag is one short transaction: the upsert of
// the open flag and its `threat.flag` event in the platform audit chain.
//
// Nothing here is on the request path: hits are counted after the response
// (or beside it, never awaited), and a failure to count or to write is
// logged, never shown to the person whose request it was.
import { createHash } from 'node:crypto';
import type { Request } from 'express';
import type { RedisClientType } from 'redis';
import { type AuditBy, type AuditContext, record } from '../../kernel/audit-inbox.ts';
import { type Pool, run, transaction } from '../../kernel/db.ts';
import type { Logger } from '../../kernel/logger.ts';
import { clientAddress } from '../abuse/limits.ts';
import type { Role } from '../accounts/users-sql.ts';
import { signInCredentials } from '../auth/sign-in-credentials.ts';
import { contextOf } from '../http/request-audit.ts';
import { pathOf } from '../http/request-log.ts';
import * as sql from './detector-sql.ts';
import {
  type BurstRule,
  flushesAt,
  type InstantRule,
  type Rule,
  SEVERITY,
  type ThreatRules,
} from './rules.ts';

/** Counts hits of one key in a fixed window; returns the count including this hit. */
export interface HitCounter {
  add(key: string, windowMs: number): Promise<number>;
}

// KEYS: the count. ARGV: the window in ms. The window starts at the first hit.
const ADD_SCRIPT = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
`;

export class RedisHitCounter implements HitCounter {
  readonly #redis: RedisClientType;
  readonly #prefix: string;

  constructor(redis: RedisClientType, prefix: string) {
    this.#redis = redis;
    this.#prefix = prefix;
  }

  async add(key: string, windowMs: number): Promise<number> {
    const reply = await this.#redis.sendCommand([
      'EVAL',
      ADD_SCRIPT,
      '1',
      `${this.#prefix}threat:${key}`,
      String(windowMs),
    ]);
    return Number(reply);
  }
}

/** Without Redis: this process only, at most `max` keys (expired ones go first, then the oldest). */
export class MemoryHitCounter implements HitCounter {
  readonly #entries = new Map<string, { n: number; resetAt: number }>();
  readonly #max: number;
  readonly #now: () => number;

  constructor(max = 10_000, now: () => number = Date.now) {
    this.#max = max;
    this.#now = now;
  }

  async add(key: string, windowMs: number): Promise<number> {
    const now = this.#now();
    let entry = this.#entries.get(key);
    if (!entry || entry.resetAt <= now) {
      this.#entries.delete(key);
      if (this.#entries.size >= this.#max) this.#evict(now);
      entry = { n: 0, resetAt: now + windowMs };
      this.#entries.set(key, entry);
    }
    entry.n += 1;
    return entry.n;
  }

  get size(): number {
    return this.#entries.size;
  }

  #evict(now: number): void {
    for (const [key, e] of this.#entries) if (e.resetAt <= now) this.#entries.delete(key);
    // Still full: the oldest windows go (a Map iterates in insertion order).
    for (const key of this.#entries.keys()) {
      if (this.#entries.size < this.#max) break;
      this.#entries.delete(key);
    }
  }
}

export interface ThreatDetectorOptions {
  pool: Pool;
  /** The abuse counters' Redis; undefined: counts in this process. */
  redis: RedisClientType | undefined;
  /** The abuse counters' key prefix (server/abuse/options.ts). */
  prefix: string;
  rules: ThreatRules;
  log: Logger;
  counter?: HitCounter;
}

/** What a flag's audit event says about where it came from (no secrets: address, request id). */
export type HitContext = AuditContext;

export interface RaisedFlag {
  id: string;
  count: number;
  opened: boolean;
}

/** Subject of a session: a hash of its registry id, never the id itself. */
export function sessionSubject(sessionId: string): string {
  return `session:${createHash('sha256').update(sessionId).digest('hex').slice(0, 24)}`;
}

export const ipSubject = (req: Request) => `ip:${clientAddress(req)}`;

export class ThreatDetector {
  readonly #options: ThreatDetectorOptions;
  readonly #counter: HitCounter;
  readonly #pending = new Set<Promise<unknown>>();

  constructor(options: ThreatDetectorOptions) {
    this.#options = options;
    this.#counter =
      options.counter ??
      (options.redis ? new RedisHitCounter(options.redis, options.prefix) : new MemoryHitCounter());
  }

  get rules(): ThreatRules {
    return this.#options.rules;
  }

  /** Resolves when every hit and flag started so far is written (tests, shutdown). */
  async settled(): Promise<void> {
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
  }

  /** One hit of a burst rule; a flag when the subject reaches the threshold within the window. */
  hit(rule: BurstRule, subject: string, context: HitContext, details: Record<string, unknown> = {}): void {
    this.#track(this.#hit(rule, subject, context, details));
  }

  /** A flag at once (instant rules). */
  flag(rule: InstantRule, subject: string, context: HitContext, details: Record<string, unknown> = {}): void {
    this.#track(this.raise(rule, subject, 1, context, details));
  }

  // --- What the platform sees, by where it sees it ---------------------------

  /** A failed sign-in (wrong password or code): counted for the account, if known, and the address. */
  failedSignIn(req: Request, userId: string | undefined): void {
    const context = contextOf(req);
    if (userId) this.hit('failed_signins', `account:${userId}`, context);
    this.hit('failed_signins', ipSubject(req), context);
  }

  /** The sign-in lockout armed for the account the request named (or its address if no account has it). */
  lockout(req: Request): void {
    this.#track(
      (async () => {
        let normalized: string | undefined;
        try {
          normalized = signInCredentials(req).normalizedEmail;
        } catch {
          normalized = undefined;
        }
        const id = normalized
          ? (await run<{ id: string }>(this.#options.pool, sql.accountByEmail(normalized))).rows[0]?.id
          : undefined;
        const subject = id ? `account:${id}` : ipSubject(req);
        await this.raise('lockout', subject, 1, contextOf(req), { address: clientAddress(req) });
      })(),
    );
  }

  /**
   * A sign-in that opened `sessionId`: for admins and auditors, a flag when
   * the account signed in before but never from this address in the last
   * 30 days. The first sign-in ever has nothing to compare with: no flag.
   */
  signedIn(req: Request, user: { id: string; role: Role }, sessionId: string): void {
    if (user.role === 'user' || !req.ip) return;
    const ip = req.ip;
    const { knownAddressDays } = this.#options.rules;
    this.#track(
      (async () => {
        const { rows } = await run<sql.SignInHistoryRow>(
          this.#options.pool,
          sql.signInHistory(user.id, ip, sessionId, knownAddressDays),
        );
        const history = rows[0];
        if (!history || history.before === 0 || history.same_address > 0) return;
        await this.raise('new_address_signin', `account:${user.id}`, 1, contextOf(req), {
          address: ip,
          role: user.role,
        });
      })(),
    );
  }

  /**
   * PostgreSQL refused a tenant role (SQLSTATE 42501) inside a unit of work:
   * a critical flag at once, about the tenant, naming the user and request
   * when there is one (never the statement: it can hold data).
   */
  permissionDenied(info: { tenantId: string; sqlstate: string }, req: Request | undefined): void {
    const context: HitContext = req ? contextOf(req) : {};
    this.flag('permission_denied', `tenant:${info.tenantId}`, context, {
      tenantId: info.tenantId,
      sqlstate: info.sqlstate,
      userId: req?.user?.userId ?? null,
      requestId: context.requestId ?? null,
      ...(req ? { method: req.method, path: pathOf(req) } : {}),
    });
  }

  // --- Counting and raising --------------------------------------------------

  async #hit(rule: BurstRule, subject: string, context: HitContext, details: Record<string, unknown>) {
    const { windowMs, thresholds } = this.#options.rules;
    const threshold = thresholds[rule];
    const n = await this.#counter.add(`${rule}:${subject}`, windowMs);
    if (!flushesAt(n, threshold)) return;
    // The hits of this window not yet written: all of them at the threshold, then the half since the last write.
    const count = n === threshold ? n : n / 2;
    await this.raise(rule, subject, count, context, {
      ...details,
      windowMinutes: windowMs / 60_000,
      threshold,
    });
  }

  /** Opens or bumps the open flag of `rule` and `subject`, with its platform audit event, in one transaction. */
  async raise(
    rule: Rule,
    subject: string,
    count: number,
    context: HitContext,
    details: Record<string, unknown> = {},
  ): Promise<RaisedFlag> {
    const severity = SEVERITY[rule];
    const by: AuditBy = { actor: { type: 'system', id: null }, context, tenantId: null };
    return transaction(this.#options.pool, async (client) => {
      const { rows } = await run<{ id: string; count: string; opened: boolean }>(
        client,
        sql.upsertFlag(rule, severity, subject, count, details),
      );
      const row = rows[0] as { id: string; count: string; opened: boolean };
      await record(client, by, {
        tenantId: null,
        action: 'threat.flag',
        resource: { type: 'threat_flag', id: row.id },
        outcome: 'success',
        code: rule,
        details: { rule, severity, subject, hits: count, count: Number(row.count), opened: row.opened },
      });
      return { id: row.id, count: Number(row.count), opened: row.opened };
    });
  }

  #track(work: Promise<unknown>): void {
    const tracked = work.catch((err: unknown) =>
      this.#options.log.warn('threat detection failed', { error: (err as Error).message }),
    );
    this.#pending.add(tracked);
    void tracked.finally(() => this.#pending.delete(tracked));
  }
}
