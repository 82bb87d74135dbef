// Statements of the per-tenant statistics (docs/STATISTICS.md), as small pure
// functions: parameters in, { text, values } out.
//
// The catalog pass reads pg_class ⨝ pg_namespace once for every live tenant
// schema: sizes from relpages × block_size (what VACUUM and ANALYZE last
// measured: no file is stat'ed and no relation is locked), row estimates from
// reltuples (-1: never vacuumed or analyzed, reported as null), and dead tuples
// and the last (auto)vacuum/analyze from the pg_stat_get_* functions called
// directly on each table's oid. It never uses the pg_stat_user_tables view
// (it spills to disk with tens of thousands of tables), information_schema,
// or pg_total_relation_size over every relation (it stats every file and
// locks every relation); only exactStatement does, for ONE tenant.
import type { Statement } from '../kernel/db.ts';
import { LIVE_STATES } from './tenant-sql.ts';

/**
 * One relation in control.tenant_stats_latest.relations (and in the exact
 * answer): a JSON array, by position (RELATION_FIELDS), not an object: building
 * 110,000 objects with their keys was a third of the pass.
 */
export const RELATION_FIELDS = [
  'name',
  'kind',
  'table',
  'bytes',
  'toast_bytes',
  'rows',
  'dead_rows',
  'last_vacuum',
  'last_autovacuum',
  'last_analyze',
  'last_autoanalyze',
] as const;
const RELATION_JSON = `jsonb_build_array(r.name, r.kind, r.parent, r.bytes, r.toast_bytes, r.rows, r.dead_rows,
    r.last_vacuum, r.last_autovacuum, r.last_analyze, r.last_autoanalyze)`;

/**
 * The catalog pass as CTEs `live` (live tenants with their schema's oid),
 * `rel` (one row per table, matview, partitioned table and index of those
 * schemas; a table's TOAST table and TOAST index are folded into its
 * toast_bytes) and `per_tenant` (totals and the relations as JSON, one row per
 * live tenant, also one without any relation). $1: the live states; $2: one
 * tenant id or null for all.
 */
