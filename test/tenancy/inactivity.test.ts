// The inactive-tenant lifecycle on a real database with a controllable clock
// (tenancy/inactivity.ts run through jobs/lifecycle.ts's wiring, so the final
// backup and its verification are the real ones): flag, reset by a sign-in,
// suspend, final backup + verify by restore, drop; a legal hold blocks each
// step; an ops suspension is never dropped; resume clears the lifecycle; a
// dry run changes nothing; retention never deletes a final backup.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { listBackups } from '../../backup/catalog.ts';
import { pruneBackups } from '../../backup/retention.ts';
import { lifecycleDeps, lifecycleJob } from '../../jobs/lifecycle.ts';
import type { AuditBy } from '../../kernel/audit-inbox.ts';
import { ident } from '../../kernel/identifiers.ts';
import {
  holdTenant,
  type LifecycleCounts,
  lifecycleOf,
  lifecycleSettings,
  plan,
  recordSignIn,
  resumeTenant,
  runLifecycle,
  stepsOf,
  suspendByOps,
} from '../../tenancy/inactivity.ts';
import { provisionTenant } from '../../tenancy/provision.ts';
import type { TenantRow } from '../../tenancy/tenant-sql.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';
import { jobContext, type TestJobContext } from '../helpers/jobs.ts';

const DAY = 24 * 3600 * 1000;
const OPS: AuditBy = { actor: { type: 'system', id: 'cli:test' } };

