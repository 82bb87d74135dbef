// The per-workspace storage quota over HTTP (TENANT_QUOTA_MB=1 here): shown
// to the owner, enforced on every write of the API and the pages with a 413
// and words saying what to do, nothing of a refused write kept, and room made
// at once by a delete. Real PostgreSQL and Redis.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type request from 'supertest';
import { HTML, submit } from '../../helpers/http.ts';
import { type SignedIn, signUp, startTestServer, type TestServer } from '../../helpers/server.ts';

const QUOTA = 1_000_000;
const FULL =
  /^Your workspace is full: [\d.]+ (?:bytes|kB|MB) of 1 MB used, and this change needs [\d.]+ (?:bytes|kB) more\. Delete notes or tasks to make room\.$/;

describe('workspace storage quota', () => {
  let t: TestServer;
  let a: SignedIn;
  let schema: string;

  before(async () => {
    t = await startTestServer({ TENANT_QUOTA_MB: '1' });
    a = await signUp(t.url);
    const { rows } = await t.db.pool.query('SELECT schema_name FROM control.tenants WHERE id = $1', [
      a.user.tenantId,
    ]);
    schema = rows[0].schema_name;
  });
  after(async () => {
    await t.stop();
  });

  const send = (method: 'post' | 'patch' | 'delete', path: string, body?: object) => {
    const req = a.agent[method](path).set('X-CSRF-Token', a.csrf);
    return body === undefined ? req : req.send(body);
  };
  const usage = async () => (await a.agent.get('/api/v1/workspace').expect(200)).body.workspace.storage;
  /** The usage as the test computes it from the rows. */
  const recount = async (): Promise<number> => {
    const { rows } = await t.db.pool.query(
      `SELECT (SELECT coalesce(sum(100 + octet_length(title) + octet_length(body) + coalesce(octet_length(html), 0)
                                   + coalesce(octet_length(array_to_string(tags, '')), 0)), 0) FROM "${schema}".notes)
            + (SELECT coalesce(sum(100 + octet_length(title)), 0) FROM "${schema}".tasks) AS n`,
    );
    return Number(rows[0].n);
  };
  const counts = async () => {
    const { rows } = await t.db.pool.query(
      `SELECT (SELECT count(*) FROM "${schema}".notes)::int AS notes, (SELECT count(*) FROM "${schema}".tasks)::int AS tasks,
              (SELECT count(*) FROM control.audit_inbox WHERE tenant_id = $1)::int AS events`,
      [a.user.tenantId],
    );
    return rows[0];
  };
  /** Posts a page's form as a browser does. */
  const form = (page: string, action: string, fields: Record<string, string>) =>
    submit(a.agent, page, action, fields, { Accept: HTML });

  test('a new workspace shows what it uses of its quota, in the API and on its home page', async () => {
    assert.deepEqual(await usage(), {
      usedBytes: 0,
      quotaBytes: QUOTA,
      usedPercent: 0,
      summary: '0 bytes of 1 MB used',
    });
    const home = await a.agent.get('/workspace').set('Accept', HTML).expect(200);
    assert.match(home.text, /Storage: 0 bytes of 1 MB used \(0%\)\./);
    const res = await a.agent.get('/api/v1/workspace').expect(200);
    assert.equal(res.headers['cache-control'], 'no-store');
  });

  let task: { id: number; version: number };
  let kept: { id: number; version: number };

  test('filling the workspace: the write that would go over is refused with 413 and its words, and nothing of it is kept', async () => {
    task = (await send('post', '/api/v1/tasks', { title: 'made before it was full' }).expect(201)).body.task;
    kept = (await send('post', '/api/v1/notes', { title: 'short', body: 'a few words' }).expect(201)).body
      .note;
    const body = 'word '.repeat(19_000); // 95 kB, stored twice (text and HTML)
    let refused: request.Response | undefined;
    for (let i = 0; i < 10 && !refused; i++) {
      const before = { usage: await usage(), counts: await counts() };
      const res = await send('post', '/api/v1/notes', { title: `big ${i}`, body });
      if (res.status === 201) continue;
      refused = res;
      assert.equal(res.status, 413, res.text);
      assert.equal(res.body.error.code, 'quota_exceeded');
      assert.match(res.body.error.message, FULL);
      assert.deepEqual(res.body.error.details, {
        usedBytes: before.usage.usedBytes,
        quotaBytes: QUOTA,
        neededBytes: 100 + `big ${i}`.length + body.length + `<p>${body.trimEnd()}</p>\n`.length,
      });
      assert.deepEqual(await counts(), before.counts, 'no note, no audit event');
      assert.deepEqual(await usage(), before.usage);
    }
    assert.ok(refused, 'the quota was reached within 10 notes of 95 kB');
    const now = await usage();
    assert.ok(now.usedBytes <= QUOTA && now.usedBytes > QUOTA - 200_000, JSON.stringify(now));
    assert.equal(now.usedBytes, await recount(), 'the usage shown is what is stored');
    assert.equal(now.usedPercent, Math.floor((now.usedBytes * 100) / QUOTA));
  });

  test('a full workspace refuses every write that adds, from the API and the pages; shrinking, moving and deleting still work', async () => {
    // Fill the last bytes exactly: a note of n characters stores 100 + title + n + (n + 8) bytes of HTML.
    const room = QUOTA - (await usage()).usedBytes;
    const n = Math.floor((room - 100 - 'last'.length - 8) / 2);
    const last = (await send('post', '/api/v1/notes', { title: 'last', body: 'x'.repeat(n) }).expect(201))
      .body.note;
    assert.ok(QUOTA - (await usage()).usedBytes <= 1, 'at most one byte left');
    const before = await counts();

    const refusals: Array<[string, () => Promise<request.Response>]> = [
      ['API: create a note', () => send('post', '/api/v1/notes', { title: 'one more' })],
      ['API: create a task', () => send('post', '/api/v1/tasks', { title: 'one more' })],
      [
        'API: lengthen a note',
        () =>
          send('patch', `/api/v1/notes/${kept.id}`, { version: kept.version, title: 'short, but longer' }),
      ],
      [
        'API: tag a note',
        () => send('patch', `/api/v1/notes/${kept.id}`, { version: kept.version, tags: ['more'] }),
      ],
      [
        'API: lengthen a task',
        () =>
          send('patch', `/api/v1/tasks/${task.id}`, {
            version: task.version,
            title: `${'longer '.repeat(5)}title`,
          }),
      ],
      [
        'page: new note',
        () => form('/workspace/notes/new', '/workspace/notes', { title: 'one more', body: '' }),
      ],
      [
        'page: edit a note',
        () =>
          form(`/workspace/notes/${kept.id}/edit`, `/workspace/notes/${kept.id}`, {
            title: 'short',
            body: 'a few more words',
            version: String(kept.version),
          }),
      ],
      [
        'page: new task',
        () => form('/workspace/tasks/new', '/workspace/tasks', { title: 'one more', status: 'open' }),
      ],
      [
        'page: edit a task',
        () =>
          form(`/workspace/tasks/${task.id}/edit`, `/workspace/tasks/${task.id}`, {
            title: `${'longer '.repeat(5)}title`,
            status: 'open',
            version: String(task.version),
          }),
      ],
    ];
    for (const [name, attempt] of refusals) {
      const res = await attempt();
      assert.equal(res.status, 413, `${name}: ${res.status} ${res.text.slice(0, 300)}`);
      if (res.type === 'application/json') assert.match(res.body.error.message, FULL, name);
      else assert.match(res.text, /Your workspace is full: [^<]+ Delete notes or tasks to make room\./, name);
    }
    // The editor comes back with what was typed.
    const page = await form('/workspace/notes/new', '/workspace/notes', {
      title: 'keep my words',
      body: 'typed text',
    });
    assert.match(page.text, /value="keep my words"/);
    assert.match(page.text, /typed text<\/textarea>/);
    // A template (no form to show again) gets the error page with the same words.
    const templates = (await a.agent.get('/api/v1/reference').expect(200)).body.taskTemplates;
    const fromTemplate = await form('/workspace/tasks', '/workspace/tasks/from-template', {
      templateId: String(templates[0].id),
    });
    assert.equal(fromTemplate.status, 413);
    assert.match(fromTemplate.text, /Your workspace is full/);
    assert.deepEqual(await counts(), before, 'nothing was written, nothing audited');

    // What does not add passes: a shorter text, a task moved, a delete.
    const shorter = await send('patch', `/api/v1/notes/${last.id}`, {
      version: last.version,
      body: 'x',
    }).expect(200);
    assert.equal(shorter.body.note.version, last.version + 1);
    await send('patch', `/api/v1/tasks/${task.id}`, { version: task.version, status: 'done' }).expect(200);
    const afterShrink = await usage();
    assert.ok(afterShrink.usedBytes < QUOTA - 2 * n + 10, 'shrinking gave the space back');
    assert.equal(afterShrink.usedBytes, await recount());
  });

  test('deleting makes room at once', async () => {
    // Full again, then a delete, then the same note fits.
    const room = QUOTA - (await usage()).usedBytes;
    const n = Math.floor((room - 100 - 'again'.length - 8) / 2);
    const again = (await send('post', '/api/v1/notes', { title: 'again', body: 'y'.repeat(n) }).expect(201))
      .body.note;
    const next = { title: 'next', body: 'z'.repeat(Math.floor(n / 2)) };
    await send('post', '/api/v1/notes', next).expect(413);
    await send('delete', `/api/v1/notes/${again.id}?version=${again.version}`).expect(204);
    await send('post', '/api/v1/notes', next).expect(201);
    const shown = await usage();
    assert.equal(shown.usedBytes, await recount());
    const home = await a.agent.get('/workspace').set('Accept', HTML).expect(200);
    assert.match(
      home.text,
      new RegExp(`Storage: ${shown.summary.replace('.', '\\.')} \\(${shown.usedPercent}%\\)\\.`),
    );
  });

  test('a read never carries the quota: an over-full workspace still serves its notes', async () => {
    // A lowered quota (or HTML stored on a first read) can leave a workspace above it.
    await t.db.pool.query(`UPDATE "${schema}".storage_usage SET bytes = $1`, [QUOTA + 5000]);
    const shown = await usage();
    assert.equal(shown.usedPercent, 100);
    const home = await a.agent.get('/workspace').set('Accept', HTML).expect(200);
    assert.match(home.text, /Your workspace is full: delete notes or tasks to make room\./);
    await a.agent.get(`/api/v1/notes/${kept.id}`).expect(200);
    await send('post', '/api/v1/notes', { title: 'no' }).expect(413);
    await t.db.pool.query(`UPDATE "${schema}".storage_usage SET bytes = $1`, [await recount()]);
  });
});
