// Finding 8 of issue 8: auditors read the audit trail, not the workspaces. By
// default (AUDIT_CONTENT=hash) a note's title, body and tags and a task's title
// reach the sealed trail only as their length and SHA-256; AUDIT_CONTENT=full
// records text, as a deliberate choice. Through a real server, as an auditor
// sees it: GET /api/v1/audit/entries and the /audit page.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { openSigner } from '../../../audit/signing.ts';
import { sealAll } from '../../audit/chain-helpers.ts';
import {
  type SignedIn,
  signInPrivileged,
  signUp,
  startTestServer,
  type TestServer,
} from '../../helpers/server.ts';

const TITLE = 'Reorganisation plan for Harbour team';
const BODY = 'Confidential: the Harbour office closes in March; tell nobody before the board meets.';
const NEW_BODY = 'Confidential: postponed to June.';
const TAG = 'boardonly';
const TASK = 'Draft the Harbour closure letter';
const SECRETS = [TITLE, BODY, NEW_BODY, TAG, TASK, 'Harbour'];

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

interface Setup {
  t: TestServer;
  auditor: SignedIn;
  owner: SignedIn;
}

/** A server with an auditor and an owner who wrote a note (then edited it) and a task; all of it sealed. */
async function setUp(env: Record<string, string>): Promise<Setup> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'enclave-audit-content-'));
  const t = await startTestServer({ DATA_DIR: dataDir, ...env });
  const auditor = await signInPrivileged(t, 'auditor');
  const owner = await signUp(t.url);
  const note = (
    await owner.agent
      .post('/api/v1/notes')
      .set('X-CSRF-Token', owner.csrf)
      .send({ title: TITLE, body: BODY, tags: [TAG] })
      .expect(201)
  ).body.note;
  await owner.agent
    .patch(`/api/v1/notes/${note.id}`)
    .set('X-CSRF-Token', owner.csrf)
    .send({ version: 1, body: NEW_BODY })
    .expect(200);
  await owner.agent
    .post('/api/v1/tasks')
    .set('X-CSRF-Token', owner.csrf)
    .send({ title: TASK, dueDate: '2027-03-01', noteId: note.id })
    .expect(201);
  await sealAll(t.db.pool, await openSigner(path.join(dataDir, 'audit-signing-key.pem'), { create: false }));
  return { t, auditor, owner };
}

/** What the auditor's API answers for one action, as raw JSON text and parsed. */
async function entries(s: Setup, action: string) {
  const res = await s.auditor.agent.get('/api/v1/audit/entries').query({ action }).expect(200);
  const found = res.body.entries as Array<{ entry: { action: string; details: Record<string, unknown> } }>;
  assert.equal(found.length, 1, `one sealed ${action} entry`);
  return { text: res.text, details: found[0]?.entry.details as { changes: Record<string, unknown> } };
}

describe('AUDIT_CONTENT', () => {
  describe('hash (the default)', () => {
    let s: Setup;
    before(async () => {
      s = await setUp({});
    });
    after(async () => {
      await s?.t.stop();
    });

    test("an auditor's GET /api/v1/audit/entries?action=note.create holds no title, body or tag text", async () => {
      const { text, details } = await entries(s, 'note.create');
      for (const secret of SECRETS) assert.ok(!text.includes(secret), `"${secret}" is not in the answer`);
      assert.deepEqual(details.changes, {
        title: { from: null, to: { length: TITLE.length, sha256: sha256(TITLE) } },
        body: { from: null, to: { length: BODY.length, sha256: sha256(BODY) } },
        tags: { from: null, to: { length: 1, sha256: sha256(JSON.stringify([TAG])) } },
      });
    });

    test('an edit shows which field changed, by hash only; a task keeps status and due date verbatim', async () => {
      const update = await entries(s, 'note.update');
      for (const secret of SECRETS)
        assert.ok(!update.text.includes(secret), `"${secret}" is not in note.update`);
      assert.deepEqual(Object.keys(update.details.changes), ['body'], 'only the body changed');
      const task = await entries(s, 'task.create');
      for (const secret of SECRETS)
        assert.ok(!task.text.includes(secret), `"${secret}" is not in task.create`);
      const changes = task.details.changes as Record<string, { to: unknown }>;
      assert.deepEqual(changes.title?.to, { length: TASK.length, sha256: sha256(TASK) });
      assert.equal(changes.status?.to, 'open');
      assert.equal(changes.dueDate?.to, '2027-03-01');
      assert.equal(typeof changes.noteId?.to, 'number');
    });

    test('the auditor page says that content is recorded as length and SHA-256', async () => {
      const page = await s.auditor.agent.get('/audit').set('Accept', 'text/html').expect(200);
      assert.match(page.text, /never what they say/);
      assert.match(page.text, /length and SHA-256/);
      assert.doesNotMatch(page.text, /AUDIT_CONTENT=full/);
      for (const secret of SECRETS) assert.ok(!page.text.includes(secret), `"${secret}" is not on the page`);
    });
  });

  describe('full (a deliberate choice)', () => {
    let s: Setup;
    before(async () => {
      s = await setUp({ AUDIT_CONTENT: 'full' });
    });
    after(async () => {
      await s?.t.stop();
    });

    test('note.create holds the title, body and tags as text', async () => {
      const { details } = await entries(s, 'note.create');
      assert.deepEqual(details.changes, {
        title: { from: null, to: TITLE },
        body: { from: null, to: BODY },
        tags: { from: null, to: [TAG] },
      });
      const task = await entries(s, 'task.create');
      assert.equal((task.details.changes.title as { to: unknown }).to, TASK);
    });

    test('the auditor page says that content is recorded in full', async () => {
      const page = await s.auditor.agent.get('/audit').set('Accept', 'text/html').expect(200);
      assert.match(page.text, /AUDIT_CONTENT=full/);
    });
  });
});
