// What the admin console's tenant page shows about one tenant, gathered from
// the services that own each part: the tenant row (tenancy/), its size
// history and latest tables and indexes (tenancy/statistics.ts), its
// migration ledger (control.tenant_migrations), its backups (backup/), its
// lifecycle and what comes next (tenancy/inactivity.ts), its active sessions
// (server/sessions/registry.ts, which audits the admin's look at them).
// Never the tenant's content: sizes, counts, the names of its tables.
import type { BackupRecord } from '../../backup/catalog.ts';
import { listBackups } from '../../backup/catalog.ts';
import type { AuditBy } from '../../kernel/audit-inbox.ts';
import type { Config } from '../../kernel/config.ts';
import { type Pool, run } from '../../kernel/db.ts';
import { isTenantId } from '../../kernel/identifiers.ts';
import {
  type Blocked,
  type LifecycleRow,
  lifecycleOf,
  lifecycleSettings,
  nextStep,
  type StepName,
  stepsOf,
} from '../../tenancy/inactivity.ts';
import { type RelationStats, tenantStats } from '../../tenancy/statistics.ts';
import { latestVersion, type TenantMigration } from '../../tenancy/templates.ts';
import { selectTenant, type TenantRow } from '../../tenancy/tenant-sql.ts';
import { NotFoundError } from '../app-errors.ts';
import { describeDevice, type SessionRegistry } from '../sessions/registry.ts';
import { type SizeSample, sizeChart } from './size-chart.ts';
import * as sql from './tenant-overview-sql.ts';

export const CHART_DAYS = 30;
const LEDGER_LIMIT = 200;
const BACKUP_LIMIT = 50;
const STEP_LIMIT = 10;

export interface OverviewDeps {
  pool: Pool;
  registry: SessionRegistry;
  config: Pick<Config, 'INACTIVE_AFTER_DAYS' | 'SUSPEND_AFTER_DAYS' | 'DROP_AFTER_SUSPENDED_DAYS'>;
  migrations: readonly TenantMigration[];
}

/** The tenant of a URL: NotFoundError for anything that is not an existing tenant's id. */
export async function findTenant(pool: Pool, id: string): Promise<TenantRow> {
  const tenant = isTenantId(id) ? (await run<TenantRow>(pool, selectTenant(id))).rows[0] : undefined;
  if (!tenant) throw new NotFoundError('No such workspace.');
  return tenant;
}

/** The next lifecycle step, in words. */
const NEXT: Record<StepName, string> = {
  flag: 'Flag as inactive: its people see a notice when they sign in.',
  reset: 'Clear the lifecycle: there was activity since, or it was resumed.',
  suspend: 'Suspend for inactivity: its people see the suspended page and none of its data.',
  final_backup: 'Take the final backup, then verify it and drop the workspace.',
  verify: 'Verify the final backup by restoring it into a scratch schema.',
  drop: 'Drop its schema and role; it is marked deleted, pointing at its final backup.',
};

const BLOCKED: Record<Blocked, string> = {
  legal_hold: 'held: the workspace is under legal hold, so no step is taken',
  not_active: 'waiting: the workspace is not active',
  not_suspended: 'waiting: the workspace is no longer suspended',
};

export interface TenantOverview {
  tenant: {
    id: string;
    name: string;
    state: string;
    schemaVersion: number;
    latestVersion: number;
    behind: number;
    legalHold: boolean;
    createdAt: Date;
    lastActiveAt: Date | null;
  };
  size: {
    chart: string | null;
    samples: number;
    sampledAt: Date | null;
    totalBytes: number | null;
    tableBytes: number | null;
    indexBytes: number | null;
    toastBytes: number | null;
    rowsEstimate: number | null;
    deadRows: number | null;
    tablesNotAnalyzed: number | null;
    growthBytes: number | null;
    weekAgoAt: Date | null;
  };
  relations: RelationStats[];
  ledger: sql.LedgerRow[];
  backups: BackupRecord[];
  lifecycle: {
    enabled: boolean;
    stage: string | null;
    since: Date | null;
    next: { step: StepName; text: string; due: Date | null; dueNow: boolean; blocked: string | null } | null;
    steps: Array<{ step: string; outcome: string; at: Date }>;
  };
  sessions: Array<{
    id: string;
    email: string;
    device: string | null;
    ip: string | null;
    createdAt: Date;
    lastSeenAt: Date;
  }>;
}

