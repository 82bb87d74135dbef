// The threat detector below HTTP (real PostgreSQL, real Redis): the burst
// counting, the flag's life (open, bumped, acknowledged, a new one after), the
// bounded in-memory counter, and the unit of work's permission-denied hook.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { createClient, type RedisClientType } from 'redis';
import { PermissionDeniedError } from '../../../kernel/errors.ts';
import { createLogger } from '../../../kernel/logger.ts';
import { createPrivilegedUser } from '../../../server/accounts/accounts.ts';
import { MemoryHitCounter, RedisHitCounter, ThreatDetector } from '../../../server/threats/detector.ts';
import { acknowledgeThreatFlag, listThreatFlags } from '../../../server/threats/flags.ts';
import { flushesAt, threatRules } from '../../../server/threats/rules.ts';
import { createOrm, type Orm } from '../../../tenancy/orm.ts';
import { provisionTenant } from '../../../tenancy/provision.ts';
import { loadTenantMigrations } from '../../../tenancy/templates.ts';
import type { TenantRow } from '../../../tenancy/tenant-sql.ts';
import { type PermissionDeniedInfo, TenantContext } from '../../../tenancy/unit-of-work.ts';
import { createTestDatabase, type TestDatabase } from '../../helpers/database.ts';
import { GOOD_PASSWORD, requireRedis, TEST_REDIS_URL, uniqueEmail } from '../../helpers/server.ts';

const log = createLogger({ level: 'error' });
const rules = threatRules({
  THREAT_WINDOW_MINUTES: 10,
  THREAT_FAILED_SIGNINS: 3,
  THREAT_NOT_FOUND_BURST: 3,
  THREAT_REJECTED_BURST: 3,
});

test('a burst is written at the threshold, then at twice, four times ... the threshold, never at every hit', () => {
  const writes = Array.from({ length: 100 }, (_, i) => i + 1).filter((n) => flushesAt(n, 3));
  assert.deepEqual(writes, [3, 6, 12, 24, 48, 96]);
});

test('the in-memory counter counts per window and holds at most its bound of keys', async () => {
  let now = 0;
  const counter = new MemoryHitCounter(3, () => now);
  assert.equal(await counter.add('a', 1000), 1);
  assert.equal(await counter.add('a', 1000), 2);
  now = 1000;
  assert.equal(await counter.add('a', 1000), 1, 'a new window starts from one');
  for (const key of ['b', 'c', 'd', 'e', 'f']) await counter.add(key, 1000);
  assert.ok(counter.size <= 3, `at most 3 keys, held ${counter.size}`);
});

describe('the detector on PostgreSQL and Redis', () => {
  let db: TestDatabase;
  let redis: RedisClientType;
  let detector: ThreatDetector;

  before(async () => {
    await requireRedis();
    db = await createTestDatabase(2);
    redis = createClient({ url: TEST_REDIS_URL });
    await redis.connect();
    detector = new ThreatDetector({
      pool: db.pool,
      redis,
      prefix: `enclave:test:${randomBytes(6).toString('hex')}:`,
      rules,
      log,
    });
  });
  after(async () => {
    await redis.close();
    await db.drop();
  });

  test('counts in Redis under the abuse prefix: a shared count across detectors', async () => {
    const prefix = `enclave:test:${randomBytes(6).toString('hex')}:`;
    const one = new RedisHitCounter(redis, prefix);
    const two = new RedisHitCounter(redis, prefix);
    assert.equal(await one.add('k', 60_000), 1);
    assert.equal(await two.add('k', 60_000), 2);
    assert.ok((await redis.pTTL(`${prefix}threat:k`)) > 0, 'the window expires');
  });

  test('one open flag per rule and subject: bumped by further bursts, a new one after acknowledgement', async () => {
    const subject = 'ip:198.51.100.7';
    for (let i = 0; i < 7; i++) detector.hit('csrf_failures', subject, { ip: '198.51.100.7' });
    await detector.settled();
    let page = await listThreatFlags(db.pool, { state: 'open', severity: null, before: null, limit: 10 });
    let flags = page.flags.filter((f) => f.subject === subject);
    assert.equal(flags.length, 1);
    assert.equal(flags[0]?.count, 6, 'written at 3 and 6 hits');
    const { id: adminId } = await createPrivilegedUser(db.pool, {
      email: uniqueEmail('admin'),
      password: GOOD_PASSWORD,
      displayName: 'Admin',
      role: 'admin',
    });
    await acknowledgeThreatFlag(db.pool, flags[0]?.id as string, 'looked at it', {
      actor: { type: 'admin', id: adminId },
    });
    const raised = await detector.raise('csrf_failures', subject, 1, {});
    assert.equal(raised.opened, true);
    page = await listThreatFlags(db.pool, { state: 'all', severity: null, before: null, limit: 10 });
    flags = page.flags.filter((f) => f.subject === subject);
    assert.deepEqual(
      flags.map((f) => f.state),
      ['open', 'acknowledged'],
    );
    const events = await db.pool.query(
      "SELECT count(*)::int AS n FROM control.audit_inbox WHERE action = 'threat.flag' AND tenant_id IS NULL",
    );
    assert.equal(events.rows[0].n, 3, 'one platform event per write');
  });

  test('pages newest first by a keyset cursor', async () => {
    for (let i = 0; i < 5; i++) await detector.raise('lockout', `account:page-${i}`, 1, {});
    const first = await listThreatFlags(db.pool, { state: 'all', severity: 'high', before: null, limit: 2 });
    assert.equal(first.flags.length, 2);
    assert.ok(first.nextCursor);
    const second = await listThreatFlags(db.pool, {
      state: 'all',
      severity: 'high',
      before: first.nextCursor,
      limit: 2,
    });
    assert.ok(Number(second.flags[0]?.id) < Number(first.flags[1]?.id));
  });
});

describe('the unit of work tells its listeners about permission denied (42501)', () => {
  let db: TestDatabase;
  let orm: Orm;
  let ctx: TenantContext;
  let tenant: TenantRow;

  before(async () => {
    db = await createTestDatabase(2);
    tenant = await provisionTenant(db.pool, { displayName: 'A' }, loadTenantMigrations());
    const created = await createOrm(db.url, 2);
    orm = created.orm;
    ctx = new TenantContext(orm, created.pool, { cacheMs: 0 });
  });
  after(async () => {
    await orm.close();
    await db.drop();
  });

  test('a tenant role reading the control plane: PermissionDeniedError, and the listener hears the tenant', async () => {
    const heard: PermissionDeniedInfo[] = [];
    const stop = ctx.onPermissionDenied((info) => heard.push(info));
    await assert.rejects(
      ctx.run(tenant.id, (uow) => uow.query('SELECT email FROM control.users')),
      PermissionDeniedError,
    );
    assert.deepEqual(heard, [{ tenantId: tenant.id, sqlstate: '42501' }]);
    // Other failures are not permission denied.
    await assert.rejects(ctx.run(tenant.id, (uow) => uow.query('SELECT 1/0')));
    assert.equal(heard.length, 1);
    stop();
    await assert.rejects(ctx.run(tenant.id, (uow) => uow.query('SELECT email FROM control.users')));
    assert.equal(heard.length, 1, 'no longer heard once stopped');
  });

  test('a listener that throws does not replace the error', async () => {
    const stop = ctx.onPermissionDenied(() => {
      throw new Error('listener broke');
    });
    await assert.rejects(
      ctx.run(tenant.id, (uow) => uow.query('SELECT email FROM control.users')),
      PermissionDeniedError,
    );
    stop();
  });
});
