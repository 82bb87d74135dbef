// The only way request code reaches tenant data: one transaction bound to one
// tenant. Its first statement sets the tenant role and search_path, and the
// transaction's time limits (statement_timeout, idle_in_transaction_session_
// timeout), with set_config(..., true), i.e. SET LOCAL: nothing survives
// COMMIT or ROLLBACK, so nothing leaks to the next user of the pooled connection.
import type { EntityManager } from '@mikro-orm/postgresql';
import { type AuditEvent, insertAuditEvent } from '../kernel/audit-inbox.ts';
import { begin, type Client, type Pool, run, type Statement, type TransactionOptions } from '../kernel/db.ts';
import { PermissionDeniedError, QueryTimeoutError, translateDbError } from '../kernel/errors.ts';
import { checkTenantName, ident, isTenantId } from '../kernel/identifiers.ts';
import type { Orm } from './orm.ts';
import { stateError, TenantNotFoundError } from './tenancy-errors.ts';
import { TenantGate } from './tenant-gate.ts';
import * as sql from './tenant-sql.ts';

export interface UnitOfWork {
  readonly tenant: { readonly id: string; readonly schema: string };
  /** A MikroORM EntityManager forked for this tenant's schema, inside the transaction. */
  readonly em: EntityManager;
  /**
   * Records an audit event for this tenant; it is written to the inbox at the
   * end of this transaction, so it commits (or rolls back) with the change.
   */
  audit(event: Omit<AuditEvent, 'tenantId'>): void;
  /**
   * One statement (`$n` placeholders) inside the same transaction, as the
   * tenant role, on its search_path; a bare string is a statement without values.
   */
  query<T = Record<string, unknown>>(statement: Statement | string): Promise<T[]>;
}

export interface TenantContextOptions {
  /** How long a tenant's state is trusted without a new read (suspension takes effect within it). */
  cacheMs: number;
  /**
   * Most tenants this process remembers (their cached state, and when their
   * last_active_at was last written); the longest unread forgotten first
   * (default 10000). A forgotten tenant is read again on its next request.
   */
  cacheEntries?: number;
  /** last_active_at is written at most once per this many seconds per tenant. */
  touchIntervalSeconds?: number;
  /**
   * statement_timeout of every unit of work, in ms (0: none; default 5000): a
   * statement running longer is cancelled, and run() throws QueryTimeoutError.
   */
  statementTimeoutMs?: number;
  /**
   * idle_in_transaction_session_timeout, in ms (0: none; default 10000): a unit
   * of work that sends nothing for this long loses its connection (QueryTimeoutError).
   */
  idleInTransactionMs?: number;
  /**
   * At most this many units of work of one tenant at once in this process (0:
   * no limit; default 4); more wait their turn up to `turnWaitMs` (default
   * 5000), then get TenantBusyError. See tenant-gate.ts.
   */
  maxConcurrentPerTenant?: number;
  turnWaitMs?: number;
}

/**
 * Per-run choices; the default is one READ COMMITTED transaction, as PostgreSQL
 * opens it. `isolation` as in kernel/db.ts's transaction(): 'repeatable read'
 * reads every statement from one snapshot, so an export sees all tables as of
 * one moment, whatever commits meanwhile. (No readOnly or rollback here: a unit
 * of work writes its audit events to the inbox before it commits.)
 */
export interface RunOptions extends Pick<TransactionOptions, 'isolation'> {
  /** statement_timeout for this run instead of the context's (an export's reads take longer). */
  statementTimeoutMs?: number;
  /**
   * SQL only, for hot read paths (the notes list): the unit of work runs on a
   * node-postgres client of the ORM's pool directly, with no MikroORM fork,
   * and BEGIN goes out with the tenant binding in one round trip (a simple
   * query of two statements). Still one transaction as the tenant role with a
   * transaction-local search_path; `uow.query` and `uow.audit` work as usual;
   * `uow.em` throws. Writes that need entities (change sets) leave it off.
   */
  sqlOnly?: boolean;
}

/**
 * What a listener hears when PostgreSQL refused the tenant role (SQLSTATE
 * 42501) inside a unit of work: which tenant, never the statement (it can
 * hold data). A tenant role is only ever refused by a bug or by an attempt to
 * reach another tenant's data; the server raises a critical threat flag.
 */
export interface PermissionDeniedInfo {
  tenantId: string;
  sqlstate: string;
}

