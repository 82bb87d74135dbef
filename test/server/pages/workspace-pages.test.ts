// The workspace pages, driven like a browser: GET the page, read its _csrf
// field, POST the form urlencoded, follow the redirect, read what is shown.
// Real PostgreSQL and Redis.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import { csrfOf, HTML, submit } from '../../helpers/http.ts';
import { assertNoInlineCode } from '../../helpers/pages.ts';
import {
  type SignedIn,
  signIn,
  signInPrivileged,
  signUp,
  startTestServer,
  type TestServer,
} from '../../helpers/server.ts';

let server: TestServer;
before(async () => {
  server = await startTestServer();
});
after(async () => {
  await server?.stop();
});

/** A signed-up owner whose agent asks for HTML, like a browser. */
async function owner(): Promise<SignedIn> {
  const person = await signUp(server.url);
  person.agent.set('Accept', HTML);
  return person;
}

function versionOf(html: string): string {
  const match = /name="version" value="(\d+)"/.exec(html);
  assert.ok(match?.[1], 'the form carries the version it was based on');
  return match[1];
}

/** Creates a note through the editor and returns its id. */
async function createNoteByPage(
  agent: request.Agent,
  fields: Record<string, string | string[]>,
): Promise<number> {
  const res = await submit(agent, '/workspace/notes/new', '/workspace/notes', fields);
  assert.equal(res.status, 303, res.text);
  const id = /^\/workspace\/notes\/(\d+)$/.exec(res.headers.location ?? '')?.[1];
  assert.ok(id, `redirected to the new note, not ${res.headers.location}`);
  return Number(id);
}

async function createTaskByPage(agent: request.Agent, fields: Record<string, string>): Promise<number> {
  const res = await submit(agent, '/workspace/tasks/new', '/workspace/tasks', fields);
  assert.equal(res.status, 303, res.text);
  const id = /^\/workspace\/tasks#task-(\d+)$/.exec(res.headers.location ?? '')?.[1];
  assert.ok(id, `redirected to the board at the new task, not ${res.headers.location}`);
  return Number(id);
}

/** The column of the board a task's card is in. */
function columnOf(board: string, taskId: number): string | undefined {
  for (const status of ['open', 'doing', 'done']) {
    const start = board.indexOf(`<section class="column column-${status}"`);
    const end = board.indexOf('</section>', start);
    if (start >= 0 && board.slice(start, end).includes(`id="task-${taskId}"`)) return status;
  }
  return undefined;
}

