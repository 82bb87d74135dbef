// The inactive-tenant lifecycle (docs/LIFECYCLE.md): a persistent state
// machine in control.tenant_lifecycle, one row per tenant in it.
//
//   active ──(INACTIVE_AFTER_DAYS without activity)──▶ flagged   (notice at sign-in)
//   flagged ──(SUSPEND_AFTER_DAYS without activity)──▶ suspended (reason 'inactive')
//   suspended ──(DROP_AFTER_SUSPENDED_DAYS)──▶ final_backup ▶ backed_up ▶ verified ▶ dropped
//
// plan() says what each step would do, to whom and when, changing nothing;
// runLifecycle() takes the steps that are due. Every step is one short
// transaction under the tenant's advisory lock that re-reads the tenant and
// its row, decides again whether the step is still due (a legal hold, a
// sign-in or a resume since the plan wins), writes the row, the step log and
// the tenant's audit event together. The final backup is the one step that
// cannot be one transaction: 'final_backup started' commits before the
// backup, its id after; a run that finds 'started' without an id takes a new
// backup. The drop and 'dropped' commit together. So a run killed anywhere
// resumes with no step skipped and no destructive step taken twice.
//
// Backing up and verifying are handed in (jobs/lifecycle.ts wires backup/):
// tenancy does not depend on the backup engine.
import { type AuditBy, type AuditEventOf, record, SYSTEM } from '../kernel/audit-inbox.ts';
import { type Client, type Pool, run, transaction } from '../kernel/db.ts';
import { isTenantId } from '../kernel/identifiers.ts';
import { tenantLock } from '../kernel/locks.ts';
import * as sql from './inactivity-sql.ts';
import { dropTenantInTransaction, setLegalHold, setTenantStateInTransaction } from './lifecycle.ts';
import { TenantNotFoundError } from './tenancy-errors.ts';
import type { TenantRow } from './tenant-sql.ts';

export type { LifecycleRow, Stage, StepName } from './inactivity-sql.ts';

const DAY_MS = 24 * 3600 * 1000;
const addDays = (at: Date, days: number) => new Date(at.getTime() + days * DAY_MS);

export interface LifecycleSettings {
  /** 0: the lifecycle is off. */
  inactiveAfterDays: number;
  suspendAfterDays: number;
  /** 0: a suspended tenant is never dropped by the lifecycle. */
  dropAfterSuspendedDays: number;
}

export function lifecycleSettings(config: {
  INACTIVE_AFTER_DAYS: number;
  SUSPEND_AFTER_DAYS: number;
  DROP_AFTER_SUSPENDED_DAYS: number;
}): LifecycleSettings {
  return {
    inactiveAfterDays: config.INACTIVE_AFTER_DAYS,
    suspendAfterDays: config.SUSPEND_AFTER_DAYS,
    dropAfterSuspendedDays: config.DROP_AFTER_SUSPENDED_DAYS,
  };
}

/** Why a due step is not taken. */
export type Blocked = 'legal_hold' | 'not_active' | 'not_suspended';

export interface PlannedStep {
  tenantId: string;
  tenantName: string;
  /** The tenant's state and its lifecycle stage (null: not in the lifecycle yet). */
  state: string;
  stage: sql.Stage | null;
  step: sql.StepName;
  /** When the step is (or was) due; null: never (DROP_AFTER_SUSPENDED_DAYS 0). */
  due: Date | null;
  /** Due at the plan's time and not blocked: a run now takes it. */
  dueNow: boolean;
  blocked: Blocked | null;
  /** Last activity (last_active_at, or created_at when never used). */
  lastActive: Date;
  finalBackupId: string | null;
  /** What the step does, in a sentence. */
  action: string;
}

export interface DroppedTenant {
  tenantId: string;
  tenantName: string;
  droppedAt: Date;
  finalBackupId: string;
}

export interface LifecyclePlan {
  asOf: Date;
  settings: LifecycleSettings;
  steps: PlannedStep[];
  dropped: DroppedTenant[];
}

