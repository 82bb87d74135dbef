// Bad input at every workspace route, API and pages: each string field and
// query parameter gets the classes that answered 500 before (a lone UTF-16
// surrogate, which the audit trail's jsonb refuses; a NUL; cursors whose values
// are out of range for PostgreSQL) and the usual wrong types. Each must be a
// 400 with a message, nothing may be written or audited, and nothing may be
// logged as an error. Real PostgreSQL and Redis.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type request from 'supertest';
import { NOTE_SORTS, TASK_SORTS } from '../../../server/workspace/validation.ts';
import { csrfOf, HTML } from '../../helpers/http.ts';
import { settle } from '../../helpers/log.ts';
import { type SignedIn, signUp, startTestServer, type TestServer } from '../../helpers/server.ts';

/** Values a text field must refuse, with what the message says. */
const BAD_TEXT: Array<[string, unknown, RegExp]> = [
  ['a lone high surrogate', '\ud800', /contains invalid characters/],
  ['a lone low surrogate between letters', 'ab\udc00cd', /contains invalid characters/],
  ['a reversed pair', '\udc00\ud800', /contains invalid characters/],
  ['a NUL', 'a\u0000b', /NUL/],
  ['an object', { $gt: '' }, /./],
  ['an array', ['x'], /./],
  ['a number', 42, /./],
  ['null', null, /./],
];

/** A cursor as the API makes them, with any values in it. */
const cursorOf = (sort: string, key: unknown, id: unknown = 1) =>
  Buffer.from(JSON.stringify([sort, key, id]), 'utf8').toString('base64url');

/** Out-of-range keys for a sort of each key type; each reached PostgreSQL and answered 500 before. */
function badKeys(sort: string): unknown[] {
  if (sort === 'rank') return ['1e400', '-1e400', '1e-400'];
  if (sort.startsWith('due_')) return ['2026-02-30', '2026-13-45', '2027-02-29'];
  if (sort.startsWith('title_')) return ['\ud800', 'x\udfff'];
  return ['2026-13-45T10:00:00.000000Z', '2026-02-30T10:00:00.000000Z', '2026-01-01T24:00:00.000000Z'];
}

