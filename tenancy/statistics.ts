// Per-tenant statistics (docs/STATISTICS.md): how big every tenant is, table by
// table and index by index, and how it grows. One pass over the catalog for
// all tenant schemas (tenancy/statistics-sql.ts), written to the control plane
// in the same statement: totals as history (downsampled by every run), the
// relations of the latest run only. Exact sizes for one tenant on demand.
import { type Pool, run, transaction } from '../kernel/db.ts';
import { isTenantId } from '../kernel/identifiers.ts';
import * as sql from './statistics-sql.ts';
import { TenantNotFoundError, TenantUnavailableError } from './tenancy-errors.ts';
import { LIVE_STATES, selectTenant, type TenantRow } from './tenant-sql.ts';

export type RelationKind = 'table' | 'index' | 'matview' | 'partitioned';

/** One table or index of a tenant. Times are ISO strings; null: never happened (or not a table). */
export interface RelationStats {
  name: string;
  kind: RelationKind;
  /** The table an index belongs to (null for tables). */
  table: string | null;
  /** Main fork, from relpages (exact mode: every fork, measured). */
  bytes: number;
  /** The table's TOAST table and its index (0 for indexes). */
  toastBytes: number;
  /** reltuples; null when the relation was never vacuumed or analyzed (PostgreSQL's -1). */
  rows: number | null;
  /** Tables only (null for indexes). */
  deadRows: number | null;
  lastVacuum: string | null;
  lastAutovacuum: string | null;
  lastAnalyze: string | null;
  lastAutoanalyze: string | null;
}

export interface TenantTotals {
  /** table + index + toast bytes. */
  totalBytes: number;
  tableBytes: number;
  indexBytes: number;
  toastBytes: number;
  /** Sum of the tables' row estimates (tables never analyzed count 0: see tablesNotAnalyzed). */
  rowsEstimate: number;
  deadRows: number;
  lastActiveAt: Date | null;
}

export interface CollectedTenant extends TenantTotals {
  tenantId: string;
  /** Tables whose row estimate is unknown (never vacuumed or analyzed). */
  tablesNotAnalyzed: number;
  relations: RelationStats[];
}

export interface Growth {
  /** Size at the newest sample at or before 7 days before the latest one; null: no sample that old. */
  weekAgoBytes: number | null;
  weekAgoAt: Date | null;
  /** totalBytes - weekAgoBytes; null without a sample that old. */
  growthBytes: number | null;
}

export interface LatestTenantStats extends TenantTotals, Growth {
  tenantId: string;
  displayName: string;
  state: string;
  sampledAt: Date;
  tablesNotAnalyzed: number;
}

export interface HistorySample extends TenantTotals {
  sampledAt: Date;
  resolution: 'raw' | 'hour' | 'day';
}

export interface RecordResult {
  tenants: number;
  relations: number;
  totalBytes: number;
  /** Rows of tenants no longer live removed from the latest table. */
  removed: number;
  ms: number;
}

export interface DownsampleResult {
  /** Samples older than 365 days deleted. */
  expired: number;
  /** Samples deleted by the reduction to one a day (older than 7 days). */
  daily: number;
  /** Samples deleted by the reduction to one an hour (older than an hour). */
  hourly: number;
}

// --- rows to values -------------------------------------------------------------

interface TotalsRow {
  total_bytes: number;
  table_bytes: number;
  index_bytes: number;
  toast_bytes: number;
  rows_estimate: number;
  dead_rows: number;
  last_active_at: Date | null;
}

/** One relation as stored: a JSON array in the order of sql.RELATION_FIELDS. */
type RelationJson = [
  name: string,
  kind: RelationKind,
  table: string | null,
  bytes: number,
  toastBytes: number,
  rows: number | null,
  deadRows: number | null,
  lastVacuum: string | null,
  lastAutovacuum: string | null,
  lastAnalyze: string | null,
  lastAutoanalyze: string | null,
];

const iso = (v: string | null) => (v === null ? null : new Date(v).toISOString());
// Sums of bigint columns come back as numbers when safe (kernel/db.ts), else as strings.
const num = (v: number | string) => Number(v);
const numOrNull = (v: number | string | null) => (v === null ? null : Number(v));

function totals(r: TotalsRow): TenantTotals {
  return {
    totalBytes: num(r.total_bytes),
    tableBytes: num(r.table_bytes),
    indexBytes: num(r.index_bytes),
    toastBytes: num(r.toast_bytes),
    rowsEstimate: num(r.rows_estimate),
    deadRows: num(r.dead_rows),
    lastActiveAt: r.last_active_at,
  };
}

function relation(r: RelationJson): RelationStats {
  return {
    name: r[0],
    kind: r[1],
    table: r[2],
    bytes: num(r[3]),
    toastBytes: num(r[4]),
    rows: numOrNull(r[5]),
    deadRows: numOrNull(r[6]),
    lastVacuum: iso(r[7]),
    lastAutovacuum: iso(r[8]),
    lastAnalyze: iso(r[9]),
    lastAutoanalyze: iso(r[10]),
  };
}

type CollectedRow = TotalsRow & {
  tenant_id: string;
  tables_not_analyzed: number;
  relations: RelationJson[];
};

const collected = (r: CollectedRow): CollectedTenant => ({
  tenantId: r.tenant_id,
  ...totals(r),
  tablesNotAnalyzed: r.tables_not_analyzed,
  relations: r.relations.map(relation),
});

type LatestRow = TotalsRow & {
  tenant_id: string;
  display_name: string;
  state: string;
  sampled_at: Date;
  tables_not_analyzed: number;
  week_ago_bytes: number | null;
  week_ago_at: Date | null;
  growth_bytes: number | null;
};