const ACTIONS: Record<sql.StepName, string> = {
  flag: 'flag as inactive: its people see a notice when they sign in',
  reset: 'clear the lifecycle: there was activity since (or it was resumed)',
  suspend: 'suspend (reason: inactive): its people see the suspended page and none of its data',
  final_backup: 'take the final backup',
  verify: 'verify the final backup by restoring it into a scratch schema',
  drop: 'drop its schema and role; mark it deleted, pointing at its final backup',
};

/** The tenant's next step, as of `now` (pure: the plan and every step's re-check use it). */
export function nextStep(
  row: sql.LifecycleRow,
  settings: LifecycleSettings,
  now: Date,
): Omit<PlannedStep, 'action'> | null {
  const lastActive = row.last_active_at ?? row.created_at;
  const base = {
    tenantId: row.id,
    tenantName: row.display_name,
    state: row.state,
    stage: row.stage,
    lastActive,
    finalBackupId: row.final_backup_id,
  };
  const make = (step: sql.StepName, due: Date | null, blocked: Blocked | null = null) => {
    const why = row.legal_hold ? 'legal_hold' : blocked;
    return { ...base, step, due, blocked: why, dueNow: why === null && due !== null && due <= now };
  };
  const off = settings.inactiveAfterDays === 0;
  switch (row.stage) {
    case null: {
      if (off || row.state !== 'active') return null;
      return make('flag', addDays(lastActive, settings.inactiveAfterDays));
    }
    case 'flagged': {
      // Activity since the flag (a sign-in resets it at once; a token's use is seen here).
      if (row.inactive_since && lastActive > row.inactive_since) return make('reset', now);
      if (off) return make('reset', now);
      // The full warning period, however late the flag came: never suspended sooner
      // than SUSPEND - INACTIVE days after the flag.
      const warned = addDays(row.flagged_at as Date, settings.suspendAfterDays - settings.inactiveAfterDays);
      const inactive = addDays(lastActive, settings.suspendAfterDays);
      const due = warned > inactive ? warned : inactive;
      return make('suspend', due, row.state === 'active' ? null : 'not_active');
    }
    case 'suspended': {
      // Resumed or archived by other means since: the row is stale.
      if (row.state !== 'suspended') return make('reset', now);
      if (settings.dropAfterSuspendedDays === 0) return make('final_backup', null);
      return make('final_backup', addDays(row.suspended_at as Date, settings.dropAfterSuspendedDays));
    }
    case 'final_backup':
      return make('final_backup', row.final_backup_started_at ?? now, guardSuspended(row));
    case 'backed_up':
      return make('verify', row.final_backup_started_at ?? now, guardSuspended(row));
    case 'verified':
      return make('drop', row.verified_at ?? now, guardSuspended(row));
    default:
      return null;
  }
}

const guardSuspended = (row: sql.LifecycleRow): Blocked | null =>
  row.state === 'suspended' ? null : 'not_suspended';

/**
 * What the lifecycle would do as of `now`, changing nothing: every tenant in
 * it, and those whose first flag falls within `horizonDays` of `now`.
 */
export async function plan(
  pool: Pool | Client,
  settings: LifecycleSettings,
  now: Date,
  horizonDays = 0,
): Promise<LifecyclePlan> {
  const cutoff = addDays(now, horizonDays - settings.inactiveAfterDays);
  const rows = (await run<sql.LifecycleRow>(pool, sql.selectCandidates(cutoff))).rows;
  const steps: PlannedStep[] = [];
  const dropped: DroppedTenant[] = [];
  for (const row of rows) {
    if (row.stage === 'dropped') {
      dropped.push({
        tenantId: row.id,
        tenantName: row.display_name,
        droppedAt: row.dropped_at as Date,
        finalBackupId: row.final_backup_id as string,
      });
      continue;
    }
    const next = nextStep(row, settings, now);
    if (!next) continue;
    if (next.step === 'flag' && next.due && next.due > addDays(now, horizonDays)) continue;
    steps.push({ ...next, action: ACTIONS[next.step] });
  }
  steps.sort((a, b) => (a.due?.getTime() ?? Infinity) - (b.due?.getTime() ?? Infinity));
  return { asOf: now, settings, steps, dropped };
}

