import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ident } from '../../kernel/identifiers.ts';
import { migrateFleet } from '../../tenancy/fleet-migrate.ts';
import { createOrm } from '../../tenancy/orm.ts';
import { provisionTenant } from '../../tenancy/provision.ts';
import { loadTenantMigrations } from '../../tenancy/templates.ts';
import type { TenantRow } from '../../tenancy/tenant-sql.ts';
import { TenantContext } from '../../tenancy/unit-of-work.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';
import { migrationsDirWith } from '../helpers/migrations.ts';

const shipped = loadTenantMigrations();
const ARCHIVE_FLAG = 'ALTER TABLE {{schema}}.notes ADD COLUMN archived boolean NOT NULL DEFAULT false;\n';
const PINNED = 'ALTER TABLE {{schema}}.notes ADD COLUMN pinned boolean NOT NULL DEFAULT false;\n';
const oneMore = migrationsDirWith({ archive_flag: ARCHIVE_FLAG });
const plusOne = loadTenantMigrations(oneMore.dir);
const twoMore = migrationsDirWith({
  archive_flag: ARCHIVE_FLAG,
  // Slow on purpose, so that a kill lands in the middle of the run.
  pinned: `SELECT pg_sleep(0.02);\n${PINNED}`,
});
const plusTwo = loadTenantMigrations(twoMore.dir);
/** The shipped version, and the versions the extra migrations bring. */
const V = { shipped: oneMore.shipped, plusOne: oneMore.latest, plusTwo: twoMore.latest };

const FLEET = 200;

async function versions(db: TestDatabase): Promise<Map<number, number>> {
  const { rows } = await db.pool.query(
    "SELECT schema_version AS v, count(*)::int AS n FROM control.tenants WHERE state = 'active' GROUP BY 1",
  );
  return new Map(rows.map((r) => [r.v, r.n]));
}

async function duplicateLedgerRows(db: TestDatabase): Promise<number> {
  const { rows } = await db.pool.query(
    `SELECT count(*)::int AS n FROM (SELECT tenant_id, version FROM control.tenant_migrations
      WHERE outcome = 'applied' GROUP BY 1, 2 HAVING count(*) > 1) d`,
  );
  return rows[0].n;
}

