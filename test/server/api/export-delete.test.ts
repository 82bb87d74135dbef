// "Your data is yours": the workspace export (a streamed .tar.gz of JSON Lines
// plus a manifest) and account deletion, through a real server on its own
// database and the real Redis.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, test } from 'node:test';
import { createGunzip, gunzipSync } from 'node:zlib';
import { generate } from 'otplib';
import pg from 'pg';
import request from 'supertest';
import tar from 'tar-stream';
import { DELETE_CONFIRMATION } from '../../../server/accounts/account-deletion.ts';
import { setLegalHold } from '../../../tenancy/lifecycle.ts';
import { createApiToken } from '../../helpers/http.ts';
import {
  GOOD_PASSWORD,
  type SignedIn,
  signIn,
  signUp,
  startTestServer,
  type TestServer,
} from '../../helpers/server.ts';

let t: TestServer;

before(async () => {
  t = await startTestServer();
});

after(async () => {
  await t?.stop();
});

// --- helpers ---------------------------------------------------------------

const bearer = (secret: string) => ({ Authorization: `Bearer ${secret}` });
const schemaOf = (p: SignedIn) => `t_${p.user.tenantId}`;

/** supertest keeps a binary body as one Buffer (in Node, its response is the IncomingMessage). */
function binary(res: request.Response, done: (err: Error | null, body: unknown) => void): void {
  const stream = res as unknown as http.IncomingMessage;
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  stream.on('end', () => done(null, Buffer.concat(chunks)));
  stream.on('error', (err) => done(err, undefined));
}

interface Archive {
  names: string[];
  files: Map<string, Buffer>;
  manifest: Manifest;
}

interface Manifest {
  format: string;
  formatVersion: number;
  tenantId: string;
  exportedAt: string;
  schemaVersion: number;
  files: Array<{
    name: string;
    table: string;
    columns: string[];
    rows: number;
    bytes: number;
    sha256: string;
  }>;
}

async function readArchive(gz: Buffer): Promise<Archive> {
  const extract = tar.extract();
  const names: string[] = [];
  const files = new Map<string, Buffer>();
  const reading = (async () => {
    for await (const entry of extract) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      names.push(entry.header.name);
      files.set(entry.header.name, Buffer.concat(chunks));
    }
  })();
  extract.end(gunzipSync(gz));
  await reading;
  const manifest = JSON.parse(files.get('manifest.json')?.toString('utf8') ?? 'null') as Manifest;
  return { names, files, manifest };
}

function lines(buf: Buffer | undefined): Array<Record<string, unknown>> {
  const text = buf?.toString('utf8') ?? '';
  assert.ok(text === '' || text.endsWith('\n'), 'a JSON Lines file ends with a newline');
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

const sha256 = (buf: Buffer) => createHash('sha256').update(buf).digest('hex');

/** Every file the manifest names is in the archive with exactly that size, hash and row count. */
function assertManifestMatches(archive: Archive): void {
  const { manifest, files, names } = archive;
  assert.equal(names[0], 'manifest.json', 'the manifest comes first');
  assert.deepEqual(
    [...names.slice(1)].sort(),
    manifest.files.map((f) => f.name).sort(),
    'the archive holds the manifest and exactly the files it names',
  );
  for (const f of manifest.files) {
    const body = files.get(f.name);
    assert.ok(body, `${f.name} is in the archive`);
    assert.equal(body.length, f.bytes, `${f.name}: byte size`);
    assert.equal(sha256(body), f.sha256, `${f.name}: SHA-256`);
    assert.equal(lines(body).length, f.rows, `${f.name}: row count`);
  }
}

async function exportOf(agent: request.Agent | request.SuperTest<request.Test>, headers = {}) {
  const res = await agent.get('/api/v1/export').set(headers).buffer(true).parse(binary).expect(200);
  assert.equal(res.headers['content-type'], 'application/gzip');
  assert.match(
    res.headers['content-disposition'] ?? '',
    /^attachment; filename="enclave-export-\d{4}-\d{2}-\d{2}\.tar\.gz"$/,
  );
  assert.match(res.headers['cache-control'] ?? '', /no-store/);
  return readArchive(res.body as Buffer);
}

async function addNotes(
  p: SignedIn,
  titles: string[],
  body = '',
): Promise<Array<{ id: number; title: string }>> {
  const created: Array<{ id: number; title: string }> = [];
  // A few at a time: quick, and the server's pool is not the thing under test.
  for (let i = 0; i < titles.length; i += 10) {
    const batch = titles.slice(i, i + 10);
    const results = await Promise.all(
      batch.map((title) =>
        p.agent.post('/api/v1/notes').set('X-CSRF-Token', p.csrf).send({ title, body }).expect(201),
      ),
    );
    for (const r of results) created.push({ id: Number(r.body.note.id), title: r.body.note.title });
  }
  return created;
}

/** Tasks through the workspace API, one after another so their ids follow the list's order. */
async function addTasks(
  p: SignedIn,
  tasks: Array<{ title: string; status: string; due: string | null; noteId: number | null }>,
) {
  for (const task of tasks) {
    await p.agent
      .post('/api/v1/tasks')
      .set('X-CSRF-Token', p.csrf)
      .send({ title: task.title, status: task.status, dueDate: task.due, noteId: task.noteId })
      .expect(201);
  }
}

async function createToken(p: SignedIn, scope: 'read' | 'write'): Promise<string> {
  return (await createApiToken(p, scope)).secret;
}

async function schemaAndRole(p: SignedIn): Promise<{ schema: boolean; role: boolean }> {
  const name = schemaOf(p);
  const schema = await t.db.pool.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [name]);
  const role = await t.db.pool.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [name]);
  return { schema: schema.rowCount === 1, role: role.rowCount === 1 };
}