// --- running -----------------------------------------------------------------

export interface FinalBackup {
  id: string;
  location: string | null;
  sha256: string | null;
  bytes: number | null;
  rows: number | null;
}

export interface LifecycleDeps {
  pool: Pool;
  settings: LifecycleSettings;
  /** "Now" for the run: every due date is compared with it, and it is what the rows record. */
  now: Date;
  by?: AuditBy;
  /** The final backup (backupTenant with kind 'final'); throws when it fails. */
  finalBackup(tenantId: string): Promise<FinalBackup>;
  /** Restores the backup into scratch and compares every table; ok false (or a throw) when it does not match. */
  verify(backup: FinalBackup): Promise<{ ok: boolean; tables: number; rows: number }>;
  signal?: AbortSignal;
  log?: { info(msg: string, fields?: object): void; error(msg: string, fields?: object): void };
  /** Test seam: called after each committed step or phase ('flag', 'final_backup:started', ...). */
  hooks?: { afterStep?: (tenantId: string, step: string) => void | Promise<void> };
}

export interface LifecycleCounts {
  flagged: number;
  reset: number;
  suspended: number;
  backedUp: number;
  verified: number;
  dropped: number;
  /** Steps due but not taken: a legal hold, or a tenant not in the state the step needs. */
  blocked: number;
  failed: number;
  [name: string]: number;
}

/** Takes every step due as of deps.now, tenant by tenant; one tenant failing does not stop the others. */
export async function runLifecycle(deps: LifecycleDeps): Promise<LifecycleCounts> {
  const counts: LifecycleCounts = {
    flagged: 0,
    reset: 0,
    suspended: 0,
    backedUp: 0,
    verified: 0,
    dropped: 0,
    blocked: 0,
    failed: 0,
  };
  const planned = await plan(deps.pool, deps.settings, deps.now);
  const tenants = new Set<string>();
  for (const s of planned.steps) {
    if (s.dueNow) tenants.add(s.tenantId);
    else if (s.blocked && s.due && s.due <= deps.now) counts.blocked += 1;
  }
  for (const tenantId of tenants) {
    if (deps.signal?.aborted) break;
    try {
      await advanceTenant(deps, tenantId, counts);
    } catch (err) {
      counts.failed += 1;
      deps.log?.error('lifecycle step failed', { tenantId, error: err });
    }
  }
  return counts;
}

const COUNTER: Record<sql.StepName, keyof LifecycleCounts> = {
  flag: 'flagged',
  reset: 'reset',
  suspend: 'suspended',
  final_backup: 'backedUp',
  verify: 'verified',
  drop: 'dropped',
};

/** The tenant's due steps, one after another (a drop day runs backup, verify and drop in one go). */
async function advanceTenant(deps: LifecycleDeps, tenantId: string, counts: LifecycleCounts): Promise<void> {
  let backups = 0;
  for (let i = 0; i < 8 && !deps.signal?.aborted; i++) {
    const row = (await run<sql.LifecycleRow>(deps.pool, sql.selectOne(tenantId))).rows[0];
    const next = row && nextStep(row, deps.settings, deps.now);
    if (!next?.dueNow) return;
    // One final backup per tenant per run: one that fails to verify is retaken by the next run.
    if (next.step === 'final_backup' && backups++ > 0) return;
    const taken = await STEPS[next.step](deps, tenantId);
    if (!taken) return;
    counts[COUNTER[next.step]] = (counts[COUNTER[next.step]] ?? 0) + 1;
    deps.log?.info(`lifecycle: ${next.step}`, { tenantId });
  }
}

type Step = (deps: LifecycleDeps, tenantId: string) => Promise<boolean>;

const tenantEvent = (
  tenantId: string,
  action: string,
  details: Record<string, unknown>,
  outcome: 'success' | 'failure' = 'success',
): AuditEventOf => ({
  tenantId,
  action,
  resource: { type: 'tenant', id: tenantId },
  outcome,
  details,
});

