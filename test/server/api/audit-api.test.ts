// The auditor's API and pages on a real server: search with every filter and
// keyset paging over the sealed entries, checkpoints and public keys for
// download, the bundle over HTTP verified offline with the key from the API,
// every auditor action itself audited, and nobody but auditors let in.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import { openSigner } from '../../../audit/signing.ts';
import { type VerifyOk, verifyBundle } from '../../../audit/verifier/verify.ts';
import { type AuditEvent, insertAuditEvent } from '../../../kernel/audit-inbox.ts';
import { sealAll } from '../../audit/chain-helpers.ts';
import {
  type SignedIn,
  signInPrivileged,
  signUp,
  startTestServer,
  type TestServer,
} from '../../helpers/server.ts';

interface Found {
  chain: string;
  seq: number;
  hash: string;
  entry: {
    action: string;
    tenant: string | null;
    at: string;
    actor: { type: string; id: string | null };
    outcome: { result: string; code: string | null };
  };
}

/** supertest keeps a binary body as one Buffer. */
function binary(res: request.Response, done: (err: Error | null, body: unknown) => void): void {
  const chunks: Buffer[] = [];
  res.on('data', (c: Buffer) => chunks.push(c));
  res.on('end', () => done(null, Buffer.concat(chunks)));
}

/** A download's body as text, whatever its media type. */
async function download(agent: request.Agent, url: string, query: Record<string, string> = {}) {
  const res = await agent.get(url).query(query).buffer(true).parse(binary).expect(200);
  assert.match(String(res.headers['content-disposition']), /^attachment; filename=/);
  return (res.body as Buffer).toString('utf8');
}

const ENDPOINTS = [
  '/api/v1/audit/entries',
  '/api/v1/audit/checkpoints',
  '/api/v1/audit/public-keys',
  '/api/v1/audit/export',
];

