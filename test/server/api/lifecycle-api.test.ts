// The lifecycle over HTTP, on a real server built with the lifecycle routes:
// a flagged workspace's owner hears of it at sign-in (API notices and the page
// flash) and the sign-in keeps it; a suspended one's owner gets the suspended
// page and a 403 tenant_suspended from the API, never its data; admins
// suspend, resume, hold and release in one call each, audited (suspend,
// archive and release after confirming their password), and read the dry-run
// plan; nobody else gets in.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import { openSigner, publishSigningKey } from '../../../audit/signing.ts';
import { lifecycleDeps } from '../../../jobs/lifecycle.ts';
import { type Config, loadConfig } from '../../../kernel/config.ts';
import { createPrivilegedUser } from '../../../server/accounts/accounts.ts';
import { lifecycleApiRoutes } from '../../../server/api/lifecycle-api.ts';
import { createApp } from '../../../server/http/app.ts';
import { suspendedPages } from '../../../server/pages/suspended-pages.ts';
import { buildWeb, type Web } from '../../../server/web.ts';
import { lifecycleOf, runLifecycle } from '../../../tenancy/inactivity.ts';
import { createOrm, type Orm } from '../../../tenancy/orm.ts';
import { TenantContext } from '../../../tenancy/unit-of-work.ts';
import { createTestDatabase, type TestDatabase } from '../../helpers/database.ts';
import { HTML } from '../../helpers/http.ts';
import { captureLog } from '../../helpers/log.ts';
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