const latest = (r: LatestRow): LatestTenantStats => ({
  tenantId: r.tenant_id,
  displayName: r.display_name,
  state: r.state,
  sampledAt: r.sampled_at,
  ...totals(r),
  tablesNotAnalyzed: r.tables_not_analyzed,
  weekAgoBytes: numOrNull(r.week_ago_bytes),
  weekAgoAt: r.week_ago_at,
  growthBytes: numOrNull(r.growth_bytes),
});

// --- collecting -------------------------------------------------------------------

/** The catalog pass, read only (nothing stored): every live tenant, or the one given. */
export async function collectStats(pool: Pool, tenantId: string | null = null): Promise<CollectedTenant[]> {
  return (await run<CollectedRow>(pool, sql.collectStatement(tenantId))).rows.map(collected);
}

/** The catalog pass stored at `sampledAt`: history appended, latest replaced, in one statement. */
export async function recordStats(pool: Pool, sampledAt: Date): Promise<RecordResult> {
  const started = performance.now();
  const { rows } = await run<{ tenants: number; relations: number; total_bytes: number; removed: number }>(
    pool,
    sql.recordStatement(sampledAt),
  );
  const r = rows[0] as { tenants: number; relations: number; total_bytes: number; removed: number };
  return {
    tenants: r.tenants,
    relations: num(r.relations),
    totalBytes: num(r.total_bytes),
    removed: r.removed,
    ms: Math.round(performance.now() - started),
  };
}

/**
 * The history reduced as of `now`: older than an hour, the last sample of each
 * UTC hour; older than 7 days, the last of each UTC day; older than 365 days,
 * none. Deterministic and idempotent: running it again with the same `now`
 * changes nothing. Each step is its own statement (its own short transaction).
 */
export async function downsampleStats(pool: Pool, now: Date): Promise<DownsampleResult> {
  const expired = (await run(pool, sql.expireSamples(now))).rowCount ?? 0;
  const daily = (await run<{ deleted: number }>(pool, sql.reduceToDays(now))).rows[0]?.deleted ?? 0;
  const hourly = (await run<{ deleted: number }>(pool, sql.reduceToHours(now))).rows[0]?.deleted ?? 0;
  return { expired, daily, hourly };
}

// --- reading ----------------------------------------------------------------------

export interface FleetStats {
  /** The latest run's time; null: no run yet. */
  collectedAt: Date | null;
  tenants: number;
  totals: Omit<TenantTotals, 'lastActiveAt'>;
  top: LatestTenantStats[];
}

/** The latest run's fleet totals and its top `limit` tenants by size or by growth over 7 days. */
export async function fleetStats(
  pool: Pool,
  options: { sort: 'size' | 'growth'; limit: number },
): Promise<FleetStats> {
  const t = (await run<TotalsRow & { collected_at: Date | null; tenants: number }>(pool, sql.fleetTotals()))
    .rows[0] as TotalsRow & { collected_at: Date | null; tenants: number };
  const { lastActiveAt: _, ...sums } = totals(t);
  const top = (await run<LatestRow>(pool, sql.topTenants(options.sort, options.limit))).rows.map(latest);
  return { collectedAt: t.collected_at, tenants: t.tenants, totals: sums, top };
}

export interface TenantStats {
  tenant: { id: string; displayName: string; state: string; lastActiveAt: Date | null };
  /** The latest run for this tenant (null: none yet), with its tables and indexes. */
  latest: (LatestTenantStats & { relations: RelationStats[] }) | null;
  history: HistorySample[];
}

async function tenantRow(pool: Pool, tenantId: string): Promise<TenantRow> {
  const row = isTenantId(tenantId) ? (await run<TenantRow>(pool, selectTenant(tenantId))).rows[0] : undefined;
  if (!row) throw new TenantNotFoundError(tenantId);
  return row;
}

/** One tenant's stored statistics: latest run and history. TenantNotFoundError for an unknown id. */
export async function tenantStats(pool: Pool, tenantId: string): Promise<TenantStats> {
  const t = await tenantRow(pool, tenantId);
  const row = (await run<LatestRow & { relations: RelationJson[] }>(pool, sql.tenantLatest(t.id))).rows[0];
  const history = (
    await run<TotalsRow & { sampled_at: Date; resolution: HistorySample['resolution'] }>(
      pool,
      sql.tenantHistory(t.id),
    )
  ).rows.map((r) => ({ sampledAt: r.sampled_at, resolution: r.resolution, ...totals(r) }));
  return {
    tenant: { id: t.id, displayName: t.display_name, state: t.state, lastActiveAt: t.last_active_at },
    latest: row ? { ...latest(row), relations: row.relations.map(relation) } : null,
    history,
  };
}

export interface ExactStats extends CollectedTenant {
  measuredAt: Date;
}

/**
 * Exact sizes of ONE tenant, measured now: pg_relation_size of every fork of
 * each of its tables and indexes and pg_total_relation_size of each TOAST
 * table (this stats their files and takes a share lock on each: fine for one
 * tenant, not for the fleet). Row estimates, dead tuples and times as in the
 * catalog pass. TenantNotFoundError, or TenantUnavailableError when it has no
 * schema (deleted, provisioning).
 */
export async function exactTenantStats(pool: Pool, tenantId: string): Promise<ExactStats> {
  const t = await tenantRow(pool, tenantId);
  if (!(LIVE_STATES as readonly string[]).includes(t.state)) throw new TenantUnavailableError(t.id, t.state);
  return transaction(
    pool,
    async (client) => {
      await run(client, sql.exactLockTimeout());
      const row = (await run<CollectedRow>(client, sql.exactStatement(t.id))).rows[0];
      if (!row) throw new TenantUnavailableError(t.id, 'without a schema');
      return { ...collected(row), measuredAt: new Date() };
    },
    { readOnly: true },
  );
}
