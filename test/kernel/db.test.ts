import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { retryingTransaction } from '../../kernel/db.ts';
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
