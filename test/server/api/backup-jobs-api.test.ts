// GET /api/v1/admin/backups/health on a real server, after a real scheduled
// backup (one tenant's schema dropped behind the platform's back: its backup
// fails) and a real restore check (one tenant's archive corrupted: its check
// fails): the summary and each tenant's latest good backup, last failed
// backup and last restore check say so; the window is a bounded query
// parameter; admins only; hostile queries are a 400.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import { openSigner, signingKeyFile } from '../../../audit/signing.ts';
import { createBackups } from '../../../backup/context.ts';
import type { AnyJob, JobContext, JobCounts } from '../../../jobs/job.ts';
import { restoreCheckJob } from '../../../jobs/restore-check.ts';
import { backupFleetJob } from '../../../jobs/scheduled-backup.ts';
import { loadConfig } from '../../../kernel/config.ts';
import { ident } from '../../../kernel/identifiers.ts';
import { loadTenantMigrations } from '../../../tenancy/templates.ts';
import { corruptDataPart } from '../../backup/fixture.ts';
import { captureLog } from '../../helpers/log.ts';
import {
  type SignedIn,
  signInPrivileged,
  signUp,
  startTestServer,
  type TestServer,
} from '../../helpers/server.ts';

const HEALTH = '/api/v1/admin/backups/health';

interface TenantJson {
  tenantId: string;
  state: string;
  latestGoodBackup: { id: string; kind: string; startedAt: string; ageSeconds: number } | null;
  lastFailedBackup: { id: string; startedAt: string; error: string | null } | null;
  lastRestoreCheck: { backupId: string; checkedAt: string; outcome: string; error: string | null } | null;
}