describe('migrateFleet over 200 tenants', () => {
  let db: TestDatabase;
  let tenants: TenantRow[];
  let broken: TenantRow;

  before(async () => {
    db = await createTestDatabase(10);
    tenants = [];
    for (let i = 0; i < FLEET; i++)
      tenants.push(await provisionTenant(db.pool, { displayName: `Tenant ${i}` }, shipped));
    broken = tenants[57] as TenantRow;
  });
  after(async () => {
    await db.drop();
  });

  test('a run with nothing to apply visits no tenant', async () => {
    const summary = await migrateFleet(db.pool, shipped, { concurrency: 4 });
    assert.equal(summary.pending, 0);
    assert.equal(summary.migrated, 0);
    assert.equal(summary.skipped, FLEET);
    assert.equal(summary.outcomes.length, 0);
  });

  test('one failing tenant is reported, stays at its old version and keeps serving; the other 199 migrate', async () => {
    // Make exactly one tenant fail: the column the migration adds is already there, with another type.
    await db.pool.query(`ALTER TABLE ${ident(broken.schema_name)}.notes ADD COLUMN archived integer`);
    const progress: number[] = [];
    const summary = await migrateFleet(db.pool, plusOne, {
      concurrency: 8,
      onProgress: (p) => progress.push(p.done),
    });
    assert.equal(summary.migrated, FLEET - 1);
    assert.equal(summary.failed, 1);
    assert.equal(progress.length, FLEET);
    const failure = summary.outcomes.find((o) => o.status === 'failed');
    assert.equal(failure?.tenantId, broken.id);
    assert.equal(failure?.migration, oneMore.names.archive_flag);
    assert.match(failure?.error ?? '', /already exists/);
    assert.deepEqual(
      await versions(db),
      new Map([
        [V.plusOne, FLEET - 1],
        [V.shipped, 1],
      ]),
    );

    const ledger = await db.pool.query(
      'SELECT outcome, error FROM control.tenant_migrations WHERE tenant_id = $1 AND version = $2',
      [broken.id, V.plusOne],
    );
    assert.equal(ledger.rows.length, 1);
    assert.equal(ledger.rows[0].outcome, 'failed');

    // Still serving at the shipped version through the normal unit of work.
    const { orm, pool } = await createOrm(db.url, 2);
    try {
      const ctx = new TenantContext(orm, pool, { cacheMs: 0 });
      const titles = await ctx.run(broken.id, async (uow) => {
        await uow.query({ text: 'INSERT INTO notes (title) VALUES ($1)', values: ['still here'] });
        return uow.query<{ title: string }>('SELECT title FROM notes');
      });
      assert.deepEqual(titles, [{ title: 'still here' }]);
    } finally {
      await orm.close();
    }
  });

  test('a rerun after the fix finishes the failed tenant and touches no other', async () => {
    await db.pool.query(`ALTER TABLE ${ident(broken.schema_name)}.notes DROP COLUMN archived`);
    const summary = await migrateFleet(db.pool, plusOne, { concurrency: 8 });
    assert.equal(summary.pending, 1);
    assert.equal(summary.migrated, 1);
    assert.equal(summary.skipped, FLEET - 1);
    assert.deepEqual(await versions(db), new Map([[V.plusOne, FLEET]]));
    assert.equal(await duplicateLedgerRows(db), 0);
  });

  test('a run killed with SIGKILL midway, then rerun, ends with every tenant current and no duplicate ledger rows', async () => {
    const child = spawn(
      process.execPath,
      ['bin/enclave.js', 'tenants', 'migrate', '--concurrency', '4', '--json'],
      {
        env: { ...process.env, DATABASE_URL: db.url, TENANT_MIGRATIONS_DIR: twoMore.dir },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const exited = new Promise<number | null>((resolve) =>
      child.on('exit', (_code, signal) => resolve(signal ? -1 : _code)),
    );
    let done = 0;
    for (let i = 0; i < 600 && done < 30; i++) {
      await sleep(20);
      done = (
        await db.pool.query('SELECT count(*)::int AS n FROM control.tenants WHERE schema_version = $1', [
          V.plusTwo,
        ])
      ).rows[0].n;
    }
    child.kill('SIGKILL');
    assert.equal(await exited, -1);
    const partial = await versions(db);
    assert.ok(
      (partial.get(V.plusTwo) ?? 0) >= 30 && (partial.get(V.plusTwo) ?? 0) < FLEET,
      `killed midway: ${[...partial]}`,
    );

    const summary = await migrateFleet(db.pool, plusTwo, { concurrency: 8 });
    assert.equal(summary.failed, 0);
    assert.equal(summary.migrated, FLEET - (partial.get(V.plusTwo) ?? 0));
    assert.deepEqual(await versions(db), new Map([[V.plusTwo, FLEET]]));
    assert.equal(await duplicateLedgerRows(db), 0);
    const applied = await db.pool.query(
      "SELECT count(*)::int AS n FROM control.tenant_migrations WHERE version = $1 AND outcome = 'applied'",
      [V.plusTwo],
    );
    assert.equal(applied.rows[0].n, FLEET);
  });
});

describe('migrateFleet control', () => {
  let db: TestDatabase;
  before(async () => {
    db = await createTestDatabase(10);
    for (let i = 0; i < 24; i++) await provisionTenant(db.pool, { displayName: `T${i}` }, shipped);
  });
  after(async () => {
    await db.drop();
  });

  test('an aborted run stops taking tenants, says how many are left, and a rerun finishes them', async () => {
    const abort = new AbortController();
    const first = await migrateFleet(db.pool, plusOne, {
      concurrency: 2,
      signal: abort.signal,
      onProgress: (p) => {
        if (p.done === 5) abort.abort();
      },
    });
    assert.equal(first.interrupted, true);
    assert.ok(first.notStarted > 0 && first.migrated >= 5, JSON.stringify({ ...first, outcomes: [] }));
    const second = await migrateFleet(db.pool, plusOne, { concurrency: 2 });
    assert.equal(second.migrated, first.notStarted);
    assert.deepEqual(await versions(db), new Map([[V.plusOne, 24]]));
  });

  test('two rollouts racing each other migrate every tenant exactly once', async () => {
    const [a, b] = await Promise.all([
      migrateFleet(db.pool, plusTwo, { concurrency: 3 }),
      migrateFleet(db.pool, plusTwo, { concurrency: 3 }),
    ]);
    assert.equal(a.migrated + b.migrated, 24);
    assert.equal(a.failed + b.failed, 0);
    assert.equal(await duplicateLedgerRows(db), 0);
    assert.deepEqual(await versions(db), new Map([[V.plusTwo, 24]]));
  });

  test('a chosen list of tenants migrates only those, sequentially with concurrency 1', async () => {
    const threeMore = migrationsDirWith({
      archive_flag: ARCHIVE_FLAG,
      pinned: PINNED,
      color: "ALTER TABLE {{schema}}.notes ADD COLUMN color text NOT NULL DEFAULT 'none';\n",
    });
    const plusThree = loadTenantMigrations(threeMore.dir);
    const { rows } = await db.pool.query('SELECT id FROM control.tenants ORDER BY id LIMIT 3');
    const ids = rows.map((r) => r.id);
    const summary = await migrateFleet(db.pool, plusThree, { concurrency: 1, tenantIds: ids });
    assert.deepEqual(summary.outcomes.map((o) => o.tenantId).sort(), [...ids].sort());
    assert.equal(summary.migrated, 3);
    assert.deepEqual(
      await versions(db),
      new Map([
        [threeMore.latest, 3],
        [V.plusTwo, 21],
      ]),
    );
  });
});