/**
 * One step's transaction: the tenant lock, the tenant and its row re-read and
 * locked, the step decided again; `fn` runs only if `expected` is still the
 * tenant's next step and due. Returns whether it ran.
 */
async function inStep(
  deps: LifecycleDeps,
  tenantId: string,
  expected: sql.StepName,
  fn: (client: Client, row: sql.LifecycleRow) => Promise<void>,
): Promise<boolean> {
  const done = await transaction(deps.pool, async (client) => {
    await client.query(tenantLock(tenantId));
    const row = (await run<sql.LifecycleRow>(client, sql.selectForStep(tenantId))).rows[0];
    if (!row) return false;
    await run(client, sql.lockRow(tenantId));
    const next = nextStep(row, deps.settings, deps.now);
    if (next?.step !== expected || !next.dueNow) return false;
    await fn(client, row);
    return true;
  });
  if (done) await deps.hooks?.afterStep?.(tenantId, expected);
  return done;
}

const by = (deps: LifecycleDeps) => deps.by ?? SYSTEM;
const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);

async function logStep(
  client: Client,
  deps: LifecycleDeps,
  tenantId: string,
  step: sql.StepName,
  outcome: 'started' | 'done' | 'failed',
  details: Record<string, unknown>,
): Promise<void> {
  await run(client, sql.insertStep(tenantId, step, outcome, deps.now, details));
}

