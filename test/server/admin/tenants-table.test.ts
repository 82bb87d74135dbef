// The admin console's tenants table (/admin/tenants and GET /api/v1/admin/tenants):
// over 60 real tenants with sizes, growth, activity and backups set in the
// control plane, every sort and filter returns exactly the tenants it should,
// in the right order, and keyset paging visits each of them once.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { provisionTenant } from '../../../tenancy/provision.ts';
import { latestVersion, loadTenantMigrations } from '../../../tenancy/templates.ts';
import { HTML } from '../../helpers/http.ts';
import { assertNoInlineCode } from '../../helpers/pages.ts';
import { type SignedIn, signInPrivileged, startTestServer, type TestServer } from '../../helpers/server.ts';

interface Row {
  id: string;
  displayName: string;
  state: string;
  totalBytes: number | null;
  rowsEstimate: number | null;
  growthBytes: number | null;
  lastActiveAt: string | null;
  schemaVersion: number;
  behindBy: number;
  drift: number | null;
  latestBackup: { id: string; finishedAt: string } | null;
  legalHold: boolean;
}

interface Fixture {
  id: string;
  name: string;
  state: string;
  size: number | null;
  growth: number | null;
  activeDaysAgo: number | null;
  backupHoursAgo: number | null;
  drift: number | null;
  behind: boolean;
}

const N = 60;