describe('workspace input fuzz: 400 with a message, never a 500, nothing written', () => {
  let t: TestServer;
  let a: SignedIn;
  let note: { id: number; version: number };
  let task: { id: number; version: number };
  let schema: string;

  before(async () => {
    t = await startTestServer();
    a = await signUp(t.url);
    const send = (path: string, body: object) => a.agent.post(path).set('X-CSRF-Token', a.csrf).send(body);
    note = (await send('/api/v1/notes', { title: 'target', body: 'text' }).expect(201)).body.note;
    task = (await send('/api/v1/tasks', { title: 'target', noteId: note.id }).expect(201)).body.task;
    schema = (
      await t.db.pool.query('SELECT schema_name FROM control.tenants WHERE id = $1', [a.user.tenantId])
    ).rows[0].schema_name;
  });
  after(async () => {
    await t.stop();
  });

  const snapshot = async () =>
    (
      await t.db.pool.query(
        `SELECT (SELECT json_agg(n ORDER BY id) FROM "${schema}".notes n) AS notes,
                (SELECT json_agg(k ORDER BY id) FROM "${schema}".tasks k) AS tasks,
                (SELECT count(*) FROM control.audit_inbox WHERE tenant_id = $1)::int AS events`,
        [a.user.tenantId],
      )
    ).rows[0];
  const errorLines = () => t.logs.lines().filter((l) => l.level === 'error');

  /** Every case must be a 400 naming the problem; checks the body's shape for the API and the page. */
  function expect400(res: request.Response, what: string, message: RegExp) {
    assert.equal(res.status, 400, `${what}: ${res.status} ${res.text.slice(0, 200)}`);
    if (res.type === 'application/json') {
      assert.equal(res.body.error.code, 'invalid_input', what);
      assert.match(res.body.error.message, message, what);
    } else {
      assert.match(res.text, message, what);
    }
  }

  test('every text field of the JSON API', async () => {
    const before = await snapshot();
    const routes: Array<[string, 'post' | 'patch', string, Record<string, unknown>, string[]]> = [
      ['create note', 'post', '/api/v1/notes', { title: 'ok' }, ['title', 'body', 'tags.0']],
      [
        'edit note',
        'patch',
        `/api/v1/notes/${note.id}`,
        { version: note.version },
        ['title', 'body', 'tags.0'],
      ],
      ['create task', 'post', '/api/v1/tasks', { title: 'ok' }, ['title', 'status', 'dueDate']],
      [
        'edit task',
        'patch',
        `/api/v1/tasks/${task.id}`,
        { version: task.version },
        ['title', 'status', 'dueDate'],
      ],
    ];
    for (const [name, method, path, base, fields] of routes) {
      for (const field of fields) {
        for (const [label, value, message] of BAD_TEXT) {
          if (value === null && (field === 'dueDate' || name.startsWith('edit'))) continue; // null is "no date"
          const body = field === 'tags.0' ? { ...base, tags: [value] } : { ...base, [field]: value };
          // Only text fields name "invalid characters"; enums and dates say what they take.
          const expected = field === 'title' || field === 'body' ? message : /./;
          const res = await a.agent[method](path).set('X-CSRF-Token', a.csrf).send(body);
          expect400(res, `${name} ${field} = ${label}`, expected);
        }
      }
    }
    assert.deepEqual(await snapshot(), before);
  });

  test('every query parameter of the JSON API', async () => {
    const before = await snapshot();
    const cases: Array<[string, RegExp]> = [
      ['/api/v1/notes?tag=a%00b', /tag/],
      ['/api/v1/notes?sort=%00', /sort/],
      ['/api/v1/notes?limit=%00', /limit/],
      ['/api/v1/notes?cursor=%00', /cursor/],
      ['/api/v1/notes?tag=a&tag=b', /tag/],
      ['/api/v1/tasks?status=%00', /status/],
      ['/api/v1/tasks?cursor=%ED%A0%80', /cursor/],
      ['/api/v1/search?q=a%00b', /NUL/],
      ['/api/v1/search?q=a&q=b', /q/],
      ['/api/v1/search?q=a&cursor=%F0', /cursor/],
    ];
    for (const [path, message] of cases) expect400(await a.agent.get(path), path, message);
    expect400(
      await a.agent.delete(`/api/v1/notes/${note.id}?version=%00`).set('X-CSRF-Token', a.csrf),
      'delete ?version=NUL',
      /version/,
    );
    assert.deepEqual(await snapshot(), before);
  });

  test('tampered cursors with out-of-range values, for every sort of every list, API and pages', async () => {
    const cursor = /This cursor is not valid/;
    const lists: Array<[string, readonly string[]]> = [
      ['/api/v1/notes?sort=', NOTE_SORTS],
      ['/api/v1/tasks?sort=', TASK_SORTS],
      ['/api/v1/search?q=target&x=', ['rank']],
    ];
    for (const [base, sorts] of lists) {
      for (const sort of sorts) {
        for (const key of badKeys(sort)) {
          const path = `${base.replace('&x=', '')}${base.endsWith('&x=') ? '' : sort}&cursor=${cursorOf(sort, key)}`;
          expect400(await a.agent.get(path), `${path} (${String(key)})`, cursor);
        }
        // An id out of range, in the cursor's JSON as a client could write it.
        const raw = Buffer.from(`["${sort}",null,1e400]`).toString('base64url');
        expect400(
          await a.agent.get(`${base.replace('&x=', '')}${base.endsWith('&x=') ? '' : sort}&cursor=${raw}`),
          `${sort} id 1e400`,
          cursor,
        );
      }
    }
    const pages: Array<[string, string]> = [
      ['/workspace/notes?sort=updated_desc&cursor=', 'updated_desc'],
      ['/workspace/notes?sort=title_asc&cursor=', 'title_asc'],
      ['/workspace/tasks?status=open&cursor=', 'due_asc'],
      ['/workspace/tasks?status=done&cursor=', 'updated_desc'],
      ['/workspace/search?q=target&cursor=', 'rank'],
    ];
    for (const [base, sort] of pages) {
      for (const key of badKeys(sort)) {
        const res = await a.agent.get(`${base}${cursorOf(sort, key)}`).set('Accept', HTML);
        expect400(res, `${base} (${String(key)})`, /This cursor is not valid/);
      }
    }
  });

  test('every text field of the page forms, posted as a form and as JSON', async () => {
    const before = await snapshot();
    const token = async (page: string) => {
      const res = await a.agent.get(page).set('Accept', HTML).expect(200);
      return csrfOf(res.text);
    };
    const forms: Array<[string, string, string, Record<string, string>, string[]]> = [
      [
        'new note',
        '/workspace/notes/new',
        '/workspace/notes',
        { title: 'ok', body: '' },
        ['title', 'body', 'otherTags'],
      ],
      [
        'edit note',
        `/workspace/notes/${note.id}/edit`,
        `/workspace/notes/${note.id}`,
        { title: 'ok', body: '', version: String(note.version) },
        ['title', 'body', 'otherTags'],
      ],
      [
        'new task',
        '/workspace/tasks/new',
        '/workspace/tasks',
        { title: 'ok', status: 'open' },
        ['title', 'status', 'dueDate'],
      ],
      [
        'edit task',
        `/workspace/tasks/${task.id}/edit`,
        `/workspace/tasks/${task.id}`,
        { title: 'ok', status: 'open', version: String(task.version) },
        ['title', 'status', 'dueDate'],
      ],
    ];
    for (const [name, page, action, base, fields] of forms) {
      const csrf = await token(page);
      for (const field of fields) {
        const text = field === 'title' || field === 'body';
        // A browser's form cannot carry a lone surrogate (UTF-8 has none); JSON can.
        for (const [label, value, message] of BAD_TEXT.filter(([, v]) => typeof v === 'string')) {
          const body = { _csrf: csrf, ...base, [field]: value as string };
          const json = await a.agent.post(action).set('Accept', HTML).send(body);
          expect400(json, `${name} ${field} = ${label} (JSON)`, text ? message : /./);
          if (label === 'a NUL') {
            const form = await a.agent.post(action).set('Accept', HTML).type('form').send(body);
            expect400(form, `${name} ${field} = ${label} (form)`, text ? message : /./);
          }
        }
      }
    }
    assert.deepEqual(await snapshot(), before);
  });

  test('none of it was logged as an error', async () => {
    await settle();
    assert.deepEqual(errorLines(), []);
  });
});
