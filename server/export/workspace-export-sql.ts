// The statements an export runs inside the tenant's unit of work, as the tenant
// role: which tables there are, and a server-side cursor over each. The unit of
// work runs them through MikroORM, whose raw execute reads `?` as a
// placeholder, so none of this SQL uses a `?` operator.
import type { Statement } from '../../kernel/db.ts';
import { ident } from '../../kernel/identifiers.ts';

export interface ExportTable {
  table: string;
  /** Every stored column in table order; generated ones (notes.search) are left out. */
  columns: string[];
  /** Primary-key columns, for a stable row order. */
  key: string[];
}

/**
 * Every table of the tenant schema the tenant role may read, from the catalog:
 * a table added by a later migration is exported without touching this code.
 * Generated columns are derived data (the search vector), so they are left out.
 */
export const exportTables = (schema: string): Statement => ({
  text: `SELECT c.relname::text AS "table",
                array_agg(a.attname::text ORDER BY a.attnum) FILTER (WHERE a.attgenerated = '') AS columns,
                coalesce((SELECT array_agg(k.attname::text ORDER BY u.ord)
                            FROM pg_constraint p
                            CROSS JOIN LATERAL unnest(p.conkey) WITH ORDINALITY AS u(attnum, ord)
                            JOIN pg_attribute k ON k.attrelid = p.conrelid AND k.attnum = u.attnum
                           WHERE p.conrelid = c.oid AND p.contype = 'p'), '{}') AS key
           FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace
           JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
          WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition
            AND has_table_privilege(c.oid, 'SELECT')
          GROUP BY c.oid, c.relname
          ORDER BY c.relname`,
  values: [schema],
});

export const CURSOR = 'enclave_export';

/**
 * A cursor whose rows are single JSON texts, one per table row, built by
 * PostgreSQL: values keep their exact form (bigint ids, microsecond
 * timestamps, arrays) and Node never builds an object per row.
 */
export function declareCursor(schema: string, t: ExportTable): Statement {
  if (t.columns.length === 0) throw new Error(`table ${t.table} has no exportable columns`);
  const cols = t.columns.map((c) => `t.${ident(c)}`).join(', ');
  const order = t.key.length ? ` ORDER BY ${t.key.map((c) => `t.${ident(c)}`).join(', ')}` : '';
  // row_to_json over a LATERAL row keeps the table's column order as the key order.
  return {
    text: `DECLARE ${CURSOR} NO SCROLL CURSOR FOR
             SELECT row_to_json(r)::text AS line
               FROM ${ident(schema)}.${ident(t.table)} t
              CROSS JOIN LATERAL (SELECT ${cols}) r${order}`,
    values: [],
  };
}

export const fetchRows = (batch: number): Statement => {
  if (!Number.isInteger(batch) || batch < 1) throw new Error(`bad batch size ${batch}`);
  return { text: `FETCH FORWARD ${batch} FROM ${CURSOR}`, values: [] };
};

export const closeCursor = (): Statement => ({ text: `CLOSE ${CURSOR}`, values: [] });

/** The transaction's start time: with REPEATABLE READ, close to the snapshot's moment. */
export const transactionTime = (): Statement => ({ text: 'SELECT now() AS at', values: [] });
