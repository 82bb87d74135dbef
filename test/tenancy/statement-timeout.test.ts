// Finding 4 of issue 8: a unit of work cannot hold a statement or a transaction
// open for long. statement_timeout and idle_in_transaction_session_timeout are
// set transaction-locally by the unit of work's first statement, so a cancelled
// request leaves the pooled connection exactly as PostgreSQL's defaults have it.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { QueryTimeoutError } from '../../kernel/errors.ts';
import { createOrm, type Orm } from '../../tenancy/orm.ts';
import { provisionTenant } from '../../tenancy/provision.ts';
import { loadTenantMigrations } from '../../tenancy/templates.ts';
import type { TenantRow } from '../../tenancy/tenant-sql.ts';
import { TenantContext } from '../../tenancy/unit-of-work.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';

interface Settings {
  statement_timeout: string;
  idle_in_transaction_session_timeout: string;
  role: string;
  search_path: string;
}

const SHOW = `SELECT current_setting('statement_timeout') AS statement_timeout,
                     current_setting('idle_in_transaction_session_timeout') AS idle_in_transaction_session_timeout,
                     current_setting('role') AS role,
                     current_setting('search_path') AS search_path,
                     pg_backend_pid() AS pid`;

describe('time limits of a unit of work', () => {
  let db: TestDatabase;
  let orm: Orm;
  let ctx: TenantContext;
  let pool: Awaited<ReturnType<typeof createOrm>>['pool'];
  let a: TenantRow;
  let defaults: Settings;

  before(async () => {
    db = await createTestDatabase();
    a = await provisionTenant(db.pool, { displayName: 'A' }, loadTenantMigrations());
    // One connection: whatever the unit of work leaves behind, the next user of the pool gets.
    const created = await createOrm(db.url, 1);
    orm = created.orm;
    pool = created.pool;
    ctx = new TenantContext(orm, pool, { cacheMs: 0, statementTimeoutMs: 300, idleInTransactionMs: 400 });
    const { pid: _, ...shown } = (await pool.query<Settings & { pid: number }>(SHOW)).rows[0] as Settings & {
      pid: number;
    };
    defaults = shown;
  });
  after(async () => {
    await orm.close();
    await db.drop();
  });

  const settingsNow = async () => {
    const { rows } = await pool.query<Settings & { pid: number }>(SHOW);
    return rows[0] as Settings & { pid: number };
  };

  test('inside a unit of work, both limits are the configured ones', async () => {
    const [inside] = await ctx.run(a.id, (uow) => uow.query<Settings>(SHOW));
    assert.equal(inside?.statement_timeout, '300ms');
    assert.equal(inside?.idle_in_transaction_session_timeout, '400ms');
    const exporting = await ctx.run(a.id, (uow) => uow.query<Settings>(SHOW), { statementTimeoutMs: 60_000 });
    assert.equal(exporting[0]?.statement_timeout, '1min', 'a run may ask for a longer statement budget');
  });

  test('a statement past statement_timeout is cancelled (QueryTimeoutError), and the pooled connection keeps the defaults', async () => {
    const pidBefore = (await settingsNow()).pid;
    await assert.rejects(
      ctx.run(a.id, (uow) => uow.query('SELECT pg_sleep(5)')),
      (err: unknown) => err instanceof QueryTimeoutError && err.code === '57014',
    );
    const after = await settingsNow();
    assert.equal(after.pid, pidBefore, 'the same pooled connection, still alive');
    const { pid: _, ...settings } = after;
    assert.deepEqual(settings, defaults, 'no limit, role or search_path leaks to the next user');
    // And the next unit of work runs normally on it.
    const [ok] = await ctx.run(a.id, (uow) =>
      uow.query<{ n: number }>('SELECT count(*)::int AS n FROM notes'),
    );
    assert.equal(ok?.n, 0);
  });

  // With a pool of one, a connection that was not given back would hang every later query: the timeout fails it.
  test('a unit of work idle in its transaction past the limit loses it (QueryTimeoutError); the pool recovers', {
    timeout: 15_000,
  }, async () => {
    await assert.rejects(
      ctx.run(a.id, async (uow) => {
        await uow.query("INSERT INTO notes (title) VALUES ('never committed')");
        await sleep(1200); // holds the transaction open, sending nothing
        await uow.query('SELECT 1');
      }),
      (err: unknown) => err instanceof QueryTimeoutError,
    );
    const { rows } = await db.pool.query(
      `SELECT count(*)::int AS n FROM "${a.schema_name}".notes WHERE title = 'never committed'`,
    );
    assert.equal(rows[0].n, 0, 'the transaction was rolled back');
    const { pid: _, ...settings } = await settingsNow();
    assert.deepEqual(settings, defaults, 'the next connection has the defaults');
  });
});
