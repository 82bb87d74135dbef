// The admin statistics API on a real server: admins read the fleet's totals
// and top tenants by size and growth, and one workspace's history and latest
// tables and indexes (and its exact sizes with ?exact=1); owners, their
// tokens and auditors get a 403, strangers a 401; hostile input is a 4xx.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import { ident } from '../../../kernel/identifiers.ts';
import { recordStats } from '../../../tenancy/statistics.ts';
import {
  type SignedIn,
  signInPrivileged,
  signUp,
  startTestServer,
  type TestServer,
} from '../../helpers/server.ts';

describe('admin statistics API', () => {
  let t: TestServer;
  let admin: SignedIn;
  let auditor: SignedIn;
  let alice: SignedIn;
  let bob: SignedIn;
  let tenant: string;
  const NOW = new Date('2026-06-15T12:00:00Z');
  const WEEK_AGO = new Date(NOW.getTime() - 7 * 86_400_000);

  const post = (who: SignedIn, url: string) => who.agent.post(url).set('X-CSRF-Token', who.csrf);
  const tenantUrl = (id: string) => `/api/v1/admin/tenants/${id}/stats`;

  before(async () => {
    t = await startTestServer();
    admin = await signInPrivileged(t, 'admin');
    auditor = await signInPrivileged(t, 'auditor');
    alice = await signUp(t.url);
    bob = await signUp(t.url);
    tenant = alice.user.tenantId as string;
    await recordStats(t.db.pool, WEEK_AGO);
    for (let i = 0; i < 20; i++)
      await post(alice, '/api/v1/notes')
        .send({ title: `note ${i}`, body: 'a body '.repeat(200) })
        .expect(201);
    const schema = (await t.db.pool.query('SELECT schema_name FROM control.tenants WHERE id = $1', [tenant]))
      .rows[0].schema_name as string;
    await t.db.pool.query(`ANALYZE ${ident(schema)}.notes`);
    await recordStats(t.db.pool, NOW);
  });
  after(async () => {
    await t.stop();
  });

  test('an admin reads the fleet: totals, last collected at, top tenants by size and by growth', async () => {
    const res = await admin.agent.get('/api/v1/admin/stats').expect(200).expect('Cache-Control', 'no-store');
    const body = res.body;
    assert.equal(body.collectedAt, NOW.toISOString());
    assert.equal(body.tenants, 2);
    assert.ok(body.totals.totalBytes > 0);
    assert.equal(
      body.totals.totalBytes,
      body.totals.tableBytes + body.totals.indexBytes + body.totals.toastBytes,
    );
    assert.equal(body.topBySize.length, 2);
    assert.equal(body.topBySize[0].tenantId, tenant, "alice's workspace holds the notes");
    assert.equal(body.topByGrowth[0].tenantId, tenant);
    assert.ok(body.topByGrowth[0].growthBytes > 0, 'it grew since the run a week ago');
    assert.equal(body.topByGrowth[0].weekAgoAt, WEEK_AGO.toISOString());
    assert.equal(body.topByGrowth[1].tenantId, bob.user.tenantId);
    const limited = await admin.agent.get('/api/v1/admin/stats?limit=1').expect(200);
    assert.equal(limited.body.topBySize.length, 1);
    assert.equal(limited.body.topByGrowth.length, 1);
  });

  test("an admin reads one workspace: history and the latest run's tables and indexes; ?exact=1 measures now", async () => {
    const res = await admin.agent.get(tenantUrl(tenant)).expect(200);
    const body = res.body;
    assert.equal(body.tenant.id, tenant);
    assert.equal(body.tenant.state, 'active');
    assert.deepEqual(
      body.history.map((h: { sampledAt: string; resolution: string }) => [h.sampledAt, h.resolution]),
      [
        [WEEK_AGO.toISOString(), 'raw'],
        [NOW.toISOString(), 'raw'],
      ],
    );
    assert.equal(body.latest.sampledAt, NOW.toISOString());
    const notes = body.latest.relations.find((r: { name: string }) => r.name === 'notes');
    assert.equal(notes.kind, 'table');
    assert.equal(notes.rows, 20);
    assert.ok(
      body.latest.relations.some(
        (r: { kind: string; table: string }) => r.kind === 'index' && r.table === 'notes',
      ),
    );
    assert.equal(body.exact, undefined, 'no exact sizes unless asked');

    const exact = (await admin.agent.get(`${tenantUrl(tenant)}?exact=1`).expect(200)).body.exact;
    assert.ok(exact.measuredAt);
    assert.ok(exact.totalBytes >= body.latest.tableBytes + body.latest.indexBytes);
    assert.equal(exact.relations.length, body.latest.relations.length);
  });

  test('nobody but an admin with a session gets in: owners, tokens and auditors 403, strangers 401', async () => {
    const token = (await post(alice, '/api/v1/tokens').send({ name: 'script', scope: 'read' }).expect(201))
      .body.secret as string;
    for (const url of ['/api/v1/admin/stats', tenantUrl(tenant), `${tenantUrl(tenant)}?exact=1`]) {
      for (const who of [alice, bob, auditor]) await who.agent.get(url).expect(403);
      await request(t.url).get(url).set('Authorization', `Bearer ${token}`).expect(403);
      await request(t.url).get(url).expect(401);
    }
  });

  test('input is checked: unknown query parameters and bad values 400, ids that are not tenants 404', async () => {
    const cases: Array<[string, string, number]> = [
      ['unknown parameter', '/api/v1/admin/stats?sort=size', 400],
      ['limit 0', '/api/v1/admin/stats?limit=0', 400],
      ['limit too big', '/api/v1/admin/stats?limit=1001', 400],
      ['limit not a number', '/api/v1/admin/stats?limit=ten', 400],
      ['limit twice', '/api/v1/admin/stats?limit=1&limit=2', 400],
      ['exact not 0 or 1', `${tenantUrl(tenant)}?exact=yes`, 400],
      ['unknown parameter on a tenant', `${tenantUrl(tenant)}?days=7`, 400],
      ['not an id', tenantUrl('NOT-AN-ID'), 404],
      ['a path as id', tenantUrl('..%2f..%2fetc'), 404],
      ['unknown tenant', tenantUrl('zzzzzzzzzzzz'), 404],
    ];
    for (const [what, url, status] of cases) {
      const res = await admin.agent.get(url);
      assert.equal(res.status, status, `${what}: ${JSON.stringify(res.body)}`);
    }
  });

  test('exact sizes of a workspace without a schema: 409; its stored history is still readable', async () => {
    const bobTenant = bob.user.tenantId as string;
    await t.db.pool.query("UPDATE control.tenants SET state = 'deleted', deleted_at = now() WHERE id = $1", [
      bobTenant,
    ]);
    await admin.agent.get(`${tenantUrl(bobTenant)}?exact=1`).expect(409);
    const res = await admin.agent.get(tenantUrl(bobTenant)).expect(200);
    assert.equal(res.body.history.length, 2);
  });
});
