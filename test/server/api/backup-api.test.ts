// The admin backup API on a real server: admins back a workspace up, list,
// download (the download verifies offline with the public key alone), verify
// and restore it with the workspace id typed back; owners, their tokens,
// auditors and strangers are kept out; a restore needs the admin's password
// confirmed recently (POST /api/v1/admin/reauth); hostile input is a 4xx that
// changes nothing.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import { publicKeys } from '../../../audit/signing.ts';
import { archiveKeysFromPem, checkArchive } from '../../../backup/archive-reader.ts';
import {
  type SignedIn,
  signInPrivileged,
  signUp,
  startTestServer,
  type TestServer,
} from '../../helpers/server.ts';

/** supertest keeps a binary body as one Buffer. */
function binary(res: request.Response, done: (err: Error | null, body: unknown) => void): void {
  const chunks: Buffer[] = [];
  res.on('data', (c: Buffer) => chunks.push(c));
  res.on('end', () => done(null, Buffer.concat(chunks)));
}

interface BackupJson {
  id: string;
  tenantId: string;
  kind: string;
  outcome: string;
  rows: number;
  bytes: number;
  sha256: string;
  file: string;
  createdBy: string;
}

describe('admin backup API', () => {
  let t: TestServer;
  let dataDir: string;
  let admin: SignedIn;
  let auditor: SignedIn;
  let alice: SignedIn;
  let bob: SignedIn;
  let tenant: string;
  let first: BackupJson;

  const base = () => `/api/v1/admin/tenants/${tenant}/backups`;
  const post = (who: SignedIn, url: string) => who.agent.post(url).set('X-CSRF-Token', who.csrf);
  const notes = async (who: SignedIn) =>
    ((await who.agent.get('/api/v1/notes').expect(200)).body.notes as Array<{ title: string }>)
      .map((n) => n.title)
      .sort();
  const backupCount = async () =>
    Number((await t.db.pool.query('SELECT count(*)::int AS n FROM control.backups')).rows[0].n);
  const tenantCount = async () =>
    Number((await t.db.pool.query('SELECT count(*)::int AS n FROM control.tenants')).rows[0].n);

  before(async () => {
    dataDir = mkdtempSync(path.join(tmpdir(), 'enclave-backup-api-'));
    t = await startTestServer({ DATA_DIR: dataDir });
    admin = await signInPrivileged(t, 'admin');
    // A restore is destructive: the admin confirms their password first (ADMIN_REAUTH_MINUTES).
    await post(admin, '/api/v1/admin/reauth').send({ password: admin.password }).expect(204);
    auditor = await signInPrivileged(t, 'auditor');
    alice = await signUp(t.url);
    bob = await signUp(t.url);
    tenant = alice.user.tenantId as string;
    for (const title of ['one', 'two', 'three'])
      await post(alice, '/api/v1/notes')
        .send({ title, body: `body of ${title}` })
        .expect(201);
    await post(bob, '/api/v1/notes').send({ title: 'bob' }).expect(201);
  });
  after(async () => {
    await t.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('an admin backs a workspace up now (201) and lists its backups', async () => {
    const res = await post(admin, base()).send({}).expect(201);
    first = res.body.backup;
    assert.equal(first.tenantId, tenant);
    assert.equal(first.outcome, 'succeeded');
    assert.equal(first.kind, 'manual');
    assert.equal(first.createdBy, `admin:${admin.user.id}`);
    assert.ok(first.rows >= 3);
    assert.match(first.sha256, /^[0-9a-f]{64}$/);
    assert.match(first.file, new RegExp(`^${tenant}-\\d{8}T\\d{6}Z-[0-9a-f]{6}\\.enclave-backup$`));
    assert.equal(JSON.stringify(res.body).includes(dataDir), false, 'no server path in the answer');
    // Without a body at all, too.
    await admin.agent.post(base()).set('X-CSRF-Token', admin.csrf).expect(201);

    const list = (await admin.agent.get(base()).expect(200)).body.backups as BackupJson[];
    assert.equal(list.length, 2);
    assert.ok(list.some((b) => b.id === first.id));
    assert.ok(list.every((b) => b.tenantId === tenant));
  });

  test('nobody but an admin with a session gets in: owners, tokens and auditors 403, strangers 401', async () => {
    const token = (await post(alice, '/api/v1/tokens').send({ name: 'script', scope: 'write' }).expect(201))
      .body.secret as string;
    const before = await backupCount();
    const endpoints: Array<['get' | 'post', string, object?]> = [
      ['get', base()],
      ['post', base(), {}],
      ['get', `${base()}/${first.id}/download`],
      ['post', `${base()}/${first.id}/verify`, {}],
      ['post', `${base()}/${first.id}/restore`, { confirm: tenant }],
    ];
    for (const [method, url, body] of endpoints) {
      for (const who of [alice, auditor]) {
        const req = method === 'get' ? who.agent.get(url) : post(who, url).send(body);
        await req.expect(403);
      }
      const bearer = request(t.url)[method](url).set('Authorization', `Bearer ${token}`);
      await (body ? bearer.send(body) : bearer).expect(403);
      const stranger = request(t.url)[method](url);
      await (body ? stranger.send(body) : stranger).expect(401);
    }
    assert.equal(await backupCount(), before, 'nothing was backed up');
  });

  test('the download is the archive, and it verifies offline with the published public key alone', async () => {
    const res = await admin.agent
      .get(`${base()}/${first.id}/download`)
      .buffer(true)
      .parse(binary)
      .expect(200)
      .expect('Content-Type', 'application/octet-stream')
      .expect('Cache-Control', 'no-store');
    assert.equal(res.headers['content-disposition'], `attachment; filename="${first.file}"`);
    const body = res.body as Buffer;
    assert.equal(body.length, first.bytes);
    const keys = new Map();
    for (const k of await publicKeys(t.db.pool))
      for (const [id, key] of archiveKeysFromPem(k.pem)) keys.set(id, key);
    const manifest = await checkArchive(() => Readable.from([body]), { keys });
    assert.equal(manifest.tenant.id, tenant);
    assert.ok(manifest.tables.some((x) => x.name === 'notes' && x.rows === 3));
    // The download is on the tenant's chain: who took a copy, of what.
    const { rows } = await t.db.pool.query(
      "SELECT actor_type, actor_id, details FROM control.audit_inbox WHERE tenant_id = $1 AND action = 'tenant.backup.download'",
      [tenant],
    );
    assert.equal(rows.length, 1);
    assert.equal(rows[0].actor_type, 'admin');
    assert.equal(rows[0].actor_id, admin.user.id);
    assert.equal(rows[0].details.backupId, first.id);
  });

  test('verify checks the archive; ?restore=1 reloads every table', async () => {
    const plain = await post(admin, `${base()}/${first.id}/verify`).send({}).expect(200);
    assert.equal(plain.body.ok, true);
    assert.equal(plain.body.manifest.tenant.id, tenant);
    const full = await post(admin, `${base()}/${first.id}/verify?restore=1`).send({}).expect(200);
    assert.equal(full.body.ok, true);
    assert.ok(full.body.tables.length >= 2);
    for (const x of full.body.tables) assert.equal(x.ok, true, x.name);
    const { rows } = await t.db.pool.query(
      "SELECT outcome, details FROM control.audit_inbox WHERE tenant_id = $1 AND action = 'tenant.backup.verify' ORDER BY id",
      [tenant],
    );
    assert.deepEqual(
      rows.map((r) => [r.outcome, r.details.restore]),
      [
        ['success', false],
        ['success', true],
      ],
    );
  });

  test('hostile input is a 4xx with a message, and changes nothing', async () => {
    const backups = await backupCount();
    const tenants = await tenantCount();
    const bobs = bob.user.tenantId as string;
    const bobBackup = (await post(admin, `/api/v1/admin/tenants/${bobs}/backups`).send({}).expect(201)).body
      .backup as BackupJson;
    const after = backups + 1;
    const cases: Array<[string, () => request.Test, number]> = [
      ['tenant id not an id', () => admin.agent.get('/api/v1/admin/tenants/NOT-AN-ID/backups'), 404],
      ['unknown tenant', () => admin.agent.get('/api/v1/admin/tenants/zzzzzzzzzzzz/backups'), 404],
      ['tenant id with dots', () => post(admin, '/api/v1/admin/tenants/..%2f..%2fetc/backups').send({}), 404],
      ['backup id not an id', () => admin.agent.get(`${base()}/abc/download`), 404],
      ['a path as backup id', () => admin.agent.get(`${base()}/..%2f..%2fpasswd/download`), 404],
      [
        'unknown backup',
        () => admin.agent.get(`${base()}/00000000-0000-4000-8000-000000000000/download`),
        404,
      ],
      ["another tenant's backup", () => admin.agent.get(`${base()}/${bobBackup.id}/download`), 404],
      [
        "another tenant's backup, restore",
        () => post(admin, `${base()}/${bobBackup.id}/restore`).send({ confirm: tenant }),
        404,
      ],
      ['query on list', () => admin.agent.get(`${base()}?all=1`), 400],
      ['query on create', () => post(admin, `${base()}?kind=safety`).send({}), 400],
      ['unknown field on create', () => post(admin, base()).send({ kind: 'safety' }), 400],
      ['array body on create', () => post(admin, base()).send([]), 400],
      ['bad restore flag', () => post(admin, `${base()}/${first.id}/verify?restore=yes`).send({}), 400],
      [
        'array restore flag',
        () => post(admin, `${base()}/${first.id}/verify?restore=1&restore=1`).send({}),
        400,
      ],
      ['restore without confirm', () => post(admin, `${base()}/${first.id}/restore`).send({}), 400],
      [
        'restore, wrong confirm',
        () => post(admin, `${base()}/${first.id}/restore`).send({ confirm: bobs }),
        400,
      ],
      [
        'restore, confirm an object',
        () => post(admin, `${base()}/${first.id}/restore`).send({ confirm: { id: tenant } }),
        400,
      ],
      [
        'restore, confirm an array',
        () => post(admin, `${base()}/${first.id}/restore`).send({ confirm: [tenant] }),
        400,
      ],
      [
        'restore, unknown field',
        () => post(admin, `${base()}/${first.id}/restore`).send({ confirm: tenant, force: true }),
        400,
      ],
      [
        'restore, both',
        () => post(admin, `${base()}/${first.id}/restore`).send({ confirm: tenant, asNew: 'X' }),
        400,
      ],
      [
        'restore, confirm in the query',
        () => post(admin, `${base()}/${first.id}/restore?confirm=${tenant}`).send({}),
        400,
      ],
      ['clone, empty name', () => post(admin, `${base()}/${first.id}/restore`).send({ asNew: '  ' }), 400],
      [
        'clone, name an object',
        () => post(admin, `${base()}/${first.id}/restore`).send({ asNew: { name: 'x' } }),
        400,
      ],
      [
        'malformed JSON',
        () =>
          post(admin, `${base()}/${first.id}/restore`)
            .set('Content-Type', 'application/json')
            .send('{"confirm":'),
        400,
      ],
    ];
    const before = await notes(alice);
    for (const [what, send, status] of cases) {
      const res = await send();
      assert.equal(res.status, status, `${what}: ${res.status} ${JSON.stringify(res.body)}`);
      assert.equal(typeof res.body.error?.message, 'string', what);
      assert.ok(res.body.error.message.length > 0, what);
    }
    assert.equal(await backupCount(), after, 'no backup was made');
    assert.equal(await tenantCount(), tenants, 'no tenant was made');
    assert.deepEqual(await notes(alice), before, 'nothing was restored');
  });

  test('a restore without a recent password check is 403 reauth_required and restores nothing', async () => {
    const other = await signInPrivileged(t, 'admin');
    const tenants = await tenantCount();
    const before = await notes(alice);
    for (const body of [{ confirm: tenant }, { asNew: 'Alice copy' }]) {
      const res = await post(other, `${base()}/${first.id}/restore`).send(body).expect(403);
      assert.equal(res.body.error.code, 'reauth_required');
    }
    assert.deepEqual(await notes(alice), before, 'nothing was restored');
    assert.equal(await tenantCount(), tenants, 'no workspace was made');
    // Listing, backing up and verifying are not destructive: no password check needed.
    await other.agent.get(base()).expect(200);
    await post(other, `${base()}/${first.id}/verify`).send({}).expect(200);
    // Once confirmed, the same admin may restore (a wrong password does not count).
    await post(other, '/api/v1/admin/reauth').send({ password: 'not-the-password' }).expect(401);
    await post(other, `${base()}/${first.id}/restore`).send({ confirm: tenant }).expect(403);
    await post(other, '/api/v1/admin/reauth').send({ password: other.password }).expect(204);
    await post(other, `${base()}/${first.id}/restore`).send({ confirm: 'nope' }).expect(400);
    const { rows } = await t.db.pool.query(
      "SELECT outcome FROM control.audit_inbox WHERE action = 'admin.reauth' AND actor_id = $1 ORDER BY id",
      [other.user.id],
    );
    assert.deepEqual(
      rows.map((r) => r.outcome),
      ['failure', 'success'],
    );
  });

  test('restore in place needs the workspace id typed back; the owner then sees the restored data', async () => {
    await post(alice, '/api/v1/notes').send({ title: 'after the backup' }).expect(201);
    assert.deepEqual(await notes(alice), ['after the backup', 'one', 'three', 'two']);
    const wrong = await post(admin, `${base()}/${first.id}/restore`).send({ confirm: 'nope' }).expect(400);
    assert.match(wrong.body.error.message, /type its id in "confirm"/);
    const res = await post(admin, `${base()}/${first.id}/restore`).send({ confirm: tenant }).expect(200);
    assert.equal(res.body.restore.tenantId, tenant);
    assert.equal(res.body.restore.fromBackup, first.id);
    assert.equal(res.body.restore.safetyBackup.kind, 'safety');
    // Signed in before, still signed in, no error: the restored rows.
    assert.deepEqual(await notes(alice), ['one', 'three', 'two']);
    const list = (await admin.agent.get(base()).expect(200)).body.backups as BackupJson[];
    assert.ok(list.some((b) => b.kind === 'safety' && b.outcome === 'succeeded'));
  });

  test('restore as a new workspace (201) leaves the source alone', async () => {
    const tenants = await tenantCount();
    const res = await post(admin, `${base()}/${first.id}/restore`).send({ asNew: 'Alice copy' }).expect(201);
    const clone = res.body.restore.tenantId as string;
    assert.notEqual(clone, tenant);
    assert.equal(await tenantCount(), tenants + 1);
    const { rows } = await t.db.pool.query('SELECT display_name FROM control.tenants WHERE id = $1', [clone]);
    assert.equal(rows[0].display_name, 'Alice copy');
    assert.deepEqual(await notes(alice), ['one', 'three', 'two']);
  });

  test('a workspace under legal hold is not restored in place: 409 with the reason', async () => {
    await t.db.pool.query('UPDATE control.tenants SET legal_hold = true WHERE id = $1', [tenant]);
    try {
      const res = await post(admin, `${base()}/${first.id}/restore`).send({ confirm: tenant }).expect(409);
      assert.equal(res.body.error.code, 'restore_refused');
      assert.match(res.body.error.message, /legal hold/);
    } finally {
      await t.db.pool.query('UPDATE control.tenants SET legal_hold = false WHERE id = $1', [tenant]);
    }
  });
});