const STEPS: Record<sql.StepName, Step> = {
  flag: (deps, tenantId) =>
    inStep(deps, tenantId, 'flag', async (client, row) => {
      const inactiveSince = row.last_active_at ?? row.created_at;
      const details = {
        inactiveSince: iso(inactiveSince),
        inactiveAfterDays: deps.settings.inactiveAfterDays,
      };
      await run(client, sql.insertFlag(tenantId, inactiveSince, deps.now));
      await logStep(client, deps, tenantId, 'flag', 'done', details);
      await record(client, by(deps), tenantEvent(tenantId, 'tenant.lifecycle.flag', details));
    }),

  reset: (deps, tenantId) =>
    inStep(deps, tenantId, 'reset', async (client, row) => {
      const details = {
        stage: row.stage,
        inactiveSince: iso(row.inactive_since),
        lastActive: iso(row.last_active_at ?? row.created_at),
        reason: row.state === 'active' ? 'activity' : `tenant ${row.state}`,
      };
      await run(client, sql.deleteRow(tenantId));
      await logStep(client, deps, tenantId, 'reset', 'done', details);
      await record(client, by(deps), tenantEvent(tenantId, 'tenant.lifecycle.reset', details));
    }),

  suspend: (deps, tenantId) =>
    inStep(deps, tenantId, 'suspend', async (client, row) => {
      const details = {
        reason: 'inactive',
        inactiveSince: iso(row.last_active_at ?? row.created_at),
        suspendAfterDays: deps.settings.suspendAfterDays,
      };
      await setTenantStateInTransaction(client, tenantId, 'suspended', by(deps), details);
      await run(client, sql.markSuspended(tenantId, deps.now));
      await logStep(client, deps, tenantId, 'suspend', 'done', details);
    }),

  final_backup: async (deps, tenantId) => {
    let attempt = 0;
    const started = await inStep(deps, tenantId, 'final_backup', async (client) => {
      const r = await run<{ final_backup_attempts: number }>(
        client,
        sql.markFinalBackupStarted(tenantId, deps.now),
      );
      attempt = r.rows[0]?.final_backup_attempts ?? 0;
      const details = { phase: 'started', attempt };
      await logStep(client, deps, tenantId, 'final_backup', 'started', details);
      await record(client, by(deps), tenantEvent(tenantId, 'tenant.lifecycle.final_backup', details));
    });
    if (!started) return false;
    await deps.hooks?.afterStep?.(tenantId, 'final_backup:started');
    let backup: FinalBackup;
    try {
      backup = await deps.finalBackup(tenantId);
    } catch (err) {
      await transaction(deps.pool, async (client) => {
        const details = { phase: 'failed', attempt, error: (err as Error).message };
        await logStep(client, deps, tenantId, 'final_backup', 'failed', details);
        await record(
          client,
          by(deps),
          tenantEvent(tenantId, 'tenant.lifecycle.final_backup', details, 'failure'),
        );
      });
      throw err;
    }
    await deps.hooks?.afterStep?.(tenantId, 'final_backup:written');
    // Recorded whatever happened meanwhile (a hold stops the next steps, not this record);
    // a resume since removed the row, and then the backup is just a backup.
    return transaction(deps.pool, async (client) => {
      await client.query(tenantLock(tenantId));
      const marked = await run(client, sql.markBackedUp(tenantId, attempt, backup.id));
      if (!marked.rowCount) return false;
      const details = {
        phase: 'done',
        attempt,
        backupId: backup.id,
        sha256: backup.sha256,
        bytes: backup.bytes,
        rows: backup.rows,
      };
      await logStep(client, deps, tenantId, 'final_backup', 'done', details);
      await record(client, by(deps), tenantEvent(tenantId, 'tenant.lifecycle.final_backup', details));
      return true;
    });
  },

  verify: async (deps, tenantId) => {
    const row = (await run<sql.LifecycleRow>(deps.pool, sql.selectOne(tenantId))).rows[0];
    const backupId = row?.final_backup_id;
    if (!row || !backupId) return false;
    const b = (await run<FinalBackup & { outcome: string }>(deps.pool, sql.selectBackupForStep(backupId)))
      .rows[0];
    let result: { ok: boolean; tables: number; rows: number; error?: string };
    if (b?.outcome !== 'succeeded' || !b.location) {
      result = { ok: false, tables: 0, rows: 0, error: `backup ${backupId} has no archive` };
    } else {
      try {
        result = await deps.verify(b);
      } catch (err) {
        result = { ok: false, tables: 0, rows: 0, error: (err as Error).message };
      }
    }
    const recorded = await inStep(deps, tenantId, 'verify', async (client, fresh) => {
      if (fresh.final_backup_id !== backupId) throw new Error('the final backup changed under the verify');
      const details = {
        backupId,
        ok: result.ok,
        tables: result.tables,
        rows: result.rows,
        ...errorOf(result),
      };
      if (result.ok) {
        await run(client, sql.markVerified(tenantId, backupId, deps.now));
        await logStep(client, deps, tenantId, 'verify', 'done', details);
      } else {
        await run(client, sql.markVerifyFailed(tenantId, backupId));
        await logStep(client, deps, tenantId, 'verify', 'failed', details);
      }
      await record(
        client,
        by(deps),
        tenantEvent(tenantId, 'tenant.lifecycle.verify', details, result.ok ? 'success' : 'failure'),
      );
    });
    if (recorded && !result.ok)
      throw new Error(
        `the final backup ${backupId} of tenant ${tenantId} did not verify${result.error ? `: ${result.error}` : ''}; the next run takes a new one`,
      );
    return recorded;
  },

  drop: (deps, tenantId) =>
    inStep(deps, tenantId, 'drop', async (client, row) => {
      const finalBackupId = row.final_backup_id as string;
      const details = { reason: 'inactive', finalBackupId };
      // dropTenantInTransaction refuses under legal hold too, and writes tenant.drop.
      await dropTenantInTransaction(client, tenantId, by(deps), details);
      await run(client, sql.markDropped(tenantId, deps.now));
      await logStep(client, deps, tenantId, 'drop', 'done', details);
    }),
};

const errorOf = (r: { error?: string }) => (r.error ? { error: r.error } : {});

// --- what ops and sign-ins do ---------------------------------------------------

/** The tenant and its lifecycle row, or TenantNotFoundError. */
export async function lifecycleOf(pool: Pool, tenantId: string): Promise<sql.LifecycleRow> {
  if (!isTenantId(tenantId)) throw new TenantNotFoundError(String(tenantId));
  const row = (await run<sql.LifecycleRow>(pool, sql.selectOne(tenantId))).rows[0];
  if (!row) throw new TenantNotFoundError(tenantId);
  return row;
}

