import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { InvalidInputError } from '../../../kernel/errors.ts';
import {
  after,
  decodeCursor,
  encodeCursor,
  type KeysetSort,
  orderBy,
  page,
} from '../../../server/workspace/pagination.ts';

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

  test('values out of range are refused at decode, before they reach PostgreSQL (which answered 500)', () => {
    const rank: KeysetSort = { name: 'rank', column: 'rank', type: 'number', direction: 'desc' };
    const cursorOf = (sort: KeysetSort, key: unknown, id: unknown = 1) =>
      Buffer.from(JSON.stringify([sort.name, key, id]), 'utf8').toString('base64url');
    const bad: Array<[KeysetSort, unknown, unknown?]> = [
      [rank, '1e400'],
      [rank, '-1e400'],
      [rank, '1e-400'],
      [rank, '9'.repeat(400)],
      [rank, 'NaN'],
      [rank, 'Infinity'],
      [updated, '2026-13-45T10:00:00.000000Z'],
      [updated, '2026-02-30T10:00:00.000000Z'],
      [updated, '2026-02-29T10:00:00.000000Z'],
      [updated, '2026-00-10T10:00:00.000000Z'],
      [updated, '2026-01-01T24:00:00.000000Z'],
      [updated, '2026-01-01T23:60:00.000000Z'],
      [updated, '2026-01-01T23:59:60.000000Z'],
      [updated, '0000-01-01T00:00:00.000000Z'],
      [due, '2026-02-30'],
      [due, '2027-02-29'],
      [due, '2026-13-01'],
      [due, '2026-04-31'],
      [title, '\ud800'],
      [title, 'a\udc00b'],
      [title, 'x'.repeat(601)],
      [updated, '2026-11-22T17:12:22.123456Z', 2 ** 53],
      [updated, '2026-11-22T17:12:22.123456Z', -1],
    ];
    for (const [sort, key, id] of bad) {
      assert.throws(
        () => decodeCursor(cursorOf(sort, key, id), sort),
        (err: unknown) => err instanceof InvalidInputError && /This cursor is not valid/.test(err.message),
        `${sort.name} ${String(key).slice(0, 30)} ${String(id)}`,
      );
    }
    // JSON numbers JavaScript reads as Infinity or rounds: not ids.
    for (const raw of [
      '["updated_desc","2026-11-22T17:12:22.123456Z",1e400]',
      '["updated_desc","2026-11-22T17:12:22.123456Z",9007199254740993]',
    ]) {
      assert.throws(
        () => decodeCursor(Buffer.from(raw).toString('base64url'), updated),
        InvalidInputError,
        raw,
      );
    }
    // Real values at the edges still pass.
    const good: Array<[KeysetSort, string]> = [
      [rank, '0'],
      [rank, '0.0e-5'],
      [rank, '1.0607927'],
      [rank, '6.079271e-05'],
      [updated, '2028-02-29T23:59:59.999999Z'],
      [updated, '2026-12-31T00:00:00.000000Z'],
      [due, '2028-02-29'],
      [title, 'Ünïcödé 🙂'],
    ];
    for (const [sort, key] of good)
      assert.deepEqual(decodeCursor(cursorOf(sort, key, 7), sort), { key, id: 7 });
  });

  test('the condition compares (key, id) in the direction of the sort, with values as parameters', () => {
    assert.deepEqual(after(updated, undefined), { sql: 'TRUE', params: [] });
    assert.deepEqual(after(updated, { key: 'k', id: 5 }), {
      sql: '(updated_at, id) < ($1::timestamptz, $2::bigint)',
      params: ['k', 5],
    });
    assert.deepEqual(after(title, { key: 'k', id: 5 }).sql, '(title, id) > ($1::text, $2::bigint)');
    assert.deepEqual(after(title, { key: 'k', id: 5 }, 3).sql, '(title, id) > ($3::text, $4::bigint)');
  });

  test('nullable keys sort last: after a dated row come later dates, then undated ones', () => {
    assert.deepEqual(after(due, { key: '2027-01-01', id: 5 }), {
      sql: '((due_date, id) > ($1::date, $2::bigint) OR due_date IS NULL)',
      params: ['2027-01-01', 5],
    });
    assert.deepEqual(after(due, { key: null, id: 5 }), {
      sql: '(due_date IS NULL AND id > $1)',
      params: [5],
    });
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
