// GET /api/v1/admin/jobs and /api/v1/admin/jobs/runs: each job with its
// schedule, next run and last outcome; the run history, filtered. Admins only;
// a query it does not know is a 400 that names it.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import {
  type SignedIn,
  signInPrivileged,
  signUp,
  startTestServer,
  type TestServer,
} from '../../helpers/server.ts';

interface JobJson {
  name: string;
  schedule: string | null;
  nextRun: string | null;
  perTenant: boolean;
  last: { outcome: string; error: string | null } | null;
  failed24h: number;
}

describe('admin jobs API', () => {
  let t: TestServer;
  let admin: SignedIn;
  let auditor: SignedIn;
  let alice: SignedIn;

  before(async () => {
    t = await startTestServer({ AUDIT_PRUNE_SCHEDULE: '17 3 * * *', STATS_SCHEDULE: 'off' });
    admin = await signInPrivileged(t, 'admin');
    auditor = await signInPrivileged(t, 'auditor');
    alice = await signUp(t.url);
    await t.db.pool.query(
      `INSERT INTO control.job_runs (job, trigger, instance, started_at, finished_at, outcome, counts, error)
       VALUES ('audit-prune', 'schedule', 'host:1', now() - interval '2 hours', now() - interval '2 hours', 'succeeded', '{"pruned": 4}', NULL),
              ('audit-prune', 'manual', 'host:1', now() - interval '1 hour', now() - interval '1 hour', 'failed', '{}', 'the disk is full')`,
    );
  });
  after(async () => {
    await t?.stop();
  });

  test('an admin sees every job with its schedule, next run and last outcome', async () => {
    const res = await admin.agent.get('/api/v1/admin/jobs').expect(200);
    const jobs = res.body.jobs as JobJson[];
    const prune = jobs.find((j) => j.name === 'audit-prune');
    assert.equal(prune?.schedule, '17 3 * * *');
    assert.match(String(prune?.nextRun), /T03:17:00\.000Z$/);
    assert.equal(prune?.last?.outcome, 'failed');
    assert.equal(prune?.last?.error, 'the disk is full');
    assert.equal(prune?.failed24h, 1);
    const off = jobs.find((j) => j.name === 'tenant-stats');
    if (off) assert.equal(off.schedule, null, 'STATS_SCHEDULE=off shows as no schedule');
  });

  test('the run history is filtered by job and by failure, newest first', async () => {
    const all = (await admin.agent.get('/api/v1/admin/jobs/runs?job=audit-prune').expect(200)).body.runs;
    assert.deepEqual(
      all.map((r: { outcome: string }) => r.outcome),
      ['failed', 'succeeded'],
    );
    const first = (await admin.agent.get('/api/v1/admin/jobs/runs?job=audit-prune&limit=1').expect(200)).body;
    assert.equal(first.runs[0].outcome, 'failed');
    const second = (
      await admin.agent
        .get(`/api/v1/admin/jobs/runs?job=audit-prune&limit=1&cursor=${first.nextCursor}`)
        .expect(200)
    ).body;
    assert.deepEqual(
      second.runs.map((r: { outcome: string }) => r.outcome),
      ['succeeded'],
    );
    assert.equal(second.nextCursor, null);
    await admin.agent.get('/api/v1/admin/jobs/runs?cursor=bm9wZQ').expect(400);
    const failed = (await admin.agent.get('/api/v1/admin/jobs/runs?failed=1&limit=5').expect(200)).body.runs;
    assert.equal(failed.length, 1);
    assert.equal(failed[0].error, 'the disk is full');
  });

  test('bad queries are a 400 that says what is wrong, and nothing else answers', async () => {
    for (const q of ['limit=0', 'limit=abc', 'job=DROP%20TABLE', 'failed=yes', 'job=a&job=b', 'nope=1']) {
      const res = await admin.agent.get(`/api/v1/admin/jobs/runs?${q}`).expect(400);
      assert.match(res.body.message ?? res.body.error?.message ?? JSON.stringify(res.body), /Invalid query/);
    }
    await admin.agent.get('/api/v1/admin/jobs?x=1').expect(400);
  });

  test('auditors, people and strangers are refused', async () => {
    await auditor.agent.get('/api/v1/admin/jobs').expect(403);
    await alice.agent.get('/api/v1/admin/jobs/runs').expect(403);
    await request(t.url).get('/api/v1/admin/jobs').expect(401);
  });
});
