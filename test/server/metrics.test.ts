// GET /metrics on a real server (real PostgreSQL and Redis): the answer parses
// as Prometheus text under a strict parser, counts exactly the requests the
// test made by route PATTERN (an id in the URL never becomes a label), and
// reports the control plane (tenants by state, audit backlog and last seal,
// the job-run history, backup ages) from rows the test wrote. Only an admin's
// session or METRICS_TOKEN reads it; the separate METRICS_PORT needs the token.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import { MetricsPortError, metricsRoutes, startMetricsListener } from '../../server/api/metrics-api.ts';
import { createApp } from '../../server/http/app.ts';
import { Metrics } from '../../server/http/metrics.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';
import { captureLog } from '../helpers/log.ts';
import {
  type SignedIn,
  signInPrivileged,
  signUp,
  startTestServer,
  type TestServer,
} from '../helpers/server.ts';

// --- A strict parser of the Prometheus text format (version 0.0.4) -----------

type Labels = Record<string, string>;
interface Sample {
  name: string;
  labels: Labels;
  value: number;
}
interface Exposition {
  types: Map<string, string>;
  samples: Sample[];
  /** The value of the one sample with this name and exactly these labels, or undefined. */
  get(name: string, labels?: Labels): number | undefined;
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

/**
 * A value as Go's strconv.ParseFloat reads it (what Prometheus uses): decimal,
 * or NaN / [+-]Inf / [+-]Infinity in any case (prom-client writes `Nan`).
 */
function parseValue(text: string | undefined, line: string): number {
  assert.ok(text !== undefined, `no value in: ${line}`);
  if (/^nan$/i.test(text)) return Number.NaN;
  const inf = /^([-+]?)inf(inity)?$/i.exec(text);
  if (inf) return inf[1] === '-' ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
  assert.match(text, /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/, `not a number in: ${line}`);
  return Number(text);
}

/** Label set text after `{`: returns the labels and the index after `}`. Escapes: \\ \" \n only. */
function parseLabels(line: string, start: number): { labels: Labels; end: number } {
  const labels: Labels = {};
  let i = start;
  for (;;) {
    if (line[i] === '}') return { labels, end: i + 1 };
    const eq = line.indexOf('=', i);
    assert.ok(eq > i, `label without "=" in: ${line}`);
    const name = line.slice(i, eq);
    assert.match(name, LABEL_NAME, `bad label name "${name}" in: ${line}`);
    assert.equal(line[eq + 1], '"', `label value not quoted in: ${line}`);
    let value = '';
    let j = eq + 2;
    for (; j < line.length && line[j] !== '"'; j++) {
      if (line[j] === '\\') {
        const next = line[++j];
        assert.ok(next === '\\' || next === '"' || next === 'n', `bad escape in: ${line}`);
        value += next === 'n' ? '\n' : next;
      } else value += line[j];
    }
    assert.equal(line[j], '"', `unterminated label value in: ${line}`);
    assert.ok(!(name in labels), `label ${name} twice in: ${line}`);
    labels[name] = value;
    i = j + 1;
    if (line[i] === ',') i++;
    else assert.equal(line[i], '}', `expected "," or "}" in: ${line}`);
  }
}

/** The family a sample belongs to: itself, or for histograms and summaries the name without its suffix. */
function familyOf(name: string, types: Map<string, string>): string | undefined {
  if (types.has(name)) return name;
  const m = /^(.*)_(bucket|sum|count)$/.exec(name);
  const base = m?.[1] ?? '';
  if (m && ['histogram', 'summary'].includes(types.get(base) ?? '')) {
    if (m[2] === 'bucket' && types.get(base) !== 'histogram') return undefined;
    return base;
  }
  return undefined;
}

function parseExposition(text: string): Exposition {
  assert.ok(text.endsWith('\n'), 'the exposition ends with a newline');
  const types = new Map<string, string>();
  const helps = new Set<string>();
  const samples: Sample[] = [];
  const seen = new Set<string>();
  for (const line of text.slice(0, -1).split('\n')) {
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (!m) continue; // a plain comment
      assert.match(m[2] ?? '', METRIC_NAME, `bad metric name in: ${line}`);
      if (m[1] === 'TYPE') {
        const [, , name = '', type = ''] = m;
        assert.ok(TYPES.has(type), `unknown type in: ${line}`);
        assert.ok(!types.has(name), `TYPE twice for ${name}`);
        assert.ok(!samples.some((s) => familyOf(s.name, types) === name), `TYPE after samples of ${name}`);
        types.set(name, type);
      } else {
        assert.ok(!helps.has(m[2] ?? ''), `HELP twice for ${m[2]}`);
        helps.add(m[2] ?? '');
      }
      continue;
    }
    const nameEnd = line.search(/[{ ]/);
    assert.ok(nameEnd > 0, `no value in: ${line}`);
    const name = line.slice(0, nameEnd);
    assert.match(name, METRIC_NAME, `bad metric name in: ${line}`);
    let labels: Labels = {};
    let rest = line.slice(nameEnd);
    if (rest.startsWith('{')) {
      const parsed = parseLabels(line, nameEnd + 1);
      labels = parsed.labels;
      rest = line.slice(parsed.end);
    }
    const parts = rest.trimStart().split(' ');
    assert.ok(rest.startsWith(' ') && parts.length >= 1 && parts.length <= 2, `bad sample line: ${line}`);
    if (parts[1] !== undefined) assert.match(parts[1], /^-?\d+$/, `bad timestamp in: ${line}`);
    const family = familyOf(name, types);
    assert.ok(family, `sample of ${name} without a TYPE before it`);
    if (types.get(family) === 'counter') assert.ok(!name.endsWith('_bucket'));
    const key = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
    assert.ok(!seen.has(key), `the same series twice: ${line}`);
    seen.add(key);
    samples.push({ name, labels, value: parseValue(parts[0], line) });
  }
  checkHistograms(types, samples);
  const get = (name: string, labels: Labels = {}) => {
    const want = JSON.stringify(Object.entries(labels).sort());
    return samples.find((s) => s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === want)
      ?.value;
  };
  return { types, samples, get };
}

/** Buckets are cumulative, end with le="+Inf", and that bucket equals _count. */
function checkHistograms(types: Map<string, string>, samples: Sample[]): void {
  for (const [family, type] of types) {
    if (type !== 'histogram') continue;
    const series = new Map<string, Sample[]>();
    for (const s of samples.filter((x) => x.name === `${family}_bucket`)) {
      assert.ok('le' in s.labels, `${family}_bucket without le`);
      const { le: _le, ...rest } = s.labels;
      const key = JSON.stringify(Object.entries(rest).sort());
      series.set(key, [...(series.get(key) ?? []), s]);
    }
    for (const [key, buckets] of series) {
      const sorted = [...buckets].sort((a, b) => parseValue(a.labels.le, '') - parseValue(b.labels.le, ''));
      assert.equal(sorted.at(-1)?.labels.le, '+Inf', `${family}${key} has no +Inf bucket`);
      sorted.reduce((previous, bucket) => {
        assert.ok(bucket.value >= previous.value, `${family}${key}: buckets are cumulative`);
        return bucket;
      });
      const count = samples.find(
        (s) => s.name === `${family}_count` && JSON.stringify(Object.entries(s.labels).sort()) === key,
      );
      assert.equal(count?.value, sorted.at(-1)?.value, `${family}${key}: +Inf bucket = _count`);
    }
  }
}

// --- Helpers -----------------------------------------------------------------

const TOKEN = randomBytes(32).toString('hex');

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('GET /metrics on a running server', () => {
  let t: TestServer;
  let metricsPort: number;
  let admin: SignedIn;
  let alice: SignedIn;

  const scrape = async (): Promise<Exposition> => {
    const res = await request(t.url).get('/metrics').set('Authorization', `Bearer ${TOKEN}`).expect(200);
    return parseExposition(res.text);
  };

  before(async () => {
    metricsPort = await freePort();
    t = await startTestServer({ METRICS_TOKEN: TOKEN, METRICS_PORT: String(metricsPort) });
    admin = await signInPrivileged(t, 'admin');
    alice = await signUp(t.url);
  });
  after(async () => {
    await t?.stop();
  });

  test('the scraper token reads the Prometheus text (text/plain; version=0.0.4) and it parses strictly', async () => {
    const res = await request(t.url).get('/metrics').set('Authorization', `Bearer ${TOKEN}`).expect(200);
    assert.equal(res.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
    assert.equal(res.headers['cache-control'], 'no-store');
    const m = parseExposition(res.text);
    assert.equal(m.types.get('enclave_http_requests_total'), 'counter');
    assert.equal(m.types.get('enclave_http_request_duration_seconds'), 'histogram');
    assert.equal(
      m.types.get('enclave_process_cpu_user_seconds_total'),
      'counter',
      'default metrics, prefixed',
    );
    assert.equal(m.get('enclave_metrics_database_read_ok'), 1);
    // Both pools, from the pool objects.
    for (const pool of ['control', 'orm']) {
      assert.ok((m.get('enclave_db_pool_max_connections', { pool }) ?? 0) >= 1, `${pool} pool max`);
      assert.ok(m.get('enclave_db_pool_connections', { pool }) !== undefined, `${pool} pool size`);
      assert.equal(m.get('enclave_db_pool_waiting_clients', { pool }), 0);
    }
  });

  test('a signed-in admin reads it with the session; a signed-in owner (403), no one (401) and a wrong token (401) get no metrics', async () => {
    const ok = await admin.agent.get('/metrics').expect(200);
    assert.match(ok.text, /^enclave_http_requests_total\{/m);

    const owner = await alice.agent.get('/metrics').set('Accept', 'application/json').expect(403);
    assert.equal(owner.body.error.message, 'Only admins can read /metrics.');
    const auditor = await signInPrivileged(t, 'auditor');
    await auditor.agent.get('/metrics').set('Accept', 'application/json').expect(403);

    const anonymous = await request(t.url).get('/metrics').set('Accept', 'application/json').expect(401);
    assert.match(anonymous.body.error.message, /Sign in as an admin, or send METRICS_TOKEN/);
    assert.match(String(anonymous.headers['www-authenticate']), /^Bearer realm="enclave-metrics"/);

    const wrong = await request(t.url)
      .get('/metrics')
      .set('Authorization', `Bearer ${TOKEN.slice(0, -1)}x`)
      .set('Accept', 'application/json')
      .expect(401);
    assert.match(wrong.body.error.message, /metrics token is not valid/);
    // A bare "Bearer" and a token with the right prefix only are refused the same way.
    await request(t.url).get('/metrics').set('Authorization', 'Bearer').expect(401);
    await request(t.url).get('/metrics').set('Authorization', `Bearer ${TOKEN}${TOKEN}`).expect(401);
    for (const res of [owner, anonymous, wrong]) assert.doesNotMatch(res.text, /enclave_/);
  });

  test('three requests to a route count exactly three under its route pattern and status, never the raw URL', async () => {
    const before = await scrape();
    const ids = [randomUUID(), randomUUID(), randomUUID()];
    const statuses = new Set<number>();
    for (const id of ids) statuses.add((await alice.agent.get(`/api/v1/notes/${id}`)).status);
    assert.equal(statuses.size, 1, 'the same answer three times');
    const status = String([...statuses][0]);
    const nowhere = `/nowhere-${randomBytes(4).toString('hex')}`;
    await request(t.url).get(nowhere).expect(404);
    await request(t.url).get(`${nowhere}/again`).expect(404);

    const afterwards = await scrape();
    const labels = { method: 'GET', route: '/api/v1/notes/:id', status };
    const count = (m: Exposition, name: string, l: Labels) => m.get(name, l) ?? 0;
    assert.equal(
      count(afterwards, 'enclave_http_requests_total', labels) -
        count(before, 'enclave_http_requests_total', labels),
      3,
    );
    const route = { method: 'GET', route: '/api/v1/notes/:id' };
    assert.equal(
      count(afterwards, 'enclave_http_request_duration_seconds_count', route) -
        count(before, 'enclave_http_request_duration_seconds_count', route),
      3,
    );
    const unmatched = { method: 'GET', route: 'unmatched', status: '404' };
    assert.equal(
      count(afterwards, 'enclave_http_requests_total', unmatched) -
        count(before, 'enclave_http_requests_total', unmatched),
      2,
    );
    // Health checks are counted too: the handler is wrapped, not a middleware after them.
    await request(t.url).get('/healthz').expect(200);
    assert.ok(
      count(await scrape(), 'enclave_http_requests_total', {
        method: 'GET',
        route: '/healthz',
        status: '200',
      }) >= 1,
    );

    const text = (await request(t.url).get('/metrics').set('Authorization', `Bearer ${TOKEN}`)).text;
    for (const id of ids) assert.ok(!text.includes(id), 'no id becomes a label');
    assert.ok(!text.includes(nowhere), 'no unmatched path becomes a label');
  });

  test('tenants by state follow a tenant suspended in SQL (after the 5 s cache)', async () => {
    const first = await scrape();
    const active = first.get('enclave_tenants', { state: 'active' }) ?? 0;
    const suspended = first.get('enclave_tenants', { state: 'suspended' }) ?? 0;
    assert.ok(active >= 1);
    for (const state of ['provisioning', 'archived', 'deleted']) {
      assert.ok(first.get('enclave_tenants', { state }) !== undefined, `${state} is reported, 0 or not`);
    }
    await t.db.pool.query(`UPDATE control.tenants SET state = 'suspended' WHERE id = $1`, [
      alice.user.tenantId,
    ]);
    const deadline = Date.now() + 8000;
    let now = await scrape();
    while (now.get('enclave_tenants', { state: 'suspended' }) === suspended && Date.now() < deadline) {
      await sleep(250);
      now = await scrape();
    }
    assert.equal(now.get('enclave_tenants', { state: 'suspended' }), suspended + 1);
    assert.equal(now.get('enclave_tenants', { state: 'active' }), active - 1);
    await t.db.pool.query(`UPDATE control.tenants SET state = 'active' WHERE id = $1`, [alice.user.tenantId]);
  });

  test('METRICS_PORT serves /metrics with the token only', async () => {
    const url = `http://127.0.0.1:${metricsPort}`;
    const res = await request(url).get('/metrics').set('Authorization', `Bearer ${TOKEN}`).expect(200);
    assert.equal(res.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
    assert.ok(parseExposition(res.text).get('enclave_metrics_database_read_ok') !== undefined);
    const missing = await request(url).get('/metrics').set('Accept', 'application/json').expect(401);
    assert.match(missing.body.error.message, /Send METRICS_TOKEN/);
    await request(url).get('/metrics').set('Authorization', 'Bearer not-the-token').expect(401);
    // Nothing else of the app is there.
    await request(url).get('/api/v1/notes').set('Authorization', `Bearer ${TOKEN}`).expect(404);
    await request(url).get('/login').expect(404);
  });
});

describe('control-plane metrics, read from the rows (one Metrics on a scratch database)', () => {
  let db: TestDatabase;
  const NOW = Date.now();
  let clock = NOW;
  let metrics: Metrics;
  const ago = (seconds: number) => new Date(NOW - seconds * 1000);
  const read = async () => parseExposition((await metrics.render()).body);

  before(async () => {
    db = await createTestDatabase();
    metrics = new Metrics({
      pool: db.pool,
      pools: { control: db.pool },
      log: captureLog().log,
      cacheMs: 5000,
      now: () => clock,
    });
  });
  after(async () => {
    await db?.drop();
  });

  const tenant = (id: string, state: string) =>
    db.pool.query(
      `INSERT INTO control.tenants (id, display_name, schema_name, role_name, state)
       VALUES ($1, $1, 't_' || $1, 't_' || $1, $2)`,
      [id, state],
    );
  const backup = (tenantId: string, outcome: string, finishedSecondsAgo: number) =>
    db.pool.query(
      `INSERT INTO control.backups (tenant_id, kind, outcome, started_at, finished_at, created_by)
       VALUES ($1, 'scheduled', $2, $3, $4, 'test')`,
      [tenantId, outcome, ago(finishedSecondsAgo + 10), ago(finishedSecondsAgo)],
    );
  const run = (job: string, outcome: string, startedSecondsAgo: number, seconds: number | null) =>
    db.pool.query(
      `INSERT INTO control.job_runs (job, trigger, instance, started_at, finished_at, outcome)
       VALUES ($1, 'schedule', 'test', $2, $3, $4)`,
      [job, ago(startedSecondsAgo), seconds === null ? null : ago(startedSecondsAgo - seconds), outcome],
    );

  test('an empty control plane: zeros, and no ages or timestamps that would mean something', async () => {
    const m = await read();
    assert.equal(m.get('enclave_metrics_database_read_ok'), 1);
    assert.equal(m.get('enclave_tenants', { state: 'active' }), 0);
    assert.equal(m.get('enclave_audit_inbox_rows'), 0);
    assert.equal(m.get('enclave_audit_inbox_oldest_age_seconds'), 0);
    assert.equal(m.get('enclave_audit_last_seal_timestamp_seconds'), undefined);
    assert.equal(m.get('enclave_backup_live_tenants'), 0);
    assert.equal(m.get('enclave_backup_oldest_latest_age_seconds'), undefined);
    assert.equal(m.samples.filter((s) => s.name.startsWith('enclave_job_')).length, 0);
  });

  test('reads are cached: rows written within 5 s show only after the cache period', async () => {
    await tenant('cachecache01', 'active');
    assert.equal((await read()).get('enclave_tenants', { state: 'active' }), 0, 'still the cached read');
    clock += 5001;
    assert.equal((await read()).get('enclave_tenants', { state: 'active' }), 1);
  });

  test('backup age: the oldest newest-good-backup over live tenants, and live tenants with none; no per-tenant series', async () => {
    await tenant('aaaaaaaaaaaa', 'active'); // good backups 3 d and 1 d ago, a failed one 1 h ago
    await backup('aaaaaaaaaaaa', 'succeeded', 3 * 86400);
    await backup('aaaaaaaaaaaa', 'succeeded', 86400);
    await backup('aaaaaaaaaaaa', 'failed', 3600);
    await tenant('bbbbbbbbbbbb', 'suspended'); // its newest good backup: 10 days ago (the oldest)
    await backup('bbbbbbbbbbbb', 'succeeded', 10 * 86400);
    await tenant('cccccccccccc', 'active'); // only a failed backup
    await backup('cccccccccccc', 'failed', 600);
    await tenant('dddddddddddd', 'deleted'); // not live: its 100-day-old backup does not count
    await backup('dddddddddddd', 'succeeded', 100 * 86400);
    await tenant('eeeeeeeeeeee', 'provisioning'); // not live
    clock += 5001;
    const m = await read();
    // cachecache01 (active, no backup), aaaa, bbbb, cccc.
    assert.equal(m.get('enclave_backup_live_tenants'), 4);
    assert.equal(m.get('enclave_backup_tenants_without_backup'), 2);
    assert.equal(m.get('enclave_backup_oldest_latest_age_seconds'), 10 * 86400 + (clock - NOW) / 1000);
    assert.equal(m.get('enclave_tenants', { state: 'deleted' }), 1);
    assert.equal(m.get('enclave_tenants', { state: 'provisioning' }), 1);
    const text = (await metrics.render()).body;
    assert.ok(!text.includes('aaaaaaaaaaaa') && !text.includes('bbbbbbbbbbbb'), 'no tenant id in any label');
  });

  test('the audit backlog, its oldest row and the last seal', async () => {
    for (const seconds of [120, 60, 1]) {
      await db.pool.query(
        `INSERT INTO control.audit_inbox (actor_type, action, outcome, occurred_at)
         VALUES ('system', 'test.event', 'success', $1)`,
        [ago(seconds)],
      );
    }
    await db.pool.query(
      `INSERT INTO control.audit_keys (key_id, public_key) VALUES ('00112233445566ff', $1)`,
      [randomBytes(32)],
    );
    const sealedAt = ago(300);
    await db.pool.query(
      `INSERT INTO control.audit_checkpoints (chain, size, head, checkpoint, signature, key_id, created_at)
       VALUES ('registry', 1, $1, '\\x00', $2, '00112233445566ff', $3)`,
      [randomBytes(32), randomBytes(64), sealedAt],
    );
    clock += 5001;
    const m = await read();
    assert.equal(m.get('enclave_audit_inbox_rows'), 3);
    assert.equal(m.get('enclave_audit_inbox_oldest_age_seconds'), 120 + (clock - NOW) / 1000);
    assert.equal(m.get('enclave_audit_last_seal_timestamp_seconds'), sealedAt.getTime() / 1000);
  });

  test('job runs, failures and durations from control.job_runs, by job and outcome', async () => {
    await run('backup', 'succeeded', 2 * 86400, 30); // outside the 24 h window
    await run('backup', 'succeeded', 7200, 40);
    await run('backup', 'failed', 5400, 5);
    await run('backup', 'succeeded', 3600, 42.5); // the newest finished
    await run('backup', 'running', 60, null);
    await run('stats', 'succeeded', 7200, 1);
    await run('stats', 'interrupted', 3600, 2.25);
    clock += 5001;
    const m = await read();
    const runs = (job: string, outcome: string) => m.get('enclave_job_runs_last_day', { job, outcome });
    assert.equal(runs('backup', 'succeeded'), 2);
    assert.equal(runs('backup', 'failed'), 1);
    assert.equal(runs('backup', 'running'), 1);
    assert.equal(runs('backup', 'interrupted'), 0);
    assert.equal(runs('stats', 'interrupted'), 1);
    const last = (job: string, outcome: string) =>
      m.get('enclave_job_last_run_timestamp_seconds', { job, outcome });
    assert.equal(last('backup', 'succeeded'), ago(3600 - 42.5).getTime() / 1000);
    assert.equal(last('backup', 'failed'), ago(5400 - 5).getTime() / 1000);
    assert.equal(last('stats', 'failed'), undefined, 'never failed: no series');
    assert.equal(m.get('enclave_job_last_duration_seconds', { job: 'backup' }), 42.5);
    assert.equal(m.get('enclave_job_last_duration_seconds', { job: 'stats' }), 2.25);
    assert.equal(m.get('enclave_job_last_failed', { job: 'backup' }), 0);
    assert.equal(
      m.get('enclave_job_last_failed', { job: 'stats' }),
      1,
      'interrupted counts as not succeeded',
    );
  });

  test('a database that fails: read_ok 0 and the control-plane series absent, the rest still served', async () => {
    const broken = new Metrics({
      pool: { query: () => Promise.reject(new Error('connection refused')) } as never,
      pools: {},
      log: captureLog().log,
    });
    const m = parseExposition((await broken.render()).body);
    assert.equal(m.get('enclave_metrics_database_read_ok'), 0);
    assert.equal(m.get('enclave_tenants', { state: 'active' }), undefined);
    assert.equal(m.get('enclave_audit_inbox_rows'), undefined);
    assert.equal(m.types.get('enclave_http_requests_total'), 'counter');
  });
});

describe('who may read /metrics without METRICS_TOKEN', () => {
  let db: TestDatabase;
  let metrics: Metrics;
  before(async () => {
    db = await createTestDatabase();
    metrics = new Metrics({ pool: db.pool, pools: { control: db.pool }, log: captureLog().log });
  });
  after(async () => {
    await db?.drop();
  });

  test('with METRICS_TOKEN unset no bearer token reads /metrics, and METRICS_PORT refuses to start', async () => {
    const app = createApp({ log: captureLog().log, checks: {}, routers: [metricsRoutes({ metrics })] });
    const res = await request(app)
      .get('/metrics')
      .set('Authorization', `Bearer ${TOKEN}`)
      .set('Accept', 'application/json')
      .expect(401);
    assert.match(res.body.error.message, /METRICS_TOKEN is not set/);
    const anonymous = await request(app).get('/metrics').set('Accept', 'application/json').expect(401);
    assert.match(anonymous.body.error.message, /Sign in as an admin to read \/metrics/);
    await assert.rejects(
      startMetricsListener({ metrics, host: '127.0.0.1', port: await freePort(), log: captureLog().log }),
      MetricsPortError,
    );
  });
});