interface TenantSessionRow {
  id: string;
  email: string;
  ip: string | null;
  user_agent: string | null;
  created_at: Date;
  last_seen_at: Date;
}

/** When the tenant entered its current lifecycle stage. */
function stageSince(row: LifecycleRow): Date | null {
  switch (row.stage) {
    case 'flagged':
      return row.flagged_at;
    case 'suspended':
      return row.suspended_at;
    case 'final_backup':
    case 'backed_up':
      return row.final_backup_started_at;
    case 'verified':
      return row.verified_at;
    case 'dropped':
      return row.dropped_at;
    default:
      return null;
  }
}

/** Everything the tenant page shows. NotFoundError for an unknown or malformed id. */
export async function tenantOverview(
  deps: OverviewDeps,
  tenantId: string,
  by: AuditBy,
  now: Date = new Date(),
): Promise<TenantOverview> {
  const t = await findTenant(deps.pool, tenantId);
  const [stats, ledger, backups, life, steps, sessions] = await Promise.all([
    tenantStats(deps.pool, t.id),
    run<sql.LedgerRow>(deps.pool, sql.migrationLedger(t.id, LEDGER_LIMIT)),
    listBackups(deps.pool, t.id),
    lifecycleOf(deps.pool, t.id),
    stepsOf(deps.pool, t.id),
    deps.registry.listForTenant(t.id, by) as Promise<TenantSessionRow[]>,
  ]);
  const latest = latestVersion(deps.migrations);
  const samples: SizeSample[] = stats.history.map((h) => ({ at: h.sampledAt, bytes: h.totalBytes }));
  const chart = sizeChart(samples, { subject: t.display_name, now, days: CHART_DAYS, id: 'size-chart' });
  const l = stats.latest;
  const settings = lifecycleSettings(deps.config);
  const next = nextStep(life, settings, now);
  return {
    tenant: {
      id: t.id,
      name: t.display_name,
      state: t.state,
      schemaVersion: t.schema_version,
      latestVersion: latest,
      behind: Math.max(0, latest - t.schema_version),
      legalHold: t.legal_hold,
      createdAt: t.created_at,
      lastActiveAt: t.last_active_at,
    },
    size: {
      chart,
      samples: samples.length,
      sampledAt: l?.sampledAt ?? null,
      totalBytes: l?.totalBytes ?? null,
      tableBytes: l?.tableBytes ?? null,
      indexBytes: l?.indexBytes ?? null,
      toastBytes: l?.toastBytes ?? null,
      rowsEstimate: l?.rowsEstimate ?? null,
      deadRows: l?.deadRows ?? null,
      tablesNotAnalyzed: l?.tablesNotAnalyzed ?? null,
      growthBytes: l?.growthBytes ?? null,
      weekAgoAt: l?.weekAgoAt ?? null,
    },
    relations: [...(l?.relations ?? [])].sort((a, b) => b.bytes + b.toastBytes - (a.bytes + a.toastBytes)),
    ledger: ledger.rows.map((r) => ({ ...r, duration_ms: Number(r.duration_ms) })),
    backups: backups.slice(0, BACKUP_LIMIT),
    lifecycle: {
      enabled: settings.inactiveAfterDays > 0,
      stage: life.stage,
      since: stageSince(life),
      next: next
        ? {
            step: next.step,
            text: NEXT[next.step],
            due: next.due,
            dueNow: next.dueNow,
            blocked: next.blocked ? BLOCKED[next.blocked] : null,
          }
        : null,
      steps: steps
        .slice(-STEP_LIMIT)
        .reverse()
        .map((s) => ({ step: s.step, outcome: s.outcome, at: s.at })),
    },
    sessions: sessions.map((s) => ({
      id: s.id,
      email: s.email,
      device: describeDevice(s.user_agent),
      ip: s.ip,
      createdAt: s.created_at,
      lastSeenAt: s.last_seen_at,
    })),
  };
}
