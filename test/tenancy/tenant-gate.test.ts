import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createOrm, type Orm } from '../../tenancy/orm.ts';
import { provisionTenant } from '../../tenancy/provision.ts';
import { loadTenantMigrations } from '../../tenancy/templates.ts';
import { TenantBusyError } from '../../tenancy/tenancy-errors.ts';
import { TenantGate } from '../../tenancy/tenant-gate.ts';
import type { TenantRow } from '../../tenancy/tenant-sql.ts';
import { TenantContext } from '../../tenancy/unit-of-work.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';

/** A promise and the function that settles it. */
function gate(): { opened: Promise<void>; open: () => void } {
  let open = () => {};
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { opened, open };
}

describe('a fair share per tenant (TENANT_MAX_CONCURRENT)', () => {
  let db: TestDatabase;
  let orm: Orm;
  let ctx: TenantContext;
  let a: TenantRow;
  let b: TenantRow;

  before(async () => {
    db = await createTestDatabase();
    const migrations = loadTenantMigrations();
    a = await provisionTenant(db.pool, { displayName: 'Busy' }, migrations);
    b = await provisionTenant(db.pool, { displayName: 'Quiet' }, migrations);
    const created = await createOrm(db.url, 6);
    orm = created.orm;
    ctx = new TenantContext(orm, created.pool, { cacheMs: 0, maxConcurrentPerTenant: 2, turnWaitMs: 300 });
  });
  after(async () => {
    await orm.close();
    await db.drop();
  });

  test('one tenant runs at most its share of units of work at once; the rest wait their turn', async () => {
    const release = gate();
    let inside = 0;
    let most = 0;
    const order: number[] = [];
    const runs = [0, 1, 2].map((i) =>
      ctx.run(a.id, async (uow) => {
        order.push(i);
        inside++;
        most = Math.max(most, inside);
        await uow.query('SELECT 1');
        await release.opened;
        inside--;
        return i;
      }),
    );
    // Wait until two are inside (resolving the tenant takes a query each), then give the third time to slip in.
    for (const deadline = Date.now() + 10_000; order.length < 2 && Date.now() < deadline; ) await sleep(10);
    await sleep(200);
    const entered = order.length;
    release.open();
    assert.deepEqual(await Promise.all(runs), [0, 1, 2]);
    assert.equal(entered, 2, 'only two entered; the third waited');
    assert.equal(most, 2);
    assert.deepEqual([...order].sort(), [0, 1, 2]);
  });

  /** `n` units of work of tenant A, all inside and waiting for `release`. */
  async function holdTurns(n: number) {
    const release = gate();
    let inside = 0;
    const held = Array.from({ length: n }, () =>
      ctx.run(a.id, () => {
        inside++;
        return release.opened;
      }),
    );
    for (const deadline = Date.now() + 10_000; inside < n && Date.now() < deadline; ) await sleep(10);
    assert.equal(inside, n, `${n} units of work are inside`);
    return { release, held };
  }

  test('another tenant is not held up while one has its share running', async () => {
    const { release, held } = await holdTurns(2);
    const quiet = await ctx.run(b.id, async (uow) => uow.query<{ n: number }>('SELECT 1 AS n'));
    assert.deepEqual(quiet, [{ n: 1 }]);
    release.open();
    await Promise.all(held);
  });

  test('a unit of work that finds no turn in time is refused with TenantBusyError and runs nothing', async () => {
    const { release, held } = await holdTurns(2);
    let ran = false;
    await assert.rejects(
      ctx.run(a.id, async () => {
        ran = true;
      }),
      TenantBusyError,
    );
    assert.equal(ran, false);
    release.open();
    await Promise.all(held);
    // The turns are free again.
    assert.equal(await ctx.run(a.id, async () => 'ok'), 'ok');
  });

  test('a unit of work that throws gives its turn back', async () => {
    for (let i = 0; i < 5; i++) {
      await assert.rejects(
        ctx.run(a.id, async () => {
          throw new Error('boom');
        }),
        /boom/,
      );
    }
    const results = await Promise.all([0, 1].map(() => ctx.run(a.id, async () => 'free')));
    assert.deepEqual(results, ['free', 'free']);
  });
});

describe('TenantGate', () => {
  test('keeps no entry for a tenant with nothing running or waiting (bounded by the work in flight)', async () => {
    const g = new TenantGate(1, 1000);
    for (let i = 0; i < 100; i++) await g.through(`t${i}`, async () => i);
    for (let i = 0; i < 100; i++) assert.equal(g.running(`t${i}`), 0);
    const release = gate();
    const held = g.through('x', () => release.opened);
    assert.equal(g.running('x'), 1);
    release.open();
    await held;
    assert.equal(g.running('x'), 0);
  });

  test('0 means no limit', async () => {
    const g = new TenantGate(0, 0);
    const release = gate();
    const runs = Array.from({ length: 20 }, () => g.through('x', () => release.opened));
    release.open();
    await Promise.all(runs);
  });
});