describe('inactive-tenant lifecycle', () => {
  let db: TestDatabase;
  let ctx: TestJobContext;
  let t0: number;

  before(async () => {
    db = await createTestDatabase(6);
    ctx = await jobContext(db);
    t0 = Date.now();
  });
  after(async () => {
    ctx.cleanup();
    await db.drop();
  });

  /** The lifecycle as the job runs it, `days` after the start of the test file. */
  const runAt = (days: number): Promise<LifecycleCounts> =>
    runLifecycle(lifecycleDeps({ ...ctx, clock: () => new Date(t0 + days * DAY) }));
  const settings = () => lifecycleSettings(ctx.config);

  async function tenant(name: string, notes = 3): Promise<TenantRow> {
    const t = await provisionTenant(db.pool, { displayName: name }, ctx.migrations);
    for (let i = 0; i < notes; i++)
      await db.pool.query(`INSERT INTO ${ident(t.schema_name)}.notes (title) VALUES ($1)`, [`${name} ${i}`]);
    return t;
  }
  /** Last activity `days` before the start of the test file. */
  const idle = (t: TenantRow, days: number) =>
    db.pool.query('UPDATE control.tenants SET last_active_at = $2 WHERE id = $1', [
      t.id,
      new Date(t0 - days * DAY),
    ]);
  const events = async (t: TenantRow) =>
    (
      await db.pool.query<{ action: string; outcome: string; details: Record<string, unknown> }>(
        'SELECT action, outcome, details FROM control.audit_inbox WHERE tenant_id = $1 ORDER BY id',
        [t.id],
      )
    ).rows.filter((e) => e.action.startsWith('tenant.') && e.action !== 'tenant.provision');
  const userOf = async (t: TenantRow) => {
    const id = (
      await db.pool.query<{ id: string }>(
        `INSERT INTO control.users (email, email_normalized, password_hash, display_name, role, tenant_id)
         VALUES ($1, $1, 'x', 'P', 'user', $2) RETURNING id`,
        [`${t.id}@example.com`, t.id],
      )
    ).rows[0]?.id as string;
    return id;
  };

  test('the job is named tenant-lifecycle, scheduled on LIFECYCLE_SCHEDULE, and off when INACTIVE_AFTER_DAYS is 0', () => {
    assert.equal(lifecycleJob.name, 'tenant-lifecycle');
    assert.equal(lifecycleJob.schedule(ctx.config), ctx.config.LIFECYCLE_SCHEDULE);
    assert.equal(lifecycleJob.schedule({ ...ctx.config, INACTIVE_AFTER_DAYS: 0 }), null);
    assert.deepEqual(settings(), {
      inactiveAfterDays: 90,
      suspendAfterDays: 120,
      dropAfterSuspendedDays: 90,
    });
  });

  test('end to end: flagged at 90 days, suspended at 120, final backup verified and the tenant dropped 90 days later', async () => {
    const t = await tenant('Sleepy', 5);
    const other = await tenant('Busy');
    await runAt(89);
    assert.equal((await lifecycleOf(db.pool, t.id)).stage, null, 'not before 90 days');

    const flagged = await runAt(90.5);
    assert.ok(flagged.flagged >= 2);
    const f = await lifecycleOf(db.pool, t.id);
    assert.equal(f.stage, 'flagged');
    assert.equal(f.state, 'active');
    assert.equal(f.inactive_since?.getTime(), f.created_at.getTime());
    assert.equal(f.flagged_at?.getTime(), t0 + 90.5 * DAY);

    // Busy is used: its activity resets its flag at the next run.
    await db.pool.query('UPDATE control.tenants SET last_active_at = $2 WHERE id = $1', [
      other.id,
      new Date(t0 + 100 * DAY),
    ]);
    await runAt(119);
    assert.equal((await lifecycleOf(db.pool, t.id)).stage, 'flagged', 'not suspended before 120 days');
    assert.equal((await lifecycleOf(db.pool, other.id)).stage, null, 'activity since the flag reset it');

    const s = await runAt(120.5);
    assert.equal(s.suspended, 1);
    const sus = await lifecycleOf(db.pool, t.id);
    assert.equal(sus.state, 'suspended');
    assert.equal(sus.stage, 'suspended');
    assert.equal(sus.suspend_reason, 'inactive');

    await runAt(200);
    assert.equal((await lifecycleOf(db.pool, t.id)).stage, 'suspended', 'kept 90 days after suspension');

    const d = await runAt(211);
    assert.equal(d.backedUp, 1);
    assert.equal(d.verified, 1);
    assert.equal(d.dropped, 1);
    const gone = await lifecycleOf(db.pool, t.id);
    assert.equal(gone.state, 'deleted');
    assert.equal(gone.stage, 'dropped');
    const backups = await listBackups(db.pool, t.id);
    assert.equal(backups.length, 1);
    assert.equal(backups[0]?.kind, 'final');
    assert.equal(backups[0]?.outcome, 'succeeded');
    assert.ok((backups[0]?.rows ?? 0) >= 5, 'the five notes are in it');
    assert.equal(gone.final_backup_id, backups[0]?.id, 'the deleted tenant points at its final backup');
    assert.equal(
      (await db.pool.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [t.schema_name])).rowCount,
      0,
    );
    assert.equal(
      (await db.pool.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [t.role_name])).rowCount,
      0,
    );

    // Every step in the tenant's audit chain and in the step log, in order.
    assert.deepEqual(
      (await events(t)).map((e) => e.action),
      [
        'tenant.lifecycle.flag',
        'tenant.suspend',
        'tenant.lifecycle.final_backup',
        'tenant.backup',
        'tenant.lifecycle.final_backup',
        'tenant.lifecycle.verify',
        'tenant.drop',
      ],
    );
    const ev = await events(t);
    assert.equal(ev[1]?.details.reason, 'inactive');
    assert.equal(ev[6]?.details.finalBackupId, gone.final_backup_id);
    assert.deepEqual(
      (await stepsOf(db.pool, t.id)).map((x) => `${x.step}:${x.outcome}`),
      ['flag:done', 'suspend:done', 'final_backup:started', 'final_backup:done', 'verify:done', 'drop:done'],
    );
    // The plan shows it as dropped, with its final backup.
    const p = await plan(db.pool, settings(), new Date(t0 + 212 * DAY));
    assert.deepEqual(
      p.dropped.filter((x) => x.tenantId === t.id).map((x) => x.finalBackupId),
      [gone.final_backup_id],
    );
    // Later runs leave it alone.
    const again = await runAt(400);
    assert.equal(again.dropped, 0);
  });

  test('a sign-in during the warning resets the flag (and is recorded); with no flag it is only activity', async () => {
    const t = await tenant('Returning');
    const user = await userOf(t);
    await idle(t, 95);
    await runAt(0);
    assert.equal((await lifecycleOf(db.pool, t.id)).stage, 'flagged');
    const notice = await recordSignIn(db.pool, user, { actor: { type: 'user', id: user } });
    assert.equal(notice?.tenantId, t.id);
    assert.equal(notice?.inactiveSince.getTime(), t0 - 95 * DAY);
    const after = await lifecycleOf(db.pool, t.id);
    assert.equal(after.stage, null);
    assert.ok((after.last_active_at as Date).getTime() > t0 - 60_000, 'the sign-in is activity');
    assert.deepEqual(
      (await events(t)).map((e) => e.action),
      ['tenant.lifecycle.flag', 'tenant.lifecycle.reset'],
    );
    // Not flagged again by the next run; a second sign-in has nothing to reset.
    assert.equal((await runAt(0)).flagged, 0);
    assert.equal(await recordSignIn(db.pool, user, { actor: { type: 'user', id: user } }), null);
  });

  test('a tenant flagged late still gets the whole warning period before it is suspended', async () => {
    const t = await tenant('Long gone');
    await idle(t, 400);
    await runAt(0);
    assert.equal((await lifecycleOf(db.pool, t.id)).stage, 'flagged');
    await runAt(29);
    assert.equal(
      (await lifecycleOf(db.pool, t.id)).stage,
      'flagged',
      'suspended no sooner than 30 days after the flag',
    );
    await runAt(30.1);
    assert.equal((await lifecycleOf(db.pool, t.id)).stage, 'suspended');
    await resumeTenant(db.pool, t.id, OPS);
  });

  test('a legal hold blocks every step: flag, suspend, final backup, verify and drop', async () => {
    const t = await tenant('Held');
    await idle(t, 95);
    await holdTenant(db.pool, t.id, true, OPS);
    const blocked = await runAt(0);
    assert.ok(blocked.blocked >= 1);
    assert.equal((await lifecycleOf(db.pool, t.id)).stage, null, 'no flag under hold');
    const step = async (days: number, expected: string | null, hold: boolean) => {
      await holdTenant(db.pool, t.id, hold, OPS);
      await runAt(days);
      assert.equal((await lifecycleOf(db.pool, t.id)).stage, expected, `at day ${days}, hold ${hold}`);
    };
    await step(0, 'flagged', false);
    await step(40, 'flagged', true); // suspend due
    await step(40, 'suspended', false);
    await step(140, 'suspended', true); // final backup due
    // Each later stage, held, stays put: the run is stopped there by a hold placed right after the step.
    const heldAfter = async (hookStep: string, stage: string) => {
      await holdTenant(db.pool, t.id, false, OPS);
      await runLifecycle({
        ...lifecycleDeps({ ...ctx, clock: () => new Date(t0 + 140 * DAY) }),
        hooks: {
          afterStep: async (id, name) => {
            if (id === t.id && name === hookStep) await holdTenant(db.pool, t.id, true, OPS);
          },
        },
      });
      const before = await lifecycleOf(db.pool, t.id);
      assert.equal(before.stage, stage);
      assert.equal(before.legal_hold, true);
      await runAt(300);
      assert.deepEqual(await lifecycleOf(db.pool, t.id), before, `nothing moves at ${stage} under hold`);
    };
    await heldAfter('final_backup', 'backed_up'); // verify due
    await heldAfter('verify', 'verified'); // drop due
    // A run killed after 'final_backup started' (a new backup due), held.
    await db.pool.query(
      "UPDATE control.tenant_lifecycle SET stage = 'final_backup', final_backup_id = NULL, verified_at = NULL WHERE tenant_id = $1",
      [t.id],
    );
    const crashed = await lifecycleOf(db.pool, t.id);
    await runAt(300);
    assert.deepEqual(await lifecycleOf(db.pool, t.id), crashed, 'no new final backup under hold');
    assert.equal((await listBackups(db.pool, t.id)).length, 1);
    assert.equal((await lifecycleOf(db.pool, t.id)).state, 'suspended', 'never dropped under hold');
    await holdTenant(db.pool, t.id, false, OPS);
    await runAt(300);
    assert.equal((await lifecycleOf(db.pool, t.id)).stage, 'dropped', 'released: the lifecycle goes on');
  });

  test('an ops suspension is never dropped; resume clears the lifecycle and counts as activity', async () => {
    const t = await tenant('Ops');
    await idle(t, 95);
    await runAt(0);
    await suspendByOps(db.pool, t.id, OPS);
    const s = await lifecycleOf(db.pool, t.id);
    assert.equal(s.state, 'suspended');
    assert.equal(s.stage, null, 'the ops suspension takes it out of the lifecycle');
    await runAt(1000);
    assert.equal((await lifecycleOf(db.pool, t.id)).state, 'suspended', 'never dropped by the lifecycle');
    assert.equal((await listBackups(db.pool, t.id)).length, 0);

    // Resume: active, out of the lifecycle, activity now (the next run does not flag it).
    const u = await tenant('Resumed');
    await idle(u, 130);
    await runAt(0);
    await runAt(31);
    assert.equal((await lifecycleOf(db.pool, u.id)).stage, 'suspended');
    await resumeTenant(db.pool, u.id, OPS);
    const r = await lifecycleOf(db.pool, u.id);
    assert.equal(r.state, 'active');
    assert.equal(r.stage, null);
    assert.ok((r.last_active_at as Date).getTime() > Date.now() - 60_000);
    await runAt(1);
    assert.equal((await lifecycleOf(db.pool, u.id)).stage, null, 'not flagged again at once');
    const resumed = (await events(u)).find((e) => e.action === 'tenant.resume');
    assert.equal(resumed?.details.lifecycleCleared, 'suspended');
  });

  test('a dry run lists each step, to whom and when, and changes nothing', async () => {
    const t = await tenant('Planned');
    await idle(t, 95);
    const snapshot = async () => ({
      tenants: (await db.pool.query('SELECT * FROM control.tenants ORDER BY id')).rows,
      lifecycle: (await db.pool.query('SELECT * FROM control.tenant_lifecycle ORDER BY tenant_id')).rows,
      steps: (await db.pool.query('SELECT count(*)::int AS n FROM control.tenant_lifecycle_steps')).rows,
      backups: (await db.pool.query('SELECT * FROM control.backups ORDER BY id')).rows,
      inbox: (await db.pool.query('SELECT count(*)::int AS n FROM control.audit_inbox')).rows,
    });
    const before = await snapshot();
    const p = await plan(db.pool, settings(), new Date(t0), 30);
    const mine = p.steps.find((s) => s.tenantId === t.id);
    assert.equal(mine?.step, 'flag');
    assert.equal(mine?.tenantName, 'Planned');
    assert.equal(mine?.dueNow, true);
    assert.equal(mine?.due?.getTime(), t0 - 5 * DAY);
    assert.deepEqual(await snapshot(), before);
  });

  test('retention never deletes a final backup, and does not count it among the kept', async () => {
    const t = await tenant('Final');
    await idle(t, 130);
    await runAt(0);
    await runAt(31);
    await runAt(122);
    const final = (await lifecycleOf(db.pool, t.id)).final_backup_id;
    assert.ok(final);
    await db.pool.query(
      "UPDATE control.backups SET started_at = now() - interval '3000 days' WHERE id = $1",
      [final],
    );
    const pruned = await pruneBackups(db.pool, ctx.backups.storage, { keepCount: 1, keepDays: 1 });
    assert.equal(
      pruned.deleted.some((b) => b.id === final),
      false,
    );
    const still = (await listBackups(db.pool, t.id)).find((b) => b.id === final);
    assert.equal(still?.outcome, 'succeeded');
  });
});