async function auditRows(tenantId: string, action: string) {
  const { rows } = await t.db.pool.query(
    `SELECT actor_type, actor_id, action, outcome, outcome_code, resource_id, details
       FROM control.audit_inbox WHERE tenant_id = $1 AND action = $2 ORDER BY id`,
    [tenantId, action],
  );
  return rows;
}

// --- export ----------------------------------------------------------------

describe('GET /api/v1/export', () => {
  let alice: SignedIn;
  let bob: SignedIn;
  let notes: Array<{ id: number; title: string }>;
  const TRICKY = 'line one\nline "two" \\ tab\t ünïcødé 🎉 </script><script>alert(1)</script>';

  before(async () => {
    alice = await signUp(t.url);
    bob = await signUp(t.url);
    const titles = Array.from({ length: 249 }, (_, i) => `Alice note ${String(i + 1).padStart(3, '0')}`);
    notes = await addNotes(alice, titles);
    notes.push(...(await addNotes(alice, ['Alice tricky note'], TRICKY)));
    const first = notes[0] as { id: number };
    await addTasks(alice, [
      { title: 'Open task', status: 'open', due: '2026-12-24', noteId: first.id },
      { title: 'Doing task', status: 'doing', due: null, noteId: null },
      { title: 'Done task', status: 'done', due: '2027-01-31', noteId: null },
    ]);
    await addNotes(bob, ['BOB-SECRET-NOTE'], 'BOB-SECRET-BODY');
    await addTasks(bob, [{ title: 'BOB-SECRET-TASK', status: 'open', due: null, noteId: null }]);
  });

  test('every note and task is in the archive, and the manifest matches its files', async () => {
    const archive = await exportOf(alice.agent);
    assertManifestMatches(archive);
    const { manifest, files } = archive;
    assert.equal(manifest.format, 'enclave-workspace-export');
    assert.equal(manifest.formatVersion, 1);
    assert.equal(manifest.tenantId, alice.user.tenantId);
    const version = await t.db.pool.query('SELECT schema_version FROM control.tenants WHERE id = $1', [
      alice.user.tenantId,
    ]);
    assert.equal(manifest.schemaVersion, version.rows[0].schema_version);
    assert.ok(Math.abs(Date.parse(manifest.exportedAt) - Date.now()) < 60_000, 'exportedAt is now');
    assert.ok(files.has('notes.jsonl') && files.has('tasks.jsonl'));

    const exported = lines(files.get('notes.jsonl'));
    assert.equal(exported.length, 250);
    assert.deepEqual(
      exported.map((n) => [n.id, n.title]),
      notes.map((n) => [n.id, n.title]).sort((a, b) => Number(a[0]) - Number(b[0])),
      'every note, in id order',
    );
    const noteFile = manifest.files.find((f) => f.name === 'notes.jsonl');
    assert.ok(noteFile && !noteFile.columns.includes('search'), 'the generated search column is left out');
    for (const column of ['id', 'title', 'body', 'tags', 'version', 'created_at', 'updated_at']) {
      assert.ok(noteFile.columns.includes(column), `notes.${column} is exported`);
      assert.ok(column in (exported[0] as object), `each note has ${column}`);
    }
    assert.ok(!('search' in (exported[0] as object)));
    const tricky = exported.find((n) => n.title === 'Alice tricky note');
    assert.equal(tricky?.body, TRICKY, 'text survives exactly (newlines, quotes, Unicode)');
    // Timestamps keep PostgreSQL's full precision: compare with the database's own JSON form.
    const db = await t.db.pool.query(
      `SELECT row_to_json(r)::text AS line FROM (SELECT id, created_at FROM "${schemaOf(alice)}".notes ORDER BY id LIMIT 1) r`,
    );
    const first = JSON.parse(db.rows[0].line);
    assert.equal(exported[0]?.created_at, first.created_at);

    const tasks = lines(files.get('tasks.jsonl'));
    assert.deepEqual(
      tasks.map((x) => [x.title, x.status, x.due_date, x.note_id]),
      [
        ['Open task', 'open', '2026-12-24', notes[0]?.id],
        ['Doing task', 'doing', null, null],
        ['Done task', 'done', '2027-01-31', null],
      ],
    );
  });

  test("another tenant's rows are never in an export", async () => {
    const archive = await exportOf(alice.agent);
    for (const [name, body] of archive.files) {
      assert.ok(!body.toString('utf8').includes('BOB-SECRET'), `${name} holds nothing of Bob's`);
    }
    const bobs = await exportOf(bob.agent);
    assertManifestMatches(bobs);
    assert.equal(bobs.manifest.tenantId, bob.user.tenantId);
    assert.deepEqual(
      lines(bobs.files.get('notes.jsonl')).map((n) => n.title),
      ['BOB-SECRET-NOTE'],
    );
    assert.deepEqual(
      lines(bobs.files.get('tasks.jsonl')).map((x) => x.title),
      ['BOB-SECRET-TASK'],
    );
  });

  test('all tables come from one snapshot: rows committed during the export are in none of them', async () => {
    const before = await exportOf(alice.agent);
    const countOf = (a: Archive, name: string) => a.manifest.files.find((f) => f.name === name)?.rows;
    const schema = schemaOf(alice);
    // Holding tasks locked stops the export after it has read notes and before it reads tasks;
    // meanwhile a note and a task are added and committed. One snapshot shows neither.
    const blocker = new pg.Client({ connectionString: t.db.url });
    await blocker.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query(`LOCK TABLE "${schema}".tasks IN ACCESS EXCLUSIVE MODE`);
      const running = exportOf(alice.agent);
      const deadline = Date.now() + 15_000;
      for (;;) {
        const waiting = await t.db.pool.query(
          `SELECT 1 FROM pg_locks WHERE relation = to_regclass($1) AND NOT granted`,
          [`"${schema}".tasks`],
        );
        if (waiting.rowCount) break;
        assert.ok(Date.now() < deadline, 'the export reached the tasks table');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await blocker.query(`INSERT INTO "${schema}".notes (title) VALUES ('LATE NOTE')`);
      await blocker.query(`INSERT INTO "${schema}".tasks (title) VALUES ('LATE TASK')`);
      await blocker.query('COMMIT');
      const during = await running;
      assertManifestMatches(during);
      assert.equal(countOf(during, 'notes.jsonl'), countOf(before, 'notes.jsonl'));
      assert.equal(countOf(during, 'tasks.jsonl'), countOf(before, 'tasks.jsonl'));
      assert.ok(!during.files.get('notes.jsonl')?.toString('utf8').includes('LATE NOTE'));
      assert.ok(!during.files.get('tasks.jsonl')?.toString('utf8').includes('LATE TASK'));
    } finally {
      await blocker.query('ROLLBACK').catch(() => {});
      await blocker.end();
    }
    const later = await exportOf(alice.agent);
    assert.equal(countOf(later, 'notes.jsonl'), (countOf(before, 'notes.jsonl') ?? 0) + 1);
    assert.equal(countOf(later, 'tasks.jsonl'), (countOf(before, 'tasks.jsonl') ?? 0) + 1);
    await t.db.pool.query(`DELETE FROM "${schema}".tasks WHERE title = 'LATE TASK'`);
    await t.db.pool.query(`DELETE FROM "${schema}".notes WHERE title = 'LATE NOTE'`);
  });

  test('an API token with read scope can export', async () => {
    const secret = await createToken(alice, 'read');
    const res = await request(t.url)
      .get('/api/v1/export')
      .set(bearer(secret))
      .buffer(true)
      .parse(binary)
      .expect(200);
    assert.equal(res.headers['set-cookie'], undefined, 'a token request gets no session');
    const archive = await readArchive(res.body as Buffer);
    assertManifestMatches(archive);
    assert.equal(archive.manifest.tenantId, alice.user.tenantId);
    const audit = await auditRows(alice.user.tenantId as string, 'workspace.export');
    const byToken = audit.find((r) => r.actor_type === 'token');
    assert.equal(byToken?.actor_id, alice.user.id, 'the person, through their token');
    assert.equal(byToken?.outcome, 'success');
    assert.ok(byToken?.details.credentialId, "the token's id is recorded");
  });

  test('the export is audited with what it held', async () => {
    const audit = await auditRows(alice.user.tenantId as string, 'workspace.export');
    const mine = audit.find((r) => r.actor_type === 'user');
    assert.ok(mine, 'an audit row for the export');
    assert.equal(mine.actor_id, alice.user.id);
    assert.equal(mine.outcome, 'success');
    assert.ok(mine.details.files['notes.jsonl'].rows >= 250);
  });

  test('without a session or token there is no export (401)', async () => {
    const res = await request(t.url).get('/api/v1/export').expect(401);
    assert.equal(res.body.error.code, 'login_required');
  });

  test('a large workspace is streamed: the server heap does not grow with it', async () => {
    const carol = await signUp(t.url);
    const schema = schemaOf(carol);
    // 20,000 notes of ~4.8 kB: about 96 MB of JSON, far more than the allowed heap growth.
    await t.db.pool.query(
      `INSERT INTO "${schema}".notes (title, body)
       SELECT 'bulk ' || i, repeat(md5(i::text), 150) FROM generate_series(1, 20000) AS i`,
    );
    const secret = await createToken(carol, 'read');
    const baseline = process.memoryUsage().heapUsed;
    let peak = baseline;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().heapUsed);
    }, 5);
    let manifest: Manifest | undefined;
    const hashes = new Map<string, string>();
    try {
      const res = await new Promise<http.IncomingMessage>((resolve, reject) =>
        http.get(`${t.url}/api/v1/export`, { headers: bearer(secret) }, resolve).on('error', reject),
      );
      assert.equal(res.statusCode, 200);
      const extract = tar.extract();
      const reading = (async () => {
        for await (const entry of extract) {
          const hash = createHash('sha256');
          const kept: Buffer[] = [];
          for await (const chunk of entry) {
            hash.update(chunk as Buffer);
            if (entry.header.name === 'manifest.json') kept.push(chunk as Buffer);
          }
          hashes.set(entry.header.name, hash.digest('hex'));
          if (kept.length) manifest = JSON.parse(Buffer.concat(kept).toString('utf8'));
        }
      })();
      await Promise.all([pipeline(res, createGunzip(), extract), reading]);
    } finally {
      clearInterval(sampler);
    }
    const notes = manifest?.files.find((f) => f.name === 'notes.jsonl');
    assert.equal(notes?.rows, 20_000);
    assert.ok((notes?.bytes ?? 0) > 90_000_000);
    for (const f of manifest?.files ?? []) assert.equal(hashes.get(f.name), f.sha256, `${f.name}: SHA-256`);
    const growth = peak - baseline;
    assert.ok(growth < 48 * 1024 * 1024, `heap grew ${(growth / 1048576).toFixed(1)} MB for a 96 MB export`);
  });

  test('a client that hangs up, before or during the download, leaves no files and no error behind', async () => {
    const dave = await signUp(t.url);
    // Hex digests compress only about 2:1: some 8 MB of download, more than the sockets buffer.
    await t.db.pool.query(
      `INSERT INTO "${schemaOf(dave)}".notes (title, body)
       SELECT 'bulk ' || i, (SELECT string_agg(md5(i || '.' || j), '') FROM generate_series(1, 150) AS j)
         FROM generate_series(1, 3000) AS i`,
    );
    const secret = await createToken(dave, 'read');
    const earlier = new Set(await readdir(tmpdir()));
    const leftovers = async () =>
      (await readdir(tmpdir())).filter((n) => n.startsWith('enclave-export-') && !earlier.has(n));
    const cleanedUp = async () => {
      const deadline = Date.now() + 10_000;
      while ((await leftovers()).length > 0) {
        assert.ok(Date.now() < deadline, 'the temporary export files are removed');
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    };
    const audited = async () =>
      (
        await t.db.pool.query(
          "SELECT 1 FROM control.audit_inbox WHERE tenant_id = $1 AND action = 'workspace.export'",
          [dave.user.tenantId],
        )
      ).rowCount;

    // While the rows are still being read: the transaction stops and rolls back (no audit row).
    const early = http.get(`${t.url}/api/v1/export`, { headers: bearer(secret) });
    early.on('error', () => {});
    const deadline = Date.now() + 10_000;
    while ((await leftovers()).length === 0) {
      assert.ok(Date.now() < deadline, 'the export started');
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    early.destroy();
    await cleanedUp();
    assert.equal(await audited(), 0, 'an export nobody received is not audited');

    // During the download: the client stops reading, the server blocks on backpressure, the client goes.
    const res = await new Promise<http.IncomingMessage>((resolve, reject) =>
      http.get(`${t.url}/api/v1/export`, { headers: bearer(secret) }, resolve).on('error', reject),
    );
    assert.equal(res.statusCode, 200);
    res.pause();
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal((await leftovers()).length, 1, 'the server is still sending when the client hangs up');
    res.destroy();
    await cleanedUp();

    await request(t.url).get('/healthz').expect(200);
    const errors = t.logs.lines().filter((l) => l.level === 'error' || String(l.message).includes('export'));
    assert.deepEqual(
      errors.map((e) => JSON.stringify(e)),
      [],
      'a hang-up is not a server error',
    );
  });
});