function escapeRe(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

describe('who gets in', () => {
  test('a signed-in owner starts in the workspace; a visitor is sent to sign in', async () => {
    const { agent } = await owner();
    await agent.get('/').expect(303).expect('Location', '/workspace');
    const home = await agent.get('/workspace').expect(200).expect('Content-Type', /html/);
    assert.match(home.text, /<a href="\/workspace" aria-current="page">Workspace<\/a>/);
    await request(server.url).get('/workspace').set('Accept', HTML).expect(303).expect('Location', '/login');
    await request(server.url)
      .get('/workspace/notes/1')
      .set('Accept', HTML)
      .expect(303)
      .expect('Location', '/login');
  });

  test('auditors and admins get the 403 page on every workspace page, and no Workspace link', async () => {
    for (const role of ['auditor', 'admin'] as const) {
      const { agent } = await signInPrivileged(server, role);
      agent.set('Accept', HTML);
      await agent.get('/').expect(303).expect('Location', '/account');
      const account = await agent.get('/account').expect(200);
      assert.doesNotMatch(account.text, /href="\/workspace"/);
      for (const page of ['/workspace', '/workspace/notes', '/workspace/tasks', '/workspace/search?q=a']) {
        const res = await agent.get(page).expect(403).expect('Content-Type', /html/);
        assert.match(res.text, /Workspace content is only open to its owner/);
      }
      const post = await agent
        .post('/workspace/notes')
        .type('form')
        .send({ _csrf: csrfOf(account.text), title: 'x' });
      assert.equal(post.status, 403);
    }
  });
});

describe('notes through the pages', () => {
  test('create, view, edit, list, filter by tag and delete', async () => {
    const { agent } = await owner();
    const id = await createNoteByPage(agent, {
      title: 'Trip plan',
      body: '# Packing\n\n- **passport**\n- charger',
      tag: ['work', 'idea'],
      otherTags: 'Travel, 2027',
    });
    const view = await agent.get(`/workspace/notes/${id}`).expect(200);
    assert.match(view.text, /Note created\./);
    assert.match(view.text, /<h1 id="note-title">Trip plan<\/h1>/);
    assert.match(view.text, /<li><strong>passport<\/strong><\/li>/, 'the Markdown is rendered');
    assert.match(view.text, /class="chip chip-t-work"/, 'a palette tag has its colour class');
    assert.match(
      view.text,
      /class="chip chip-plain"[^>]*><span class="visually-hidden">Tag: <\/span>travel</,
      'typed tags are kept, lower-cased',
    );
    assert.match(view.text, /href="\/workspace\/palette\.css\?v=[0-9a-f]{16}"/);

    const edit = await agent.get(`/workspace/notes/${id}/edit`).expect(200);
    assert.equal(versionOf(edit.text), '1');
    assert.match(edit.text, /<input id="tag-work" name="tag" type="checkbox" value="work" checked>/);
    assert.match(edit.text, /value="travel, 2027"/);
    const saved = await agent
      .post(`/workspace/notes/${id}`)
      .type('form')
      .send({
        _csrf: csrfOf(edit.text),
        version: '1',
        title: 'Trip plan v2',
        body: 'Only _this_ now',
        tag: 'personal',
        otherTags: '',
      });
    assert.equal(saved.status, 303, saved.text);
    assert.equal(saved.headers.location, `/workspace/notes/${id}`);
    const after = await agent.get(`/workspace/notes/${id}`).expect(200);
    assert.match(after.text, /Trip plan v2/);
    assert.match(after.text, /<em>this<\/em>/);
    assert.match(after.text, /version 2/);
    assert.doesNotMatch(after.text, /chip-t-work/);

    const list = await agent.get('/workspace/notes').expect(200);
    assert.match(list.text, new RegExp(`href="/workspace/notes/${id}">Trip plan v2<`));
    const tagged = await agent.get('/workspace/notes?tag=personal').expect(200);
    assert.match(tagged.text, /Trip plan v2/);
    const other = await agent.get('/workspace/notes?tag=work').expect(200);
    assert.doesNotMatch(other.text, /Trip plan v2/);
    assert.match(other.text, /No notes are tagged “work”/);

    const home = await agent.get('/workspace').expect(200);
    assert.match(home.text, /Trip plan v2/, 'the home page lists recent notes');

    const confirm = await agent.get(`/workspace/notes/${id}/delete`).expect(200);
    assert.match(confirm.text, /Delete this note\?/);
    const deleted = await agent
      .post(`/workspace/notes/${id}/delete`)
      .type('form')
      .send({ _csrf: csrfOf(confirm.text), version: versionOf(confirm.text) });
    assert.equal(deleted.status, 303);
    assert.equal(deleted.headers.location, '/workspace/notes');
    await agent.get(`/workspace/notes/${id}`).expect(404).expect('Content-Type', /html/);
  });

  test('a refused form comes back with what was typed and says what to fix', async () => {
    const { agent } = await owner();
    const res = await submit(agent, '/workspace/notes/new', '/workspace/notes', {
      title: '   ',
      body: 'Words I do not want to lose <3',
      tag: 'idea',
      otherTags: 'ok, not a tag!',
    });
    assert.equal(res.status, 400);
    assert.match(res.text, /role="alert"/);
    assert.match(res.text, /Title: a title is required\./);
    assert.match(res.text, /Words I do not want to lose &lt;3<\/textarea>/);
    assert.match(res.text, /value="ok, not a tag!"/);
    assert.match(res.text, /value="idea" checked/);

    const badTag = await submit(agent, '/workspace/notes/new', '/workspace/notes', {
      title: 'Fine title',
      otherTags: 'not a tag!',
    });
    assert.equal(badTag.status, 400);
    assert.match(badTag.text, /Tags: a tag is letters/);
    assert.match(badTag.text, /value="Fine title"/);
  });

  test('a long note (beyond the 100 kB default form limit once encoded) is saved', async () => {
    const { agent } = await owner();
    const body = 'ünïcødé line\n'.repeat(7000); // 91,000 characters, about 400 kB form-encoded
    const id = await createNoteByPage(agent, { title: 'Long', body });
    const edit = await agent.get(`/workspace/notes/${id}/edit`).expect(200);
    assert.ok(edit.text.includes(body), 'the whole text is back in the editor');
  });

  test('Markdown with a script, an event handler or a javascript: link is shown as inert text', async () => {
    const { agent } = await owner();
    const body = [
      'Hello <script>alert("x")</script>',
      '<img src=x onerror="alert(1)">',
      '[click me](javascript:alert(document.cookie))',
      '[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)',
      '[fine](https://example.com/ok)',
    ].join('\n\n');
    const id = await createNoteByPage(agent, { title: '<b>not bold</b>', body });
    for (const page of [
      `/workspace/notes/${id}`,
      `/workspace/notes/${id}/edit`,
      '/workspace/notes',
      '/workspace/search?q=hello',
    ]) {
      const res = await agent.get(page).expect(200);
      assertNoInlineCode(res.text, page);
    }
    const view = await agent.get(`/workspace/notes/${id}`).expect(200);
    assert.match(view.text, /&lt;script&gt;alert/);
    assert.match(view.text, /&lt;b&gt;not bold&lt;\/b&gt;/);
    assert.match(
      view.text,
      /<a href="https:\/\/example\.com\/ok" rel="noopener noreferrer nofollow">fine<\/a>/,
    );
    assert.doesNotMatch(view.text, /<a [^>]*href="(javascript|data):/i);
  });

  test('the note list pages with a "More notes" link that neither repeats nor skips, even while notes are added', async () => {
    const { agent, csrf } = await owner();
    // Through the API: quicker than 25 forms, and the same service.
    agent.set('Accept', 'application/json');
    for (let i = 1; i <= 25; i++) {
      await agent
        .post('/api/v1/notes')
        .set('X-CSRF-Token', csrf)
        .send({ title: `Note ${i}` })
        .expect(201);
    }
    agent.set('Accept', HTML);
    const first = await agent.get('/workspace/notes').expect(200);
    const titles = (html: string) =>
      [...html.matchAll(/class="note-item-title"><a href="\/workspace\/notes\/\d+">(Note \d+)</g)].map(
        (m) => m[1],
      );
    const page1 = titles(first.text);
    assert.equal(page1.length, 20);
    const more = /<a class="button-secondary" href="([^"]+)" rel="next">More notes<\/a>/.exec(
      first.text,
    )?.[1];
    assert.ok(more, 'a More link');
    agent.set('Accept', 'application/json');
    await agent.post('/api/v1/notes').set('X-CSRF-Token', csrf).send({ title: 'Note 26' }).expect(201);
    agent.set('Accept', HTML);
    const second = await agent.get(more.replace(/&amp;/g, '&')).expect(200);
    const page2 = titles(second.text);
    assert.deepEqual(page2, ['Note 5', 'Note 4', 'Note 3', 'Note 2', 'Note 1']);
    assert.doesNotMatch(second.text, /rel="next"/);
    assert.equal(new Set([...page1, ...page2]).size, 25);
  });
});