interface Cached {
  row: sql.TenantRow;
  at: number;
}

// One round trip. The time limits apply from the next statement on; being
// transaction-local, they end with it like the role does.
const bind = (role: string, searchPath: string, statementTimeoutMs: number, idleMs: number): Statement => ({
  text: `SELECT set_config('role', $1, true), set_config('search_path', $2, true),
                set_config('statement_timeout', $3, true),
                set_config('idle_in_transaction_session_timeout', $4, true)`,
  values: [role, searchPath, String(statementTimeoutMs), String(idleMs)],
});
/**
 * BEGIN and the binding of `bind` as ONE simple query (two statements, one
 * round trip). A simple query carries no parameters, so every value is written
 * into the text, and only values that cannot hold a quote get there: the role
 * and schema pass checkTenantName (t_ and 12 of [a-z0-9]), the schema is quoted
 * by ident, the isolation level comes from kernel/db.ts begin (a fixed set),
 * and the time limits are whole numbers checked by timeLimit. Never user input.
 */
function beginBound(
  options: RunOptions,
  role: string,
  schema: string,
  statementTimeoutMs: number,
  idleMs: number,
): string {
  const literal = (value: string) => {
    if (!/^[A-Za-z0-9_"]+$/.test(value))
      throw new RangeError(`refusing ${JSON.stringify(value)} in SQL text`);
    return `'${value}'`;
  };
  return `${begin({ isolation: options.isolation })}; SELECT set_config('role', ${literal(checkTenantName(role))}, true), set_config('search_path', ${literal(ident(checkTenantName(schema)))}, true), set_config('statement_timeout', ${literal(String(timeLimit(statementTimeoutMs, 'statementTimeoutMs')))}, true), set_config('idle_in_transaction_session_timeout', ${literal(String(timeLimit(idleMs, 'idleInTransactionMs')))}, true)`;
}

/** What `uow.em` is in an SQL-only unit of work: any use of it is a bug of the caller. */
const NO_EM = new Proxy({} as EntityManager, {
  get(_target, property) {
    throw new Error(
      `uow.em.${String(property)}: this unit of work runs SQL only (RunOptions.sqlOnly); use uow.query, or run without sqlOnly`,
    );
  },
});

// Back to the application role, still inside the transaction: only our own code
// runs after this, to write the audit inbox (tenant roles cannot reach it).
const UNBIND: Statement = {
  text: "SELECT set_config('role', 'none', true), set_config('search_path', '', true)",
  values: [],
};

/**
 * Runs one statement in the unit of work's transaction. The transaction is
 * MikroORM's (the entities flush in it), and MikroORM's raw execute takes `?`
 * placeholders, so this is the one place where a statement's `$n` become `?`:
 * each `$n` in turn, its value placed in that order (a number may repeat or
 * come out of order). A statement run here must hold no `?` of its own (the
 * jsonb operators): MikroORM would take it for a placeholder.
 */
async function execute<T>(em: EntityManager, statement: Statement): Promise<T[]> {
  const values: unknown[] = [];
  const text = statement.text.replace(/\$(\d+)/g, (_, n: string) => {
    const i = Number(n) - 1;
    if (i < 0 || i >= statement.values.length) throw new RangeError(`no value for $${n}`);
    values.push(statement.values[i]);
    return '?';
  });
  return (await em.execute(text, values)) as T[];
}

export class TenantContext {
  readonly #orm: Orm;
  readonly #pool: Pool;
  readonly #cacheMs: number;
  readonly #cacheEntries: number;
  readonly #touchMs: number;
  readonly #statementTimeoutMs: number;
  readonly #idleInTransactionMs: number;
  readonly #cache = new Map<string, Cached>();
  readonly #touched = new Map<string, number>();
  readonly #gate: TenantGate;
  readonly #deniedListeners = new Set<(info: PermissionDeniedInfo) => void>();
  /** The ORM's own pg pool (SQL-only units of work share its connections and its size). */
  #ormPool: Promise<Pool> | undefined;

  constructor(orm: Orm, pool: Pool, options: TenantContextOptions) {
    this.#orm = orm;
    this.#pool = pool;
    this.#cacheMs = options.cacheMs;
    this.#cacheEntries = options.cacheEntries ?? DEFAULT_CACHE_ENTRIES;
    if (!(Number.isInteger(this.#cacheEntries) && this.#cacheEntries >= 1))
      throw new RangeError('cacheEntries must be a whole number >= 1');
    this.#touchMs = (options.touchIntervalSeconds ?? 60) * 1000;
    this.#statementTimeoutMs = timeLimit(options.statementTimeoutMs ?? 5000, 'statementTimeoutMs');
    this.#idleInTransactionMs = timeLimit(options.idleInTransactionMs ?? 10_000, 'idleInTransactionMs');
    this.#gate = new TenantGate(options.maxConcurrentPerTenant ?? 4, options.turnWaitMs ?? 5000);
  }

  /**
   * Runs fn in one transaction as the tenant; refuses unknown and non-active
   * tenants, and waits for a turn when the tenant has its share running.
   * Never call run() for the same tenant from inside fn: it would hold one
   * turn while waiting for another.
   */
  async run<T>(tenantId: string, fn: (uow: UnitOfWork) => Promise<T>, options: RunOptions = {}): Promise<T> {
    const tenant = await this.resolve(tenantId);
    return this.#gate.through(tenant.id, () => this.#runBound(tenant, fn, options));
  }

  async #runBound<T>(
    tenant: sql.TenantRow,
    fn: (uow: UnitOfWork) => Promise<T>,
    options: RunOptions,
  ): Promise<T> {
    const tenantId = tenant.id;
    const schema = checkTenantName(tenant.schema_name);
    const role = checkTenantName(tenant.role_name);
    if (this.#dueForTouch(tenantId)) {
      // Off the request path and as the application role: tenant roles cannot write the control plane.
      run(this.#pool, sql.touch(tenantId, this.#touchMs / 1000)).catch(() => this.#touched.delete(tenantId));
    }
    const statementTimeout = timeLimit(
      options.statementTimeoutMs ?? this.#statementTimeoutMs,
      'statementTimeoutMs',
    );
    const started = performance.now();
    try {
      if (options.sqlOnly) {
        const sqlText = beginBound(options, role, schema, statementTimeout, this.#idleInTransactionMs);
        return await this.#runSql(tenant, schema, sqlText, fn);
      }
      const em = this.#orm.em.fork({ schema, clear: true }) as EntityManager;
      // The isolation level goes into MikroORM's own BEGIN (START TRANSACTION ISOLATION LEVEL ...).
      const ormBegin = options.isolation ? { isolationLevel: options.isolation } : {};
      return await em.transactional(async (tem) => {
        await execute(tem, bind(role, ident(schema), statementTimeout, this.#idleInTransactionMs));
        const events: AuditEvent[] = [];
        const uow: UnitOfWork = {
          tenant: { id: tenant.id, schema },
          em: tem,
          audit: (event) => {
            events.push({ ...event, tenantId: tenant.id });
          },
          query: (statement) =>
            execute(tem, typeof statement === 'string' ? { text: statement, values: [] } : statement),
        };
        const result = await fn(uow);
        // Entity changes are written as the tenant role, before the role is dropped.
        await tem.flush();
        if (events.length > 0) {
          await execute(tem, UNBIND);
          for (const event of events) await execute(tem, insertAuditEvent(event));
        }
        return result;
      }, ormBegin);
    } catch (err) {
      // PostgreSQL ends an idle transaction's session with FATAL 25P03 while no
      // statement is running, so pg reports it as an 'error' event nobody here
      // sees; the next statement then fails with a bare "not queryable". A lost
      // connection in a unit of work older than the idle limit is that timeout.
      const idle = this.#idleInTransactionMs;
      if (idle > 0 && lostConnection(err) && performance.now() - started >= idle) {
        throw new QueryTimeoutError(`the transaction was idle for more than ${idle} ms`, '25P03', err);
      }
      const translated = translateDbError(err);
      if (translated instanceof PermissionDeniedError) {
        this.#permissionDenied({ tenantId, sqlstate: translated.code ?? '42501' });
      }
      throw translated;
    }
  }

  /**
   * The SQL-only unit of work: one pg client, `BEGIN; SELECT set_config(...)`
   * in one round trip, fn's statements, the audit events as the application
   * role, COMMIT. Any failure rolls back; a client whose connection broke is
   * given back as broken (pg-pool then closes it).
   */
  async #runSql<T>(
    tenant: sql.TenantRow,
    schema: string,
    beginText: string,
    fn: (uow: UnitOfWork) => Promise<T>,
  ): Promise<T> {
    this.#ormPool ??= this.#orm.em.getConnection().getNativeClient() as Promise<Pool>;
    const client: Client = await (await this.#ormPool).connect();
    let broken: Error | undefined;
    try {
      await client.query(beginText);
      const events: AuditEvent[] = [];
      const uow: UnitOfWork = {
        tenant: { id: tenant.id, schema },
        em: NO_EM,
        audit: (event) => {
          events.push({ ...event, tenantId: tenant.id });
        },
        query: async <R>(statement: Statement | string) =>
          (typeof statement === 'string'
            ? (await client.query(statement)).rows
            : (await client.query(statement.text, statement.values)).rows) as R[],
      };
      const result = await fn(uow);
      if (events.length > 0) {
        await client.query(UNBIND.text);
        for (const event of events) {
          const statement = insertAuditEvent(event);
          await client.query(statement.text, statement.values);
        }
      }
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch((rollbackErr: unknown) => {
        broken = rollbackErr instanceof Error ? rollbackErr : new Error(String(rollbackErr));
      });
      if (lostConnection(err)) broken ??= err as Error;
      throw err;
    } finally {
      client.release(broken);
    }
  }

  /** The tenant's row if it may be served; TenantNotFoundError / TenantUnavailableError otherwise. */
  async resolve(tenantId: string): Promise<sql.TenantRow> {
    if (typeof tenantId !== 'string' || !isTenantId(tenantId))
      throw new TenantNotFoundError(String(tenantId));
    const now = Date.now();
    const hit = this.#cache.get(tenantId);
    let row = hit && now - hit.at < this.#cacheMs ? hit.row : undefined;
    if (!row) {
      const result = await run<sql.TenantRow>(this.#pool, sql.selectTenant(tenantId));
      row = result.rows[0];
      if (!row) {
        this.#cache.delete(tenantId);
        throw new TenantNotFoundError(tenantId);
      }
      if (this.#cacheMs > 0) remember(this.#cache, tenantId, { row, at: now }, this.#cacheEntries);
    }
    if (row.state !== 'active') throw stateError(tenantId, row.state);
    return row;
  }

  /**
   * Calls `listener` (synchronously, errors ignored) whenever a unit of work
   * fails with permission denied (42501). Returns the way to stop listening.
   */
  onPermissionDenied(listener: (info: PermissionDeniedInfo) => void): () => void {
    this.#deniedListeners.add(listener);
    return () => this.#deniedListeners.delete(listener);
  }

  #permissionDenied(info: PermissionDeniedInfo): void {
    for (const listener of this.#deniedListeners) {
      try {
        listener(info);
      } catch {
        // A listener's failure must not replace the error of the unit of work.
      }
    }
  }

  /** Forget a cached state at once (after suspend, drop, restore in this process). */
  invalidate(tenantId: string): void {
    this.#cache.delete(tenantId);
  }

  #dueForTouch(tenantId: string): boolean {
    const now = Date.now();
    const last = this.#touched.get(tenantId) ?? 0;
    if (now - last < this.#touchMs) return false;
    remember(this.#touched, tenantId, now, this.#cacheEntries);
    return true;
  }

  /** Tenants whose state this process holds now, and whose last write of last_active_at it remembers. */
  get remembered(): { states: number; touches: number } {
    return { states: this.#cache.size, touches: this.#touched.size };
  }
}

const DEFAULT_CACHE_ENTRIES = 10_000;

/** Sets `key` as the most recent entry (a Map iterates in insertion order) and forgets the oldest beyond `max`. */
function remember<V>(map: Map<string, V>, key: string, value: V, max: number): void {
  map.delete(key);
  map.set(key, value);
  for (const oldest of map.keys()) {
    if (map.size <= max) break;
    map.delete(oldest);
  }
}

/** A whole number of milliseconds PostgreSQL accepts for its timeouts (0 turns one off). */
function timeLimit(ms: number, name: string): number {
  if (!Number.isInteger(ms) || ms < 0 || ms > 2_147_483_647) {
    throw new RangeError(`${name} must be a whole number of milliseconds from 0 to 2147483647`);
  }
  return ms;
}

/** The driver's words for a connection that broke under a transaction (no SQLSTATE of its own). */
function lostConnection(err: unknown): boolean {
  if (!(err instanceof Error) || typeof (err as { code?: unknown }).code === 'string') return false;
  return /not queryable|Connection terminated/i.test(err.message);
}