// --- account deletion ------------------------------------------------------

describe('POST /api/v1/account/delete', () => {
  const remove = (p: SignedIn, body: Record<string, unknown>) =>
    p.agent.post('/api/v1/account/delete').set('X-CSRF-Token', p.csrf).send(body);

  async function assertIntact(p: SignedIn, others: SignedIn[] = []) {
    assert.deepEqual(await schemaAndRole(p), { schema: true, role: true });
    const user = await t.db.pool.query('SELECT 1 FROM control.users WHERE id = $1', [p.user.id]);
    assert.equal(user.rowCount, 1, 'the user row is still there');
    const tenant = await t.db.pool.query('SELECT state FROM control.tenants WHERE id = $1', [
      p.user.tenantId,
    ]);
    assert.equal(tenant.rows[0].state, 'active');
    for (const session of [p, ...others]) await session.agent.get('/api/v1/me').expect(200);
    const list = await p.agent.get('/api/v1/notes').expect(200);
    assert.ok(list.body.notes.length >= 1, 'the notes are still there');
  }

  test('a wrong phrase, a wrong password or a malformed body is refused and nothing changes', async () => {
    const p = await signUp(t.url);
    const other = await signIn(t.url, p.email, p.password);
    await addNotes(p, ['keep me']);
    const cases: Array<[Record<string, unknown>, number, string]> = [
      [{ confirm: 'delete my account', password: GOOD_PASSWORD }, 400, 'invalid_input'],
      [{ confirm: 'DELETE', password: GOOD_PASSWORD }, 400, 'invalid_input'],
      [{ confirm: p.email, password: GOOD_PASSWORD }, 400, 'invalid_input'],
      [{ confirm: DELETE_CONFIRMATION, password: 'not-the-password-at-all' }, 401, 'unauthenticated'],
      [{ confirm: DELETE_CONFIRMATION }, 400, 'invalid_input'],
      [{ confirm: DELETE_CONFIRMATION, password: GOOD_PASSWORD, force: true }, 400, 'invalid_input'],
      [{ confirm: DELETE_CONFIRMATION, password: 12345 }, 400, 'invalid_input'],
    ];
    for (const [body, status, code] of cases) {
      const res = await remove(p, body).expect(status);
      assert.equal(res.body.error.code, code, JSON.stringify(body));
    }
    // Without the CSRF token, a session cookie cannot delete anything.
    await p.agent
      .post('/api/v1/account/delete')
      .send({ confirm: DELETE_CONFIRMATION, password: GOOD_PASSWORD })
      .expect(403);
    await assertIntact(p, [other]);
    const refusals = await auditRows(p.user.tenantId as string, 'account.delete');
    assert.deepEqual(
      refusals.map((r) => [r.outcome, r.outcome_code]),
      [['failure', 'wrong_password']],
    );
  });

  test('an API token cannot delete the account, even with write scope', async () => {
    const p = await signUp(t.url);
    await addNotes(p, ['keep me']);
    for (const scope of ['write', 'read'] as const) {
      const secret = await createToken(p, scope);
      const res = await request(t.url)
        .post('/api/v1/account/delete')
        .set(bearer(secret))
        .send({ confirm: DELETE_CONFIRMATION, password: GOOD_PASSWORD })
        .expect(403);
      assert.equal(res.body.error.code, 'forbidden');
    }
    await assertIntact(p);
  });

  test('under legal hold: 409 with a clear message, and nothing changes', async () => {
    const p = await signUp(t.url);
    const other = await signIn(t.url, p.email, p.password);
    await addNotes(p, ['keep me']);
    await setLegalHold(t.db.pool, p.user.tenantId as string, true);
    const res = await remove(p, { confirm: DELETE_CONFIRMATION, password: GOOD_PASSWORD }).expect(409);
    assert.equal(res.body.error.code, 'legal_hold');
    assert.match(res.body.error.message, /legal hold/);
    assert.match(res.body.error.message, /Nothing was changed/);
    await assertIntact(p, [other]);
    const audit = await auditRows(p.user.tenantId as string, 'account.delete');
    assert.deepEqual(
      audit.map((r) => [r.outcome, r.outcome_code]),
      [['failure', 'legal_hold']],
    );
    // Once the hold is lifted, the same request goes through.
    await setLegalHold(t.db.pool, p.user.tenantId as string, false);
    await remove(p, { confirm: DELETE_CONFIRMATION, password: GOOD_PASSWORD }).expect(200);
    assert.deepEqual(await schemaAndRole(p), { schema: false, role: false });
  });

  test('deletion drops schema and role, ends every session, deletes the user and is audited', async () => {
    const p = await signUp(t.url);
    const phone = await signIn(t.url, p.email, p.password);
    await addNotes(p, ['gone soon']);
    const secret = await createToken(p, 'read');
    assert.deepEqual(await schemaAndRole(p), { schema: true, role: true });

    const res = await remove(p, { confirm: DELETE_CONFIRMATION, password: GOOD_PASSWORD }).expect(200);
    assert.equal(res.body.deleted, true);
    assert.equal(res.body.sessionsEnded, 2);

    assert.deepEqual(await schemaAndRole(p), { schema: false, role: false }, 'schema and role are gone');
    const tenant = await t.db.pool.query('SELECT state, display_name FROM control.tenants WHERE id = $1', [
      p.user.tenantId,
    ]);
    assert.equal(tenant.rows[0].state, 'deleted');
    assert.equal(tenant.rows[0].display_name, 'deleted account', "the person's name is not kept");
    const user = await t.db.pool.query('SELECT 1 FROM control.users WHERE id = $1', [p.user.id]);
    assert.equal(user.rowCount, 0, 'the user row is gone');
    const sessions = await t.db.pool.query('SELECT 1 FROM control.user_sessions WHERE user_id = $1', [
      p.user.id,
    ]);
    assert.equal(sessions.rowCount, 0);

    // This session and the other device are both signed out; the token is dead too.
    await p.agent.get('/api/v1/me').expect(401);
    await phone.agent.get('/api/v1/me').expect(401);
    await phone.agent.get('/api/v1/notes').expect(401);
    await request(t.url).get('/api/v1/export').set(bearer(secret)).expect(401);

    const audit = await auditRows(p.user.tenantId as string, 'account.delete');
    assert.equal(audit.length, 1, 'the audit row survives the drop');
    assert.equal(audit[0].outcome, 'success');
    assert.equal(audit[0].actor_type, 'user');
    assert.equal(audit[0].actor_id, p.user.id);
    assert.equal(audit[0].details.sessionsEnded, 2);

    // The email is free again: the person may come back with a new, empty workspace.
    const again = await signUp(t.url, { email: p.email });
    assert.notEqual(again.user.tenantId, p.user.tenantId);
  });

  test('with MFA on, the code is needed too', async () => {
    const p = await signUp(t.url);
    const setup = await p.agent.post('/api/v1/mfa/setup').set('X-CSRF-Token', p.csrf).expect(200);
    const secret = setup.body.secret as string;
    const epoch = Math.floor(Date.now() / 1000);
    const enable = await p.agent
      .post('/api/v1/mfa/enable')
      .set('X-CSRF-Token', p.csrf)
      .send({ password: GOOD_PASSWORD, code: await generate({ secret, epoch: epoch - 30 }) })
      .expect(200);
    const mfa = { ...p, csrf: enable.body.csrfToken as string };
    const body = { confirm: DELETE_CONFIRMATION, password: GOOD_PASSWORD };
    const missing = await remove(mfa, body).expect(401);
    assert.equal(missing.body.error.code, 'mfa_required');
    await remove(mfa, { ...body, totp: '000000' }).expect(401);
    assert.deepEqual(await schemaAndRole(p), { schema: true, role: true });
    // A recovery code works as the second factor (a fresh TOTP step may be a while off).
    const recovery = (enable.body.recoveryCodes as string[])[0];
    await remove(mfa, { ...body, totp: recovery }).expect(200);
    assert.deepEqual(await schemaAndRole(p), { schema: false, role: false });
  });
});

