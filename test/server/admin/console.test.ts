// The admin console's core pages (/admin, /admin/tenants, /admin/jobs,
// /admin/reauth) and their API (/api/v1/admin/tenants, /overview,
// /jobs/:name/run): admins only, never a tenant's content, no inline code;
// the cards count what the control plane holds; "run now" starts a job in the
// background, audited, and refuses a job that is already running.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import { jobTryLock, jobUnlock } from '../../../kernel/locks.ts';
import { createApiToken, csrfOf, HTML } from '../../helpers/http.ts';
import { assertNoInlineCode } from '../../helpers/pages.ts';
import {
  type SignedIn,
  signInPrivileged,
  signUp,
  startTestServer,
  type TestServer,
} from '../../helpers/server.ts';

const PAGES = ['/admin', '/admin/tenants', '/admin/jobs', '/admin/reauth'];
const SECRET_TITLE = 'Quarterly merger plan zebra-omega';
const SECRET_BODY = 'the body nobody else may read: kumquat-seventeen';

async function waitFor<T>(fn: () => Promise<T | undefined>, what: string, ms = 10_000): Promise<T> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const v = await fn();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('admin console pages', () => {
  let t: TestServer;
  let admin: SignedIn;
  let auditor: SignedIn;
  let alice: SignedIn;

  before(async () => {
    t = await startTestServer({ STATS_SCHEDULE: '*/15 * * * *' });
    admin = await signInPrivileged(t, 'admin');
    auditor = await signInPrivileged(t, 'auditor');
    alice = await signUp(t.url, { displayName: 'Alice Example' });
    await alice.agent
      .post('/api/v1/notes')
      .set('X-CSRF-Token', alice.csrf)
      .send({ title: SECRET_TITLE, body: SECRET_BODY, tags: ['zebra-omega'] })
      .expect(201);
    await t.db.pool.query(
      `INSERT INTO control.job_runs (job, trigger, instance, started_at, finished_at, outcome, counts, error)
       VALUES ('audit-prune', 'schedule', 'host:1', now() - interval '2 hours', now() - interval '2 hours', 'failed', '{}', 'the disk is full'),
              ('audit-prune', 'schedule', 'host:1', now() - interval '30 hours', now() - interval '30 hours', 'failed', '{}', 'older failure'),
              ('tenant-stats', 'schedule', 'host:1', now() - interval '1 hour', now() - interval '1 hour', 'succeeded', '{"tenants": 1}', NULL)`,
    );
  });
  after(async () => {
    await t?.stop();
  });

  test('every console page is refused to owners and auditors (403) and sends strangers to sign in', async () => {
    for (const page of PAGES) {
      await alice.agent.get(page).set('Accept', HTML).expect(403);
      await auditor.agent.get(page).set('Accept', HTML).expect(403);
      const anon = await request(t.url).get(page).set('Accept', HTML).expect(303);
      assert.equal(anon.headers.location, '/login');
    }
    // Forms too: an owner's post is refused before anything runs.
    const form = await alice.agent.get('/account').set('Accept', HTML).expect(200);
    await alice.agent
      .post('/admin/jobs/audit-prune/run')
      .type('form')
      .send({ _csrf: csrfOf(form.text) })
      .expect(403);
  });

  test('the console API is refused to owners, auditors, API tokens and strangers', async () => {
    const token = await createApiToken(alice, 'write');
    for (const [method, path] of [
      ['get', '/api/v1/admin/tenants'],
      ['get', '/api/v1/admin/overview'],
      ['post', '/api/v1/admin/jobs/audit-prune/run'],
    ] as const) {
      await alice.agent[method](path).set('X-CSRF-Token', alice.csrf).expect(403);
      await auditor.agent[method](path).set('X-CSRF-Token', auditor.csrf).expect(403);
      await request(t.url)[method](path).set('Authorization', `Bearer ${token.secret}`).expect(403);
      // Not signed in: 401 (a post without a session fails the CSRF check first: 403).
      await request(t.url)
        [method](path)
        .expect(method === 'get' ? 401 : 403);
    }
  });

  test('the pages render for an admin with the admin nav, admin.css, no inline code and no tenant content', async () => {
    for (const page of PAGES) {
      const res = await admin.agent.get(page).set('Accept', HTML).expect(200);
      assertNoInlineCode(res.text, page);
      assert.match(res.text, /<nav class="ws-nav admin-nav" aria-label="Admin console">/, page);
      assert.match(res.text, /href="\/assets\/admin\.css\?v=[0-9a-f]{16}"/, page);
      assert.equal(res.headers['cache-control'], 'no-store', page);
      assert.doesNotMatch(res.text, /zebra-omega|kumquat/i, `${page} shows no tenant content`);
      const h1 = res.text.match(/<h1/g) ?? [];
      assert.equal(h1.length, 1, `${page} has one h1`);
    }
    const json = JSON.stringify((await admin.agent.get('/api/v1/admin/tenants').expect(200)).body);
    assert.doesNotMatch(json, /zebra-omega|kumquat/i);
    assert.match(json, /Alice Example|"state":"active"/);
  });

  test('the cards: tenants by state, total size, audit backlog with its oldest event, failed runs of 24 h', async () => {
    const o = (await admin.agent.get('/api/v1/admin/overview').expect(200)).body;
    assert.equal(o.tenants.byState.active, 1);
    assert.equal(o.tenants.total, 1);
    assert.equal(o.size.collectedAt, null, 'no statistics run yet');
    assert.ok(o.auditBacklog.events > 0, 'no sealer in tests: events wait in the inbox');
    assert.ok(o.auditBacklog.oldestAt);
    assert.deepEqual(o.failedJobs24h, { runs: 1, jobs: 1 }, 'the 30-hour-old failure is not counted');
    assert.equal(o.backups.withoutGoodBackup, 1);
    await admin.agent.get('/api/v1/admin/overview?x=1').expect(400);

    const page = await admin.agent.get('/admin').set('Accept', HTML).expect(200);
    assert.match(page.text, /href="\/admin\/tenants\?state=suspended"/);
    assert.match(page.text, /href="\/admin\/jobs\?failed=1"/);
    assert.match(page.text, /1 <span class="admin-unit">failed run<\/span>/);
    assert.match(page.text, /Not measured yet/);
  });

  test('the jobs page lists every job with its schedule, last outcome and error, and the history filtered and paged', async () => {
    const page = await admin.agent.get('/admin/jobs').set('Accept', HTML).expect(200);
    assert.match(page.text, /<code>tenant-stats<\/code>/);
    assert.match(page.text, /\*\/15 \* \* \* \*/);
    assert.match(page.text, /the disk is full/);
    assert.match(page.text, /action="\/admin\/jobs\/audit-prune\/run"/);
    assert.doesNotMatch(
      page.text,
      /action="\/admin\/jobs\/backup-tenant\/run"/,
      'no run now for a per-tenant job',
    );
    const failed = await admin.agent.get('/admin/jobs?failed=1').set('Accept', HTML).expect(200);
    assert.match(failed.text, /older failure/);
    assert.doesNotMatch(failed.text.split('id="history"')[1] as string, /<td class="">succeeded<\/td>/);
    const one = await admin.agent.get('/admin/jobs?job=tenant-stats').set('Accept', HTML).expect(200);
    const history = one.text.split('id="history"')[1] as string;
    assert.doesNotMatch(history, /older failure/);
    await admin.agent.get('/admin/jobs?job=DROP%20TABLE').set('Accept', HTML).expect(400);
    await admin.agent.get('/admin/jobs?cursor=bm9wZQ').set('Accept', HTML).expect(400);

    // Paging: 60 more runs, 50 a page, newest first, each once.
    await t.db.pool.query(
      `INSERT INTO control.job_runs (job, trigger, instance, started_at, finished_at, outcome)
       SELECT 'lifecycle', 'schedule', 'host:1', now() - make_interval(mins => g), now() - make_interval(mins => g), 'succeeded'
       FROM generate_series(1, 60) g`,
    );
    const p1 = await admin.agent.get('/admin/jobs?job=lifecycle').set('Accept', HTML).expect(200);
    assert.equal((p1.text.match(/<td><code>lifecycle<\/code><\/td>/g) ?? []).length, 50);
    const next = /href="(\/admin\/jobs\?[^"]*cursor=[^"]+)" rel="next"/.exec(p1.text)?.[1];
    assert.ok(next);
    const p2 = await admin.agent.get(next.replaceAll('&amp;', '&')).set('Accept', HTML).expect(200);
    assert.equal((p2.text.match(/<td><code>lifecycle<\/code><\/td>/g) ?? []).length, 10);
  });

  test('run now starts the job in the background (202 / redirect with a message), recorded and audited', async () => {
    const res = await admin.agent
      .post('/api/v1/admin/jobs/tenant-stats/run')
      .set('X-CSRF-Token', admin.csrf)
      .expect(202);
    assert.equal(res.body.status, 'started');
    const run = await waitFor(async () => {
      const { rows } = await t.db.pool.query(
        "SELECT outcome FROM control.job_runs WHERE job = 'tenant-stats' AND trigger = 'manual' AND outcome <> 'running'",
      );
      return rows[0] as { outcome: string } | undefined;
    }, 'the manual run');
    assert.equal(run.outcome, 'succeeded');

    const form = await admin.agent.get('/admin/jobs').set('Accept', HTML).expect(200);
    const posted = await admin.agent
      .post('/admin/jobs/audit-prune/run')
      .type('form')
      .send({ _csrf: csrfOf(form.text) })
      .expect(303);
    assert.equal(posted.headers.location, '/admin/jobs?job=audit-prune#history');
    const after_ = await admin.agent.get('/admin/jobs?job=audit-prune').set('Accept', HTML).expect(200);
    assert.match(after_.text, /Started audit-prune/);

    const audited = await t.db.pool.query(
      "SELECT actor_type, tenant_id, resource_id, outcome FROM control.audit_inbox WHERE action = 'job.run' ORDER BY id",
    );
    assert.deepEqual(
      audited.rows.map((r) => [r.actor_type, r.tenant_id, r.resource_id, r.outcome]),
      [
        ['admin', null, 'tenant-stats', 'success'],
        ['admin', null, 'audit-prune', 'success'],
      ],
    );
  });

  test('run now refuses a job already running (409 / a message), a per-tenant job (409) and an unknown one (404)', async () => {
    const holder = await t.db.pool.connect();
    try {
      assert.equal((await holder.query(jobTryLock('tenant-lifecycle'))).rows[0].locked, true);
      const busy = await admin.agent
        .post('/api/v1/admin/jobs/tenant-lifecycle/run')
        .set('X-CSRF-Token', admin.csrf)
        .expect(409);
      assert.match(JSON.stringify(busy.body), /already running/);
      const form = await admin.agent.get('/admin/jobs').set('Accept', HTML).expect(200);
      await admin.agent
        .post('/admin/jobs/tenant-lifecycle/run')
        .type('form')
        .send({ _csrf: csrfOf(form.text) })
        .expect(303);
      const shown = await admin.agent.get('/admin/jobs?job=tenant-lifecycle').set('Accept', HTML).expect(200);
      assert.match(shown.text, /role="alert">tenant-lifecycle is already running/);
    } finally {
      await holder.query(jobUnlock('tenant-lifecycle'));
      holder.release();
    }
    await admin.agent
      .post('/api/v1/admin/jobs/backup-tenant/run')
      .set('X-CSRF-Token', admin.csrf)
      .expect(409);
    await admin.agent.post('/api/v1/admin/jobs/no-such-job/run').set('X-CSRF-Token', admin.csrf).expect(404);
    await admin.agent
      .post('/api/v1/admin/jobs/audit-prune/run')
      .set('X-CSRF-Token', admin.csrf)
      .send({ now: true })
      .expect(400);
    const refused = await t.db.pool.query(
      "SELECT outcome_code FROM control.audit_inbox WHERE action = 'job.run' AND outcome = 'failure' ORDER BY id",
    );
    assert.deepEqual(
      refused.rows.map((r) => r.outcome_code),
      ['already_running', 'already_running', 'per_tenant'],
    );
  });
});
