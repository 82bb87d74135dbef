import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { NotFoundError, ValidationError } from '../../../server/app-errors.ts';
import {
  DeleteQuery,
  NoteCreate,
  NoteListQuery,
  NoteUpdate,
  parse,
  parseId,
  SearchQuery,
  TaskCreate,
  TaskUpdate,
} from '../../../server/workspace/validation.ts';

const refuses = (schema: Parameters<typeof parse>[0], input: unknown, message: RegExp) =>
  assert.throws(
    () => parse(schema, input),
    (err: unknown) => err instanceof ValidationError && message.test(err.message),
    JSON.stringify(input)?.slice(0, 80),
  );

describe('workspace input schemas', () => {
  test('a note is normalised: title trimmed, tags lower-cased and unique, defaults filled', () => {
    assert.deepEqual(parse(NoteCreate, { title: '  Hi ', tags: ['Work', 'work', ' idea '] }), {
      title: 'Hi',
      body: '',
      tags: ['work', 'idea'],
    });
  });

  test('unknown fields are refused, not ignored', () => {
    refuses(NoteCreate, { title: 'x', tilte: 'y' }, /unknown field tilte/);
    refuses(NoteUpdate, { version: 1, title: 'x', createdAt: 'now' }, /unknown field createdAt/);
    refuses(TaskCreate, { title: 'x', done: true }, /unknown field done/);
  });

  test('size limits on every string and array', () => {
    refuses(NoteCreate, { title: 'x'.repeat(501) }, /at most 500/);
    assert.equal(parse(NoteCreate, { title: 'x'.repeat(500) }).title.length, 500);
    refuses(NoteCreate, { title: 'x', body: 'b'.repeat(100_001) }, /at most 100000/);
    assert.equal(parse(NoteCreate, { title: 'x', body: 'b'.repeat(100_000) }).body.length, 100_000);
    refuses(
      NoteCreate,
      { title: 'x', tags: Array.from({ length: 21 }, (_, i) => `t${i}`) },
      /at most 20 tags/,
    );
    refuses(NoteCreate, { title: 'x', tags: ['a'.repeat(41)] }, /at most 40/);
    refuses(NoteCreate, { title: 'x', tags: ['-leading'] }, /tag/);
    refuses(NoteCreate, { title: 'x', tags: ['ünï'] }, /tag/);
    refuses(NoteCreate, { title: 'x\u0000' }, /NUL/);
    refuses(SearchQuery, { q: 'q'.repeat(201) }, /at most 200/);
    refuses(SearchQuery, { q: '   ' }, /type something/);
  });

  test('a lone UTF-16 surrogate in any text is refused as invalid characters, before anything is written', () => {
    for (const bad of ['\ud800', 'a\udfffb', 'end \ud83d', '\udc00\ud800']) {
      refuses(NoteCreate, { title: bad }, /title: contains invalid characters/);
      refuses(NoteCreate, { title: 'x', body: bad }, /body: contains invalid characters/);
      refuses(NoteUpdate, { version: 1, title: bad }, /title: contains invalid characters/);
      refuses(NoteUpdate, { version: 1, body: bad }, /body: contains invalid characters/);
      refuses(TaskCreate, { title: bad }, /title: contains invalid characters/);
      refuses(TaskUpdate, { version: 1, title: bad }, /title: contains invalid characters/);
      refuses(SearchQuery, { q: bad }, /q: contains invalid characters/);
      refuses(NoteCreate, { title: 'x', tags: [bad] }, /tags\.0: a tag is/);
    }
    // A whole pair is a character like any other.
    assert.equal(parse(NoteCreate, { title: 'smile \ud83d\ude42', body: '\ud83d\ude42' }).title, 'smile 🙂');
  });

  test('an update needs its version and at least one change', () => {
    refuses(NoteUpdate, { title: 'x' }, /version: required/);
    refuses(NoteUpdate, { version: 1 }, /nothing to change/);
    refuses(NoteUpdate, { version: 0, title: 'x' }, /version/);
    refuses(NoteUpdate, { version: 1.5, title: 'x' }, /version/);
    refuses(TaskUpdate, { version: 1 }, /nothing to change/);
    assert.deepEqual(parse(TaskUpdate, { version: 3, dueDate: null }), { version: 3, dueDate: null });
  });

  test('due dates are real calendar dates', () => {
    assert.equal(parse(TaskCreate, { title: 'x', dueDate: '2028-02-29' }).dueDate, '2028-02-29');
    refuses(TaskCreate, { title: 'x', dueDate: '2027-02-29' }, /not a calendar date/);
    refuses(TaskCreate, { title: 'x', dueDate: '2027-13-01' }, /not a calendar date/);
    refuses(TaskCreate, { title: 'x', dueDate: '0001-01-01' }, /not a calendar date/);
    refuses(TaskCreate, { title: 'x', dueDate: '2027-1-1' }, /YYYY-MM-DD/);
  });

  test('query strings: defaults, numbers from text, unknown and repeated parameters refused', () => {
    assert.deepEqual(parse(NoteListQuery, {}, 'query'), { limit: 50, sort: 'updated_desc' });
    assert.deepEqual(parse(NoteListQuery, { limit: '7', sort: 'title_asc', tag: 'Work' }, 'query'), {
      limit: 7,
      sort: 'title_asc',
      tag: 'work',
    });
    refuses(NoteListQuery, { limit: '101' }, /at most 100/);
    refuses(NoteListQuery, { limit: '-1' }, /whole number/);
    refuses(NoteListQuery, { tag: ['a', 'b'] }, /tag/);
    refuses(NoteListQuery, { page: '2' }, /unknown field page/);
    assert.deepEqual(parse(DeleteQuery, { version: '4' }, 'query'), { version: 4 });
    refuses(DeleteQuery, { version: 'latest' }, /version/);
  });

  test('issues list every problem with its path', () => {
    try {
      parse(TaskCreate, { title: '', status: 'later', extra: 1 });
      assert.fail('should have thrown');
    } catch (err) {
      assert.ok(err instanceof ValidationError);
      const paths = err.issues.map((i) => i.path).sort();
      assert.deepEqual(paths, ['', 'status', 'title']);
    }
  });

  test('ids: only positive safe integers; anything else is not found', () => {
    assert.equal(parseId('42', 'note'), 42);
    assert.equal(parseId('9007199254740991', 'note'), 9007199254740991);
    for (const raw of [
      'abc',
      '-1',
      '1.5',
      '0',
      '01',
      '1e3',
      ' 1',
      '99999999999999999999',
      '9007199254740993',
      '',
      undefined,
    ]) {
      assert.throws(() => parseId(raw, 'note'), NotFoundError, String(raw));
    }
  });
});
