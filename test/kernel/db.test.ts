import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { begin, retryingTransaction, transaction } from '../../kernel/db.ts';
import { DatabaseError } from '../../kernel/errors.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';

const RAISE = (code: string) => `DO $$ BEGIN RAISE EXCEPTION 'injected' USING ERRCODE = '${code}'; END $$`;

describe('retryingTransaction', () => {
  let db: TestDatabase;
  before(async () => {
    db = await createTestDatabase(2);
    await db.pool.query('CREATE TABLE public.attempts (n int)');
  });
  after(async () => {
    await db.drop();
  });

  test('runs the whole transaction again after a deadlock, keeping only the successful attempt', async () => {
    let calls = 0;
    const result = await retryingTransaction(db.pool, async (client) => {
      calls++;
      await client.query('INSERT INTO public.attempts VALUES ($1)', [calls]);
      if (calls === 1) await client.query(RAISE('40P01'));
      return calls;
    });
    assert.equal(result, 2);
    const { rows } = await db.pool.query('SELECT n FROM public.attempts');
    assert.deepEqual(rows, [{ n: 2 }]);
  });

  test('does not retry other errors, and gives up after the last attempt', async () => {
    let calls = 0;
    await assert.rejects(
      retryingTransaction(db.pool, async (client) => {
        calls++;
        await client.query(RAISE('23505'));
      }),
      (err: unknown) => err instanceof DatabaseError && err.code === '23505',
    );
    assert.equal(calls, 1);
    calls = 0;
    await assert.rejects(
      retryingTransaction(
        db.pool,
        async (client) => {
          calls++;
          await client.query(RAISE('40001'));
        },
        3,
      ),
      (err: unknown) => err instanceof DatabaseError && err.code === '40001',
    );
    assert.equal(calls, 3);
  });
});

describe('transaction options', () => {
  let db: TestDatabase;
  before(async () => {
    db = await createTestDatabase(2);
    await db.pool.query('CREATE TABLE public.kept (n int)');
  });
  after(async () => {
    await db.drop();
  });

  test('the BEGIN carries isolation and access mode', () => {
    assert.equal(begin(), 'BEGIN');
    assert.equal(begin({ isolation: 'repeatable read' }), 'BEGIN ISOLATION LEVEL REPEATABLE READ');
    assert.equal(
      begin({ isolation: 'serializable', readOnly: true }),
      'BEGIN ISOLATION LEVEL SERIALIZABLE, READ ONLY',
    );
    assert.equal(begin({ readOnly: true }), 'BEGIN READ ONLY');
  });

  test('the transaction runs with the isolation and access mode asked for', async () => {
    const read = (options: Parameters<typeof transaction>[2]) =>
      transaction(
        db.pool,
        async (client) =>
          (
            await client.query<{ i: string; r: string }>(
              "SELECT current_setting('transaction_isolation') AS i, current_setting('transaction_read_only') AS r",
            )
          ).rows[0],
        options,
      );
    assert.deepEqual(await read({}), { i: 'read committed', r: 'off' });
    assert.deepEqual(await read({ isolation: 'repeatable read', readOnly: true }), {
      i: 'repeatable read',
      r: 'on',
    });
    await assert.rejects(
      transaction(db.pool, (client) => client.query('INSERT INTO public.kept VALUES (1)'), {
        readOnly: true,
      }),
      (err: unknown) => err instanceof DatabaseError && err.code === '25006',
    );
  });

  test('rollback: true returns the result and keeps nothing', async () => {
    const result = await transaction(
      db.pool,
      async (client) => {
        await client.query('INSERT INTO public.kept VALUES (2)');
        return (await client.query<{ n: number }>('SELECT count(*)::int AS n FROM public.kept')).rows[0]?.n;
      },
      { rollback: true },
    );
    assert.equal(result, 1);
    assert.equal((await db.pool.query('SELECT * FROM public.kept')).rowCount, 0);
  });
});
