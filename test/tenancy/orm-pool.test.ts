// The ORM's pool: named in pg_stat_activity, and its connections retired after
// CONNECTION_LIFETIME_SECONDS (a backend's catalog cache grows with every tenant it served).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CONNECTION_LIFETIME_SECONDS, createPool, type Pool } from '../../kernel/db.ts';
import { createOrm, type Orm } from '../../tenancy/orm.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';

let db: TestDatabase;
let orm: Orm;
let ormPool: Pool;
before(async () => {
  db = await createTestDatabase();
  ({ orm, pool: ormPool } = await createOrm(db.url, 2));
});
after(async () => {
  await orm?.close();
  await db?.drop();
});

describe('connection pools', () => {
  test("the ORM pool's connections are named enclave-orm and have a bounded lifetime", async () => {
    const { rows } = await ormPool.query<{ name: string }>('SELECT current_setting($1) AS name', [
      'application_name',
    ]);
    assert.equal(rows[0]?.name, 'enclave-orm');
    assert.equal(
      (ormPool as Pool & { options: { maxLifetimeSeconds?: number } }).options.maxLifetimeSeconds,
      CONNECTION_LIFETIME_SECONDS,
    );
  });

  test('the kernel pool has the same bounded lifetime', async () => {
    const pool = createPool(db.url, 1, 'enclave-test');
    try {
      assert.equal(
        (pool as Pool & { options: { maxLifetimeSeconds?: number } }).options.maxLifetimeSeconds,
        CONNECTION_LIFETIME_SECONDS,
      );
      assert.ok(CONNECTION_LIFETIME_SECONDS > 0 && CONNECTION_LIFETIME_SECONDS <= 3600);
    } finally {
      await pool.end();
    }
  });
});
