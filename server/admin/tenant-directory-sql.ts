// The admin console's tenants table (server/admin/tenant-directory.ts): one
// statement per page, read from the control plane only (no tenant schema is
// touched, so the table never shows tenant content and costs the same whether
// tenants hold ten notes or ten thousand).
//
// Paged by KEYSET, never OFFSET: the page's rows are those after the cursor's
// (sort key, id) in the sort order, so page 50 costs what page 1 costs. Sort
// keys are never NULL (a tenant never measured sorts as size -1, one never
// active or never backed up as '-infinity'; growth unknown sorts last in both
// directions), so a plain row comparison `(key, id) > ($key, $id)` is exact.
//
// Two steps in one statement: `page` picks the page's ids with only what the
// sort and the filters need (the per-tenant lookups into control.tenant_stats
// and control.backups join there only when the sort or a filter asks for
// them), then the page's 50 rows get every column.
import type { Statement } from '../../kernel/db.ts';

export const SORTS = ['name', 'size', 'growth', 'activity', 'backup'] as const;
export type SortName = (typeof SORTS)[number];
export type SortDir = 'asc' | 'desc';

export const STATES = ['provisioning', 'active', 'suspended', 'archived', 'deleted'] as const;
export type TenantStateName = (typeof STATES)[number];

export interface DirectoryFilter {
  /** One state; null: every state but deleted. */
  state: TenantStateName | null;
  /** No activity (last_active_at, else created_at) for more than this many days. */
  inactiveDays: number | null;
  /** No good (succeeded) backup finished within this many hours, or none at all. */
  noBackupHours: number | null;
  /** Schema version behind the latest tenant migration. */
  behind: boolean;
  /** Its latest good backup's drift check found differences. */
  drift: boolean;
  /** A name containing this (case-insensitive), or an id starting with it. */
  q: string | null;
}

export interface DirectoryQuery extends DirectoryFilter {
  sort: SortName;
  dir: SortDir;
  /** After this (sort key as text, id); null: the first page. */
  after: { key: string; id: string } | null;
  limit: number;
  /** The latest tenant migration version (schema versions below it are behind). */
  latestVersion: number;
}

export interface DirectoryRow {
  id: string;
  display_name: string;
  state: TenantStateName;
  schema_version: number;
  created_at: Date;
  last_active_at: Date | null;
  legal_hold: boolean;
  deleted_at: Date | null;
  sampled_at: Date | null;
  total_bytes: number | string | null;
  rows_estimate: number | string | null;
  growth_bytes: number | string | null;
  backup_id: string | null;
  backup_at: Date | null;
  backup_drift: number | null;
  sort_key: string;
}

const BIG_MAX = '9223372036854775807';
const BIG_MIN = '-9223372036854775808';

/** The latest good backup of tenant t (index backups_tenant_good_idx: one probe). */
export const LATEST_GOOD_BACKUP = `LEFT JOIN LATERAL (
      SELECT bk.id, bk.finished_at, bk.drift FROM control.backups bk
      WHERE bk.tenant_id = t.id AND bk.outcome = 'succeeded'
      ORDER BY bk.finished_at DESC LIMIT 1
    ) b ON true`;

/** Its newest history sample at or before 7 days before its latest one (the primary key: one probe). */
const WEEK_AGO = `LEFT JOIN LATERAL (
      SELECT h.total_bytes FROM control.tenant_stats h
      WHERE h.tenant_id = t.id AND h.sampled_at <= l.sampled_at - interval '7 days'
      ORDER BY h.sampled_at DESC LIMIT 1
    ) w ON true`;

interface SortSpec {
  /** The never-NULL key, over t, l, w and b. */
  key: (dir: SortDir) => string;
  /** Its SQL type, for the cursor's value. */
  type: 'text' | 'bigint' | 'timestamptz';
  /** The SQL direction for the requested one (backup age ascending is newest backup first). */
  sqlDir: (dir: SortDir) => SortDir;
  needs: { growth?: true; backup?: true };
}