// --- the page --------------------------------------------------------------

describe('Delete my account on /account', () => {
  test('the page shows the section; a wrong phrase keeps everything; the right one ends signed out', async () => {
    const p = await signUp(t.url);
    const page = await p.agent.get('/account').expect(200);
    assert.match(page.text, /Delete my account/);
    assert.match(page.text, /action="\/account\/delete"/);
    assert.match(page.text, /href="\/api\/v1\/export"/);
    assert.doesNotMatch(page.text, /<script/i, 'no script on the page');

    const wrong = await p.agent
      .post('/account/delete')
      .type('form')
      .send({ _csrf: p.csrf, confirm: 'delete it please', password: GOOD_PASSWORD })
      .expect(400);
    assert.match(wrong.text, /Type DELETE MY ACCOUNT exactly/);
    assert.match(wrong.text, /value="delete it please"/, 'the typed phrase is kept');
    assert.doesNotMatch(wrong.text, new RegExp(GOOD_PASSWORD), 'the password is never echoed');
    assert.deepEqual(await schemaAndRole(p), { schema: true, role: true });

    const done = await p.agent
      .post('/account/delete')
      .type('form')
      .send({ _csrf: p.csrf, confirm: DELETE_CONFIRMATION, password: GOOD_PASSWORD })
      .expect(303);
    assert.equal(done.headers.location, '/login?notice=account-deleted');
    const login = await p.agent.get(done.headers.location).expect(200);
    assert.match(login.text, /Your account and your workspace have been deleted/);
    await p.agent.get('/account').expect(303).expect('location', '/login');
    assert.deepEqual(await schemaAndRole(p), { schema: false, role: false });
  });
});
