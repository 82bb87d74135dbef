import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import { type SignedIn, signIn, signUp, startTestServer, type TestServer } from '../../helpers/server.ts';

interface InboxRow {
  id: string;
  actor_type: string;
  actor_id: string;
  action: string;
  resource_type: string;
  resource_id: string;
  outcome: string;
  request_id: string | null;
  ip: string | null;
  details: {
    changes: Record<string, { from: unknown; to: unknown }>;
    credentialId?: string;
    [k: string]: unknown;
  };
}

/** How a content field appears in the audit trail by default. */
const digest = (text: string) => ({
  length: text.length,
  sha256: createHash('sha256').update(text, 'utf8').digest('hex'),
});

describe('workspace JSON API', () => {
  let t: TestServer;
  let a: SignedIn;
  let b: SignedIn;

  before(async () => {
    t = await startTestServer();
    a = await signUp(t.url);
    b = await signUp(t.url);
  });
  after(async () => {
    await t.stop();
  });

  const send = (who: SignedIn, method: 'post' | 'patch' | 'delete', path: string, body?: unknown) => {
    const req = who.agent[method](path).set('X-CSRF-Token', who.csrf);
    return body === undefined ? req : req.send(body as object);
  };
  const createNote = async (who: SignedIn, note: Record<string, unknown>) =>
    (await send(who, 'post', '/api/v1/notes', note).expect(201)).body.note;
  const createTask = async (who: SignedIn, task: Record<string, unknown>) =>
    (await send(who, 'post', '/api/v1/tasks', task).expect(201)).body.task;

  /** The highest audit inbox id now: later rows are what an action wrote. */
  const mark = async () =>
    Number((await t.db.pool.query('SELECT coalesce(max(id), 0) AS m FROM control.audit_inbox')).rows[0].m);
  const inboxSince = async (since: number, who: SignedIn) =>
    (
      await t.db.pool.query<InboxRow>(
        `SELECT * FROM control.audit_inbox WHERE id > $1 AND tenant_id = $2 AND resource_type IN ('note', 'task') ORDER BY id`,
        [since, who.user.tenantId],
      )
    ).rows;

  describe('notes', () => {
    test('create, read, edit and delete, each change audited once with its fields', async () => {
      let m = await mark();
      const created = await send(a, 'post', '/api/v1/notes', {
        title: '  Shopping  ',
        body: 'eggs and *milk*',
        tags: ['Home', 'home', 'errands'],
      }).expect(201);
      const note = created.body.note;
      assert.equal(created.headers.location, `/api/v1/notes/${note.id}`);
      assert.equal(created.headers['cache-control'], 'no-store');
      assert.equal(note.title, 'Shopping', 'the title is trimmed');
      assert.deepEqual(note.tags, ['home', 'errands'], 'tags are lower-cased and unique');
      assert.equal(note.version, 1);
      assert.equal(note.html, '<p>eggs and <em>milk</em></p>\n');
      assert.equal(typeof note.id, 'number');
      let rows = await inboxSince(m, a);
      assert.equal(rows.length, 1);
      assert.equal(rows[0]?.action, 'note.create');
      assert.equal(rows[0]?.actor_type, 'user');
      assert.equal(rows[0]?.actor_id, a.user.id);
      assert.equal(rows[0]?.resource_id, String(note.id));
      assert.equal(rows[0]?.outcome, 'success');
      assert.ok(rows[0]?.request_id, 'the request id is recorded');
      // Content is recorded as length and SHA-256 (AUDIT_CONTENT=hash, the default).
      assert.deepEqual(rows[0]?.details.changes.title, { from: null, to: digest('Shopping') });

      const read = await a.agent.get(`/api/v1/notes/${note.id}`).expect(200);
      assert.deepEqual(read.body.note, note);

      m = await mark();
      const edited = await send(a, 'patch', `/api/v1/notes/${note.id}`, {
        version: 1,
        body: 'eggs, milk and bread',
      }).expect(200);
      assert.equal(edited.body.note.version, 2, 'the answer carries the new version');
      assert.equal(edited.body.note.title, 'Shopping');
      assert.equal(edited.body.note.body, 'eggs, milk and bread');
      rows = await inboxSince(m, a);
      assert.equal(rows.length, 1);
      assert.equal(rows[0]?.action, 'note.update');
      assert.deepEqual(rows[0]?.details.changes, {
        body: { from: digest('eggs and *milk*'), to: digest('eggs, milk and bread') },
      });

      m = await mark();
      const same = await send(a, 'patch', `/api/v1/notes/${note.id}`, {
        version: 2,
        title: 'Shopping',
      }).expect(200);
      assert.equal(same.body.note.version, 2, 'an edit that changes nothing keeps the version');
      assert.equal((await inboxSince(m, a)).length, 0, 'and is not a change to audit');

      m = await mark();
      await send(a, 'delete', `/api/v1/notes/${note.id}`).expect(204);
      await a.agent.get(`/api/v1/notes/${note.id}`).expect(404);
      rows = await inboxSince(m, a);
      assert.equal(rows.length, 1);
      assert.equal(rows[0]?.action, 'note.delete');
      assert.deepEqual(rows[0]?.details.changes.title, { from: digest('Shopping'), to: null });
    });

    test('a long body is audited by length and hash, not copied into the audit log', async () => {
      const m = await mark();
      const body = 'x'.repeat(5000);
      const note = await createNote(a, { title: 'long', body });
      const [row] = await inboxSince(m, a);
      const change = row?.details.changes.body as { from: unknown; to: { length: number; sha256: string } };
      assert.equal(change.to.length, 5000);
      assert.match(change.to.sha256, /^[0-9a-f]{64}$/);
      await send(a, 'delete', `/api/v1/notes/${note.id}?version=1`).expect(204);
    });

    test('DELETE with a stale ?version= is refused with 409 and deletes nothing', async () => {
      const note = await createNote(a, { title: 'keep me' });
      await send(a, 'patch', `/api/v1/notes/${note.id}`, { version: 1, title: 'keep me too' }).expect(200);
      const m = await mark();
      const res = await send(a, 'delete', `/api/v1/notes/${note.id}?version=1`).expect(409);
      assert.equal(res.body.error.code, 'version_conflict');
      assert.equal(res.body.error.details.current.version, 2);
      await a.agent.get(`/api/v1/notes/${note.id}`).expect(200);
      assert.equal((await inboxSince(m, a)).length, 0);
    });
  });

  describe('no silent overwrites', () => {
    test('two sessions edit one note: the second save gets 409 with the current note, and nothing is lost', async () => {
      const laptop = a;
      const phone = await signIn(t.url, a.email, a.password);
      const note = await createNote(laptop, { title: 'Plan', body: 'first draft' });
      const seenByPhone = (await phone.agent.get(`/api/v1/notes/${note.id}`).expect(200)).body.note;
      assert.equal(seenByPhone.version, 1);

      await send(laptop, 'patch', `/api/v1/notes/${note.id}`, { version: 1, body: 'laptop text' }).expect(
        200,
      );
      const m = await mark();
      const conflict = await send(phone, 'patch', `/api/v1/notes/${note.id}`, {
        version: seenByPhone.version,
        body: 'phone text',
        tags: ['phone'],
      }).expect(409);
      assert.equal(conflict.body.error.code, 'version_conflict');
      assert.match(conflict.body.error.message, /changed since you opened it/);
      const current = conflict.body.error.details.current;
      assert.equal(current.version, 2);
      assert.equal(current.body, 'laptop text', 'the conflict shows what is saved now');
      assert.equal((await inboxSince(m, a)).length, 0, 'a refused edit leaves no audit event');

      // The phone merges and saves against the version it was shown.
      const merged = await send(phone, 'patch', `/api/v1/notes/${note.id}`, {
        version: current.version,
        body: `${current.body}\nphone text`,
        tags: ['phone'],
      }).expect(200);
      assert.equal(merged.body.note.version, 3);
      const final = (await laptop.agent.get(`/api/v1/notes/${note.id}`).expect(200)).body.note;
      assert.equal(final.body, 'laptop text\nphone text');
      assert.deepEqual(final.tags, ['phone']);
    });

    test('concurrent saves with the same version: exactly one wins, the other gets 409', async () => {
      const note = await createNote(a, { title: 'race' });
      const results = await Promise.all(
        Array.from({ length: 6 }, (_, i) =>
          send(a, 'patch', `/api/v1/notes/${note.id}`, { version: 1, body: `writer ${i}` }),
        ),
      );
      const statuses = results.map((r) => r.status).sort();
      assert.deepEqual(statuses, [200, 409, 409, 409, 409, 409]);
      const winner = results.find((r) => r.status === 200)?.body.note;
      const final = (await a.agent.get(`/api/v1/notes/${note.id}`).expect(200)).body.note;
      assert.equal(final.version, 2);
      assert.equal(final.body, winner.body);
    });

    test('a stale task edit gets 409 with the current task', async () => {
      const task = await createTask(a, { title: 'call' });
      await send(a, 'patch', `/api/v1/tasks/${task.id}`, { version: 1, status: 'doing' }).expect(200);
      const res = await send(a, 'patch', `/api/v1/tasks/${task.id}`, { version: 1, status: 'done' }).expect(
        409,
      );
      assert.equal(res.body.error.details.current.status, 'doing');
      assert.equal(res.body.error.details.current.version, 2);
    });
  });

  describe('tasks', () => {
    test('create, read, edit and delete, with an optional note link and due date', async () => {
      const note = await createNote(a, { title: 'context' });
      let m = await mark();
      const task = await createTask(a, { title: 'Write report', dueDate: '2027-03-01', noteId: note.id });
      assert.deepEqual(
        {
          title: task.title,
          status: task.status,
          dueDate: task.dueDate,
          noteId: task.noteId,
          version: task.version,
        },
        { title: 'Write report', status: 'open', dueDate: '2027-03-01', noteId: note.id, version: 1 },
      );
      let rows = await inboxSince(m, a);
      assert.equal(rows.length, 1);
      assert.equal(rows[0]?.action, 'task.create');
      assert.deepEqual(rows[0]?.details.changes.noteId, { from: null, to: note.id });

      assert.deepEqual((await a.agent.get(`/api/v1/tasks/${task.id}`).expect(200)).body.task, task);

      m = await mark();
      const edited = await send(a, 'patch', `/api/v1/tasks/${task.id}`, {
        version: 1,
        status: 'done',
        dueDate: null,
        noteId: null,
      }).expect(200);
      assert.equal(edited.body.task.version, 2);
      assert.equal(edited.body.task.status, 'done');
      assert.equal(edited.body.task.dueDate, null);
      assert.equal(edited.body.task.noteId, null);
      rows = await inboxSince(m, a);
      assert.equal(rows.length, 1);
      assert.deepEqual(rows[0]?.details.changes, {
        status: { from: 'open', to: 'done' },
        dueDate: { from: '2027-03-01', to: null },
        noteId: { from: note.id, to: null },
      });

      m = await mark();
      await send(a, 'delete', `/api/v1/tasks/${task.id}`).expect(204);
      await a.agent.get(`/api/v1/tasks/${task.id}`).expect(404);
      rows = await inboxSince(m, a);
      assert.deepEqual(
        rows.map((r) => r.action),
        ['task.delete'],
      );
    });

    test('deleting a note unlinks its tasks as changes of their own (new version, audited)', async () => {
      const note = await createNote(a, { title: 'to be deleted' });
      const task = await createTask(a, { title: 'linked', noteId: note.id });
      const m = await mark();
      await send(a, 'delete', `/api/v1/notes/${note.id}`).expect(204);
      const after = (await a.agent.get(`/api/v1/tasks/${task.id}`).expect(200)).body.task;
      assert.equal(after.noteId, null);
      assert.equal(after.version, 2);
      const rows = await inboxSince(m, a);
      assert.deepEqual(
        rows.map((r) => [r.action, r.resource_id]),
        [
          ['note.delete', String(note.id)],
          ['task.update', String(task.id)],
        ],
      );
      assert.deepEqual(rows[1]?.details.changes, { noteId: { from: note.id, to: null } });
    });

    test('a note id that is not in this workspace cannot be linked: 404 with a clear message', async () => {
      const res = await send(a, 'post', '/api/v1/tasks', { title: 'dangling', noteId: 987654 }).expect(404);
      assert.match(res.body.error.message, /no note 987654 in your workspace/);
    });
  });

  describe('lists', () => {
    test('pages stay stable while rows are added between them: no duplicates, no skipped rows', async () => {
      const who = await signUp(t.url);
      const existing: number[] = [];
      for (let i = 0; i < 23; i++)
        existing.push((await createNote(who, { title: `n${String(i).padStart(2, '0')}` })).id);
      for (const sort of ['updated_desc', 'updated_asc', 'created_desc', 'title_asc', 'title_desc']) {
        const seen: number[] = [];
        let cursor: string | null = null;
        let pages = 0;
        do {
          const q: string = `/api/v1/notes?limit=5&sort=${sort}${cursor ? `&cursor=${cursor}` : ''}`;
          const res = await who.agent.get(q).expect(200);
          assert.ok(res.body.notes.length <= 5);
          seen.push(...res.body.notes.map((n: { id: number }) => n.id));
          cursor = res.body.nextCursor;
          // Someone adds notes between every two pages.
          await createNote(who, { title: `added during ${sort} ${pages}` });
          pages += 1;
        } while (cursor && pages < 50);
        assert.equal(new Set(seen).size, seen.length, `${sort}: no duplicates`);
        for (const id of existing) assert.ok(seen.includes(id), `${sort}: note ${id} was skipped`);
      }
    });

    test('a page is in the asked order; the last page says there is no next one', async () => {
      const who = await signUp(t.url);
      for (const title of ['beta', 'alpha', 'gamma']) await createNote(who, { title });
      const asc = await who.agent.get('/api/v1/notes?sort=title_asc&limit=2').expect(200);
      assert.deepEqual(
        asc.body.notes.map((n: { title: string }) => n.title),
        ['alpha', 'beta'],
      );
      assert.equal(typeof asc.body.nextCursor, 'string');
      const rest = await who.agent
        .get(`/api/v1/notes?sort=title_asc&limit=2&cursor=${asc.body.nextCursor}`)
        .expect(200);
      assert.deepEqual(
        rest.body.notes.map((n: { title: string }) => n.title),
        ['gamma'],
      );
      assert.equal(rest.body.nextCursor, null);
      const summary = asc.body.notes[0];
      assert.deepEqual(Object.keys(summary).sort(), [
        'createdAt',
        'excerpt',
        'id',
        'tags',
        'title',
        'updatedAt',
        'version',
      ]);
      const newest = await who.agent.get('/api/v1/notes').expect(200);
      assert.deepEqual(
        newest.body.notes.map((n: { title: string }) => n.title),
        ['gamma', 'alpha', 'beta'],
        'newest first by default',
      );
    });

    test('notes filter by tag, tasks by status; tasks sort by due date with undated ones last', async () => {
      const who = await signUp(t.url);
      await createNote(who, { title: 'w1', tags: ['work'] });
      await createNote(who, { title: 'p1', tags: ['personal'] });
      await createNote(who, { title: 'w2', tags: ['work', 'urgent'] });
      const work = await who.agent.get('/api/v1/notes?tag=work&sort=title_asc').expect(200);
      assert.deepEqual(
        work.body.notes.map((n: { title: string }) => n.title),
        ['w1', 'w2'],
      );
      const tasks = [
        { title: 'undated open' },
        { title: 'late', dueDate: '2027-05-01' },
        { title: 'soon', dueDate: '2027-01-01', status: 'doing' },
        { title: 'undated done', status: 'done' },
        { title: 'mid', dueDate: '2027-03-01' },
      ];
      for (const task of tasks) await createTask(who, task);
      const titles = async (query: string) => {
        const out: string[] = [];
        let cursor: string | null = null;
        do {
          const res: request.Response = await who.agent
            .get(`/api/v1/tasks?${query}&limit=2${cursor ? `&cursor=${cursor}` : ''}`)
            .expect(200);
          out.push(...res.body.tasks.map((x: { title: string }) => x.title));
          cursor = res.body.nextCursor;
        } while (cursor);
        return out;
      };
      assert.deepEqual(await titles('sort=due_asc'), ['soon', 'mid', 'late', 'undated open', 'undated done']);
      assert.deepEqual(await titles('sort=due_desc'), [
        'late',
        'mid',
        'soon',
        'undated done',
        'undated open',
      ]);
      assert.deepEqual(await titles('sort=due_asc&status=open'), ['mid', 'late', 'undated open']);
      assert.deepEqual(await titles('sort=title_asc&status=done'), ['undated done']);
    });

    test('bad list parameters are a 400 naming the problem', async () => {
      const cases = [
        '/api/v1/notes?limit=0',
        '/api/v1/notes?limit=101',
        '/api/v1/notes?limit=ten',
        '/api/v1/notes?sort=random',
        '/api/v1/notes?tag=no%20spaces',
        '/api/v1/notes?tag=a&tag=b',
        '/api/v1/notes?cursor=garbage!',
        `/api/v1/notes?cursor=${Buffer.from('[1,2]').toString('base64url')}`,
        '/api/v1/notes?stauts=open',
        '/api/v1/tasks?status=later',
        '/api/v1/tasks?sort=due',
      ];
      for (const path of cases) {
        const res = await a.agent.get(path);
        assert.equal(res.status, 400, path);
        assert.equal(res.body.error.code, 'invalid_input', path);
      }
      const first = await a.agent.get('/api/v1/notes?limit=1&sort=title_asc').expect(200);
      const other = await a.agent
        .get(`/api/v1/notes?sort=updated_desc&cursor=${first.body.nextCursor}`)
        .expect(400);
      assert.match(other.body.error.message, /another sort order/);
      const unknown = await a.agent.get('/api/v1/notes?stauts=open').expect(400);
      assert.match(unknown.body.error.message, /unknown field stauts/);
    });
  });

  describe('search', () => {
    test('ranks a title hit above a body hit, however often the body repeats the word', async () => {
      const who = await signUp(t.url);
      const inBody = await createNote(who, {
        title: 'Weekly groceries',
        body: 'We need to buy zucchini. Zucchini bread, zucchini soup, more zucchini.',
      });
      const inTitle = await createNote(who, { title: 'Zucchini recipes', body: 'Nothing else here.' });
      await createNote(who, { title: 'Unrelated', body: 'carrots' });
      const res = await who.agent.get('/api/v1/search?q=zucchini').expect(200);
      assert.deepEqual(
        res.body.results.map((r: { id: number }) => r.id),
        [inTitle.id, inBody.id],
      );
      assert.ok(res.body.results[0].rank > res.body.results[1].rank);
      const snippet = res.body.results[1].snippet as Array<{ text: string; hit: boolean }>;
      assert.ok(
        snippet.some((s) => s.hit && /zucchini/i.test(s.text)),
        'the snippet marks the hit',
      );
      assert.equal(res.body.nextCursor, null);
    });

    test('pages through results with a cursor and takes web-search syntax', async () => {
      const who = await signUp(t.url);
      for (let i = 0; i < 5; i++)
        await createNote(who, { title: `apple ${i}`, body: i % 2 ? 'pie' : 'juice' });
      const first = await who.agent.get('/api/v1/search?q=apple&limit=3').expect(200);
      const second = await who.agent
        .get(`/api/v1/search?q=apple&limit=3&cursor=${first.body.nextCursor}`)
        .expect(200);
      const ids = [...first.body.results, ...second.body.results].map((r: { id: number }) => r.id);
      assert.equal(new Set(ids).size, 5);
      const notPie = await who.agent.get(`/api/v1/search?q=${encodeURIComponent('apple -pie')}`).expect(200);
      assert.equal(notPie.body.results.length, 3);
      const phrase = await who.agent.get(`/api/v1/search?q=${encodeURIComponent('"apple 3"')}`).expect(200);
      assert.equal(phrase.body.results.length, 1);
    });

    test('empty, oversized or odd queries: 400 or no results, never a 500', async () => {
      for (const q of ['', '%20%20', encodeURIComponent('x'.repeat(201))]) {
        const res = await a.agent.get(`/api/v1/search?q=${q}`);
        assert.equal(res.status, 400, q);
      }
      await a.agent.get('/api/v1/search').expect(400);
      for (const q of [
        "it's",
        'a\\b',
        '!!!',
        '"unclosed',
        'or or',
        '-',
        '&|!():*',
        "'; DROP TABLE notes; --",
        '<script>',
      ]) {
        const res = await a.agent.get(`/api/v1/search?q=${encodeURIComponent(q)}`);
        assert.equal(res.status, 200, q);
        assert.ok(Array.isArray(res.body.results));
      }
    });
  });

  describe('bad input: 4xx, never a 500, and nothing written', () => {
    test('malformed ids are 404 on every route, like ids that do not exist', async () => {
      for (const id of [
        'abc',
        '-1',
        '1.5',
        '99999999999999999999',
        '0',
        '1e3',
        '00',
        '%20',
        '9007199254740993',
      ]) {
        for (const kind of ['notes', 'tasks']) {
          const path = `/api/v1/${kind}/${id}`;
          assert.equal((await a.agent.get(path)).status, 404, `GET ${path}`);
          assert.equal(
            (await send(a, 'patch', path, { version: 1, title: 'x' })).status,
            404,
            `PATCH ${path}`,
          );
          const del = await send(a, 'delete', path);
          assert.equal(del.status, 404, `DELETE ${path}`);
          assert.equal(del.body.error.code, 'not_found');
        }
      }
      assert.equal((await a.agent.get('/api/v1/notes/123456789')).status, 404);
    });

    test('unknown fields, wrong types and missing fields are a 400 naming them', async () => {
      const m = await mark();
      const note = await createNote(a, { title: 'valid' });
      const before = await mark();
      const cases: Array<[string, string, unknown, RegExp]> = [
        ['post', '/api/v1/notes', { title: 'x', tenantId: 'abc' }, /unknown field tenantId/],
        ['post', '/api/v1/notes', { body: 'no title' }, /title: required/],
        ['post', '/api/v1/notes', { title: '   ' }, /title: a title is required/],
        ['post', '/api/v1/notes', { title: 42 }, /title/],
        ['post', '/api/v1/notes', { title: 'x'.repeat(501) }, /at most 500/],
        ['post', '/api/v1/notes', { title: 'x', body: 'y'.repeat(100_001) }, /at most 100000/],
        [
          'post',
          '/api/v1/notes',
          { title: 'x', tags: Array.from({ length: 21 }, (_, i) => `t${i}`) },
          /at most 20 tags/,
        ],
        ['post', '/api/v1/notes', { title: 'x', tags: ['has space'] }, /tag/],
        ['post', '/api/v1/notes', { title: 'x', tags: ['t'.repeat(41)] }, /at most 40/],
        ['post', '/api/v1/notes', { title: 'nul \u0000 inside' }, /NUL/],
        ['post', '/api/v1/notes', [{ title: 'array' }], /expected object/],
        ['patch', `/api/v1/notes/${note.id}`, { title: 'no version' }, /version: required/],
        ['patch', `/api/v1/notes/${note.id}`, { version: 1 }, /nothing to change/],
        ['patch', `/api/v1/notes/${note.id}`, { version: '1', title: 'x' }, /version/],
        ['patch', `/api/v1/notes/${note.id}`, { version: 1, id: 5 }, /unknown field id/],
        ['post', '/api/v1/tasks', { title: 'x', status: 'blocked' }, /status/],
        ['post', '/api/v1/tasks', { title: 'x', dueDate: '2027-02-30' }, /not a calendar date/],
        ['post', '/api/v1/tasks', { title: 'x', dueDate: '01/02/2027' }, /YYYY-MM-DD/],
        ['post', '/api/v1/tasks', { title: 'x', noteId: 'abc' }, /noteId/],
        ['post', '/api/v1/tasks', { title: 'x', noteId: -3 }, /noteId/],
      ];
      for (const [method, path, body, message] of cases) {
        const res = await send(a, method as 'post' | 'patch', path, body);
        assert.equal(res.status, 400, `${method} ${path} ${JSON.stringify(body).slice(0, 80)}`);
        assert.equal(res.body.error.code, 'invalid_input');
        assert.match(res.body.error.message, message);
        assert.ok(Array.isArray(res.body.error.details.issues));
      }
      const unknownQuery = await send(a, 'post', '/api/v1/notes?tenant=other', { title: 'x' }).expect(400);
      assert.match(unknownQuery.body.error.message, /unknown field tenant/);
      assert.equal((await inboxSince(before, a)).length, 0, 'refused input leaves no audit event');
      assert.equal((await inboxSince(m, a)).length, 1);
    });

    test('malformed JSON, a non-JSON body and an oversized body get clear JSON errors', async () => {
      const bad = await a.agent
        .post('/api/v1/notes')
        .set('X-CSRF-Token', a.csrf)
        .set('Content-Type', 'application/json')
        .send('{"title": "x",')
        .expect(400);
      assert.equal(bad.body.error.code, 'entity_parse_failed');
      assert.equal(bad.body.error.message, 'The request body is not valid JSON.');
      const text = await a.agent
        .post('/api/v1/notes')
        .set('X-CSRF-Token', a.csrf)
        .set('Content-Type', 'text/plain')
        .send('title=x')
        .expect(400);
      assert.equal(text.body.error.code, 'invalid_input');
      const big = await send(a, 'post', '/api/v1/notes', { title: 'big', body: 'z'.repeat(150_000) }).expect(
        413,
      );
      assert.equal(big.body.error.code, 'entity_too_large');
      assert.match(big.body.error.message, /too large: send at most 100 kB/);
      assert.equal(big.body.error.details.limitBytes, 102400);
    });

    test('Markdown with script or javascript: links is stored as typed and rendered harmless', async () => {
      const body = [
        '<script>alert(1)</script>',
        '<img src=x onerror=alert(2)>',
        '[a](javascript:alert(3))',
        '[b](JaVaScRiPt:alert(4))',
        '[c](&#106;avascript:alert(5))',
        '[d](vbscript:msgbox(6))',
        '[e](data:text/html;base64,PHNjcmlwdD5hbGVydCg3KTwvc2NyaXB0Pg==)',
        '![f](data:image/png;base64,iVBORw0KGgo=)',
        '<a href="javascript:alert(8)">g</a>',
        '[ok](https://example.com/page)',
        'javascript:alert(9)',
      ].join('\n\n');
      const note = await createNote(a, { title: '<b>not bold</b>', body });
      assert.equal(note.body, body, 'the source is kept as typed');
      const { html } = (await a.agent.get(`/api/v1/notes/${note.id}`).expect(200)).body.note;
      assert.doesNotMatch(html, /<script/i);
      assert.doesNotMatch(html, /<img/i);
      assert.doesNotMatch(html, /href="(javascript|vbscript|data):/i);
      assert.doesNotMatch(html, /<a [^>]*href="[^"]*alert/i);
      assert.match(html, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/);
      assert.match(html, /<a href="https:\/\/example.com\/page" rel="noopener noreferrer nofollow">ok<\/a>/);
      assert.equal(note.title, '<b>not bold</b>', 'titles are text; the pages escape them');
    });

    test('a read-only API token can read but not write; a write token is audited as the token', async () => {
      const tokenOf = async (scope: string) =>
        (
          await a.agent
            .post('/api/v1/tokens')
            .set('X-CSRF-Token', a.csrf)
            .send({ name: `t-${scope}`, scope })
            .expect(201)
        ).body;
      const ro = await tokenOf('read');
      const rw = await tokenOf('write');
      const api = request(t.url);
      const note = await createNote(a, { title: 'token target' });
      await api.get(`/api/v1/notes/${note.id}`).set('Authorization', `Bearer ${ro.secret}`).expect(200);
      await api
        .patch(`/api/v1/notes/${note.id}`)
        .set('Authorization', `Bearer ${ro.secret}`)
        .send({ version: 1, title: 'nope' })
        .expect(403);
      const m = await mark();
      await api
        .patch(`/api/v1/notes/${note.id}`)
        .set('Authorization', `Bearer ${rw.secret}`)
        .send({ version: 1, title: 'by script' })
        .expect(200);
      const [row] = await inboxSince(m, a);
      assert.equal(row?.actor_type, 'token');
      assert.equal(row?.actor_id, a.user.id);
      assert.equal(
        row?.details.credentialId,
        rw.token.id,
        'the token id, under a key the audit scrubber keeps',
      );
    });
  });

  describe('note HTML: rendered once, when the body is written', () => {
    const schemaOf = async (who: SignedIn) =>
      (await t.db.pool.query('SELECT schema_name FROM control.tenants WHERE id = $1', [who.user.tenantId]))
        .rows[0].schema_name as string;
    const row = async (who: SignedIn, id: number) =>
      (
        await t.db.pool.query(
          `SELECT html, version, updated_at::text AS updated FROM "${await schemaOf(who)}".notes WHERE id = $1`,
          [id],
        )
      ).rows[0];
    const setHtml = async (who: SignedIn, id: number, html: string | null) =>
      t.db.pool.query(`UPDATE "${await schemaOf(who)}".notes SET html = $2 WHERE id = $1`, [id, html]);

    test('a read serves the HTML stored with the note and never renders the body again', async () => {
      const note = await createNote(a, { title: 'stored', body: 'some *markdown*' });
      assert.equal(note.html, '<p>some <em>markdown</em></p>\n');
      assert.equal((await row(a, note.id)).html, note.html, 'the HTML is stored with the note');
      // Change only the stored HTML: a read that rendered the body would not show this.
      await setHtml(a, note.id, '<p>stored, not rendered</p>\n');
      const got = (await a.agent.get(`/api/v1/notes/${note.id}`).expect(200)).body.note;
      assert.equal(got.html, '<p>stored, not rendered</p>\n');
      const page = await a.agent.get(`/workspace/notes/${note.id}`).set('Accept', 'text/html').expect(200);
      assert.match(page.text, /<p>stored, not rendered<\/p>/);
      assert.doesNotMatch(page.text, /<em>markdown<\/em>/);

      // A new title or tags keep the stored HTML; a new body stores its own.
      const retitled = (
        await send(a, 'patch', `/api/v1/notes/${note.id}`, {
          version: 1,
          title: 'renamed',
          tags: ['x'],
        }).expect(200)
      ).body.note;
      assert.equal(retitled.html, '<p>stored, not rendered</p>\n');
      const edited = (
        await send(a, 'patch', `/api/v1/notes/${note.id}`, { version: 2, body: '# new' }).expect(200)
      ).body.note;
      assert.equal(edited.html, '<h1>new</h1>\n');
      assert.equal((await row(a, note.id)).html, '<h1>new</h1>\n');
    });

    test('a note written before HTML was stored gets it on its first read: no new version, no audit event', async () => {
      const note = await createNote(a, { title: 'older', body: '**old**' });
      await setHtml(a, note.id, null);
      const before = await row(a, note.id);
      const m = await mark();
      const got = (await a.agent.get(`/api/v1/notes/${note.id}`).expect(200)).body.note;
      assert.equal(got.html, '<p><strong>old</strong></p>\n');
      const after = await row(a, note.id);
      assert.equal(after.html, got.html, 'stored by that first read');
      assert.equal(after.version, before.version);
      assert.equal(after.updated, before.updated);
      assert.deepEqual(await inboxSince(m, a), []);
    });

    test('Markdown too costly to render is stored as escaped plain text, with a line saying why', async () => {
      // The reported case: a 79,000-character table (0.3 s to render on every read before).
      let body = `<script>alert(1)</script>\n\n|${Array.from({ length: 20 }, (_, i) => `h${i}`).join('|')}|\n|${'-|'.repeat(20)}\n`;
      while (body.length < 79_000) body += `|${'cell|'.repeat(20)}\n`;
      const note = await createNote(a, { title: 'huge table', body });
      assert.equal(note.body, body, 'the source is kept as typed');
      assert.match(
        note.html,
        /^<p class="hint">This note is shown as plain text: it has more Markdown formatting than we render\.<\/p>\n<pre class="plain-text">&lt;script&gt;alert\(1\)&lt;\/script&gt;\n\n\|h0\|/,
      );
      assert.doesNotMatch(note.html, /<table|<script/);
      assert.equal((await row(a, note.id)).html, note.html);
    });
  });

  describe("another tenant's ids", () => {
    test('are 404 through every route, and nothing of theirs changes', async () => {
      const note = await createNote(a, { title: "A's note", body: 'private' });
      const task = await createTask(a, { title: "A's task", noteId: note.id });
      const m = await mark();
      for (const path of [`/api/v1/notes/${note.id}`, `/api/v1/tasks/${task.id}`]) {
        const got = await b.agent.get(path).expect(404);
        assert.equal(got.body.error.code, 'not_found');
        await send(b, 'patch', path, { version: 1, title: 'hijacked' }).expect(404);
        await send(b, 'delete', path).expect(404);
        await send(b, 'delete', `${path}?version=1`).expect(404);
      }
      await send(b, 'post', '/api/v1/tasks', { title: 'link theirs', noteId: note.id }).expect(404);
      const own = await createTask(b, { title: "B's task" });
      await send(b, 'patch', `/api/v1/tasks/${own.id}`, { version: 1, noteId: note.id }).expect(404);
      const search = await b.agent.get('/api/v1/search?q=private').expect(200);
      assert.deepEqual(search.body.results, []);
      assert.equal((await a.agent.get(`/api/v1/notes/${note.id}`).expect(200)).body.note.version, 1);
      assert.equal((await a.agent.get(`/api/v1/tasks/${task.id}`).expect(200)).body.task.version, 1);
      assert.equal((await inboxSince(m, a)).length, 0);
    });
  });

  describe('reference data', () => {
    test('the tag palette and task templates are readable in every workspace', async () => {
      const res = await b.agent.get('/api/v1/reference').expect(200);
      assert.ok(res.body.tagPalette.length >= 1);
      assert.match(res.body.tagPalette[0].color, /^#[0-9a-f]{6}$/);
      assert.ok(res.body.taskTemplates.some((tpl: { title: string }) => tpl.title === 'Weekly review'));
    });

    test('workspace routes need a signed-in workspace owner', async () => {
      for (const path of [
        '/api/v1/notes',
        '/api/v1/tasks',
        '/api/v1/search?q=x',
        '/api/v1/reference',
        '/api/v1/notes/1',
        '/api/v1/workspace',
      ]) {
        const res = await request(t.url).get(path).expect(401);
        assert.equal(res.body.error.code, 'login_required');
      }
    });
  });
});
