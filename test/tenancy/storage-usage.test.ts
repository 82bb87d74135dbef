// The storage count of tenant migration 0004: exact after any mix of writes,
// initialised from what a workspace already holds, enforcing the quota a
// transaction sets, race-free, and out of the tenant role's reach.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { DatabaseError, PermissionDeniedError } from '../../kernel/errors.ts';
import { ident } from '../../kernel/identifiers.ts';
import { migrateFleet } from '../../tenancy/fleet-migrate.ts';
import { createOrm, type Orm } from '../../tenancy/orm.ts';
import { provisionTenant } from '../../tenancy/provision.ts';
import { loadTenantMigrations } from '../../tenancy/templates.ts';
import type { TenantRow } from '../../tenancy/tenant-sql.ts';
import { TenantContext, type UnitOfWork } from '../../tenancy/unit-of-work.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';

const migrations = loadTenantMigrations();
const usageMigration = migrations.find((m) => m.name.endsWith('_storage_usage'));
if (!usageMigration) throw new Error('no storage_usage migration');
const beforeUsage = migrations.filter((m) => m.version < usageMigration.version);

const setQuota = (uow: UnitOfWork, bytes: number) =>
  uow.query({ text: "SELECT set_config('enclave.tenant_quota_bytes', $1, true)", values: [String(bytes)] });

