// `enclave tenants stats [TENANT]`: per-tenant statistics (docs/STATISTICS.md).
// Without TENANT: the latest run's fleet totals and its top tenants by size or
// by growth over 7 days. With TENANT: that tenant's tables and indexes from the
// latest run, or measured now with --exact. Reads what the tenant-stats job
// stored; only --exact touches the tenant's relations.
//
// Exit codes: 0 ok, 1 unknown tenant (or it has no schema), 2 bad usage.
import { type Command, InvalidArgumentError, Option } from 'commander';
import type {
  CollectedTenant,
  FleetStats,
  LatestTenantStats,
  RelationStats,
  TenantStats,
} from '../tenancy/statistics.ts';
import { printJson, printTable } from './output.ts';
import { UsageError } from './usage-error.ts';

const TENANT_ID = /^[a-z0-9]{12}$/;
const DEFAULT_LIMIT = 20;
const MAX_LIMIT = 10_000;

function limit(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > MAX_LIMIT)
    throw new InvalidArgumentError(`must be a whole number from 1 to ${MAX_LIMIT}`);
  return n;
}

export interface StatsOptions {
  json?: boolean;
  exact?: boolean;
  limit?: number;
  sort?: 'size' | 'growth';
}

export function registerStatsCommands(tenants: Command): Command {
  return tenants
    .command('stats')
    .description(
      "sizes, row estimates and dead tuples: the top tenants by size or growth, or one tenant's tables and indexes",
    )
    .argument('[tenant]', "one tenant's tables and indexes")
    .option('--exact', "measure the tenant's exact sizes now (one tenant only)")
    .option('--limit <n>', `how many tenants to list (default ${DEFAULT_LIMIT})`, limit)
    .addOption(
      new Option(
        '--sort <by>',
        'list the top tenants by size or by growth over 7 days (default size)',
      ).choices(['size', 'growth']),
    )
    .addOption(new Option('--json', 'print machine-readable JSON'))
    .action(async (tenant: string | undefined, opts: StatsOptions) => {
      process.exitCode = await statsCommand(tenant, opts);
    });
}

/** 1536 → "1.5 KiB" (binary units, as PostgreSQL's pg_size_pretty but with one decimal). */
export function humanBytes(bytes: number | null): string {
  if (bytes === null) return '-';
  const sign = bytes < 0 ? '-' : '';
  let n = Math.abs(bytes);
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let u = 0;
  while (n >= 1024 && u < units.length - 1) {
    n /= 1024;
    u++;
  }
  return `${sign}${u === 0 ? n : n.toFixed(1)} ${units[u]}`;
}

const signed = (bytes: number | null) =>
  bytes === null ? '-' : bytes > 0 ? `+${humanBytes(bytes)}` : humanBytes(bytes);
const count = (n: number | null) => (n === null ? '-' : n.toLocaleString('en-US'));
const latestTime = (...times: Array<string | null>) =>
  times
    .filter((t): t is string => t !== null)
    .sort()
    .at(-1) ?? null;

export async function statsCommand(tenant: string | undefined, opts: StatsOptions): Promise<number> {
  if (tenant !== undefined && !TENANT_ID.test(tenant))
    throw new UsageError(
      `"${tenant}" is not a tenant id (12 characters, a-z and 0-9; see \`enclave tenants list\`)`,
    );
  if (tenant === undefined && opts.exact)
    throw new UsageError('--exact measures one tenant: give its id (enclave tenants stats TENANT --exact)');
  if (tenant !== undefined && (opts.limit !== undefined || opts.sort !== undefined))
    throw new UsageError('--limit and --sort list the top tenants: leave them out with a TENANT');
  const { connect } = await import('./connect.ts');
  const stats = await import('../tenancy/statistics.ts');
  const ctx = await connect(1);
  try {
    if (tenant === undefined) {
      const fleet = await stats.fleetStats(ctx.pool, {
        sort: opts.sort ?? 'size',
        limit: opts.limit ?? DEFAULT_LIMIT,
      });
      if (opts.json) printJson(fleetJson(fleet, opts.sort ?? 'size'));
      else printFleet(fleet, opts.sort ?? 'size');
    } else if (opts.exact) {
      const exact = await stats.exactTenantStats(ctx.pool, tenant);
      if (opts.json)
        printJson({ tenantId: exact.tenantId, measuredAt: exact.measuredAt, exact: true, ...rest(exact) });
      else printExact(exact);
    } else {
      const one = await stats.tenantStats(ctx.pool, tenant);
      if (opts.json) printJson(one);
      else printTenant(one);
    }
    return 0;
  } finally {
    await ctx.close();
  }
}