export async function stepsOf(pool: Pool, tenantId: string): Promise<sql.StepRow[]> {
  return (await run<sql.StepRow>(pool, sql.selectSteps(tenantId))).rows;
}

/**
 * Ops suspension: the tenant is suspended and leaves the lifecycle (its row is
 * removed in the same transaction). The lifecycle never drops a tenant that
 * ops suspended: only one it suspended itself.
 */
export async function suspendByOps(pool: Pool, tenantId: string, by: AuditBy): Promise<TenantRow> {
  return transaction(pool, async (client) => {
    await client.query(tenantLock(tenantId));
    const cleared = (await run<{ stage: string }>(client, sql.deleteRow(tenantId))).rows[0];
    return setTenantStateInTransaction(client, tenantId, 'suspended', by, {
      reason: 'ops',
      ...(cleared ? { lifecycleCleared: cleared.stage } : {}),
    });
  });
}

/** Archive (ops): like an ops suspension, out of the lifecycle. */
export async function archiveByOps(pool: Pool, tenantId: string, by: AuditBy): Promise<TenantRow> {
  return transaction(pool, async (client) => {
    await client.query(tenantLock(tenantId));
    const cleared = (await run<{ stage: string }>(client, sql.deleteRow(tenantId))).rows[0];
    return setTenantStateInTransaction(client, tenantId, 'archived', by, {
      reason: 'ops',
      ...(cleared ? { lifecycleCleared: cleared.stage } : {}),
    });
  });
}

/**
 * Resume, in one transaction: the tenant active again, out of the lifecycle,
 * and its activity set to now, so the lifecycle starts again from a full
 * INACTIVE_AFTER_DAYS (it cannot be flagged, let alone suspended, at the next run).
 */
export async function resumeTenant(pool: Pool, tenantId: string, by: AuditBy): Promise<TenantRow> {
  return transaction(pool, async (client) => {
    await client.query(tenantLock(tenantId));
    const cleared = (await run<{ stage: string }>(client, sql.deleteRow(tenantId))).rows[0];
    const row = await setTenantStateInTransaction(
      client,
      tenantId,
      'active',
      by,
      cleared ? { lifecycleCleared: cleared.stage } : {},
    );
    await run(client, sql.touchNow(tenantId));
    return row;
  });
}

/** Legal hold on or off (tenancy/lifecycle.ts): every lifecycle step checks it under the tenant lock. */
export function holdTenant(pool: Pool, tenantId: string, hold: boolean, by: AuditBy): Promise<TenantRow> {
  if (!isTenantId(tenantId)) return Promise.reject(new TenantNotFoundError(String(tenantId)));
  return setLegalHold(pool, tenantId, hold, by);
}

/** What a person was told at sign-in: their workspace had been flagged as inactive. */
export interface InactivityNotice {
  tenantId: string;
  inactiveSince: Date;
  flaggedAt: Date;
}

/**
 * At a sign-in by someone of a tenant: the tenant's activity is now, and a
 * warning (flag) is cleared, with its `tenant.lifecycle.reset` event, in one
 * transaction. Returns the cleared flag, for the notice; null when there was none.
 */
export async function recordSignIn(
  pool: Pool,
  userId: string,
  by: AuditBy,
): Promise<InactivityNotice | null> {
  return transaction(pool, async (client) => {
    const row = (
      await run<{ tenant_id: string; inactive_since: Date | null; flagged_at: Date | null }>(
        client,
        sql.signInActivity(userId),
      )
    ).rows[0];
    if (!row?.inactive_since || !row.flagged_at) return null;
    const details = {
      stage: 'flagged',
      inactiveSince: row.inactive_since.toISOString(),
      reason: 'sign-in',
    };
    await run(client, sql.insertStep(row.tenant_id, 'reset', 'done', new Date(), details));
    await record(client, by, tenantEvent(row.tenant_id, 'tenant.lifecycle.reset', details));
    return { tenantId: row.tenant_id, inactiveSince: row.inactive_since, flaggedAt: row.flagged_at };
  });
}