describe('auditor API and pages', () => {
  let t: TestServer;
  let dataDir: string;
  let auditor: SignedIn;
  let admin: SignedIn;
  let alice: SignedIn;
  let bob: SignedIn;

  const seal = async () =>
    sealAll(t.db.pool, await openSigner(path.join(dataDir, 'audit-signing-key.pem'), { create: false }));
  const search = async (query: Record<string, string>) =>
    (await auditor.agent.get('/api/v1/audit/entries').query(query).expect(200)).body as {
      entries: Found[];
      nextCursor: string | null;
      pending: number;
    };

  before(async () => {
    dataDir = mkdtempSync(path.join(tmpdir(), 'enclave-auditor-'));
    t = await startTestServer({ DATA_DIR: dataDir });
    auditor = await signInPrivileged(t, 'auditor');
    admin = await signInPrivileged(t, 'admin');
    alice = await signUp(t.url);
    bob = await signUp(t.url);
    await alice.agent.post('/api/v1/notes').set('X-CSRF-Token', alice.csrf).send({ title: 'A' }).expect(201);
    await request(t.url).post('/api/v1/auth/login').send({ email: bob.email, password: 'wrong-password-99' });
    await seal();
  });
  after(async () => {
    await t.stop();
  });

  test('nobody but an auditor gets in: owners, their tokens and admins get 403, strangers 401', async () => {
    const token = (
      await alice.agent
        .post('/api/v1/tokens')
        .set('X-CSRF-Token', alice.csrf)
        .send({ name: 'script', scope: 'write' })
        .expect(201)
    ).body.secret as string;
    for (const url of ENDPOINTS) {
      await alice.agent.get(url).expect(403);
      await request(t.url).get(url).set('Authorization', `Bearer ${token}`).expect(403);
      await admin.agent.get(url).expect(403);
      await request(t.url).get(url).expect(401);
    }
    await alice.agent.get('/audit').expect(403);
    await admin.agent.get('/audit').expect(403);
    await request(t.url).get('/audit').expect(303).expect('Location', '/login');
    // And the other way round: auditors never see workspace content.
    await auditor.agent.get('/api/v1/notes').expect(403);
    await auditor.agent.get('/workspace').expect(403);
  });

  test('entries are the sealed bytes, newest first, with the count still waiting for a seal', async () => {
    const { entries, pending } = await search({});
    assert.ok(entries.length > 5);
    const times = entries.map((e) => e.entry.at);
    assert.deepEqual(times, [...times].sort().reverse(), 'newest first');
    assert.ok(entries.every((e) => /^[0-9a-f]{64}$/.test(e.hash) && e.seq >= 1));
    const stored = await t.db.pool.query<{ entry: Buffer }>(
      'SELECT entry FROM control.audit_log WHERE chain = $1 AND seq = $2',
      [entries[0]?.chain, entries[0]?.seq],
    );
    assert.deepEqual(entries[0]?.entry, JSON.parse(stored.rows[0]?.entry.toString('utf8') ?? ''));
    // The search itself was recorded and waits in the inbox.
    assert.ok(pending >= 0);
    const after = await search({ tenant: 'platform', action: 'audit.search' });
    assert.ok(after.pending >= 1, 'the first search is pending until the next seal');
  });

  test('each filter narrows: tenant, actor (id or type), action (exact or prefix), outcome, time', async () => {
    const byTenant = await search({ tenant: alice.user.tenantId as string });
    assert.ok(byTenant.entries.length >= 4);
    assert.ok(byTenant.entries.every((e) => e.chain === `t_${alice.user.tenantId}`));
    assert.ok(byTenant.entries.some((e) => e.entry.action === 'note.create'));

    const byActor = await search({ actor: bob.user.id });
    assert.ok(byActor.entries.length >= 1);
    assert.ok(byActor.entries.every((e) => e.entry.actor.id === bob.user.id));

    const system = await search({ actor: 'system' });
    assert.ok(system.entries.length >= 2, 'the admin and auditor accounts were made by the system');
    assert.ok(system.entries.every((e) => e.entry.actor.type === 'system'));

    const logins = await search({ action: 'auth.login' });
    assert.ok(logins.entries.every((e) => e.entry.action === 'auth.login'));
    const auth = await search({ action: 'auth.*' });
    assert.ok(auth.entries.length >= logins.entries.length);
    assert.ok(auth.entries.every((e) => e.entry.action.startsWith('auth.')));

    const failures = await search({ outcome: 'failure' });
    assert.ok(failures.entries.length >= 1);
    assert.ok(failures.entries.every((e) => e.entry.outcome.result === 'failure'));
    const bobFailed = failures.entries.find((e) => e.entry.actor.id === bob.user.id);
    assert.equal(bobFailed?.entry.outcome.code, 'wrong_password');

    const all = await search({ tenant: alice.user.tenantId as string });
    const middle = all.entries[1]?.entry.at as string;
    const upTo = await search({ tenant: alice.user.tenantId as string, to: middle });
    assert.ok(upTo.entries.every((e) => e.entry.at <= middle));
    const from = await search({ tenant: alice.user.tenantId as string, from: middle });
    assert.ok(from.entries.every((e) => e.entry.at >= middle));
    assert.ok(upTo.entries.length + from.entries.length >= all.entries.length);

    const none = await search({ tenant: 'zzzzzzzzzzzz' });
    assert.equal(none.entries.length, 0);
  });

  test('pages follow one another with no entry twice and none left out', async () => {
    const everything = (await search({ limit: '500' })).entries.map((e) => `${e.chain}/${e.seq}`);
    const paged: string[] = [];
    let cursor: string | null = null;
    for (let i = 0; i < 200; i++) {
      const page = await search({ limit: '3', ...(cursor ? { cursor } : {}) });
      paged.push(...page.entries.map((e) => `${e.chain}/${e.seq}`));
      cursor = page.nextCursor;
      if (!cursor) break;
    }
    assert.deepEqual(paged, everything);
  });

  test('bad parameters are a 400 that says what is wrong', async () => {
    for (const [query, words] of [
      [{ tenant: 'NOT A TENANT' }, /tenant/],
      [{ outcome: 'maybe' }, /outcome/],
      [{ from: 'yesterday' }, /ISO 8601/],
      [{ from: '2026-02-01', to: '2026-01-01' }, /after/],
      [{ cursor: 'garbage' }, /cursor/],
      [{ colour: 'red' }, /unknown query parameter colour/],
      [{ action: 'DROP TABLE' }, /action/],
      [{ limit: '100000' }, /limit/],
    ] as const) {
      const res = await auditor.agent.get('/api/v1/audit/entries').query(query).expect(400);
      assert.equal(res.body.error.code, 'invalid_input');
      assert.match(res.body.error.message, words);
    }
  });

  test('checkpoints and public keys download in the forms the offline verifier reads', async () => {
    const json = await auditor.agent.get('/api/v1/audit/checkpoints').expect(200);
    const chains = (json.body.checkpoints as Array<{ chain: string }>).map((c) => c.chain);
    assert.ok(chains.includes('registry') && chains.includes(`t_${alice.user.tenantId}`));
    const one = await download(auditor.agent, '/api/v1/audit/checkpoints', {
      tenant: alice.user.tenantId as string,
      format: 'jsonl',
    });
    const lines = one.trim().split('\n');
    assert.equal(lines.length, 1);
    assert.deepEqual(Object.keys(JSON.parse(lines[0] as string)), ['checkpoint', 'signature']);

    const keys = await auditor.agent.get('/api/v1/audit/public-keys').expect(200);
    assert.equal(keys.body.keys.length, 1);
    assert.equal(keys.body.keys[0].current, true);
    assert.match(keys.body.keys[0].keyId, /^[0-9a-f]{16}$/);
    const pem = await download(auditor.agent, '/api/v1/audit/public-keys', { format: 'pem' });
    assert.match(pem, /^-----BEGIN PUBLIC KEY-----\n[\s\S]+-----END PUBLIC KEY-----\n$/);
    assert.equal(pem, keys.body.keys[0].pem);
  });

  test('a bundle downloaded over HTTP verifies offline with the key from the API, and the export is audited', async () => {
    const pem = await download(auditor.agent, '/api/v1/audit/public-keys', { format: 'pem' });
    const whole = await auditor.agent
      .get('/api/v1/audit/export')
      .buffer(true)
      .parse(binary)
      .expect(200)
      .expect('Content-Type', 'application/gzip');
    const result = await verifyBundle(whole.body as Buffer, pem);
    assert.equal(result.ok, true, JSON.stringify(result));
    const ok = result as VerifyOk;
    assert.ok(ok.chains.some((c) => c.chain === 'registry'));

    const own = await auditor.agent
      .get('/api/v1/audit/export')
      .query({ tenant: alice.user.tenantId as string })
      .buffer(true)
      .parse(binary)
      .expect(200);
    const single = (await verifyBundle(own.body as Buffer, pem)) as VerifyOk;
    assert.equal(single.ok, true);
    assert.deepEqual(
      single.chains.map((c) => c.chain),
      [`t_${alice.user.tenantId}`],
    );
    await auditor.agent.get('/api/v1/audit/export').query({ tenant: 'zzzzzzzzzzzz' }).expect(404);

    const { rows } = await t.db.pool.query(
      "SELECT actor_type, actor_id, outcome, tenant_id FROM control.audit_inbox WHERE action = 'audit.export' ORDER BY id",
    );
    assert.deepEqual(
      rows.map((r) => [r.actor_type, r.actor_id, r.outcome, r.tenant_id]),
      [
        ['auditor', auditor.user.id, 'success', null],
        ['auditor', auditor.user.id, 'success', alice.user.tenantId],
      ],
    );
  });

  test('an export refused before its first byte is a JSON error, not a download', async () => {
    const res = await auditor.agent
      .get('/api/v1/audit/export')
      .query({ to: '2000-01-01T00:00:00Z' })
      .expect(400);
    assert.equal(res.headers['content-disposition'], undefined);
    assert.match(String(res.headers['content-type']), /^application\/(problem\+)?json/);
    assert.match(res.body.error?.message ?? '', /nothing has been sealed/);
  });

  test('every auditor action is itself recorded, by the auditor, in the chain of what was read', async () => {
    const mark = Number(
      (await t.db.pool.query('SELECT coalesce(max(id), 0) AS m FROM control.audit_inbox')).rows[0].m,
    );
    await search({ tenant: alice.user.tenantId as string, outcome: 'success' });
    await auditor.agent.get('/api/v1/audit/checkpoints').expect(200);
    await auditor.agent.get('/api/v1/audit/public-keys').expect(200);
    await auditor.agent.get('/audit').query({ action: 'auth.*' }).expect(200);
    const { rows } = await t.db.pool.query(
      'SELECT action, actor_type, actor_id, tenant_id, details FROM control.audit_inbox WHERE id > $1 ORDER BY id',
      [mark],
    );
    assert.deepEqual(
      rows.map((r) => [r.action, r.actor_type, r.actor_id, r.tenant_id]),
      [
        ['audit.search', 'auditor', auditor.user.id, alice.user.tenantId],
        ['audit.checkpoints.read', 'auditor', auditor.user.id, null],
        ['audit.keys.read', 'auditor', auditor.user.id, null],
        ['audit.search', 'auditor', auditor.user.id, null],
      ],
    );
    assert.deepEqual(rows[0]?.details.filter, { tenant: alice.user.tenantId, outcome: 'success' });
  });

  test('the page: a filter form, the entries table with paging, the downloads and how to verify', async () => {
    const page = await auditor.agent.get('/audit').query({ outcome: 'failure' }).expect(200);
    assert.match(page.text, /<h1 class="page-title">Audit trail<\/h1>/);
    assert.match(page.text, /<option value="failure" selected>/);
    assert.match(page.text, /auth\.login/);
    assert.match(page.text, /wrong_password/);
    assert.match(page.text, /href="\/api\/v1\/audit\/export\?"/);
    assert.match(page.text, /href="\/api\/v1\/audit\/public-keys\?format=pem"/);
    assert.match(page.text, /enclave audit verify/);
    assert.doesNotMatch(page.text, /<script|style="/);
    assert.match(String(page.headers['content-security-policy']), /default-src 'self'/);

    // More than one page of sealed entries.
    for (let i = 0; i < 60; i++) await t.db.pool.query(insertAuditEvent(filler(i)));
    await seal();
    const first = await auditor.agent.get('/audit').expect(200);
    const next = /href="(\/audit\?cursor=[^"]+)" rel="next"/.exec(first.text)?.[1];
    assert.ok(next, 'more entries than one page hold: an "Older entries" link');
    const older = await auditor.agent.get(next.replaceAll('&amp;', '&')).expect(200);
    assert.match(older.text, /Newest entries/);

    const tenantPage = await auditor.agent
      .get('/audit')
      .query({ tenant: alice.user.tenantId as string })
      .expect(200);
    assert.match(tenantPage.text, new RegExp(`href="/api/v1/audit/export\\?tenant=${alice.user.tenantId}"`));

    // A datetime-local field has no zone: the page reads it as UTC, as it says.
    await auditor.agent.get('/audit').query({ from: '2020-01-01T00:00' }).expect(200);
    const bad = await auditor.agent.get('/audit').query({ tenant: 'NOT A TENANT' }).expect(400);
    assert.match(bad.text, /role="alert"/);
    assert.match(bad.text, /value="NOT A TENANT"/);
    // Auditors find the page in the menu.
    const account = await auditor.agent.get('/account').expect(200);
    assert.match(account.text, /<a href="\/audit">Audit trail<\/a>/);
  });
});

function filler(i: number): AuditEvent {
  return {
    tenantId: null,
    actor: { type: 'job', id: 'filler' },
    action: 'test.filler',
    outcome: 'success',
    details: { i },
  };
}