describe('admin backup health API', () => {
  let t: TestServer;
  let dataDir: string;
  let admin: SignedIn;
  let auditor: SignedIn;
  let alice: SignedIn;
  let bob: SignedIn;
  let carol: SignedIn;
  let ctx: JobContext;

  const tenantOf = (who: SignedIn) => who.user.tenantId as string;
  const health = async (query = '') => (await admin.agent.get(`${HEALTH}${query}`).expect(200)).body;

  before(async () => {
    dataDir = mkdtempSync(path.join(tmpdir(), 'enclave-backup-health-'));
    t = await startTestServer({ DATA_DIR: dataDir });
    admin = await signInPrivileged(t, 'admin');
    auditor = await signInPrivileged(t, 'auditor');
    alice = await signUp(t.url);
    bob = await signUp(t.url);
    carol = await signUp(t.url);
    for (const who of [alice, carol])
      await who.agent
        .post('/api/v1/notes')
        .set('X-CSRF-Token', who.csrf)
        .send({ title: 'hello', body: 'x'.repeat(2000) })
        .expect(201);

    // The jobs, run by hand with the server's own signing key and BACKUP_DIR.
    const config = loadConfig({ DATABASE_URL: t.db.url, DATA_DIR: dataDir });
    const signer = await openSigner(signingKeyFile(config), { create: false });
    const migrations = loadTenantMigrations(config.TENANT_MIGRATIONS_DIR);
    const log = captureLog('debug').log;
    const job: JobContext = {
      pool: t.db.pool,
      log,
      config,
      clock: () => new Date(),
      signal: new AbortController().signal,
      backups: createBackups(config, t.db.pool, { signer, migrations, tmpDir: dataDir }),
      signer,
      migrations,
      fanOut: async (def: AnyJob, items: object[]): Promise<JobCounts> => {
        const counts = { succeeded: 0, failed: 0 };
        for (const item of items)
          await def.run(job, item).then(
            () => counts.succeeded++,
            () => counts.failed++,
          );
        return counts;
      },
    };
    ctx = job;
    const bobSchema = (
      await t.db.pool.query('SELECT schema_name FROM control.tenants WHERE id = $1', [tenantOf(bob)])
    ).rows[0].schema_name as string;
    await t.db.pool.query(`DROP SCHEMA ${ident(bobSchema)} CASCADE`);
    await assert.rejects(backupFleetJob.run(ctx, {}), /1 of 3 tenant backup\(s\) failed/);
    const carols = (
      await t.db.pool.query(
        "SELECT location FROM control.backups WHERE tenant_id = $1 AND outcome = 'succeeded'",
        [tenantOf(carol)],
      )
    ).rows[0].location as string;
    corruptDataPart(carols);
    await assert.rejects(
      (async () => restoreCheckJob.run({ ...ctx, config: { ...config, RESTORE_CHECK_SAMPLE: 10 } }, {}))(),
      /1 of 2 restore check\(s\) failed/,
    );
  });
  after(async () => {
    await t.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('the summary counts tenants without a good backup, failed backups and failed restore checks', async () => {
    const body = await health();
    assert.equal(body.withinHours, 24);
    assert.deepEqual(body.summary, {
      tenants: 3,
      withoutGoodBackup: 1,
      neverBackedUp: 1,
      failedBackups: 1,
      tenantsWithFailedBackups: 1,
      checks: 2,
      failedChecks: 1,
      latestCheckFailed: 1,
      oldestGoodBackupAgeSeconds: body.summary.oldestGoodBackupAgeSeconds,
    });
    assert.ok(body.summary.oldestGoodBackupAgeSeconds >= 0 && body.summary.oldestGoodBackupAgeSeconds < 600);
  });

  test('per tenant: latest good backup and its age, last failed backup, last restore check; the stalest first', async () => {
    const tenants = (await health()).tenants as TenantJson[];
    assert.equal(tenants.length, 3);
    const [first] = tenants;
    assert.equal(first?.tenantId, tenantOf(bob), 'no good backup: listed first');
    assert.equal(first?.latestGoodBackup, null);
    assert.match(first?.lastFailedBackup?.error ?? '', /does not exist/);
    assert.equal(first?.lastRestoreCheck, null);

    const a = tenants.find((x) => x.tenantId === tenantOf(alice)) as TenantJson;
    assert.equal(a.latestGoodBackup?.kind, 'scheduled');
    assert.ok((a.latestGoodBackup?.ageSeconds ?? -1) >= 0);
    assert.equal(a.lastFailedBackup, null);
    assert.equal(a.lastRestoreCheck?.outcome, 'ok');
    assert.equal(a.lastRestoreCheck?.backupId, a.latestGoodBackup?.id);

    const c = tenants.find((x) => x.tenantId === tenantOf(carol)) as TenantJson;
    assert.equal(c.lastRestoreCheck?.outcome, 'failed');
    assert.ok(c.lastRestoreCheck?.error);
    assert.equal(JSON.stringify(tenants).includes(dataDir), false, 'no server path in the answer');
  });

  test('attention=1 lists only the tenants that need it; limit caps the list, not the summary', async () => {
    const attention = (await health('?attention=1')).tenants as TenantJson[];
    assert.deepEqual(attention.map((x) => x.tenantId).sort(), [tenantOf(bob), tenantOf(carol)].sort());
    const one = await health('?limit=1');
    assert.equal(one.tenants.length, 1);
    assert.equal(one.summary.tenants, 3);
  });

  test('the window is the withinHours parameter: a backup two days old is stale in 24 hours, not in 72', async () => {
    await t.db.pool.query(
      "UPDATE control.backups SET started_at = started_at - interval '48 hours', finished_at = finished_at - interval '48 hours' WHERE tenant_id = $1",
      [tenantOf(alice)],
    );
    assert.equal((await health()).summary.withoutGoodBackup, 2);
    assert.equal((await health('?withinHours=72')).summary.withoutGoodBackup, 1);
    const a = ((await health()).tenants as TenantJson[]).find((x) => x.tenantId === tenantOf(alice));
    assert.ok((a?.latestGoodBackup?.ageSeconds ?? 0) >= 48 * 3600);
  });

  test('nobody but an admin with a session: owners, tokens and auditors 403, strangers 401', async () => {
    const token = (
      await alice.agent
        .post('/api/v1/tokens')
        .set('X-CSRF-Token', alice.csrf)
        .send({ name: 'script', scope: 'read' })
        .expect(201)
    ).body.secret as string;
    await alice.agent.get(HEALTH).expect(403);
    await auditor.agent.get(HEALTH).expect(403);
    await request(t.url).get(HEALTH).set('Authorization', `Bearer ${token}`).expect(403);
    await request(t.url).get(HEALTH).expect(401);
  });

  test('hostile or out-of-range queries are a 400 with a message', async () => {
    for (const q of [
      '?all=1',
      '?withinHours=0',
      '?withinHours=721',
      '?withinHours=abc',
      '?withinHours=1.5',
      '?withinHours=-1',
      '?withinHours=1&withinHours=2',
      '?limit=0',
      '?limit=10001',
      '?attention=yes',
    ]) {
      const res = await admin.agent.get(`${HEALTH}${q}`).expect(400);
      assert.equal(res.body.error?.code, 'invalid_input', q);
      assert.match(res.body.error?.message ?? '', /^Invalid query/, q);
    }
  });
});