describe('no silent overwrites', () => {
  test('a stale save shows both texts; "Save mine as a copy" keeps mine and leaves theirs', async () => {
    const first = await owner();
    const id = await createNoteByPage(first.agent, { title: 'Shared', body: 'original text' });
    const second = await signIn(server.url, first.email, first.password);
    second.agent.set('Accept', HTML);

    const mine = await first.agent.get(`/workspace/notes/${id}/edit`).expect(200);
    const theirs = await submit(second.agent, `/workspace/notes/${id}/edit`, `/workspace/notes/${id}`, {
      version: '1',
      title: 'Shared',
      body: 'their newer text',
    });
    assert.equal(theirs.status, 303);

    const stale = await first.agent
      .post(`/workspace/notes/${id}`)
      .type('form')
      .send({
        _csrf: csrfOf(mine.text),
        version: versionOf(mine.text),
        title: 'Shared (mine)',
        body: 'my careful text',
      });
    assert.equal(stale.status, 409);
    assert.match(stale.text, /This note was changed somewhere else while you were editing it/);
    assert.match(stale.text, /<textarea[^>]*>my careful text<\/textarea>/, 'my text is kept in the form');
    assert.match(stale.text, /value="Shared \(mine\)"/);
    assert.match(
      stale.text,
      /<pre class="source">their newer text<\/pre>/,
      'the saved text is shown beside it',
    );
    assert.match(
      stale.text,
      new RegExp(`<a class="button-quiet" href="/workspace/notes/${id}/edit">Reload the saved version</a>`),
    );
    assert.match(
      stale.text,
      /formaction="\/workspace\/notes" name="saveAs" value="copy">Save mine as a copy</,
    );
    assert.match(stale.text, /Overwrite the saved version with mine/);
    assert.equal(versionOf(stale.text), '2', 'overwriting would be over the version now shown');
    assertNoInlineCode(stale.text, 'conflict page');

    // "Save mine as a copy" submits the same form to the create action.
    const copy = await first.agent
      .post('/workspace/notes')
      .type('form')
      .send({
        _csrf: csrfOf(stale.text),
        version: '2',
        saveAs: 'copy',
        title: 'Shared (mine)',
        body: 'my careful text',
      });
    assert.equal(copy.status, 303, copy.text);
    const copyId = Number(/\/workspace\/notes\/(\d+)$/.exec(copy.headers.location ?? '')?.[1]);
    assert.notEqual(copyId, id);
    const copied = await first.agent.get(`/workspace/notes/${copyId}`).expect(200);
    assert.match(copied.text, /Shared \(mine\) \(copy\)/);
    assert.match(copied.text, /my careful text/);
    assert.match(copied.text, /Your text is saved as a new note/);
    const original = await first.agent.get(`/workspace/notes/${id}`).expect(200);
    assert.match(original.text, /their newer text/, 'the other edit is untouched');

    // And "Overwrite" is the same form with the version it was shown.
    const overwrite = await first.agent
      .post(`/workspace/notes/${id}`)
      .type('form')
      .send({
        _csrf: csrfOf(stale.text),
        version: versionOf(stale.text),
        title: 'Shared',
        body: 'mine after all',
      });
    assert.equal(overwrite.status, 303);
    const now = await first.agent.get(`/workspace/notes/${id}`).expect(200);
    assert.match(now.text, /mine after all/);
  });

  test('saving a note deleted meanwhile keeps the text and offers to save it as a new note', async () => {
    const { agent } = await owner();
    const id = await createNoteByPage(agent, { title: 'Doomed', body: 'x' });
    const edit = await agent.get(`/workspace/notes/${id}/edit`).expect(200);
    const confirm = await agent.get(`/workspace/notes/${id}/delete`).expect(200);
    await agent
      .post(`/workspace/notes/${id}/delete`)
      .type('form')
      .send({ _csrf: csrfOf(confirm.text), version: '1' })
      .expect(303);
    const res = await agent
      .post(`/workspace/notes/${id}`)
      .type('form')
      .send({ _csrf: csrfOf(edit.text), version: '1', title: 'Doomed', body: 'rescued words' });
    assert.equal(res.status, 404);
    assert.match(res.text, /rescued words<\/textarea>/);
    assert.match(res.text, /<form method="post" action="\/workspace\/notes"/);
    assert.match(res.text, /Save as a new note/);
  });

  test('deleting from a stale confirmation page is refused and says why', async () => {
    const { agent } = await owner();
    const id = await createNoteByPage(agent, { title: 'Keep?', body: 'v1' });
    const confirm = await agent.get(`/workspace/notes/${id}/delete`).expect(200);
    await submit(agent, `/workspace/notes/${id}/edit`, `/workspace/notes/${id}`, {
      version: '1',
      title: 'Keep?',
      body: 'v2',
    });
    const res = await agent
      .post(`/workspace/notes/${id}/delete`)
      .type('form')
      .send({ _csrf: csrfOf(confirm.text), version: versionOf(confirm.text) });
    assert.equal(res.status, 409);
    assert.match(res.text, /changed after you opened this page/);
    await agent.get(`/workspace/notes/${id}`).expect(200);
  });
});

