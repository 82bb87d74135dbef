// The admin console's tenant page on a real server: it shows a provisioned
// tenant's header, its size chart (from control.tenant_stats), tables and
// indexes, migration ledger, backups, lifecycle and sessions, and never its
// content; its forms back up, verify, restore (after a page that says what
// will happen, with the tenant id typed back and a recent password check),
// suspend, resume, hold and release, and end sessions, each audited; the
// destructive ones send an admin without a recent password check to
// /admin/reauth and change nothing; nobody but an admin gets in.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import { openSigner, publishSigningKey } from '../../../audit/signing.ts';
import { type Config, loadConfig } from '../../../kernel/config.ts';
import { createPrivilegedUser } from '../../../server/accounts/accounts.ts';
import { createApp } from '../../../server/http/app.ts';
import { adminTenantPages } from '../../../server/pages/admin-tenant-pages.ts';
import { buildWeb, type Web } from '../../../server/web.ts';
import { createOrm, type Orm } from '../../../tenancy/orm.ts';
import { recordStats } from '../../../tenancy/statistics.ts';
import { TenantContext } from '../../../tenancy/unit-of-work.ts';
import { createTestDatabase, type TestDatabase } from '../../helpers/database.ts';
import { csrfOf, HTML, submit } from '../../helpers/http.ts';
import { captureLog } from '../../helpers/log.ts';
import { assertNoInlineCode } from '../../helpers/pages.ts';
import {
  GOOD_PASSWORD,
  relaxedAbuseLimits,
  requireRedis,
  type SignedIn,
  signIn,
  signUp,
  TEST_REDIS_URL,
  uniqueEmail,
} from '../../helpers/server.ts';
import { parseXmlRoot } from '../../helpers/xml.ts';

const HOSTILE_NAME = 'Acme <script>"&';
const MARKER = `marker-${randomBytes(6).toString('hex')}`;

