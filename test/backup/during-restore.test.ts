import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { backupTenant } from '../../backup/backup.ts';
import { restoreTenant } from '../../backup/restore.ts';
import { ident } from '../../kernel/identifiers.ts';
import { createOrm, type Orm } from '../../tenancy/orm.ts';
import { provisionTenant } from '../../tenancy/provision.ts';
import { loadTenantMigrations } from '../../tenancy/templates.ts';
import { TenantContext } from '../../tenancy/unit-of-work.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';
import { ADMIN, type Fixture, fill, fixture } from './fixture.ts';

const migrations = loadTenantMigrations();

describe('during an in-place restore', () => {
  let db: TestDatabase;
  let f: Fixture;
  let orm: Orm;
  let uow: TenantContext;

  before(async () => {
    db = await createTestDatabase(6);
    f = fixture(db.pool, migrations);
    const created = await createOrm(db.url, 4);
    orm = created.orm;
    uow = new TenantContext(orm, created.pool, { cacheMs: 0, turnWaitMs: 30_000 });
  });
  after(async () => {
    await orm.close();
    await db.drop();
    f.cleanup();
  });

  test('units of work reading the tenant never fail, and the first one after the commit sees the restored data', async () => {
    const t = await provisionTenant(db.pool, { displayName: 'Serving' }, migrations);
    await fill(db.pool, t.schema_name, 10);
    const backup = await backupTenant(f.ctx, t.id, { by: ADMIN, kind: 'manual' });
    await db.pool.query(`DELETE FROM ${ident(t.schema_name)}.tasks`);
    await db.pool.query(`UPDATE ${ident(t.schema_name)}.notes SET title = 'current'`);

    const read = () =>
      uow.run(t.id, async (u) => {
        const [notes] = await u.query<{ n: number; current: number }>(
          "SELECT count(*)::int AS n, count(*) FILTER (WHERE title = 'current')::int AS current FROM notes",
        );
        const [tasks] = await u.query<{ n: number }>('SELECT count(*)::int AS n FROM tasks');
        const [used] = await u.query<{ bytes: string }>('SELECT storage_used()::text AS bytes');
        return { notes: notes?.n, current: notes?.current, tasks: tasks?.n, used: used?.bytes };
      });
    const old = await read();
    assert.deepEqual(old.current, 9);
    assert.equal(old.tasks, 0);

    let committed = false;
    let stop = false;
    const errors: unknown[] = [];
    const seen: { old: number; restored: number; afterCommitOld: number } = {
      old: 0,
      restored: 0,
      afterCommitOld: 0,
    };
    const loop = async () => {
      while (!stop) {
        const startedAfterCommit = committed;
        try {
          const r = await read();
          if (r.current === 9) {
            seen.old++;
            if (startedAfterCommit) seen.afterCommitOld++;
          } else seen.restored++;
        } catch (err) {
          errors.push(err);
        }
        await sleep(2);
      }
    };
    const loops = [loop(), loop(), loop()];
    await sleep(50);
    await restoreTenant(
      f.ctx,
      () => f.ctx.storage.open(backup.location as string),
      { tenantId: t.id },
      {
        by: ADMIN,
        // Slow steps: reads run against the tenant at every step of the restore.
        hooks: {
          afterStep: async (step) => {
            if (step === 'committed') committed = true;
            else await sleep(40);
          },
        },
      },
    );
    await sleep(100);
    stop = true;
    await Promise.all(loops);

    assert.deepEqual(errors, []);
    assert.ok(seen.old > 10, `reads kept working during the restore (${seen.old})`);
    assert.ok(seen.restored > 0);
    assert.equal(seen.afterCommitOld, 0, 'no read that started after the commit saw the old data');
    const now = await read();
    assert.equal(now.current, 0);
    assert.equal(now.tasks, 19);
    assert.notEqual(now.used, old.used);
  });

  test('a request that holds one set-aside table and asks for another while the restore drains: both go through', async () => {
    const t = await provisionTenant(db.pool, { displayName: 'Crossing' }, migrations);
    await fill(db.pool, t.schema_name, 5);
    const backup = await backupTenant(f.ctx, t.id, { by: ADMIN, kind: 'manual' });
    const s = ident(t.schema_name);
    const request = await db.pool.connect();
    try {
      await request.query('BEGIN');
      await request.query(`SELECT count(*) FROM ${s}.tasks`); // holds tasks (the restore locks notes first)
      let drained = false;
      const restore = restoreTenant(
        f.ctx,
        () => f.ctx.storage.open(backup.location as string),
        { tenantId: t.id },
        {
          by: ADMIN,
          hooks: {
            afterStep: (step) => {
              if (step === 'drained') drained = true;
            },
          },
        },
      );
      // Wait until the restore holds notes and waits for tasks.
      for (let i = 0; ; i++) {
        const waiting = (
          await db.pool.query(
            "SELECT count(*)::int AS n FROM pg_locks WHERE NOT granted AND mode = 'AccessExclusiveLock' AND relation = $1::regclass",
            [`${s}.tasks`],
          )
        ).rows[0].n;
        if (waiting) break;
        assert.ok(i < 200, 'the restore never came to drain');
        await sleep(25);
      }
      assert.equal(drained, false);
      // Now the request wants notes: a deadlock, which the restore breaks by stepping back.
      const n = (await request.query(`SELECT count(*)::int AS n FROM ${s}.notes`)).rows[0].n;
      assert.equal(n, 4);
      await request.query('COMMIT');
      const result = await restore;
      assert.equal(result.tenantId, t.id);
      assert.equal(drained, true);
    } finally {
      request.release();
    }
  });
});
