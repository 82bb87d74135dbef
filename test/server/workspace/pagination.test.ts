import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  after,
  decodeCursor,
  encodeCursor,
  type KeysetSort,
  orderBy,
  page,
} from '../../../server/workspace/pagination.ts';
import { InvalidInputError } from '../../../tenancy/errors.ts';

const updated: KeysetSort = {
  name: 'updated_desc',
  column: 'updated_at',
  type: 'timestamp',
  direction: 'desc',
};
const title: KeysetSort = { name: 'title_asc', column: 'title', type: 'text', direction: 'asc' };
const due: KeysetSort = {
  name: 'due_asc',
  column: 'due_date',
  type: 'date',
  direction: 'asc',
  nullable: true,
};

describe('keyset cursors', () => {
  test('round-trip: what is encoded is what is decoded', () => {
    const key = '2026-11-22T17:12:22.123456Z';
    assert.deepEqual(decodeCursor(encodeCursor(updated, key, 42), updated), { key, id: 42 });
    const odd = 'Ünïcödé "quotes" \\ and \n newline';
    assert.deepEqual(decodeCursor(encodeCursor(title, odd, 7), title), { key: odd, id: 7 });
    assert.deepEqual(decodeCursor(encodeCursor(due, null, 3), due), { key: null, id: 3 });
  });

  test('cursors are opaque url-safe text', () => {
    assert.match(encodeCursor(title, 'a/b+c?d', 1), /^[A-Za-z0-9_-]+$/);
  });

  test('a cursor of another sort order is refused', () => {
    const cursor = encodeCursor(title, 'abc', 1);
    assert.throws(() => decodeCursor(cursor, updated), /another sort order/);
  });

  test('tampered or malformed cursors are a 400 (InvalidInputError), never a crash', () => {
    const bad = [
      'not base64!',
      '',
      Buffer.from('not json').toString('base64url'),
      Buffer.from('{"a":1}').toString('base64url'),
      Buffer.from('["updated_desc","2026-01-01",1]').toString('base64url'),
      Buffer.from('["updated_desc","2026-11-22T17:12:22.123456Z",0]').toString('base64url'),
      Buffer.from('["updated_desc","2026-11-22T17:12:22.123456Z",1.5]').toString('base64url'),
      Buffer.from('["updated_desc","2026-11-22T17:12:22.123456Z","1"]').toString('base64url'),
      Buffer.from('["updated_desc",null,1]').toString('base64url'),
      Buffer.from('["updated_desc","\'; DROP TABLE notes; --",1]').toString('base64url'),
      'A'.repeat(9000),
    ];
    for (const raw of bad)
      assert.throws(() => decodeCursor(raw, updated), InvalidInputError, raw.slice(0, 40));
  });

  test('the condition compares (key, id) in the direction of the sort, with values as parameters', () => {
    assert.deepEqual(after(updated, undefined), { sql: 'TRUE', params: [] });
    assert.deepEqual(after(updated, { key: 'k', id: 5 }), {
      sql: '(updated_at, id) < (?::timestamptz, ?::bigint)',
      params: ['k', 5],
    });
    assert.deepEqual(after(title, { key: 'k', id: 5 }).sql, '(title, id) > (?::text, ?::bigint)');
  });

  test('nullable keys sort last: after a dated row come later dates, then undated ones', () => {
    assert.deepEqual(after(due, { key: '2027-01-01', id: 5 }), {
      sql: '((due_date, id) > (?::date, ?::bigint) OR due_date IS NULL)',
      params: ['2027-01-01', 5],
    });
    assert.deepEqual(after(due, { key: null, id: 5 }), { sql: '(due_date IS NULL AND id > ?)', params: [5] });
    assert.equal(orderBy(due), 'due_date ASC NULLS LAST, id ASC');
    assert.equal(
      orderBy(updated),
      'updated_at DESC, id DESC',
      'matches the (updated_at DESC, id DESC) index',
    );
  });

  test('page: a next cursor only when an extra row came back, pointing at the last row shown', () => {
    const rows = [1, 2, 3].map((id) => ({ id, sortKey: `2026-11-22T17:12:22.00000${id}Z` }));
    assert.deepEqual(page(rows, 3, updated), { rows, nextCursor: null });
    const two = page(rows, 2, updated);
    assert.deepEqual(two.rows, rows.slice(0, 2));
    assert.deepEqual(decodeCursor(two.nextCursor as string, updated), { key: rows[1]?.sortKey, id: 2 });
  });
});