function catalogPass(exact: boolean): string {
  const bytes = exact
    ? `(pg_relation_size(c.oid, 'main') + pg_relation_size(c.oid, 'fsm') + pg_relation_size(c.oid, 'vm')
        + pg_relation_size(c.oid, 'init'))`
    : 'c.relpages::bigint * bs.size';
  const toast = exact
    ? 'CASE WHEN c.reltoastrelid <> 0 THEN pg_total_relation_size(c.reltoastrelid) ELSE 0 END'
    : '(coalesce(tt.relpages, 0)::bigint + coalesce(ti.pages, 0)) * bs.size';
  return `
  live AS (
    SELECT t.id AS tenant_id, t.last_active_at, n.oid AS nsp
    FROM control.tenants t
    JOIN pg_catalog.pg_namespace n ON n.nspname = t.schema_name
    WHERE t.state = ANY($1::text[]) AND ($2::text IS NULL OR t.id = $2::text)
  ),
  bs AS (SELECT current_setting('block_size')::bigint AS size),
  toast_index AS (
    SELECT x.indrelid, sum(i.relpages)::bigint AS pages
    FROM pg_catalog.pg_index x
    JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid
    WHERE i.relnamespace = 'pg_toast'::regnamespace
    GROUP BY x.indrelid
  ),
  rel AS (
    SELECT l.tenant_id, c.relname::text AS name,
           CASE c.relkind WHEN 'i' THEN 'index' WHEN 'm' THEN 'matview' WHEN 'p' THEN 'partitioned' ELSE 'table' END AS kind,
           p.relname::text AS parent,
           ${bytes} AS bytes,
           ${toast} AS toast_bytes,
           CASE WHEN c.reltuples >= 0 THEN c.reltuples::bigint END AS rows,
           CASE WHEN c.relkind IN ('r', 'm') THEN pg_stat_get_dead_tuples(c.oid) END AS dead_rows,
           CASE WHEN c.relkind IN ('r', 'm') THEN pg_stat_get_last_vacuum_time(c.oid) END AS last_vacuum,
           CASE WHEN c.relkind IN ('r', 'm') THEN pg_stat_get_last_autovacuum_time(c.oid) END AS last_autovacuum,
           CASE WHEN c.relkind IN ('r', 'm') THEN pg_stat_get_last_analyze_time(c.oid) END AS last_analyze,
           CASE WHEN c.relkind IN ('r', 'm') THEN pg_stat_get_last_autoanalyze_time(c.oid) END AS last_autoanalyze
    FROM live l
    CROSS JOIN bs
    JOIN pg_catalog.pg_class c ON c.relnamespace = l.nsp AND c.relkind IN ('r', 'i', 'm', 'p')
    LEFT JOIN pg_catalog.pg_class tt ON tt.oid = c.reltoastrelid AND c.reltoastrelid <> 0
    LEFT JOIN toast_index ti ON ti.indrelid = c.reltoastrelid AND c.reltoastrelid <> 0
    LEFT JOIN pg_catalog.pg_index x ON x.indexrelid = c.oid AND c.relkind = 'i'
    LEFT JOIN pg_catalog.pg_class p ON p.oid = x.indrelid
  ),
  per_tenant AS (
    SELECT l.tenant_id, l.last_active_at,
           coalesce(sum(r.bytes + r.toast_bytes), 0)::bigint AS total_bytes,
           coalesce(sum(r.bytes) FILTER (WHERE r.kind <> 'index'), 0)::bigint AS table_bytes,
           coalesce(sum(r.bytes) FILTER (WHERE r.kind = 'index'), 0)::bigint AS index_bytes,
           coalesce(sum(r.toast_bytes), 0)::bigint AS toast_bytes,
           coalesce(sum(r.rows) FILTER (WHERE r.kind IN ('table', 'matview')), 0)::bigint AS rows_estimate,
           coalesce(sum(r.dead_rows), 0)::bigint AS dead_rows,
           count(*) FILTER (WHERE r.kind IN ('table', 'matview') AND r.rows IS NULL)::int AS tables_not_analyzed,
           count(r.name)::int AS relation_count,
           coalesce(jsonb_agg(${RELATION_JSON} ORDER BY r.kind = 'index', coalesce(r.parent, r.name), r.name)
                      FILTER (WHERE r.name IS NOT NULL), '[]'::jsonb) AS relations
    FROM live l
    LEFT JOIN rel r ON r.tenant_id = l.tenant_id
    GROUP BY l.tenant_id, l.last_active_at
  )`;
}

const TOTALS =
  'total_bytes, table_bytes, index_bytes, toast_bytes, rows_estimate, dead_rows, tables_not_analyzed, last_active_at';

/** The catalog pass, read only: one row per live tenant (or the one given) with totals and relations. */
export const collectStatement = (tenantId: string | null = null): Statement => ({
  text: `WITH ${catalogPass(false)}
    SELECT tenant_id, ${TOTALS}, relation_count, relations FROM per_tenant ORDER BY tenant_id`,
  values: [LIVE_STATES, tenantId],
});

/** The same for one tenant with exact sizes (pg_relation_size per fork, pg_total_relation_size of its TOAST). */
export const exactStatement = (tenantId: string): Statement => ({
  text: `WITH ${catalogPass(true)}
    SELECT tenant_id, ${TOTALS}, relation_count, relations FROM per_tenant`,
  values: [LIVE_STATES, tenantId],
});

/**
 * One statement: the catalog pass, its totals appended to the history at
 * $3 (the run's time), the latest table replaced (upserted, and rows of
 * tenants no longer live removed). Returns what it wrote.
 */