describe('storage usage (tenant migration 0004)', () => {
  let db: TestDatabase;
  let orm: Orm;
  let ctx: TenantContext;
  let tenant: TenantRow;

  before(async () => {
    db = await createTestDatabase(4);
    const created = await createOrm(db.url, 8);
    orm = created.orm;
    ctx = new TenantContext(orm, created.pool, { cacheMs: 0 });
    tenant = await provisionTenant(db.pool, { displayName: 'Counted' }, migrations);
  });
  after(async () => {
    await orm.close();
    await db.drop();
  });

  /** The count as the test computes it from the rows, independently of the migration's functions. */
  const recount = async (t: TenantRow): Promise<number> => {
    const s = ident(t.schema_name);
    const { rows } = await db.pool.query(
      `SELECT (SELECT coalesce(sum(100 + octet_length(title) + octet_length(body) + coalesce(octet_length(html), 0)
                                   + coalesce(octet_length(array_to_string(tags, '')), 0)), 0) FROM ${s}.notes)
            + (SELECT coalesce(sum(100 + octet_length(title)), 0) FROM ${s}.tasks) AS n`,
    );
    return Number(rows[0].n);
  };
  const stored = async (t: TenantRow): Promise<number> =>
    Number((await db.pool.query(`SELECT bytes FROM ${ident(t.schema_name)}.storage_usage`)).rows[0].bytes);
  const noteCount = async (t: TenantRow): Promise<number> =>
    Number((await db.pool.query(`SELECT count(*) AS n FROM ${ident(t.schema_name)}.notes`)).rows[0].n);

  test('the migration counts what a workspace already holds', async () => {
    const older = await provisionTenant(db.pool, { displayName: 'Older' }, beforeUsage);
    await ctx.run(older.id, async (uow) => {
      await uow.query({
        text: 'INSERT INTO notes (title, body, tags) VALUES ($1, $2, $3::text[])',
        values: ['Grüße', 'é'.repeat(300), '{a,bc}'],
      });
      await uow.query({
        text: 'INSERT INTO notes (title, body, html) VALUES ($1, $2, $3)',
        values: ['with html', 'x', '<p>x</p>\n'],
      });
      await uow.query({ text: 'INSERT INTO tasks (title) VALUES ($1), ($2)', values: ['one', '二つ'] });
    });
    const summary = await migrateFleet(db.pool, migrations, { concurrency: 1, tenantIds: [older.id] });
    assert.equal(summary.failed, 0);
    const expected = await recount(older);
    // 4 rows at 100 bytes; text in UTF-8 bytes: Grüße 7, é×300 600, tags "abc" 3,
    // "with html" 9, "x" 1, its HTML 9, "one" 3, 二つ 6.
    assert.equal(expected, 4 * 100 + 7 + 600 + 3 + 9 + 1 + 9 + 3 + 6);
    assert.equal(await stored(older), expected);
  });

  test('every insert, update and delete keeps the count exact', async () => {
    assert.equal(await stored(tenant), 0);
    const steps: Array<[string, (uow: UnitOfWork) => Promise<unknown>]> = [
      [
        'insert notes',
        (uow) =>
          uow.query("INSERT INTO notes (title, body, tags) VALUES ('a', 'body', '{x,y}'), ('b', '', '{}')"),
      ],
      [
        'insert tasks, one linked',
        (uow) => uow.query("INSERT INTO tasks (title, note_id) SELECT 'task ' || title, id FROM notes"),
      ],
      ['grow a body', (uow) => uow.query("UPDATE notes SET body = repeat('ü', 1000) WHERE title = 'a'")],
      ['store html', (uow) => uow.query("UPDATE notes SET html = '<p>' || body || '</p>' WHERE title = 'a'")],
      ['shrink tags', (uow) => uow.query("UPDATE notes SET tags = '{}' WHERE title = 'a'")],
      ['change nothing that counts', (uow) => uow.query('UPDATE notes SET version = version + 1')],
      ['move a task', (uow) => uow.query("UPDATE tasks SET status = 'done'")],
      [
        'delete a linked note (its task is unlinked)',
        (uow) => uow.query("DELETE FROM notes WHERE title = 'a'"),
      ],
      ['delete tasks', (uow) => uow.query("DELETE FROM tasks WHERE title LIKE 'task b%'")],
      [
        'delete everything',
        (uow) => uow.query('DELETE FROM tasks').then(() => uow.query('DELETE FROM notes')),
      ],
    ];
    for (const [name, step] of steps) {
      await ctx.run(tenant.id, step);
      assert.equal(await stored(tenant), await recount(tenant), name);
    }
    assert.equal(await stored(tenant), 0, 'an empty workspace uses nothing');
  });

  test('with a quota set, a write that would go over it is refused with EQ413 and leaves nothing', async () => {
    await ctx.run(tenant.id, (uow) => uow.query("INSERT INTO notes (title, body) VALUES ('base', 'x')"));
    const used = await stored(tenant);
    const notes = await noteCount(tenant);
    const err = await ctx
      .run(tenant.id, async (uow) => {
        await setQuota(uow, used + 500);
        await uow.query({
          text: 'INSERT INTO notes (title, body) VALUES ($1, $2)',
          values: ['big', 'y'.repeat(1000)],
        });
      })
      .then(
        () => assert.fail('the write should have been refused'),
        (e: unknown) => e,
      );
    assert.ok(err instanceof DatabaseError);
    assert.equal(err.code, 'EQ413');
    const detail = JSON.parse(String((err.cause as { detail?: unknown }).detail));
    assert.deepEqual(detail, { usedBytes: used, quotaBytes: used + 500, neededBytes: 100 + 3 + 1000 });
    assert.equal(await stored(tenant), used);
    assert.equal(await noteCount(tenant), notes);

    // Exactly up to the quota fits.
    await ctx.run(tenant.id, async (uow) => {
      await setQuota(uow, used + 500);
      await uow.query({
        text: 'INSERT INTO notes (title, body) VALUES ($1, $2)',
        values: ['fits', 'z'.repeat(500 - 100 - 4)],
      });
    });
    assert.equal(await stored(tenant), used + 500);
  });

  test('a change that does not grow the total passes even over the quota', async () => {
    await ctx.run(tenant.id, async (uow) => {
      await setQuota(uow, 1);
      await uow.query("UPDATE notes SET body = 'short' WHERE title = 'fits'");
      await uow.query("UPDATE notes SET version = version + 1 WHERE title = 'fits'");
      await uow.query("DELETE FROM notes WHERE title = 'base'");
    });
    assert.equal(await stored(tenant), await recount(tenant));
    await assert.rejects(
      ctx.run(tenant.id, async (uow) => {
        await setQuota(uow, 1);
        await uow.query("UPDATE notes SET body = 'longer than before' WHERE title = 'fits'");
      }),
      (e: unknown) => e instanceof DatabaseError && e.code === 'EQ413',
    );
  });

  test('concurrent writes cannot both take the last free bytes', async () => {
    const used = await stored(tenant);
    const quota = used + 1500; // room for one 1,000-byte note, not two
    const results = await Promise.allSettled(
      Array.from({ length: 6 }, (_, i) =>
        ctx.run(tenant.id, async (uow) => {
          await setQuota(uow, quota);
          await uow.query({
            text: 'INSERT INTO notes (title, body) VALUES ($1, $2)',
            values: [`racer ${i}`, 'r'.repeat(900)],
          });
        }),
      ),
    );
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    for (const r of results) {
      if (r.status === 'rejected') assert.equal((r.reason as DatabaseError).code, 'EQ413');
    }
    assert.ok((await stored(tenant)) <= quota);
    assert.equal(await stored(tenant), await recount(tenant));
  });

  test('the tenant role cannot change the count, switch it off, or read more than the total', async () => {
    const used = await stored(tenant);
    const denied = [
      'UPDATE storage_usage SET bytes = 0',
      'DELETE FROM storage_usage',
      'INSERT INTO storage_usage (id, bytes) VALUES (2, 0)',
      'SELECT * FROM storage_usage',
      'ALTER TABLE notes DISABLE TRIGGER notes_count_storage',
      'DROP TRIGGER tasks_count_storage ON tasks',
      'SELECT count_storage()',
      'CREATE OR REPLACE FUNCTION storage_used() RETURNS bigint LANGUAGE sql RETURN 0',
    ];
    for (const statement of denied) {
      await assert.rejects(
        ctx.run(tenant.id, (uow) => uow.query(statement)),
        (e: unknown) => e instanceof PermissionDeniedError,
        statement,
      );
    }
    const [row] = await ctx.run(tenant.id, (uow) =>
      uow.query<{ used: string }>('SELECT storage_used() AS used'),
    );
    assert.equal(Number(row?.used), used);
    // The quota setting is the application's: a tenant role that raised it would still be counted.
    await ctx.run(tenant.id, (uow) => uow.query("INSERT INTO tasks (title) VALUES ('counted')"));
    assert.equal(await stored(tenant), used + 100 + 7);
  });
});