const SORT_SPECS: Record<SortName, SortSpec> = {
  name: { key: () => 't.display_name', type: 'text', sqlDir: (d) => d, needs: {} },
  size: { key: () => 'coalesce(l.total_bytes, -1)', type: 'bigint', sqlDir: (d) => d, needs: {} },
  growth: {
    // Unknown growth (no sample a week old) last, whichever way.
    key: (d) => `coalesce(l.total_bytes - w.total_bytes, '${d === 'asc' ? BIG_MAX : BIG_MIN}'::bigint)`,
    type: 'bigint',
    sqlDir: (d) => d,
    needs: { growth: true },
  },
  // Never active sorts as the longest inactive.
  activity: {
    key: () => "coalesce(t.last_active_at, '-infinity'::timestamptz)",
    type: 'timestamptz',
    sqlDir: (d) => d,
    needs: {},
  },
  // By the backup's AGE: ascending = the newest backup first; none = the oldest.
  backup: {
    key: () => "coalesce(b.finished_at, '-infinity'::timestamptz)",
    type: 'timestamptz',
    sqlDir: (d) => (d === 'asc' ? 'desc' : 'asc'),
    needs: { backup: true },
  },
};

/** One page of the tenants table: `limit` rows (ask for one more to know whether there is a next page). */
export function directoryPage(q: DirectoryQuery): Statement {
  const values: unknown[] = [];
  const p = (v: unknown) => {
    values.push(v);
    return `$${values.length}`;
  };
  const spec = SORT_SPECS[q.sort];
  const dir = spec.sqlDir(q.dir);
  const key = spec.key(dir);
  const where: string[] = [];
  where.push(q.state ? `t.state = ${p(q.state)}` : "t.state <> 'deleted'");
  if (q.inactiveDays !== null)
    where.push(
      `coalesce(t.last_active_at, t.created_at) < now() - make_interval(days => ${p(q.inactiveDays)})`,
    );
  if (q.noBackupHours !== null)
    where.push(
      `(b.finished_at IS NULL OR b.finished_at < now() - make_interval(hours => ${p(q.noBackupHours)}))`,
    );
  if (q.behind) where.push(`t.schema_version < ${p(q.latestVersion)}`);
  if (q.drift) where.push('b.drift > 0');
  if (q.q !== null) {
    const like = p(`%${q.q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`);
    const prefix = p(`${q.q.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`);
    where.push(`(t.display_name ILIKE ${like} OR t.id LIKE ${prefix})`);
  }
  if (q.after) {
    const op = dir === 'asc' ? '>' : '<';
    where.push(`(${key}, t.id) ${op} (${p(q.after.key)}::${spec.type}, ${p(q.after.id)}::text)`);
  }
  const needsBackup = spec.needs.backup || q.noBackupHours !== null || q.drift;
  const needsGrowth = spec.needs.growth === true;
  const order = dir === 'asc' ? 'ASC' : 'DESC';
  const limit = p(q.limit);
  return {
    text: `WITH page AS (
    SELECT t.id, ${key} AS k
    FROM control.tenants t
    LEFT JOIN control.tenant_stats_latest l ON l.tenant_id = t.id
    ${needsGrowth ? WEEK_AGO : ''}
    ${needsBackup ? LATEST_GOOD_BACKUP : ''}
    WHERE ${where.join('\n      AND ')}
    ORDER BY k ${order}, t.id ${order}
    LIMIT ${limit}
  )
  SELECT t.id, t.display_name, t.state, t.schema_version, t.created_at, t.last_active_at, t.legal_hold,
         t.deleted_at, l.sampled_at, l.total_bytes, l.rows_estimate,
         l.total_bytes - w.total_bytes AS growth_bytes,
         b.id::text AS backup_id, b.finished_at AS backup_at, b.drift AS backup_drift,
         p.k::text AS sort_key
  FROM page p
  JOIN control.tenants t ON t.id = p.id
  LEFT JOIN control.tenant_stats_latest l ON l.tenant_id = t.id
  ${WEEK_AGO}
  ${LATEST_GOOD_BACKUP}
  ORDER BY p.k ${order}, p.id ${order}`,
    values,
  };
}