export const recordStatement = (sampledAt: Date): Statement => ({
  text: `WITH ${catalogPass(false)},
  history AS (
    INSERT INTO control.tenant_stats (tenant_id, sampled_at, resolution, total_bytes, table_bytes, index_bytes,
                                      toast_bytes, rows_estimate, dead_rows, last_active_at)
    SELECT tenant_id, $3, 'raw', total_bytes, table_bytes, index_bytes, toast_bytes, rows_estimate, dead_rows,
           last_active_at
    FROM per_tenant
    ON CONFLICT (tenant_id, sampled_at) DO UPDATE SET
      resolution = 'raw', total_bytes = EXCLUDED.total_bytes, table_bytes = EXCLUDED.table_bytes,
      index_bytes = EXCLUDED.index_bytes, toast_bytes = EXCLUDED.toast_bytes,
      rows_estimate = EXCLUDED.rows_estimate, dead_rows = EXCLUDED.dead_rows,
      last_active_at = EXCLUDED.last_active_at
    RETURNING 1
  ),
  latest AS (
    INSERT INTO control.tenant_stats_latest (tenant_id, sampled_at, ${TOTALS}, relations)
    SELECT tenant_id, $3, ${TOTALS}, relations FROM per_tenant
    ON CONFLICT (tenant_id) DO UPDATE SET
      sampled_at = EXCLUDED.sampled_at, total_bytes = EXCLUDED.total_bytes, table_bytes = EXCLUDED.table_bytes,
      index_bytes = EXCLUDED.index_bytes, toast_bytes = EXCLUDED.toast_bytes,
      rows_estimate = EXCLUDED.rows_estimate, dead_rows = EXCLUDED.dead_rows,
      tables_not_analyzed = EXCLUDED.tables_not_analyzed, last_active_at = EXCLUDED.last_active_at,
      relations = EXCLUDED.relations
    RETURNING 1
  ),
  gone AS (
    DELETE FROM control.tenant_stats_latest s
    WHERE NOT EXISTS (SELECT 1 FROM per_tenant p WHERE p.tenant_id = s.tenant_id)
    RETURNING 1
  )
  SELECT (SELECT count(*) FROM history)::int AS tenants,
         (SELECT coalesce(sum(relation_count), 0) FROM per_tenant)::bigint AS relations,
         (SELECT coalesce(sum(total_bytes), 0) FROM per_tenant)::bigint AS total_bytes,
         (SELECT count(*) FROM gone)::int AS removed`,
  values: [LIVE_STATES, null, sampledAt],
});

// --- downsampling --------------------------------------------------------------
// $1 is the run's "now". Buckets are UTC hours and days; within a bucket the
// last sample (the newest) is kept. Only buckets holding a sample not yet
// reduced are visited, so a run touches the samples that just aged, not the
// whole history; the result is the same however often or late it runs.

/** Samples older than 365 days. */
export const expireSamples = (now: Date): Statement => ({
  text: `DELETE FROM control.tenant_stats
         WHERE resolution = ANY('{raw,hour,day}') AND sampled_at < $1::timestamptz - interval '365 days'`,
  values: [now],
});

/**
 * Reduces samples in [now - `olderThan` … ) to the last of each `bucket`
 * ('hour' or 'day'), among samples older than `olderThan` (and not older than
 * `notOlderThan`, which the coarser step owns). `pending` are the resolutions
 * still to reduce; the kept sample is marked `bucket`.
 */
function reduce(
  bucket: 'hour' | 'day',
  pending: readonly string[],
  olderThan: string,
  notOlderThan: string | null,
) {
  const width = bucket === 'hour' ? "interval '1 hour'" : "interval '24 hours'";
  const floor = notOlderThan ? `$1::timestamptz - interval '${notOlderThan}'` : "'-infinity'::timestamptz";
  return `
  WITH cut AS (SELECT $1::timestamptz - interval '${olderThan}' AS upper, ${floor} AS lower),
  buckets AS (
    SELECT DISTINCT s.tenant_id, date_trunc('${bucket}', s.sampled_at, 'UTC') AS b
    FROM control.tenant_stats s, cut
    WHERE s.resolution = ANY('{${pending.join(',')}}') AND s.sampled_at < cut.upper AND s.sampled_at >= cut.lower
  ),
  keep AS (
    SELECT k.tenant_id, greatest(k.b, cut.lower) AS first, max(s.sampled_at) AS last
    FROM buckets k
    CROSS JOIN cut
    JOIN control.tenant_stats s ON s.tenant_id = k.tenant_id
     AND s.sampled_at >= greatest(k.b, cut.lower) AND s.sampled_at < least(k.b + ${width}, cut.upper)
    GROUP BY k.tenant_id, k.b, cut.lower
  ),
  gone AS (
    DELETE FROM control.tenant_stats s USING keep k
    WHERE s.tenant_id = k.tenant_id AND s.sampled_at >= k.first AND s.sampled_at < k.last
    RETURNING 1
  ),
  marked AS (
    UPDATE control.tenant_stats s SET resolution = '${bucket}' FROM keep k
    WHERE s.tenant_id = k.tenant_id AND s.sampled_at = k.last AND s.resolution <> '${bucket}'
    RETURNING 1
  )
  SELECT (SELECT count(*) FROM gone)::int AS deleted, (SELECT count(*) FROM marked)::int AS kept`;
}

