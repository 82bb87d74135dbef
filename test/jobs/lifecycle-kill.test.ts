// kill -9 at every point of the lifecycle (between steps and inside the final
// backup step), then a new run: no step skipped, no destructive step taken
// twice. The killed run is a child process (lifecycle-child.ts) stopped at a
// named step; the resumed run is the same job body, here.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { listBackups } from '../../backup/catalog.ts';
import { lifecycleDeps } from '../../jobs/lifecycle.ts';
import { ident } from '../../kernel/identifiers.ts';
import { lifecycleOf, runLifecycle, stepsOf } from '../../tenancy/inactivity.ts';
import { provisionTenant } from '../../tenancy/provision.ts';
import type { TenantRow } from '../../tenancy/tenant-sql.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';
import { jobContext, type TestJobContext } from '../helpers/jobs.ts';
import { killAtStep } from '../helpers/kill.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CHILD = fileURLToPath(new URL('./lifecycle-child.ts', import.meta.url));
const DAY = 24 * 3600 * 1000;

describe('the lifecycle killed with kill -9 and run again', () => {
  let db: TestDatabase;
  let ctx: TestJobContext;
  let t0: number;
  let run = 0;

  before(async () => {
    db = await createTestDatabase(6);
    ctx = await jobContext(db);
    t0 = Date.now();
  });
  after(async () => {
    ctx.cleanup();
    await db.drop();
  });

  const runAt = (days: number) =>
    runLifecycle(lifecycleDeps({ ...ctx, clock: () => new Date(t0 + days * DAY) }));

  async function idleTenant(name: string, idleDays: number): Promise<TenantRow> {
    const t = await provisionTenant(db.pool, { displayName: name }, ctx.migrations);
    for (let i = 0; i < 4; i++)
      await db.pool.query(`INSERT INTO ${ident(t.schema_name)}.notes (title) VALUES ($1)`, [`${name} ${i}`]);
    await db.pool.query('UPDATE control.tenants SET last_active_at = $2 WHERE id = $1', [
      t.id,
      new Date(t0 - idleDays * DAY),
    ]);
    return t;
  }

  /** Runs the child as of `days` until it prints `STEP <stopAt>`, SIGKILLs it, waits until its sessions are gone. */
  async function killAt(stopAt: string, days: number): Promise<void> {
    const applicationName = `enclave-lifecycle-kill-${process.pid}-${run++}`;
    await killAtStep({
      script: CHILD,
      cwd: ROOT,
      pool: db.pool,
      stopAt,
      job: {
        url: db.url,
        applicationName,
        dataDir: ctx.dir,
        backupDir: ctx.backups.storage.dir,
        keyFile: path.join(ctx.dir, 'audit-signing-key.pem'),
        nowMs: t0 + days * DAY,
        stopAt,
      },
    });
  }

  const actions = async (t: TenantRow) =>
    (
      await db.pool.query<{ action: string }>(
        'SELECT action FROM control.audit_inbox WHERE tenant_id = $1 ORDER BY id',
        [t.id],
      )
    ).rows.map((r) => r.action);
  const count = (list: string[], item: string) => list.filter((x) => x === item).length;

  test('killed between two flags: the next run flags the rest, none twice', async () => {
    const a = await idleTenant('Kill flag A', 95);
    const b = await idleTenant('Kill flag B', 94);
    await killAt('flag', 0);
    const first = [await lifecycleOf(db.pool, a.id), await lifecycleOf(db.pool, b.id)];
    assert.deepEqual(
      first.map((r) => r.stage),
      ['flagged', null],
      'killed after the first flag committed',
    );
    await runAt(0);
    for (const t of [a, b]) {
      assert.equal((await lifecycleOf(db.pool, t.id)).stage, 'flagged');
      assert.equal(count(await actions(t), 'tenant.lifecycle.flag'), 1);
    }
    for (const t of [a, b])
      await db.pool.query('DELETE FROM control.tenant_lifecycle WHERE tenant_id = $1', [t.id]);
    await db.pool.query('UPDATE control.tenants SET last_active_at = now() WHERE id = ANY($1)', [
      [a.id, b.id],
    ]);
  });

  const KILLS: Array<{ stopAt: string; what: string; newBackup: 'killed-running' | 'unrecorded' | 'none' }> =
    [
      { stopAt: 'suspend', what: 'after the suspension (between steps)', newBackup: 'none' },
      {
        stopAt: 'final_backup:started',
        what: "after 'final backup started', before the backup",
        newBackup: 'none',
      },
      {
        stopAt: 'backup:table:notes',
        what: 'inside the final backup (its row left running)',
        newBackup: 'killed-running',
      },
      {
        stopAt: 'final_backup:written',
        what: 'after the backup was written, before its id was recorded',
        newBackup: 'unrecorded',
      },
      {
        stopAt: 'final_backup',
        what: 'after the backup was recorded, before the verify (between steps)',
        newBackup: 'none',
      },
      { stopAt: 'verify', what: 'after the verify, before the drop (between steps)', newBackup: 'none' },
    ];

  for (const k of KILLS) {
    test(`killed ${k.what}: the next run finishes, each step once, the drop once`, async () => {
      const t = await idleTenant(`Kill ${k.stopAt}`, 130);
      await runAt(0); // flagged
      if (k.stopAt === 'suspend') {
        // The whole rest in the killed run's day: suspend, then (its time come) everything else.
        await killAt('suspend', 31);
        assert.equal((await lifecycleOf(db.pool, t.id)).stage, 'suspended');
        await runAt(31);
        assert.equal(
          (await lifecycleOf(db.pool, t.id)).stage,
          'suspended',
          'suspended once, no later step early',
        );
        await runAt(122);
      } else {
        await runAt(31); // suspended
        const before = new Set((await listBackups(db.pool, t.id)).map((b) => b.id));
        await killAt(k.stopAt, 122);
        const killed = (await listBackups(db.pool, t.id)).filter((b) => !before.has(b.id));
        const mid = await lifecycleOf(db.pool, t.id);
        assert.equal(mid.state, 'suspended', 'not dropped by the killed run');
        await runAt(122);
        const done = await lifecycleOf(db.pool, t.id);
        const finals = await listBackups(db.pool, t.id);
        if (k.newBackup === 'none') {
          assert.equal(finals.length, 1, 'no second final backup');
        } else {
          assert.equal(killed.length, 1);
          assert.notEqual(done.final_backup_id, killed[0]?.id, 'the unrecorded backup is not trusted');
          const old = finals.find((b) => b.id === killed[0]?.id);
          if (k.newBackup === 'killed-running') assert.equal(old?.outcome, 'failed');
          else assert.equal(old?.outcome, 'succeeded');
        }
      }
      const done = await lifecycleOf(db.pool, t.id);
      assert.equal(done.stage, 'dropped');
      assert.equal(done.state, 'deleted');
      const final = (await listBackups(db.pool, t.id)).find((b) => b.id === done.final_backup_id);
      assert.equal(final?.kind, 'final');
      assert.equal(final?.outcome, 'succeeded');
      const list = await actions(t);
      assert.equal(count(list, 'tenant.suspend'), 1);
      assert.equal(count(list, 'tenant.lifecycle.verify'), 1);
      assert.equal(count(list, 'tenant.drop'), 1);
      const steps = (await stepsOf(db.pool, t.id)).map((s) => `${s.step}:${s.outcome}`);
      for (const s of [
        'flag:done',
        'suspend:done',
        'final_backup:started',
        'final_backup:done',
        'verify:done',
        'drop:done',
      ])
        assert.ok(steps.includes(s), `${s} in ${steps.join(', ')}`);
      assert.equal(count(steps, 'drop:done'), 1);
      assert.equal(count(steps, 'verify:done'), 1);
      assert.equal(count(steps, 'final_backup:done'), 1);
      // The verified backup is the one the tenant points at.
      const verified = (await stepsOf(db.pool, t.id)).find(
        (s) => s.step === 'verify' && s.outcome === 'done',
      );
      assert.equal(verified?.details.backupId, done.final_backup_id);
      assert.equal(path.isAbsolute(final?.location ?? ''), true);
    });
  }
});
