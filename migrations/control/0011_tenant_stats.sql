-- Per-tenant statistics (docs/STATISTICS.md), written by the tenant-stats job
-- from one pass over the catalog (tenancy/statistics-sql.ts).
--
-- History: one row per tenant per run, totals only. Downsampled by every run:
-- older than an hour, the last sample of each hour is kept ('hour'); older than
-- 7 days, the last of each UTC day ('day'); older than 365 days, nothing.
-- 10,000 tenants every 15 minutes is 40,000 rows an hour before downsampling
-- and ~5.3 million rows at steady state (per tenant: ~4 raw, 168 hourly, 358 daily).
CREATE TABLE control.tenant_stats (
  tenant_id      text NOT NULL REFERENCES control.tenants (id) ON DELETE CASCADE,
  sampled_at     timestamptz NOT NULL,
  resolution     text NOT NULL DEFAULT 'raw' CHECK (resolution IN ('raw', 'hour', 'day')),
  total_bytes    bigint NOT NULL CHECK (total_bytes >= 0),
  table_bytes    bigint NOT NULL CHECK (table_bytes >= 0),
  index_bytes    bigint NOT NULL CHECK (index_bytes >= 0),
  toast_bytes    bigint NOT NULL CHECK (toast_bytes >= 0),
  rows_estimate  bigint NOT NULL CHECK (rows_estimate >= 0),
  dead_rows      bigint NOT NULL CHECK (dead_rows >= 0),
  last_active_at timestamptz,
  PRIMARY KEY (tenant_id, sampled_at)
);
-- Downsampling finds the samples not yet reduced by resolution and time.
CREATE INDEX tenant_stats_resolution_idx ON control.tenant_stats (resolution, sampled_at);

-- The latest run only, one row per live tenant, replaced by every run: the
-- totals again plus every table and index of the tenant in `relations`, a
-- JSON array of arrays, each [name, kind, table, bytes, toast_bytes, rows,
-- dead_rows, last_vacuum, last_autovacuum, last_analyze, last_autoanalyze]
-- (tenancy/statistics-sql.ts RELATION_FIELDS; `table` is an index's table,
-- rows null = never analyzed). Per-relation history is not kept: 10,000 tenants × ~15
-- relations every 15 minutes would be 14 million rows a day. One row per
-- tenant (not per relation) keeps a run's write to 10,000 rows.
CREATE TABLE control.tenant_stats_latest (
  tenant_id           text PRIMARY KEY REFERENCES control.tenants (id) ON DELETE CASCADE,
  sampled_at          timestamptz NOT NULL,
  total_bytes         bigint NOT NULL,
  table_bytes         bigint NOT NULL,
  index_bytes         bigint NOT NULL,
  toast_bytes         bigint NOT NULL,
  rows_estimate       bigint NOT NULL,
  dead_rows           bigint NOT NULL,
  tables_not_analyzed integer NOT NULL,
  last_active_at      timestamptz,
  relations           jsonb NOT NULL
);
CREATE INDEX tenant_stats_latest_size_idx ON control.tenant_stats_latest (total_bytes DESC);