/** Older than 7 days: the last sample of each UTC day (raw and hourly samples reduced). */
export const reduceToDays = (now: Date): Statement => ({
  text: reduce('day', ['raw', 'hour'], '7 days', '365 days'),
  values: [now],
});

/** Older than an hour (and not older than 7 days): the last sample of each UTC hour. */
export const reduceToHours = (now: Date): Statement => ({
  text: reduce('hour', ['raw'], '1 hour', '7 days'),
  values: [now],
});

// --- reading -----------------------------------------------------------------

const GROWTH = `LEFT JOIN LATERAL (
      SELECT h.total_bytes, h.sampled_at FROM control.tenant_stats h
      WHERE h.tenant_id = l.tenant_id AND h.sampled_at <= l.sampled_at - interval '7 days'
      ORDER BY h.sampled_at DESC LIMIT 1
    ) w ON true`;

const LATEST_COLUMNS = `l.tenant_id, t.display_name, t.state, l.sampled_at, l.total_bytes, l.table_bytes,
    l.index_bytes, l.toast_bytes, l.rows_estimate, l.dead_rows, l.tables_not_analyzed, l.last_active_at,
    w.total_bytes AS week_ago_bytes, w.sampled_at AS week_ago_at,
    l.total_bytes - w.total_bytes AS growth_bytes`;

/** The fleet's totals from the latest run. */
export const fleetTotals = (): Statement => ({
  text: `SELECT max(sampled_at) AS collected_at, count(*)::int AS tenants,
           coalesce(sum(total_bytes), 0)::bigint AS total_bytes, coalesce(sum(table_bytes), 0)::bigint AS table_bytes,
           coalesce(sum(index_bytes), 0)::bigint AS index_bytes, coalesce(sum(toast_bytes), 0)::bigint AS toast_bytes,
           coalesce(sum(rows_estimate), 0)::bigint AS rows_estimate, coalesce(sum(dead_rows), 0)::bigint AS dead_rows
         FROM control.tenant_stats_latest`,
  values: [],
});

/** The top `limit` tenants of the latest run by size, or by growth over 7 days (tenants without a sample that old last). */
export const topTenants = (sort: 'size' | 'growth', limit: number): Statement => ({
  text: `SELECT ${LATEST_COLUMNS}
    FROM control.tenant_stats_latest l
    JOIN control.tenants t ON t.id = l.tenant_id
    ${GROWTH}
    ORDER BY ${sort === 'size' ? 'l.total_bytes DESC' : 'growth_bytes DESC NULLS LAST, l.total_bytes DESC'}, l.tenant_id
    LIMIT $1`,
  values: [limit],
});

/** One tenant's latest run, with its relations. */
export const tenantLatest = (tenantId: string): Statement => ({
  text: `SELECT ${LATEST_COLUMNS}, l.relations
    FROM control.tenant_stats_latest l
    JOIN control.tenants t ON t.id = l.tenant_id
    ${GROWTH}
    WHERE l.tenant_id = $1`,
  values: [tenantId],
});

/** One tenant's history, oldest first. */
export const tenantHistory = (tenantId: string): Statement => ({
  text: `SELECT sampled_at, resolution, total_bytes, table_bytes, index_bytes, toast_bytes, rows_estimate,
           dead_rows, last_active_at
         FROM control.tenant_stats WHERE tenant_id = $1 ORDER BY sampled_at`,
  values: [tenantId],
});

/** Bounds how long the exact sizes wait for a relation locked by a migration (this transaction only). */
export const exactLockTimeout = (): Statement => ({
  text: "SELECT set_config('lock_timeout', '5s', true)",
  values: [],
});