describe('tasks through the pages', () => {
  test('create with a due date and a note, move across the board, edit and delete', async () => {
    const { agent } = await owner();
    const noteId = await createNoteByPage(agent, { title: 'Launch notes', body: 'b' });
    const form = await agent.get(`/workspace/tasks/new?noteId=${noteId}`).expect(200);
    assert.match(form.text, new RegExp(`<option value="${noteId}" selected>Launch notes</option>`));
    const id = await createTaskByPage(agent, {
      title: 'Write the announcement',
      status: 'open',
      dueDate: '2020-01-31',
      noteId: String(noteId),
    });

    let board = await agent.get('/workspace/tasks').expect(200);
    assert.match(board.text, /Task “Write the announcement” added\./);
    assert.equal(columnOf(board.text, id), 'open');
    assert.match(board.text, /Overdue: <time datetime="2020-01-31">31 Jan 2020<\/time>/);
    assert.match(board.text, new RegExp(`Note: <a href="/workspace/notes/${noteId}">Launch notes</a>`));
    const home = await agent.get('/workspace').expect(200);
    assert.match(home.text, /Write the announcement/, 'the home page lists open tasks');

    // The card's "Start" button: a small form with the status and the card's version.
    const card = board.text.slice(board.text.indexOf(`id="task-${id}"`));
    assert.match(
      card,
      /name="status" value="doing">\s*<button type="submit"[^>]*>Start<span class="visually-hidden">: Write the announcement<\/span>/,
    );
    const moved = await agent
      .post(`/workspace/tasks/${id}/move`)
      .type('form')
      .send({ _csrf: csrfOf(board.text), version: '1', status: 'doing' });
    assert.equal(moved.status, 303);
    assert.equal(moved.headers.location, `/workspace/tasks#task-${id}`);
    board = await agent.get('/workspace/tasks').expect(200);
    assert.match(board.text, /“Write the announcement” moved to Doing\./);
    assert.equal(columnOf(board.text, id), 'doing');

    // A move from the old board (version 1) is refused, not applied over the newer state.
    const stale = await agent
      .post(`/workspace/tasks/${id}/move`)
      .type('form')
      .send({ _csrf: csrfOf(board.text), version: '1', status: 'done' });
    assert.equal(stale.status, 303);
    board = await agent.get('/workspace/tasks').expect(200);
    assert.match(board.text, /was changed somewhere else after this board was loaded, so it was not moved/);
    assert.equal(columnOf(board.text, id), 'doing');

    const edit = await agent.get(`/workspace/tasks/${id}/edit`).expect(200);
    assert.equal(versionOf(edit.text), '2');
    const saved = await agent
      .post(`/workspace/tasks/${id}`)
      .type('form')
      .send({
        _csrf: csrfOf(edit.text),
        version: '2',
        title: 'Announce it',
        status: 'done',
        dueDate: '',
        noteId: '',
      });
    assert.equal(saved.status, 303, saved.text);
    board = await agent.get('/workspace/tasks').expect(200);
    assert.equal(columnOf(board.text, id), 'done');
    assert.doesNotMatch(
      board.text.slice(board.text.indexOf(`id="task-${id}"`)).split('</li>')[0] ?? '',
      /Due|Note:/,
    );

    const confirm = await agent.get(`/workspace/tasks/${id}/delete`).expect(200);
    const deleted = await agent
      .post(`/workspace/tasks/${id}/delete`)
      .type('form')
      .send({ _csrf: csrfOf(confirm.text), version: versionOf(confirm.text) });
    assert.equal(deleted.status, 303);
    await agent.get(`/workspace/tasks/${id}/edit`).expect(404);
  });

  test('a stale task edit keeps my changes and shows the saved ones', async () => {
    const { agent, email, password } = await owner();
    const id = await createTaskByPage(agent, {
      title: 'Book venue',
      status: 'open',
      dueDate: '',
      noteId: '',
    });
    const other = await signIn(server.url, email, password);
    other.agent.set('Accept', HTML);
    const mine = await agent.get(`/workspace/tasks/${id}/edit`).expect(200);
    const theirs = await submit(other.agent, `/workspace/tasks/${id}/edit`, `/workspace/tasks/${id}`, {
      version: '1',
      title: 'Book the big venue',
      status: 'doing',
    });
    assert.equal(theirs.status, 303);
    const res = await agent
      .post(`/workspace/tasks/${id}`)
      .type('form')
      .send({
        _csrf: csrfOf(mine.text),
        version: '1',
        title: 'Book a small venue',
        status: 'open',
        dueDate: '2030-05-01',
        noteId: '',
      });
    assert.equal(res.status, 409);
    assert.match(res.text, /value="Book a small venue"/);
    assert.match(res.text, /value="2030-05-01"/);
    assert.match(res.text, /<dd>Book the big venue<\/dd>/);
    assert.match(res.text, /<dd>Doing<\/dd>/);
    assert.match(res.text, /Reload the saved version/);
    assert.match(res.text, /Save mine as a new task/);
  });

  test('a task template button adds the task with its due date', async () => {
    const { agent } = await owner();
    const board = await agent.get('/workspace/tasks').expect(200);
    const templateId =
      /name="templateId" value="(\d+)">\s*<button[^>]*><span class="visually-hidden">Add the task <\/span>Weekly review/.exec(
        board.text,
      )?.[1];
    assert.ok(templateId, 'the board offers the shared templates');
    const res = await agent
      .post('/workspace/tasks/from-template')
      .type('form')
      .send({ _csrf: csrfOf(board.text), templateId });
    assert.equal(res.status, 303);
    const id = Number(/#task-(\d+)$/.exec(res.headers.location ?? '')?.[1]);
    const after = await agent.get('/workspace/tasks').expect(200);
    assert.equal(columnOf(after.text, id), 'open');
    const due = new Date(Date.now() + 7 * 86_400_000).toISOString().slice(0, 10);
    assert.match(after.text, new RegExp(`<time datetime="${due}">`));
    await agent
      .post('/workspace/tasks/from-template')
      .type('form')
      .send({ _csrf: csrfOf(board.text), templateId: '999999' })
      .expect(404);
  });

  test('a task linked to a note that is not in this workspace is refused, with the form kept', async () => {
    const { agent } = await owner();
    const res = await submit(agent, '/workspace/tasks/new', '/workspace/tasks', {
      title: 'Orphan',
      status: 'open',
      dueDate: '',
      noteId: '424242',
    });
    assert.equal(res.status, 404);
    assert.match(res.text, /There is no note 424242 in your workspace/);
    assert.match(res.text, /value="Orphan"/);
    const badDate = await submit(agent, '/workspace/tasks/new', '/workspace/tasks', {
      title: 'Dated',
      status: 'open',
      dueDate: '2026-02-30',
      noteId: '',
    });
    assert.equal(badDate.status, 400);
    assert.match(badDate.text, /Due date: not a calendar date\./);
  });
});

describe('search page', () => {
  test('ranks a title hit above a body hit and keeps the query in the box', async () => {
    const { agent } = await owner();
    await createNoteByPage(agent, {
      title: 'Groceries',
      body: 'buy pelican food, pelican treats, more pelican',
    });
    await createNoteByPage(agent, { title: 'Pelican facts', body: 'birds' });
    await createNoteByPage(agent, { title: 'Unrelated', body: 'nothing here' });
    const res = await agent.get('/workspace/search?q=pelican').expect(200);
    assert.match(res.text, /<input id="q" name="q" type="search"[^>]*value="pelican"/);
    const order = [
      ...res.text.matchAll(/class="note-item-title"><a href="\/workspace\/notes\/\d+">([^<]+)</g),
    ].map((m) => m[1]);
    assert.deepEqual(order, ['Pelican facts', 'Groceries']);
    assert.match(res.text, /<mark>pelican<\/mark>/);
    assert.match(res.text, /2 notes, best match first/);

    const none = await agent.get('/workspace/search?q=zebra').expect(200);
    assert.match(none.text, /No notes match “zebra”/);
    const empty = await agent.get('/workspace/search').expect(200);
    assert.doesNotMatch(empty.text, /result-count/);
    const tooLong = await agent.get(`/workspace/search?q=${'a'.repeat(300)}`).expect(400);
    assert.match(tooLong.text, /Search: at most 200 characters/);
  });
});

describe('another workspace', () => {
  test("another tenant's note and task ids, and malformed ids, are the 404 page on every route", async () => {
    const alice = await owner();
    const bob = await owner();
    const noteId = await createNoteByPage(alice.agent, { title: 'Alice secret', body: 'classified' });
    const taskId = await createTaskByPage(alice.agent, {
      title: 'Alice task',
      status: 'open',
      dueDate: '',
      noteId: '',
    });
    const home = await bob.agent.get('/workspace').expect(200);
    const csrf = csrfOf(home.text);
    const gets = [
      `/workspace/notes/${noteId}`,
      `/workspace/notes/${noteId}/edit`,
      `/workspace/notes/${noteId}/delete`,
      `/workspace/tasks/${taskId}/edit`,
      `/workspace/tasks/${taskId}/delete`,
      '/workspace/notes/abc',
      '/workspace/notes/-1',
      '/workspace/notes/1.5',
      '/workspace/notes/99999999999999999999',
      '/workspace/tasks/0/edit',
    ];
    for (const page of gets) {
      const res = await bob.agent.get(page);
      assert.equal(res.status, 404, `GET ${page}`);
      assert.match(res.headers['content-type'] ?? '', /html/);
      assert.doesNotMatch(res.text, /Alice secret|classified|Alice task/);
    }
    const posts: Array<[string, Record<string, string>]> = [
      [`/workspace/notes/${noteId}`, { version: '1', title: 'pwned', body: 'x' }],
      [`/workspace/notes/${noteId}/delete`, { version: '1' }],
      [`/workspace/tasks/${taskId}`, { version: '1', title: 'pwned', status: 'done' }],
      [`/workspace/tasks/${taskId}/move`, { version: '1', status: 'done' }],
      [`/workspace/tasks/${taskId}/delete`, { version: '1' }],
    ];
    for (const [path, fields] of posts) {
      const res = await bob.agent
        .post(path)
        .type('form')
        .send({ _csrf: csrf, ...fields });
      assert.equal(res.status, 404, `POST ${path}`);
      assert.doesNotMatch(res.text, /Alice secret|classified|Alice task/);
    }
    // Nothing of Alice's changed.
    const note = await alice.agent.get(`/workspace/notes/${noteId}`).expect(200);
    assert.match(note.text, /Alice secret/);
    assert.match(note.text, /version 1/);
    const board = await alice.agent.get('/workspace/tasks').expect(200);
    assert.equal(columnOf(board.text, taskId), 'open');
  });
});

describe('pages and the strict CSP', () => {
  test('every workspace page has the strict CSP and no inline script or style', async () => {
    const { agent } = await owner();
    const noteId = await createNoteByPage(agent, { title: 'A note', body: '*hi*', tag: 'work' });
    const taskId = await createTaskByPage(agent, {
      title: 'A task',
      status: 'doing',
      dueDate: '2031-01-01',
      noteId: String(noteId),
    });
    const pages = [
      '/workspace',
      '/workspace/notes',
      '/workspace/notes?tag=work',
      '/workspace/notes/new',
      `/workspace/notes/${noteId}`,
      `/workspace/notes/${noteId}/edit`,
      `/workspace/notes/${noteId}/delete`,
      '/workspace/tasks',
      '/workspace/tasks?status=doing',
      '/workspace/tasks/new',
      `/workspace/tasks/${taskId}/edit`,
      `/workspace/tasks/${taskId}/delete`,
      '/workspace/search',
      '/workspace/search?q=note',
    ];
    for (const page of pages) {
      const res = await agent.get(page).expect(200).expect('Content-Type', /html/);
      const csp = res.headers['content-security-policy'] ?? '';
      assert.match(csp, /script-src 'self'(;|$)/);
      assert.match(csp, /style-src 'self'(;|$)/);
      assert.match(res.headers['cache-control'] ?? '', /no-store/);
      assertNoInlineCode(res.text, page);
      // Every visible form control has a label.
      for (const m of res.text.matchAll(/<(input|textarea|select)\b[^>]*>/g)) {
        if (/type="hidden"/.test(m[0])) continue;
        const id = /\bid="([^"]+)"/.exec(m[0])?.[1];
        assert.ok(id, `${page}: a control without id: ${m[0]}`);
        assert.match(res.text, new RegExp(`<label for="${escapeRe(id)}"`), `${page}: no label for #${id}`);
      }
    }
  });

  test('the palette stylesheet gives each shared tag its colour as a class, cached by its hash', async () => {
    const { agent } = await owner();
    const home = await agent.get('/workspace').expect(200);
    assert.match(home.text, /class="chip chip-t-urgent"/, 'the home page shows the palette');
    const href = /href="(\/workspace\/palette\.css\?v=[0-9a-f]{16})"/.exec(home.text)?.[1];
    assert.ok(href);
    const css = await agent
      .get(href)
      .expect(200)
      .expect('Content-Type', /text\/css/);
    assert.match(css.text, /\.chip-t-work \{ background: #1d4ed8; border-color: #1d4ed8; color: #ffffff; \}/);
    assert.match(css.headers['cache-control'] ?? '', /private, max-age=31536000, immutable/);
    await request(server.url).get(href).set('Accept', 'text/css').expect(303).expect('Location', '/login');
  });
});