describe('admin tenant page', () => {
  let db: TestDatabase;
  let orm: Orm;
  let web: Web;
  let server: http.Server;
  let url: string;
  let config: Config;
  let dataDir: string;
  let admin: SignedIn; // confirms the password (reauth) once, in `before`
  let fresh: SignedIn; // another admin that never does
  let alice: SignedIn;
  let tenant: string;
  const log = captureLog('debug');

  const page = () => `/admin/tenants/${tenant}`;
  const get = (who: SignedIn, p: string) => who.agent.get(p).set('Accept', HTML);
  const form = (who: SignedIn, p: string, action: string, fields: Record<string, string> = {}) =>
    submit(who.agent, p, action, fields, { Accept: HTML });
  const follow = async (who: SignedIn, res: request.Response) => {
    assert.equal(res.status, 303, res.text);
    return (await get(who, res.headers.location as string).expect(200)).text;
  };
  const q = async <T = Record<string, unknown>>(text: string, values: unknown[] = []) =>
    (await db.pool.query(text, values)).rows as T[];
  const events = (action: string) =>
    q<{ actor_type: string; actor_id: string; outcome: string; details: Record<string, unknown> }>(
      'SELECT actor_type, actor_id, outcome, details FROM control.audit_inbox WHERE tenant_id = $1 AND action = $2 ORDER BY id',
      [tenant, action],
    );
  const titles = async () =>
    ((await alice.agent.get('/api/v1/notes').expect(200)).body.notes as Array<{ title: string }>)
      .map((n) => n.title)
      .sort();
  const stateOf = async () =>
    (
      await q<{ state: string; legal_hold: boolean }>(
        'SELECT state, legal_hold FROM control.tenants WHERE id = $1',
        [tenant],
      )
    )[0];

  async function admitted(role: 'admin' | 'auditor'): Promise<SignedIn> {
    const email = uniqueEmail(role);
    await createPrivilegedUser(db.pool, { email, password: GOOD_PASSWORD, displayName: role, role });
    return signIn(url, email, GOOD_PASSWORD);
  }

  before(async () => {
    await requireRedis();
    db = await createTestDatabase(4);
    dataDir = mkdtempSync(path.join(tmpdir(), 'enclave-admin-tenant-'));
    config = loadConfig({
      DATABASE_URL: db.url,
      DATA_DIR: dataDir,
      SESSION_SECRET: randomBytes(32).toString('hex'),
      REDIS_URL: TEST_REDIS_URL,
      TENANT_CACHE_MS: '0',
    });
    const created = await createOrm(db.url, 4);
    orm = created.orm;
    const signer = await openSigner(path.join(dataDir, 'audit-signing-key.pem'), { create: true });
    await publishSigningKey(db.pool, signer);
    web = await buildWeb({
      config,
      log: log.log,
      pool: db.pool,
      tenants: new TenantContext(orm, db.pool, { cacheMs: 0 }),
      auditSigner: signer,
      abuse: relaxedAbuseLimits(),
    });
    const app = createApp({
      log: log.log,
      checks: {},
      middleware: web.middleware,
      routers: [adminTenantPages(web.deps), ...web.routers],
    });
    server = http.createServer(app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

    admin = await admitted('admin');
    await admin.agent
      .post('/api/v1/admin/reauth')
      .set('X-CSRF-Token', admin.csrf)
      .send({ password: GOOD_PASSWORD })
      .expect(204);
    fresh = await admitted('admin');
    alice = await signUp(url);
    tenant = alice.user.tenantId as string;
    await db.pool.query('UPDATE control.tenants SET display_name = $2 WHERE id = $1', [tenant, HOSTILE_NAME]);
    for (const title of [MARKER, 'second note'])
      await alice.agent
        .post('/api/v1/notes')
        .set('X-CSRF-Token', alice.csrf)
        .send({ title, body: `the body says ${MARKER}` })
        .expect(201);
    await signIn(url, alice.email, alice.password); // a second device
    // Statistics: a real catalog pass now (latest tables and indexes), and a month of history.
    await db.pool.query('ANALYZE');
    await recordStats(db.pool, new Date());
    for (const [days, bytes] of [
      [45, 50_000],
      [28, 120_000],
      [20, 180_000],
      [9, 240_000],
      [2, 300_000],
    ] as const)
      await db.pool.query(
        `INSERT INTO control.tenant_stats (tenant_id, sampled_at, resolution, total_bytes, table_bytes, index_bytes,
           toast_bytes, rows_estimate, dead_rows)
         VALUES ($1, now() - make_interval(days => $2), 'day', $3, $3, 0, 0, 2, 0)`,
        [tenant, days, bytes],
      );
  });
  after(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await web.close();
    await orm.close();
    await db.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('only admins get in: anonymous visitors go to sign in, owners and auditors 403, bad ids 404', async () => {
    const anon = await request(url).get(page()).set('Accept', HTML).expect(303);
    assert.equal(anon.headers.location, '/login');
    await request(url).post(`${page()}/backups`).set('Accept', HTML).type('form').send({}).expect(403); // no CSRF token
    await get(alice, page()).expect(403);
    const auditor = await admitted('auditor');
    await get(auditor, page()).expect(403);
    const backups = (await q('SELECT id FROM control.backups')).length;
    const refused = await alice.agent
      .post(`${page()}/backups`)
      .set('Accept', HTML)
      .type('form')
      .send({ _csrf: alice.csrf })
      .expect(403);
    assert.equal(refused.text.includes(MARKER), false);
    assert.equal((await q('SELECT id FROM control.backups')).length, backups, 'nothing was backed up');
    for (const bad of ['NOT-AN-ID', 'zzzzzzzzzzzz', '..%2f..%2fetc', `${tenant}x`]) {
      const res = await get(admin, `/admin/tenants/${bad}`).expect(404);
      assert.match(res.headers['content-type'] as string, /text\/html/);
    }
    await get(admin, `${page()}?x=1`).expect(400);
    await get(admin, `${page()}/backups/not-a-uuid/restore`).expect(404);
    await get(admin, `${page()}/backups/00000000-0000-4000-8000-000000000000/restore`).expect(404);
  });

  test('the page shows the header, the chart, tables and indexes, the ledger and the sessions, escaped, and no note content', async () => {
    // A failed migration whose error quotes a row: the ledger shows the attempt, never the message.
    await db.pool.query(
      `INSERT INTO control.tenant_migrations (tenant_id, migration, version, checksum, duration_ms, outcome, error)
       VALUES ($1, '0999_unique_titles', 999, 'x', 12.5, 'failed', $2)`,
      [tenant, `could not create unique index: Key (title)=(${MARKER}) is duplicated.`],
    );
    const res = await get(admin, page()).expect(200);
    const html = res.text;
    assertNoInlineCode(html, 'tenant page');
    assert.equal(html.includes(MARKER), false, 'no note title or body on the page');
    assert.equal(html.includes('second note'), false);
    assert.equal(html.includes(HOSTILE_NAME), false, 'the name is escaped');
    assert.ok(html.includes('Acme &lt;script&gt;&quot;&amp;'), 'the escaped name is shown');
    assert.ok(html.includes(`<code>${tenant}</code>`));
    assert.match(html, /Schema version<\/dt><dd>\d+\s*\(the latest\)/);
    assert.match(html, /Growth over 7 days/);
    // The chart: well-formed SVG, role="img", label in words, the name escaped inside it too.
    const svg = /<svg[\s\S]*?<\/svg>/.exec(html)?.[0] as string;
    assert.ok(svg?.startsWith('<svg '), 'a chart');
    const root = parseXmlRoot(svg);
    assert.equal(root.attributes.role, 'img');
    assert.match(
      root.attributes['aria-label'] as string,
      /^Size over the last 30 days: from 120 kB on .+ to .+ \(\d+ samples\)\.$/,
    );
    assert.equal(
      root.elements.find((e) => e.name === 'title')?.text,
      `Size of ${HOSTILE_NAME} over the last 30 days`,
    );
    // Tables and indexes of the latest run, by name, with sizes; the ledger.
    assert.match(html, /<th scope="row"><code>notes<\/code><\/th>/);
    assert.match(html, /<th scope="row"><code>notes_pkey<\/code><\/th>/);
    assert.match(html, /Migration ledger/);
    assert.match(html, /<td>applied<\/td>/);
    assert.match(
      html,
      /<code>0999_unique_titles<\/code><\/th>\s*<td><time[^>]*>[^<]*<\/time><\/td>\s*<td class="num">13 ms<\/td>\s*<td>failed<\/td>/,
    );
    // Both of alice's sessions, each with an End button; End all with a typed confirmation.
    assert.equal((html.match(/\/sessions\/[0-9a-f-]{36}\/end"/g) ?? []).length, 2);
    assert.match(html, /name="confirm"[^>]*aria-describedby="end-all-hint"/);
    // The admin's look at the sessions is audited.
    assert.ok((await events('admin.sessions.list')).some((e) => e.actor_id === admin.user.id));
  });

  test('a tenant without statistics says so instead of a chart', async () => {
    const bob = await signUp(url);
    const html = (await get(admin, `/admin/tenants/${bob.user.tenantId}`).expect(200)).text;
    assert.equal(html.includes('<svg'), false);
    assert.match(html, /No statistics yet/);
    assertNoInlineCode(html, 'tenant page without stats');
    // A deleted workspace still has its page (its backups, its ledger), with no action but download and verify.
    await db.pool.query("UPDATE control.tenants SET state = 'deleted' WHERE id = $1", [bob.user.tenantId]);
    const gone = (await get(admin, `/admin/tenants/${bob.user.tenantId}`).expect(200)).text;
    assert.match(gone, /badge-neutral state-deleted/);
    for (const action of ['backups"', 'suspend"', 'resume"', 'hold"', 'release"'])
      assert.equal(gone.includes(`/admin/tenants/${bob.user.tenantId}/${action}`), false, action);
    const refused = await form(
      admin,
      `/admin/tenants/${bob.user.tenantId}`,
      `/admin/tenants/${bob.user.tenantId}/hold`,
    );
    assert.match(await follow(admin, refused), /Nothing changed\. Workspace \w+ is deleted/);
  });

  test('back up now, download and verify from the page, each audited', async () => {
    const made = await form(admin, page(), `${page()}/backups`);
    let html = await follow(admin, made);
    assert.match(html, /Backed up: backup [0-9a-f-]{36}/);
    const rows = await q<{ id: string; kind: string; created_by: string }>(
      'SELECT id, kind, created_by FROM control.backups WHERE tenant_id = $1',
      [tenant],
    );
    assert.equal(rows.length, 1);
    assert.deepEqual([rows[0]?.kind, rows[0]?.created_by], ['manual', `admin:${admin.user.id}`]);
    const backupId = rows[0]?.id as string;
    assert.deepEqual(
      (await events('tenant.backup')).map((e) => [e.actor_id, e.outcome]),
      [[admin.user.id, 'success']],
    );
    // The row offers download (the API route, with the session cookie and no CSRF token), verify and restore.
    html = (await get(admin, page()).expect(200)).text;
    const download = `/api/v1/admin/tenants/${tenant}/backups/${backupId}/download`;
    assert.ok(html.includes(`href="${download}"`));
    assert.ok(html.includes(`href="${page()}/backups/${backupId}/restore"`));
    const file = await admin.agent.get(download).buffer(true).expect(200);
    assert.equal(file.headers['content-type'], 'application/octet-stream');
    assert.equal((await events('tenant.backup.download')).length, 1);

    const verified = await form(admin, page(), `${page()}/backups/${backupId}/verify`);
    html = await follow(admin, verified);
    assert.match(html, new RegExp(`Backup ${backupId} verified: its \\d+ tables were restored`));
    assert.deepEqual(
      (await events('tenant.backup.verify')).map((e) => [e.actor_id, e.outcome, e.details.restore]),
      [[admin.user.id, 'success', true]],
    );
  });

  test('restore: the page says what will happen; it needs a recent password check and the id typed back', async () => {
    const backupId = (
      await q<{ id: string }>("SELECT id FROM control.backups WHERE tenant_id = $1 AND kind = 'manual'", [
        tenant,
      ])
    )[0]?.id as string;
    const restorePage = `${page()}/backups/${backupId}/restore`;
    await alice.agent
      .post('/api/v1/notes')
      .set('X-CSRF-Token', alice.csrf)
      .send({ title: 'written after the backup' })
      .expect(201);
    const before = await titles();
    assert.equal(before.length, 3);

    const shown = (await get(admin, restorePage).expect(200)).text;
    assertNoInlineCode(shown, 'restore page');
    assert.equal(shown.includes(MARKER), false);
    assert.match(shown, /safety backup/);
    assert.match(shown, /kept for 24 hours/);
    assert.match(shown, /sessions continue/);
    assert.match(shown, /<th scope="row"><code>notes<\/code><\/th>\s*<td class="num">2<\/td>/);
    assert.match(shown, /schema version is \d+ in the backup and \d+ now/);
    assert.match(shown, /name="confirm"/);

    // An admin without a recent password check is sent to confirm it; nothing is restored.
    const refused = await submit(
      fresh.agent,
      restorePage,
      restorePage,
      { confirm: tenant },
      { Accept: HTML },
    );
    assert.equal(refused.status, 303);
    assert.match(refused.headers.location as string, /^\/admin\/reauth\?next=/);
    assert.deepEqual(await titles(), before);
    // The API says reauth_required, and changes nothing either.
    const api = await fresh.agent
      .post(`/api/v1/admin/tenants/${tenant}/backups/${backupId}/restore`)
      .set('X-CSRF-Token', fresh.csrf)
      .send({ confirm: tenant })
      .expect(403);
    assert.equal(api.body.error.code, 'reauth_required');

    // A wrong id typed back: the page again with the error, nothing restored.
    for (const wrong of ['', 'nope', tenant.toUpperCase()]) {
      const res = await form(admin, restorePage, restorePage, { confirm: wrong });
      assert.equal(res.status, 400);
      assert.match(res.text, /Nothing was restored: type the workspace id/);
      assert.match(res.text, /aria-invalid="true"/);
      assertNoInlineCode(res.text, 'restore page with an error');
    }
    assert.deepEqual(await titles(), before);
    assert.equal((await events('tenant.restore')).length, 0);

    const done = await form(admin, restorePage, restorePage, { confirm: tenant });
    const html = await follow(admin, done);
    assert.match(html, /Restored Acme &lt;script&gt;&quot;&amp; from backup/);
    assert.match(html, /A safety backup \([0-9a-f-]{36}\) was taken first/);
    // Alice, still signed in, sees the restored rows.
    assert.deepEqual(await titles(), [MARKER, 'second note'].sort());
    assert.deepEqual(
      (await events('tenant.restore')).map((e) => [e.actor_id, e.outcome]),
      [[admin.user.id, 'success']],
    );
  });

  test('suspend, resume, legal hold on and off from the page: audited; suspend and hold-off need reauth and the id', async () => {
    // Without a recent password check: off to /admin/reauth, nothing changes.
    for (const action of ['suspend', 'release']) {
      const res = await submit(
        fresh.agent,
        page(),
        `${page()}/${action}`,
        { confirm: tenant },
        { Accept: HTML },
      );
      assert.equal(res.status, 303);
      assert.match(res.headers.location as string, /^\/admin\/reauth\?next=/);
    }
    for (const action of ['suspend', 'archive', 'release']) {
      const res = await fresh.agent
        .post(`/api/v1/admin/tenants/${tenant}/${action}`)
        .set('X-CSRF-Token', fresh.csrf)
        .send({})
        .expect(403);
      assert.equal(res.body.error.code, 'reauth_required');
    }
    assert.deepEqual(await stateOf(), { state: 'active', legal_hold: false });

    // The wrong id typed: nothing changes.
    let html = await follow(admin, await form(admin, page(), `${page()}/suspend`, { confirm: 'nope' }));
    assert.match(html, /Nothing changed: type the workspace id/);
    assert.equal((await stateOf())?.state, 'active');

    html = await follow(admin, await form(admin, page(), `${page()}/suspend`, { confirm: tenant }));
    assert.match(html, /Suspended: its people see the suspended page/);
    assert.equal((await stateOf())?.state, 'suspended');
    await alice.agent.get('/api/v1/notes').expect(403);
    assert.match(html, /action="[^"]+\/resume"/, 'a suspended tenant offers resume');

    html = await follow(admin, await form(admin, page(), `${page()}/resume`));
    assert.match(html, /Resumed/);
    assert.equal((await stateOf())?.state, 'active');
    await alice.agent.get('/api/v1/notes').expect(200);

    html = await follow(admin, await form(admin, page(), `${page()}/hold`));
    assert.match(html, /Legal hold on/);
    assert.equal((await stateOf())?.legal_hold, true);
    html = await follow(admin, await form(admin, page(), `${page()}/release`, { confirm: 'x' }));
    assert.equal((await stateOf())?.legal_hold, true, 'a wrong id leaves the hold on');
    html = await follow(admin, await form(admin, page(), `${page()}/release`, { confirm: tenant }));
    assert.match(html, /Legal hold off/);
    assert.equal((await stateOf())?.legal_hold, false);

    for (const action of ['tenant.suspend', 'tenant.resume', 'tenant.legal_hold.on', 'tenant.legal_hold.off'])
      assert.deepEqual(
        (await events(action)).map((e) => [e.actor_type, e.actor_id]),
        [['admin', admin.user.id]],
        action,
      );
  });

  test('end one session, then all of them: reauth first, audited, the people signed out', async () => {
    const sessions = async () =>
      q<{ id: string }>(
        'SELECT id FROM control.user_sessions WHERE tenant_id = $1 AND revoked_at IS NULL ORDER BY created_at',
        [tenant],
      );
    const live = await sessions();
    assert.equal(live.length, 2);
    const one = live[1]?.id as string;

    const refused = await submit(fresh.agent, page(), `${page()}/sessions/${one}/end`, {}, { Accept: HTML });
    assert.equal(refused.status, 303);
    assert.match(refused.headers.location as string, /^\/admin\/reauth\?next=/);
    const api = await fresh.agent
      .post(`/api/v1/admin/tenants/${tenant}/sessions/revoke-all`)
      .set('X-CSRF-Token', fresh.csrf)
      .send({})
      .expect(403);
    assert.equal(api.body.error.code, 'reauth_required');
    await fresh.agent.delete(`/api/v1/admin/sessions/${one}`).set('X-CSRF-Token', fresh.csrf).expect(403);
    assert.equal((await sessions()).length, 2, 'nothing ended');

    let html = await follow(admin, await form(admin, page(), `${page()}/sessions/${one}/end`));
    assert.match(html, /The session has been ended/);
    assert.deepEqual(
      (await sessions()).map((s) => s.id),
      [live[0]?.id],
    );
    const revoked = (await events('session.revoke')).filter((e) => e.actor_id === admin.user.id);
    assert.equal(revoked.length, 1);
    // A session id of nobody: already ended; not an id: 404.
    html = await follow(
      admin,
      await form(admin, page(), `${page()}/sessions/00000000-0000-4000-8000-000000000000/end`),
    );
    assert.match(html, /already ended/);
    const notAnId = await form(admin, page(), `${page()}/sessions/nope/end`);
    assert.equal(notAnId.status, 404);

    html = await follow(admin, await form(admin, page(), `${page()}/sessions/end-all`, { confirm: 'nope' }));
    assert.match(html, /No session was ended/);
    assert.equal((await sessions()).length, 1);
    html = await follow(admin, await form(admin, page(), `${page()}/sessions/end-all`, { confirm: tenant }));
    assert.match(html, /Ended 1 session\./);
    assert.equal((await sessions()).length, 0);
    await alice.agent.get('/api/v1/notes').expect(401);
    const all = await events('session.revoke_all');
    assert.deepEqual(
      all.map((e) => [e.actor_id, e.details.sessionsEnded]),
      [[admin.user.id, 1]],
    );
    assert.match(html, /No active sessions/);
  });

  test('the API ends all of a tenant’s sessions after a reauth: 200 with the count, audited; bad input 4xx', async () => {
    const again = await signIn(url, alice.email, alice.password);
    const base = `/api/v1/admin/tenants/${tenant}/sessions/revoke-all`;
    const post = (p: string) => admin.agent.post(p).set('X-CSRF-Token', admin.csrf);
    await post(base).send({ extra: 1 }).expect(400);
    await post(`${base}?x=1`).send({}).expect(400);
    await post('/api/v1/admin/tenants/NOT-AN-ID/sessions/revoke-all').send({}).expect(404);
    await post('/api/v1/admin/tenants/zzzzzzzzzzzz/sessions/revoke-all').send({}).expect(404);
    await again.agent.post(base).set('X-CSRF-Token', again.csrf).send({}).expect(403);
    await again.agent.get('/api/v1/me').expect(200);
    const res = await post(base).send({}).expect(200);
    assert.deepEqual(res.body, { sessionsEnded: 1 });
    await again.agent.get('/api/v1/me').expect(401);
    assert.equal((await events('session.revoke_all')).length, 2);
  });

  test('every page form carries the CSRF token; a post without it is refused', async () => {
    const html = (await get(admin, page()).expect(200)).text;
    const forms = html.match(/<form method="post"[\s\S]*?<\/form>/g) ?? [];
    assert.ok(forms.length >= 4);
    for (const f of forms) assert.match(f, /name="_csrf" value="[^"]+"/);
    csrfOf(html);
    await admin.agent.post(`${page()}/hold`).set('Accept', HTML).type('form').send({}).expect(403);
    assert.equal((await stateOf())?.legal_hold, false);
  });
});
