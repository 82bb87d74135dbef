// What a TenantContext remembers per tenant (the state cache and the
// last_active_at throttle) stays at TENANT_CACHE_SIZE however many tenants a
// process serves (docs/OPERATIONS.md, "Instance-local state").
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTenantState } from '../../tenancy/lifecycle.ts';
import { createOrm, type Orm } from '../../tenancy/orm.ts';
import { provisionTenant } from '../../tenancy/provision.ts';
import { loadTenantMigrations } from '../../tenancy/templates.ts';
import { TenantSuspendedError } from '../../tenancy/tenancy-errors.ts';
import type { TenantRow } from '../../tenancy/tenant-sql.ts';
import { TenantContext } from '../../tenancy/unit-of-work.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';

const migrations = loadTenantMigrations();
const BOUND = 3;

describe('TenantContext: per-tenant memory is bounded', () => {
  let db: TestDatabase;
  let orm: Orm;
  const tenants: TenantRow[] = [];

  before(async () => {
    db = await createTestDatabase();
    for (let i = 0; i < BOUND + 4; i++)
      tenants.push(await provisionTenant(db.pool, { displayName: `C${i}` }, migrations));
    orm = (await createOrm(db.url, 2)).orm;
  });
  after(async () => {
    await orm.close();
    await db.drop();
  });

  const context = async () =>
    new TenantContext(orm, (await orm.em.getConnection().getNativeClient()) as never, {
      cacheMs: 60_000,
      cacheEntries: BOUND,
    });

  test('serving more tenants than cacheEntries keeps states and touches at cacheEntries', async () => {
    const ctx = await context();
    for (const [i, t] of tenants.entries()) {
      assert.equal(await ctx.run(t.id, async () => 'ran'), 'ran');
      const n = Math.min(i + 1, BOUND);
      assert.deepEqual(ctx.remembered, { states: n, touches: n }, `after ${i + 1} tenants`);
    }
    // Again, in another order: still at the bound.
    for (const t of [...tenants].reverse()) await ctx.run(t.id, async () => 'ran');
    assert.deepEqual(ctx.remembered, { states: BOUND, touches: BOUND });
  });

  test('a tenant pushed out of the cache is read again on its next request: its suspension is seen then', async () => {
    const ctx = await context();
    const [first, ...rest] = tenants;
    assert.ok(first);
    await ctx.run(first.id, async () => 'ran');
    await setTenantState(db.pool, first.id, 'suspended');
    // Still cached: served as active (TENANT_CACHE_MS is what bounds a suspension's delay).
    assert.equal(await ctx.run(first.id, async () => 'ran'), 'ran');
    for (const t of rest.slice(0, BOUND)) await ctx.run(t.id, async () => 'ran');
    await assert.rejects(
      ctx.run(first.id, async () => 'ran'),
      TenantSuspendedError,
    );
    await setTenantState(db.pool, first.id, 'active');
  });

  test('cacheMs 0 caches nothing', async () => {
    const ctx = new TenantContext(orm, (await orm.em.getConnection().getNativeClient()) as never, {
      cacheMs: 0,
      cacheEntries: BOUND,
    });
    for (const t of tenants) await ctx.run(t.id, async () => 'ran');
    assert.equal(ctx.remembered.states, 0);
  });

  test('cacheEntries below 1 is refused', async () => {
    const pool = (await orm.em.getConnection().getNativeClient()) as never;
    assert.throws(() => new TenantContext(orm, pool, { cacheMs: 1, cacheEntries: 0 }), RangeError);
  });
});