describe('admin tenants table', () => {
  let t: TestServer;
  let admin: SignedIn;
  const fx: Fixture[] = [];
  const latest = latestVersion(loadTenantMigrations());

  before(async () => {
    t = await startTestServer();
    admin = await signInPrivileged(t, 'admin');
    const migrations = loadTenantMigrations();
    const ids: string[] = [];
    for (let i = 0; i < N; i += 6) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(6, N - i) }, (_, k) =>
          provisionTenant(t.db.pool, { displayName: `Tenant ${String(i + k).padStart(2, '0')}` }, migrations),
        ),
      );
      ids.push(...batch.map((r) => r.id));
    }
    // Shape the fleet: states, sizes (with ties), growth (some unknown), activity, backups, drift, versions.
    for (const [i, id] of ids.entries()) {
      const f: Fixture = {
        id,
        name: `Tenant ${String(i).padStart(2, '0')}`,
        state: i % 10 === 3 ? 'suspended' : i % 15 === 7 ? 'deleted' : 'active',
        size: i % 9 === 0 ? null : 8192 * ((i * 7) % 13), // ties, zeros and unmeasured
        growth: i % 9 === 0 || i % 4 === 1 ? null : 1024 * (((i * 5) % 11) - 5),
        activeDaysAgo: i % 8 === 0 ? null : (i * 3) % 40,
        backupHoursAgo: i % 6 === 0 ? null : (i * 11) % 100,
        drift: i % 6 === 0 ? null : i % 7 === 2 ? 2 : 0,
        behind: i % 11 === 4,
      };
      // The week-old sample cannot be below 0 bytes.
      if (f.size !== null && f.growth !== null) f.growth = Math.min(f.growth, f.size);
      fx.push(f);
    }
    const pool = t.db.pool;
    // One fixed "now" for every row, so that equal ages are equal keys (and ids break the tie).
    const base = new Date();
    for (const f of fx) {
      await pool.query(
        `UPDATE control.tenants SET state = $2, last_active_at = CASE WHEN $3::int IS NULL THEN NULL ELSE $6::timestamptz - make_interval(days => $3::int) - interval '1 hour' END,
           schema_version = CASE WHEN $4 THEN schema_version - 1 ELSE schema_version END,
           deleted_at = CASE WHEN $2 = 'deleted' THEN now() END, legal_hold = $5
         WHERE id = $1`,
        [f.id, f.state, f.activeDaysAgo, f.behind, f.name.endsWith('5'), base],
      );
      if (f.size !== null) {
        await pool.query(
          `INSERT INTO control.tenant_stats_latest (tenant_id, sampled_at, total_bytes, table_bytes, index_bytes, toast_bytes,
             rows_estimate, dead_rows, tables_not_analyzed, relations)
           VALUES ($1, now(), $2, $2, 0, 0, $3, 0, 0, '[]')`,
          [f.id, f.size, Math.floor(f.size / 100)],
        );
        await pool.query(
          `INSERT INTO control.tenant_stats (tenant_id, sampled_at, resolution, total_bytes, table_bytes, index_bytes, toast_bytes, rows_estimate, dead_rows)
           VALUES ($1, now(), 'raw', $2, $2, 0, 0, 0, 0)`,
          [f.id, f.size],
        );
        if (f.growth !== null)
          await pool.query(
            `INSERT INTO control.tenant_stats (tenant_id, sampled_at, resolution, total_bytes, table_bytes, index_bytes, toast_bytes, rows_estimate, dead_rows)
             VALUES ($1, now() - interval '8 days', 'day', $2, $2, 0, 0, 0, 0),
                    ($1, now() - interval '3 days', 'hour', 1, 1, 0, 0, 0, 0)`,
            [f.id, f.size - f.growth],
          );
      }
      // A failed and a running attempt after every good backup: neither is the latest good one.
      if (f.backupHoursAgo !== null)
        await pool.query(
          `INSERT INTO control.backups (tenant_id, kind, outcome, started_at, finished_at, created_by, drift)
           VALUES ($1, 'scheduled', 'succeeded', $4::timestamptz - make_interval(hours => $2) - interval '1 minute', $4::timestamptz - make_interval(hours => $2), 'test', $3),
                  ($1, 'scheduled', 'succeeded', now() - interval '300 hours', now() - interval '299 hours', 'test', 0),
                  ($1, 'manual', 'failed', now() - interval '10 minutes', now() - interval '9 minutes', 'test', NULL)`,
          [f.id, f.backupHoursAgo, f.drift, base],
        );
    }
  });
  after(async () => {
    await t?.stop();
  });

  const live = () => fx.filter((f) => f.state !== 'deleted');

  /** Every tenant of a query, following nextCursor, `limit` a page. */
  async function all(query: Record<string, string>, limit = 7): Promise<Row[]> {
    const out: Row[] = [];
    let cursor: string | null = null;
    for (let pages = 0; pages < 100; pages++) {
      const q = new URLSearchParams({ ...query, limit: String(limit), ...(cursor ? { cursor } : {}) });
      const res = await admin.agent.get(`/api/v1/admin/tenants?${q}`).expect(200);
      out.push(...res.body.tenants);
      assert.ok(res.body.tenants.length <= limit);
      cursor = res.body.nextCursor;
      if (!cursor) return out;
    }
    throw new Error('paging did not end');
  }

  const byName = (a: Fixture, b: Fixture) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  const idCmp = (a: Fixture, b: Fixture) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

  test('the default list is every tenant but the deleted ones, by name, each once across keyset pages', async () => {
    const rows = await all({});
    assert.deepEqual(
      rows.map((r) => r.id),
      live()
        .sort(byName)
        .map((f) => f.id),
    );
    const page1 = (await admin.agent.get('/api/v1/admin/tenants').expect(200)).body;
    assert.equal(page1.tenants.length, 50, 'page size 50');
    assert.ok(page1.nextCursor);
    assert.match(page1.nextCursor, /^[A-Za-z0-9_-]+$/, 'the cursor is opaque base64url');
  });

  test('each row carries the control-plane facts: size, rows, growth, activity, version, drift, backup, hold', async () => {
    const rows = await all({ q: 'Tenant 2' });
    for (const r of rows) {
      const f = fx.find((x) => x.id === r.id) as Fixture;
      assert.equal(r.totalBytes, f.size);
      assert.equal(r.growthBytes, f.size === null ? null : f.growth);
      assert.equal(r.schemaVersion, f.behind ? latest - 1 : latest);
      assert.equal(r.behindBy, f.behind ? 1 : 0);
      assert.equal(r.latestBackup === null, f.backupHoursAgo === null);
      if (f.backupHoursAgo !== null) {
        const hours = (Date.now() - Date.parse(r.latestBackup?.finishedAt as string)) / 3600_000;
        assert.ok(
          Math.abs(hours - f.backupHoursAgo) < 0.1,
          'the latest GOOD backup, not the later failed one',
        );
        assert.equal(r.drift, f.drift);
      }
      assert.equal(r.lastActiveAt === null, f.activeDaysAgo === null);
      assert.equal(r.legalHold, f.name.endsWith('5'));
    }
  });

  test('sorts by size, growth, activity and backup age, both ways, with paging that neither skips nor repeats', async () => {
    const sizeKey = (f: Fixture) => f.size ?? -1;
    const cases: Array<[string, 'asc' | 'desc', (a: Fixture, b: Fixture) => number]> = [
      ['size', 'desc', (a, b) => sizeKey(b) - sizeKey(a) || -idCmp(a, b)],
      ['size', 'asc', (a, b) => sizeKey(a) - sizeKey(b) || idCmp(a, b)],
      [
        'growth',
        'desc',
        (a, b) => {
          const ga = a.size === null ? null : a.growth;
          const gb = b.size === null ? null : b.growth;
          if (ga === null || gb === null) return ga === gb ? -idCmp(a, b) : ga === null ? 1 : -1;
          return gb - ga || -idCmp(a, b);
        },
      ],
      [
        'growth',
        'asc',
        (a, b) => {
          const ga = a.size === null ? null : a.growth;
          const gb = b.size === null ? null : b.growth;
          if (ga === null || gb === null) return ga === gb ? idCmp(a, b) : ga === null ? 1 : -1;
          return ga - gb || idCmp(a, b);
        },
      ],
      // Most recently active first; never active last.
      ['activity', 'desc', (a, b) => (a.activeDaysAgo ?? 1e9) - (b.activeDaysAgo ?? 1e9) || -idCmp(a, b)],
      // By age: the freshest backup first; none at all is the oldest.
      ['backup', 'asc', (a, b) => (a.backupHoursAgo ?? 1e9) - (b.backupHoursAgo ?? 1e9) || -idCmp(a, b)],
      ['backup', 'desc', (a, b) => (b.backupHoursAgo ?? 1e9) - (a.backupHoursAgo ?? 1e9) || idCmp(a, b)],
      ['name', 'desc', (a, b) => -byName(a, b)],
    ];
    for (const [sort, dir, cmp] of cases) {
      const rows = await all({ sort, dir }, 9);
      assert.deepEqual(
        rows.map((r) => r.id),
        live()
          .sort(cmp)
          .map((f) => f.id),
        `${sort} ${dir}`,
      );
    }
  });

  test('filters: state (deleted too), inactive for N days, no good backup for N hours, behind, drift, search', async () => {
    const ids = async (q: Record<string, string>) => (await all(q, 10)).map((r) => r.id).sort();
    const expect = (pred: (f: Fixture) => boolean, from = live()) =>
      from
        .filter(pred)
        .map((f) => f.id)
        .sort();
    assert.deepEqual(
      await ids({ state: 'suspended' }),
      expect((f) => f.state === 'suspended'),
    );
    assert.deepEqual(
      await ids({ state: 'deleted' }),
      expect((f) => f.state === 'deleted', fx),
    );
    assert.ok((await ids({ state: 'deleted' })).length > 0);
    // Never active counts from creation (just now): not inactive.
    assert.deepEqual(
      await ids({ inactiveDays: '20' }),
      expect((f) => f.activeDaysAgo !== null && f.activeDaysAgo >= 20),
    );
    assert.deepEqual(
      await ids({ noBackupHours: '24' }),
      expect((f) => f.backupHoursAgo === null || f.backupHoursAgo >= 24),
    );
    assert.deepEqual(
      await ids({ behind: '1' }),
      expect((f) => f.behind),
    );
    assert.deepEqual(
      await ids({ drift: '1' }),
      expect((f) => (f.drift ?? 0) > 0),
    );
    assert.deepEqual(
      await ids({ state: 'active', noBackupHours: '24', sort: 'size' }),
      expect((f) => f.state === 'active' && (f.backupHoursAgo === null || f.backupHoursAgo >= 24)),
    );
    // Search: part of a name, any case; or the start of an id; LIKE wildcards are literal.
    assert.deepEqual(
      await ids({ q: 'ant 1' }),
      expect((f) => f.name.includes('ant 1')),
    );
    assert.deepEqual(
      await ids({ q: 'TENANT 0' }),
      expect((f) => f.name.startsWith('Tenant 0')),
    );
    const one = live()[5] as Fixture;
    assert.deepEqual(await ids({ q: one.id }), [one.id]);
    assert.deepEqual(
      await ids({ q: one.id.slice(0, 10) }),
      expect((f) => f.id.startsWith(one.id.slice(0, 10))),
    );
    assert.deepEqual(await ids({ q: '%' }), []);
    assert.deepEqual(await ids({ q: '_' }), []);
  });

  test('bad parameters are a 400 that says which; a cursor of another sort or a forged one too', async () => {
    for (const q of [
      'state=gone',
      'inactiveDays=0',
      'inactiveDays=abc',
      'noBackupHours=-1',
      'behind=yes',
      'sort=state',
      'dir=up',
      'limit=0',
      'limit=201',
      'nope=1',
      'q=a&q=b',
      'cursor=***',
      'cursor=eyJzIjoibmFtZSJ9',
    ]) {
      const res = await admin.agent.get(`/api/v1/admin/tenants?${q}`).expect(400);
      assert.match(JSON.stringify(res.body), /Invalid query/, q);
    }
    const first = (await admin.agent.get('/api/v1/admin/tenants?sort=size&limit=5').expect(200)).body;
    await admin.agent.get(`/api/v1/admin/tenants?sort=name&cursor=${first.nextCursor}`).expect(400);
    await admin.agent.get(`/api/v1/admin/tenants?sort=size&dir=asc&cursor=${first.nextCursor}`).expect(400);
    const forged = Buffer.from(
      JSON.stringify({ s: 'size', d: 'desc', k: "1'; DROP TABLE x", i: 'aaaaaaaaaaaa' }),
    ).toString('base64url');
    await admin.agent.get(`/api/v1/admin/tenants?sort=size&cursor=${forged}`).expect(400);
  });

  test('the page: sortable headers with aria-sort, filters kept, keyset links, 50 rows, no inline code', async () => {
    const res = await admin.agent.get('/admin/tenants').set('Accept', HTML).expect(200);
    assertNoInlineCode(res.text, '/admin/tenants');
    assert.equal((res.text.match(/<tr>\s*<th scope="row">/g) ?? []).length, 50);
    assert.match(res.text, /<th scope="col" aria-sort="ascending"><a href="\/admin\/tenants\?dir=desc">Name/);
    assert.match(res.text, /aria-sort="none"[^>]*><a href="\/admin\/tenants\?sort=size">Size/);
    const next = /href="(\/admin\/tenants\?cursor=[^"]+)" rel="next"/.exec(res.text)?.[1];
    assert.ok(next, 'a next-page link');
    const page2 = await admin.agent.get(next.replaceAll('&amp;', '&')).set('Accept', HTML).expect(200);
    assert.equal((page2.text.match(/<tr>\s*<th scope="row">/g) ?? []).length, live().length - 50);
    assert.match(page2.text, /First page/);
    const filtered = await admin.agent
      .get('/admin/tenants?state=suspended&sort=size&dir=asc&q=Tenant')
      .set('Accept', HTML)
      .expect(200);
    assert.match(filtered.text, /<option value="suspended" selected>/);
    assert.match(filtered.text, /aria-sort="ascending"[^>]*><a href="[^"]*sort=size/);
    assert.equal(
      (filtered.text.match(/<tr>\s*<th scope="row">/g) ?? []).length,
      live().filter((f) => f.state === 'suspended').length,
    );
    const bad = await admin.agent.get('/admin/tenants?inactiveDays=zero').set('Accept', HTML).expect(400);
    assert.match(bad.text, /role="alert"/);
    assert.match(bad.text, /value="zero"/, 'the refused value is shown again');
    assertNoInlineCode(bad.text, '/admin/tenants (refused)');
  });
});