const rest = (c: CollectedTenant) => {
  const { tenantId: _, ...others } = c;
  return others;
};

function fleetJson(f: FleetStats, sort: 'size' | 'growth') {
  return { collectedAt: f.collectedAt, tenants: f.tenants, totals: f.totals, sort, top: f.top };
}

function tenantRow(t: LatestTenantStats) {
  return {
    tenant: t.tenantId,
    name: t.displayName.length > 30 ? `${t.displayName.slice(0, 29)}…` : t.displayName,
    state: t.state,
    total: humanBytes(t.totalBytes),
    tables: humanBytes(t.tableBytes),
    indexes: humanBytes(t.indexBytes),
    toast: humanBytes(t.toastBytes),
    rows: count(t.rowsEstimate),
    dead: count(t.deadRows),
    growth_7d: signed(t.growthBytes),
    last_active: t.lastActiveAt,
  };
}

function printFleet(f: FleetStats, sort: 'size' | 'growth'): void {
  if (f.collectedAt === null) {
    process.stdout.write(
      'No statistics yet: the tenant-stats job collects them (STATS_SCHEDULE); run it now with `enclave jobs run tenant-stats`.\n',
    );
    return;
  }
  const s = f.totals;
  process.stdout.write(
    `Collected ${f.collectedAt.toISOString()}: ${count(f.tenants)} tenants, ${humanBytes(s.totalBytes)} ` +
      `(tables ${humanBytes(s.tableBytes)}, indexes ${humanBytes(s.indexBytes)}, TOAST ${humanBytes(s.toastBytes)}), ` +
      `~${count(s.rowsEstimate)} rows, ${count(s.deadRows)} dead.\n` +
      `Top ${f.top.length} by ${sort === 'size' ? 'size' : 'growth over 7 days'}:\n`,
  );
  printTable(
    f.top.map(tenantRow),
    [
      'tenant',
      'name',
      'state',
      'total',
      'tables',
      'indexes',
      'toast',
      'rows',
      'dead',
      'growth_7d',
      'last_active',
    ],
    'No live tenants.',
  );
}

function relationRows(relations: RelationStats[]) {
  return relations.map((r) => ({
    name: r.name,
    kind: r.kind,
    table: r.table,
    size: humanBytes(r.bytes),
    toast: r.kind === 'index' ? null : humanBytes(r.toastBytes),
    rows: r.rows === null ? 'never analyzed' : count(r.rows),
    dead: count(r.deadRows),
    last_vacuum: latestTime(r.lastVacuum, r.lastAutovacuum),
    last_analyze: latestTime(r.lastAnalyze, r.lastAutoanalyze),
  }));
}

const RELATION_COLUMNS = [
  'name',
  'kind',
  'table',
  'size',
  'toast',
  'rows',
  'dead',
  'last_vacuum',
  'last_analyze',
];

function printTenant(s: TenantStats): void {
  const t = s.tenant;
  const l = s.latest;
  if (!l) {
    process.stdout.write(
      `Tenant ${t.id} (${t.displayName}, ${t.state}): no statistics collected yet. ` +
        'Run `enclave jobs run tenant-stats`, or measure it now with --exact.\n',
    );
    return;
  }
  process.stdout.write(
    `Tenant ${t.id} (${t.displayName}, ${t.state}), collected ${l.sampledAt.toISOString()}: ${humanBytes(l.totalBytes)} ` +
      `(tables ${humanBytes(l.tableBytes)}, indexes ${humanBytes(l.indexBytes)}, TOAST ${humanBytes(l.toastBytes)}), ` +
      `~${count(l.rowsEstimate)} rows, ${count(l.deadRows)} dead; ` +
      `7 days: ${l.growthBytes === null ? 'no sample that old' : signed(l.growthBytes)}; ` +
      `last active ${t.lastActiveAt ? t.lastActiveAt.toISOString() : 'never'}; ${s.history.length} sample${s.history.length === 1 ? '' : 's'} kept.\n`,
  );
  printTable(relationRows(l.relations), RELATION_COLUMNS, 'No tables.');
}

function printExact(e: CollectedTenant & { measuredAt: Date }): void {
  process.stdout.write(
    `Tenant ${e.tenantId}, exact sizes measured ${e.measuredAt.toISOString()}: ${humanBytes(e.totalBytes)} ` +
      `(tables ${humanBytes(e.tableBytes)}, indexes ${humanBytes(e.indexBytes)}, TOAST ${humanBytes(e.toastBytes)}), ` +
      `~${count(e.rowsEstimate)} rows, ${count(e.deadRows)} dead.\n`,
  );
  printTable(relationRows(e.relations), RELATION_COLUMNS, 'No tables.');
}
