import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { PermissionDeniedError } from '../../kernel/errors.ts';
import { dropTenant, setTenantState } from '../../tenancy/lifecycle.ts';
import { createOrm, type Orm } from '../../tenancy/orm.ts';
import { provisionTenant } from '../../tenancy/provision.ts';
import { loadTenantMigrations } from '../../tenancy/templates.ts';
import {
  TenantNotFoundError,
  TenantSuspendedError,
  TenantUnavailableError,
} from '../../tenancy/tenancy-errors.ts';
import type { TenantRow } from '../../tenancy/tenant-sql.ts';
import { TenantContext } from '../../tenancy/unit-of-work.ts';
import { NoteSchema } from '../../tenancy/workspace-entities.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';

const migrations = loadTenantMigrations();

describe('TenantContext.run (unit of work)', () => {
  let db: TestDatabase;
  let orm: Orm;
  let ctx: TenantContext;
  let a: TenantRow;
  let b: TenantRow;
  const others: TenantRow[] = [];

  before(async () => {
    db = await createTestDatabase();
    a = await provisionTenant(db.pool, { displayName: 'A' }, migrations);
    b = await provisionTenant(db.pool, { displayName: 'B' }, migrations);
    for (let i = 0; i < 6; i++)
      others.push(await provisionTenant(db.pool, { displayName: `O${i}` }, migrations));
    // A pool of 2 connections: every unit of work reuses a connection another tenant just had.
    const created = await createOrm(db.url, 2);
    orm = created.orm;
    // Hundreds of units of work queue here on a pool of 2: let them wait for their turn as long as it takes.
    ctx = new TenantContext(orm, created.pool, { cacheMs: 0, turnWaitMs: 60_000 });
    await ctx.run(b.id, (uow) => uow.query("INSERT INTO notes (title) VALUES ('secret of B')"));
  });
  after(async () => {
    await orm.close();
    await db.drop();
  });

  test('gives a MikroORM fork bound to the tenant schema, inside one transaction', async () => {
    const note = await ctx.run(a.id, async (uow) => {
      const n = uow.em.create(NoteSchema, { title: 'first', body: 'hello', tags: ['x'] });
      await uow.em.flush();
      return n;
    });
    assert.equal(note.version, 1);
    const rows = await db.pool.query(`SELECT title FROM ${a.schema_name}.notes`);
    assert.deepEqual(rows.rows, [{ title: 'first' }]);
    const count = await ctx.run(a.id, (uow) => uow.em.count(NoteSchema));
    assert.equal(count, 1);
  });

  test('audit events commit with the change, as the application role, and vanish with a rollback', async () => {
    const inbox = async () =>
      (
        await db.pool.query(
          'SELECT action, tenant_id, actor_type, details FROM control.audit_inbox WHERE tenant_id = $1 ORDER BY id',
          [a.id],
        )
      ).rows;
    const before = (await inbox()).length;
    await ctx.run(a.id, async (uow) => {
      const n = uow.em.create(NoteSchema, { title: 'audited', body: '', tags: [] });
      uow.audit({
        actor: { type: 'user', id: 'u1' },
        action: 'note.create',
        resource: { type: 'note' },
        outcome: 'success',
        details: { title: 'audited', password: 'never-stored' },
      });
      return n;
    });
    const rows = await inbox();
    assert.equal(rows.length, before + 1);
    assert.equal(rows.at(-1).action, 'note.create');
    assert.equal(rows.at(-1).details.password, '[redacted]');
    const note = await db.pool.query(`SELECT title FROM ${a.schema_name}.notes WHERE title = 'audited'`);
    assert.equal(note.rowCount, 1, 'the entity was flushed before the role was dropped');

    await assert.rejects(
      ctx.run(a.id, async (uow) => {
        uow.audit({ actor: { type: 'user', id: 'u1' }, action: 'note.delete', outcome: 'success' });
        throw new Error('changed my mind');
      }),
    );
    assert.equal((await inbox()).length, before + 1, 'no event for a rolled-back change');
    await assert.rejects(
      ctx.run(a.id, (uow) =>
        uow.query(
          "INSERT INTO control.audit_inbox (actor_type, action, outcome) VALUES ('system', 'forged', 'success')",
        ),
      ),
      PermissionDeniedError,
    );
  });

  test('query takes a statement with $n placeholders, in any order and repeated, and the isolation asked for', async () => {
    const [row] = await ctx.run(
      a.id,
      (uow) =>
        uow.query<{ x: string; y: string; level: string }>({
          text: "SELECT $2::text || $1::text AS x, $1::text AS y, current_setting('transaction_isolation') AS level",
          values: ['a', 'b'],
        }),
      { isolation: 'repeatable read' },
    );
    assert.deepEqual(row, { x: 'ba', y: 'a', level: 'repeatable read' });
    await assert.rejects(
      ctx.run(a.id, (uow) => uow.query({ text: 'SELECT $2::text', values: ['only one'] })),
      RangeError,
    );
  });

  test('a unit of work that throws rolls back everything it did', async () => {
    await assert.rejects(
      ctx.run(a.id, async (uow) => {
        await uow.query("INSERT INTO notes (title) VALUES ('rolled back')");
        throw new Error('handler failed');
      }),
      /handler failed/,
    );
    const rows = await db.pool.query(
      `SELECT count(*)::int AS n FROM ${a.schema_name}.notes WHERE title = 'rolled back'`,
    );
    assert.equal(rows.rows[0].n, 0);
  });

  describe('isolation is enforced by PostgreSQL, not by our code', () => {
    const attacks: Array<[string, (bSchema: string) => string]> = [
      ["reading another tenant's notes", (s) => `SELECT * FROM ${s}.notes`],
      ["writing another tenant's notes", (s) => `INSERT INTO ${s}.notes (title) VALUES ('pwned')`],
      ["updating another tenant's notes", (s) => `UPDATE ${s}.notes SET title = 'pwned'`],
      ["deleting another tenant's tasks", (s) => `DELETE FROM ${s}.tasks`],
      ['creating a table in public', () => 'CREATE TABLE public.loot (id int)'],
      [
        'creating a table in its own schema (DDL is for migrations only)',
        () => 'CREATE TABLE notes_copy (id int)',
      ],
      ['reading the control plane', () => 'SELECT * FROM control.tenants'],
      ['writing the control plane', () => "UPDATE control.tenants SET state = 'active'"],
      ['reading the migration ledger', () => 'SELECT * FROM control.tenant_migrations'],
      ['writing the shared reference data', () => "UPDATE reference.tag_palette SET color = '#000000'"],
    ];
    for (const [what, statement] of attacks) {
      test(`${what} is refused with permission denied`, async () => {
        await assert.rejects(
          ctx.run(a.id, (uow) => uow.query(statement(b.schema_name))),
          (err: unknown) => err instanceof PermissionDeniedError && err.code === '42501',
        );
      });
    }
    test('the shared reference data is readable', async () => {
      const rows = await ctx.run(a.id, (uow) =>
        uow.query<{ name: string }>('SELECT name FROM reference.tag_palette'),
      );
      assert.ok(rows.length > 0);
    });
    test("B's data is unchanged after all of A's attempts", async () => {
      const rows = await db.pool.query(`SELECT title FROM ${b.schema_name}.notes`);
      assert.deepEqual(rows.rows, [{ title: 'secret of B' }]);
    });
  });

  test('hundreds of interleaved units of work on a pool of 2 each see only their own tenant, also after one threw', async () => {
    const tenants = [a, b, ...others];
    const N = 400;
    const failsByDesign = (i: number) => i % 7 === 3;
    // Each other tenant gets a different number of notes, so a unit of work
    // that reads another tenant's table gives a different count.
    for (const [k, t] of others.entries()) {
      await ctx.run(t.id, (uow) =>
        uow.query(`INSERT INTO notes (title) SELECT 'n' || g FROM generate_series(1, ${k + 2}) AS g`),
      );
    }
    // What each tenant holds, read independently (as the owner of the cluster, by qualified name).
    const notesOf = new Map<string, number>();
    for (const t of tenants) {
      const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM ${t.schema_name}.notes`);
      notesOf.set(t.id, rows[0].n);
    }
    assert.ok(
      new Set(notesOf.values()).size >= tenants.length - 1,
      `tenants tell apart by notes: ${[...notesOf.values()]}`,
    );

    const settled = await Promise.allSettled(
      Array.from({ length: N }, (_, i) => {
        const t = tenants[i % tenants.length] as TenantRow;
        return ctx.run(t.id, async (uow) => {
          const [row] = await uow.query<{ role: string; path: string }>(
            "SELECT current_user AS role, current_setting('search_path') AS path",
          );
          // Unqualified: resolved through search_path.
          const [count] = await uow.query<{ n: number }>('SELECT count(*)::int AS n FROM notes');
          if (failsByDesign(i)) throw new Error(`boom ${i}`);
          return { role: row?.role, path: row?.path, notes: count?.n };
        });
      }),
    );

    // Exactly the units of work made to throw did, with their own error; all the others returned.
    let threw = 0;
    const returnedPerTenant = new Map<string, number>();
    for (const [i, outcome] of settled.entries()) {
      const t = tenants[i % tenants.length] as TenantRow;
      if (failsByDesign(i)) {
        assert.equal(outcome.status, 'rejected', `unit of work ${i} was made to throw`);
        assert.equal((outcome as PromiseRejectedResult).reason?.message, `boom ${i}`);
        threw += 1;
        continue;
      }
      assert.equal(
        outcome.status,
        'fulfilled',
        `unit of work ${i}: ${(outcome as PromiseRejectedResult).reason}`,
      );
      const seen = (outcome as PromiseFulfilledResult<{ role?: string; path?: string; notes?: number }>)
        .value;
      assert.deepEqual(
        seen,
        { role: t.role_name, path: `"${t.schema_name}"`, notes: notesOf.get(t.id) },
        `unit of work ${i} (tenant ${t.id})`,
      );
      returnedPerTenant.set(t.id, (returnedPerTenant.get(t.id) ?? 0) + 1);
    }
    // i % 7 === 3 holds for i = 3, 10, ..., 395: 57 of the 400.
    assert.equal(threw, 57);
    assert.equal(settled.filter((o) => o.status === 'fulfilled').length, 343);
    // Every tenant ran: 400 over 8 tenants is 50 each, less those that threw.
    for (const [k, t] of tenants.entries()) {
      let expected = 0;
      for (let i = k; i < N; i += tenants.length) if (!failsByDesign(i)) expected += 1;
      assert.equal(returnedPerTenant.get(t.id), expected, `units of work that returned for tenant ${k}`);
    }
  });

  test('after a unit of work the pooled connection is back to the application role and default search_path', async () => {
    await Promise.all([a, b, a, b].map((t) => ctx.run(t.id, (uow) => uow.query('SELECT 1'))));
    const conn = orm.em.getConnection();
    // Several at once, so that both pooled connections are checked.
    const rows = await Promise.all(
      Array.from({ length: 4 }, () =>
        conn.execute<{ role: string; path: string }[]>(
          "SELECT current_user AS role, current_setting('search_path') AS path, pg_sleep(0.02)",
        ),
      ),
    );
    for (const [row] of rows) {
      assert.doesNotMatch(row?.role ?? '', /^t_/);
      assert.doesNotMatch(row?.path ?? '', /t_/);
    }
  });

  test('an unknown or malformed tenant id is refused before any tenant query', async () => {
    await assert.rejects(
      ctx.run('zzzzzzzzzzzz', async () => 'ran'),
      TenantNotFoundError,
    );
    await assert.rejects(
      ctx.run("a'; DROP SCHEMA x; --", async () => 'ran'),
      TenantNotFoundError,
    );
  });

  test('a suspended, archived or deleted tenant is refused with a typed error', async () => {
    const t = await provisionTenant(db.pool, { displayName: 'Lifecycle' }, migrations);
    await setTenantState(db.pool, t.id, 'suspended');
    await assert.rejects(
      ctx.run(t.id, async () => 'ran'),
      TenantSuspendedError,
    );
    await setTenantState(db.pool, t.id, 'archived');
    await assert.rejects(
      ctx.run(t.id, async () => 'ran'),
      (e: unknown) => e instanceof TenantUnavailableError && e.state === 'archived',
    );
    await setTenantState(db.pool, t.id, 'active');
    assert.equal(await ctx.run(t.id, async () => 'ran'), 'ran');
    await dropTenant(db.pool, t.id);
    await assert.rejects(
      ctx.run(t.id, async () => 'ran'),
      (e: unknown) => e instanceof TenantUnavailableError && e.state === 'deleted',
    );
  });

  test('suspension takes effect within the state cache time', async () => {
    const t = await provisionTenant(db.pool, { displayName: 'Cached' }, migrations);
    const cached = new TenantContext(orm, (await orm.em.getConnection().getNativeClient()) as never, {
      cacheMs: 300,
    });
    assert.equal(await cached.run(t.id, async () => 'ran'), 'ran');
    await setTenantState(db.pool, t.id, 'suspended');
    await sleep(350);
    await assert.rejects(
      cached.run(t.id, async () => 'ran'),
      TenantSuspendedError,
    );
  });

  test('last_active_at is written once per interval, not on every unit of work', async () => {
    const t = await provisionTenant(db.pool, { displayName: 'Busy' }, migrations);
    const busy = new TenantContext(orm, (await orm.em.getConnection().getNativeClient()) as never, {
      cacheMs: 0,
      touchIntervalSeconds: 3600,
    });
    const stamp = async () =>
      (await db.pool.query('SELECT last_active_at FROM control.tenants WHERE id = $1', [t.id])).rows[0]
        .last_active_at;
    assert.equal(await stamp(), null);
    await busy.run(t.id, (uow) => uow.query('SELECT 1'));
    let first: Date | null = null;
    for (let i = 0; i < 50 && !first; i++) {
      await sleep(10);
      first = await stamp();
    }
    assert.ok(first instanceof Date, 'the first unit of work marks the tenant active');
    for (let i = 0; i < 20; i++) await busy.run(t.id, (uow) => uow.query('SELECT 1'));
    await sleep(50);
    assert.deepEqual(await stamp(), first);
  });

  describe('sqlOnly (a read on the pg client, BEGIN and the binding in one round trip)', () => {
    test('runs in one transaction as the tenant role, with search_path and time limits transaction-local', async () => {
      const rows = await ctx.run(
        a.id,
        async (uow) => {
          const [first] = await uow.query<{ xid: string; role: string; path: string; timeout: string }>(
            "SELECT pg_current_xact_id()::text AS xid, current_user AS role, current_setting('search_path') AS path, current_setting('statement_timeout') AS timeout",
          );
          const [second] = await uow.query<{ xid: string; level: string; titles: string[] }>({
            text: "SELECT pg_current_xact_id()::text AS xid, current_setting('transaction_isolation') AS level, array(SELECT title FROM notes WHERE title <> $1 ORDER BY id) AS titles",
            values: ['none'],
          });
          return { first, second };
        },
        { sqlOnly: true, isolation: 'repeatable read' },
      );
      assert.equal(rows.first?.role, a.role_name);
      assert.equal(rows.first?.path, `"${a.schema_name}"`);
      assert.equal(rows.first?.timeout, '5s');
      assert.equal(rows.second?.xid, rows.first?.xid, 'both statements ran in one transaction');
      assert.equal(rows.second?.level, 'repeatable read');
      assert.ok(!rows.second?.titles.includes('secret of B'), "B's notes are out of A's reach");
      // Nothing of the binding survives COMMIT on the pooled connections.
      const conn = orm.em.getConnection();
      const after = await Promise.all(
        Array.from({ length: 4 }, () =>
          conn.execute<{ role: string; path: string; timeout: string }[]>(
            "SELECT current_user AS role, current_setting('search_path') AS path, current_setting('statement_timeout') AS timeout, pg_sleep(0.02)",
          ),
        ),
      );
      for (const [row] of after) {
        assert.doesNotMatch(row?.role ?? '', /^t_/);
        assert.doesNotMatch(row?.path ?? '', /t_/);
        assert.notEqual(row?.timeout, '5s');
      }
    });

    test('the tenant role cannot leave its schema, a failure rolls back, and uow.em is refused', async () => {
      await assert.rejects(
        ctx.run(a.id, (uow) => uow.query(`SELECT * FROM ${b.schema_name}.notes`), { sqlOnly: true }),
        PermissionDeniedError,
      );
      await assert.rejects(
        ctx.run(
          a.id,
          async (uow) => {
            await uow.query("INSERT INTO notes (title) VALUES ('sql-only rolled back')");
            throw new Error('handler failed');
          },
          { sqlOnly: true },
        ),
        /handler failed/,
      );
      const left = await db.pool.query(
        `SELECT 1 FROM ${a.schema_name}.notes WHERE title = 'sql-only rolled back'`,
      );
      assert.equal(left.rowCount, 0);
      await assert.rejects(
        ctx.run(a.id, async (uow) => uow.em.count(NoteSchema), { sqlOnly: true }),
        /runs SQL only/,
      );
      // The pool of 2 still serves: no connection was lost on the way.
      const ok = await Promise.all(
        [a, b, a].map((t) => ctx.run(t.id, (uow) => uow.query('SELECT 1 AS one'), { sqlOnly: true })),
      );
      assert.deepEqual(ok, [[{ one: 1 }], [{ one: 1 }], [{ one: 1 }]]);
    });

    test('audit events commit with the read, written as the application role', async () => {
      const count = async () =>
        (
          await db.pool.query(
            "SELECT count(*)::int AS n FROM control.audit_inbox WHERE tenant_id = $1 AND action = 'workspace.read'",
            [a.id],
          )
        ).rows[0].n as number;
      const before = await count();
      await ctx.run(
        a.id,
        async (uow) => {
          uow.audit({
            actor: { type: 'user', id: 'u1' },
            action: 'workspace.read',
            resource: { type: 'note' },
            outcome: 'success',
            details: {},
          });
          return uow.query('SELECT count(*) FROM notes');
        },
        { sqlOnly: true },
      );
      assert.equal(await count(), before + 1);
    });
  });
});