describe('lifecycle over HTTP', () => {
  let db: TestDatabase;
  let orm: Orm;
  let web: Web;
  let server: http.Server;
  let url: string;
  let config: Config;
  let admin: SignedIn;
  let alice: SignedIn;
  let tenant: string;
  const log = captureLog('debug');

  before(async () => {
    await requireRedis();
    db = await createTestDatabase(4);
    const dir = mkdtempSync(path.join(tmpdir(), 'enclave-lifecycle-api-'));
    config = loadConfig({
      DATABASE_URL: db.url,
      DATA_DIR: dir,
      SESSION_SECRET: randomBytes(32).toString('hex'),
      REDIS_URL: TEST_REDIS_URL,
      SUPPORT_CONTACT: 'help@example.com',
      TENANT_CACHE_MS: '0',
    });
    const created = await createOrm(db.url, 4);
    orm = created.orm;
    const signer = await openSigner(path.join(dir, 'audit-signing-key.pem'), { create: true });
    await publishSigningKey(db.pool, signer);
    const tenants = new TenantContext(orm, db.pool, { cacheMs: 0 });
    web = await buildWeb({
      config,
      log: log.log,
      pool: db.pool,
      tenants,
      auditSigner: signer,
      abuse: relaxedAbuseLimits(),
    });
    const deps = { ...web.deps, config };
    const app = createApp({
      log: log.log,
      checks: {},
      middleware: web.middleware,
      routers: [lifecycleApiRoutes(deps), suspendedPages(deps), ...web.routers],
    });
    server = http.createServer(app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const email = uniqueEmail('admin');
    await createPrivilegedUser(db.pool, {
      email,
      password: GOOD_PASSWORD,
      displayName: 'admin',
      role: 'admin',
    });
    admin = await signIn(url, email, GOOD_PASSWORD);
    // Suspend, archive and release are destructive: the admin confirms their password first.
    await admin.agent
      .post('/api/v1/admin/reauth')
      .set('X-CSRF-Token', admin.csrf)
      .send({ password: GOOD_PASSWORD })
      .expect(204);
    alice = await signUp(url);
    tenant = alice.user.tenantId as string;
    await alice.agent
      .post('/api/v1/notes')
      .set('X-CSRF-Token', alice.csrf)
      .send({ title: 'secret plan' })
      .expect(201);
  });
  after(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await web.close();
    await orm.close();
    await db.drop();
  });

  const post = (who: SignedIn, p: string) => who.agent.post(p).set('X-CSRF-Token', who.csrf);
  const idle = (days: number) =>
    db.pool.query(
      'UPDATE control.tenants SET last_active_at = now() - make_interval(days => $2) WHERE id = $1',
      [tenant, days],
    );
  const runNow = () =>
    runLifecycle(
      lifecycleDeps({
        pool: db.pool,
        config,
        clock: () => new Date(),
        log: log.log,
        backups: web.deps.backups,
      }),
    );

  test('flagged: the owner is told at sign-in (API notices and the page flash), and the sign-in keeps the workspace', async () => {
    await idle(95);
    await runNow();
    assert.equal((await lifecycleOf(db.pool, tenant)).stage, 'flagged');
    const res = await request(url)
      .post('/api/v1/auth/login')
      .send({ email: alice.email, password: GOOD_PASSWORD })
      .expect(200);
    const notice = (res.body.notices as Array<{ kind: string; at: string }>).find(
      (n) => n.kind === 'workspace.inactive',
    );
    assert.ok(notice, JSON.stringify(res.body.notices));
    assert.ok(
      Date.now() - new Date(notice.at).getTime() > 94 * 24 * 3600 * 1000,
      'inactive since 95 days ago',
    );
    const row = await lifecycleOf(db.pool, tenant);
    assert.equal(row.stage, null, 'the sign-in reset the flag');

    // The page sign-in shows it as a flash on the next page.
    await idle(95);
    await runNow();
    const browser = request.agent(url);
    const form = await browser.get('/login').set('Accept', HTML).expect(200);
    const csrf = /name="_csrf" value="([^"]+)"/.exec(form.text)?.[1] as string;
    await browser
      .post('/login')
      .type('form')
      .send({ _csrf: csrf, email: alice.email, password: GOOD_PASSWORD })
      .expect(303);
    const home = await browser.get('/workspace').set('Accept', HTML).expect(200);
    assert.match(home.text, /had not been used since .* Signing in has kept it/);
    assert.equal((await lifecycleOf(db.pool, tenant)).stage, null);
  });

  test('suspended by the lifecycle: the suspended page and a 403 tenant_suspended, none of the data', async () => {
    await idle(130);
    await runNow(); // flagged
    await db.pool.query(
      "UPDATE control.tenant_lifecycle SET flagged_at = now() - interval '31 days' WHERE tenant_id = $1",
      [tenant],
    );
    await runNow(); // suspended
    assert.equal((await lifecycleOf(db.pool, tenant)).state, 'suspended');

    const api = await alice.agent.get('/api/v1/notes').expect(403);
    assert.equal(api.body.error.code, 'tenant_suspended');
    assert.match(api.body.error.message, /administrator resumes it/);
    assert.equal(JSON.stringify(api.body).includes('secret plan'), false);

    const page = await alice.agent.get('/workspace').set('Accept', HTML).expect(403);
    assert.match(page.text, /This workspace is suspended/);
    assert.match(page.text, /for inactivity/);
    assert.match(page.text, /help@example\.com/);
    assert.match(page.text, new RegExp(tenant));
    assert.equal(page.text.includes('secret plan'), false);
    const note = await alice.agent.get('/workspace/notes').set('Accept', HTML).expect(403);
    assert.equal(note.text.includes('secret plan'), false);
  });

  test('an admin resumes it in one call (audited); the owner gets the data back', async () => {
    const res = await post(admin, `/api/v1/admin/tenants/${tenant}/resume`).send({}).expect(200);
    assert.equal(res.body.tenant.state, 'active');
    assert.equal(res.body.tenant.lifecycle, null);
    const notes = (await alice.agent.get('/api/v1/notes').expect(200)).body.notes as Array<{ title: string }>;
    assert.deepEqual(
      notes.map((n) => n.title),
      ['secret plan'],
    );
    const ev = (
      await db.pool.query(
        "SELECT actor_type, actor_id, details FROM control.audit_inbox WHERE tenant_id = $1 AND action = 'tenant.resume'",
        [tenant],
      )
    ).rows;
    assert.equal(ev.length, 1);
    assert.equal(ev[0].actor_id, admin.user.id);
    assert.equal(ev[0].details.lifecycleCleared, 'suspended');
  });

  test('suspend, hold, release by the admin; the dry-run plan; nobody else gets in', async () => {
    const s = await post(admin, `/api/v1/admin/tenants/${tenant}/suspend`).send({}).expect(200);
    assert.equal(s.body.tenant.state, 'suspended');
    const page = await alice.agent.get('/workspace').set('Accept', HTML).expect(403);
    assert.match(page.text, /An administrator suspended it/);
    await post(admin, `/api/v1/admin/tenants/${tenant}/resume`).send({}).expect(200);
    assert.equal(
      (await post(admin, `/api/v1/admin/tenants/${tenant}/hold`).send({}).expect(200)).body.tenant.legalHold,
      true,
    );
    assert.equal(
      (await post(admin, `/api/v1/admin/tenants/${tenant}/release`).send({}).expect(200)).body.tenant
        .legalHold,
      false,
    );

    await idle(95);
    const before = (await db.pool.query('SELECT count(*)::int AS n FROM control.tenant_lifecycle')).rows[0].n;
    const planned = await admin.agent.get('/api/v1/admin/lifecycle?within=10').expect(200);
    const mine = (
      planned.body.steps as Array<{ tenantId: string; step: string; dueNow: boolean; due: string }>
    ).find((x) => x.tenantId === tenant);
    assert.equal(mine?.step, 'flag');
    assert.equal(mine?.dueNow, true);
    assert.equal(
      (await db.pool.query('SELECT count(*)::int AS n FROM control.tenant_lifecycle')).rows[0].n,
      before,
      'the plan changes nothing',
    );
    const one = await admin.agent.get(`/api/v1/admin/tenants/${tenant}/lifecycle`).expect(200);
    assert.ok((one.body.steps as Array<{ step: string }>).some((x) => x.step === 'suspend'));

    await admin.agent.get('/api/v1/admin/lifecycle?bogus=1').expect(400);
    await post(admin, `/api/v1/admin/tenants/${tenant}/suspend`).send({ extra: 1 }).expect(400);
    await post(admin, '/api/v1/admin/tenants/NOT-AN-ID/suspend').send({}).expect(404);
    await post(admin, '/api/v1/admin/tenants/aaaaaaaaaaaa/suspend').send({}).expect(404);
    await post(alice, `/api/v1/admin/tenants/${tenant}/resume`).send({}).expect(403);
    await alice.agent.get('/api/v1/admin/lifecycle').expect(403);
    await request(url).get('/api/v1/admin/lifecycle').expect(401);
    assert.equal((await lifecycleOf(db.pool, tenant)).state, 'active');
  });

  test('suspend, archive and release need a recent password check (403 reauth_required, nothing changes); resume and hold do not', async () => {
    const email = uniqueEmail('admin');
    await createPrivilegedUser(db.pool, {
      email,
      password: GOOD_PASSWORD,
      displayName: 'other',
      role: 'admin',
    });
    const other = await signIn(url, email, GOOD_PASSWORD);
    for (const action of ['suspend', 'archive', 'release']) {
      const res = await post(other, `/api/v1/admin/tenants/${tenant}/${action}`).send({}).expect(403);
      assert.equal(res.body.error.code, 'reauth_required', action);
    }
    await post(other, `/api/v1/admin/tenants/${tenant}/hold`).send({}).expect(200);
    await post(other, `/api/v1/admin/tenants/${tenant}/resume`).send({}).expect(200);
    const row = await lifecycleOf(db.pool, tenant);
    assert.deepEqual([row.state, row.legal_hold], ['active', true], 'held, never suspended or archived');
    await post(other, `/api/v1/admin/tenants/${tenant}/release`).send({}).expect(403);
    assert.equal((await lifecycleOf(db.pool, tenant)).legal_hold, true, 'still held');
    await post(other, '/api/v1/admin/reauth').send({ password: GOOD_PASSWORD }).expect(204);
    await post(other, `/api/v1/admin/tenants/${tenant}/release`).send({}).expect(200);
    assert.equal((await lifecycleOf(db.pool, tenant)).legal_hold, false);
  });
});
