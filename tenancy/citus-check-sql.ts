// Catalog queries of the Citus readiness check (tenancy/citus-check.ts), as
// pure functions: the tenant schema's name in, { text, values } out. Each
// returns rows of (table, name, other): `table` is the tenant schema's table
// concerned (bare name), `name` the constraint, column or detail, `other` a
// schema-qualified relation outside the tenant schema, or ''.
import type { Statement } from '../kernel/db.ts';

export const CITUS_RULES = [
  'foreign-key-out',
  'foreign-key-in',
  'no-replica-identity',
  'sequence-in-other-schema',
  'foreign-table',
  'inheritance',
  'partition-across-schemas',
  'multi-level-partitioning',
  'typed-table',
  'extension',
] as const;

export type CitusRule = (typeof CITUS_RULES)[number];

export interface CitusRow {
  table: string;
  name: string;
  other: string;
}

const qualified = (ns: string, rel: string) => `${ns}.nspname || '.' || ${rel}.relname`;

/** Relations of the schema $1, as `t` with namespace `n`. */
const inSchema = (where: string) =>
  `FROM pg_class t JOIN pg_namespace n ON n.oid = t.relnamespace WHERE n.nspname = $1 AND ${where}`;

/** One statement per rule; every one takes the tenant schema as $1. */
export const citusChecks = (schema: string): Record<CitusRule, Statement> => ({
  // conparentid = 0: the constraint itself, not its copies on partitions.
  'foreign-key-out': {
    text: `SELECT t.relname AS table, c.conname AS name, ${qualified('rn', 'r')} AS other
           FROM pg_constraint c
           JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace tn ON tn.oid = t.relnamespace
           JOIN pg_class r ON r.oid = c.confrelid JOIN pg_namespace rn ON rn.oid = r.relnamespace
           WHERE c.contype = 'f' AND c.conparentid = 0 AND tn.nspname = $1 AND rn.nspname <> $1`,
    values: [schema],
  },
  'foreign-key-in': {
    text: `SELECT r.relname AS table, c.conname AS name, ${qualified('tn', 't')} AS other
           FROM pg_constraint c
           JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace tn ON tn.oid = t.relnamespace
           JOIN pg_class r ON r.oid = c.confrelid JOIN pg_namespace rn ON rn.oid = r.relnamespace
           WHERE c.contype = 'f' AND c.conparentid = 0 AND rn.nspname = $1 AND tn.nspname <> $1`,
    values: [schema],
  },
  // What Citus's RelationCanPublishAllModifications accepts: REPLICA IDENTITY
  // FULL, or a replica identity index (the primary key by default). Partitioned
  // parents hold no rows; their partitions are checked as tables.
  'no-replica-identity': {
    text: `SELECT t.relname AS table, t.relreplident::text AS name, '' AS other
           ${inSchema(`t.relkind = 'r' AND NOT (
             t.relreplident = 'f'
             OR (t.relreplident = 'd' AND EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = t.oid AND i.indisprimary))
             OR (t.relreplident = 'i' AND EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = t.oid AND i.indisreplident)))`)}`,
    values: [schema],
  },
  // A column default that calls nextval() of a sequence named as a literal
  // depends on that sequence (pg_depend); identity and serial sequences always
  // live in their table's schema. Both directions: a tenant table using an
  // outside sequence, and an outside table using a tenant sequence.
  'sequence-in-other-schema': {
    text: `SELECT CASE WHEN tn.nspname = $1 THEN t.relname ELSE s.relname END AS table,
                  a.attname AS name,
                  CASE WHEN tn.nspname = $1 THEN ${qualified('sn', 's')} ELSE ${qualified('tn', 't')} END AS other
           FROM pg_attrdef d
           JOIN pg_depend dep ON dep.classid = 'pg_attrdef'::regclass AND dep.objid = d.oid
                             AND dep.refclassid = 'pg_class'::regclass
           JOIN pg_class s ON s.oid = dep.refobjid AND s.relkind = 'S'
           JOIN pg_namespace sn ON sn.oid = s.relnamespace
           JOIN pg_class t ON t.oid = d.adrelid JOIN pg_namespace tn ON tn.oid = t.relnamespace
           JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
           WHERE sn.nspname <> tn.nspname AND $1 IN (sn.nspname, tn.nspname)`,
    values: [schema],
  },
  'foreign-table': {
    text: `SELECT t.relname AS table, '' AS name, '' AS other ${inSchema(`t.relkind = 'f'`)}`,
    values: [schema],
  },
  // pg_inherits holds inheritance, partitions and partitioned indexes: tables only,
  // and relispartition tells partitions apart. A relation of the same schema is named bare.
  inheritance: {
    text: `SELECT CASE WHEN cn.nspname = $1 THEN c.relname ELSE p.relname END AS table,
                  CASE WHEN cn.nspname = $1 THEN 'inherits' ELSE 'inherited by' END AS name,
                  CASE WHEN cn.nspname = pn.nspname THEN CASE WHEN cn.nspname = $1 THEN p.relname ELSE c.relname END
                       WHEN cn.nspname = $1 THEN ${qualified('pn', 'p')} ELSE ${qualified('cn', 'c')} END AS other
           FROM pg_inherits i
           JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_namespace cn ON cn.oid = c.relnamespace
           JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace pn ON pn.oid = p.relnamespace
           WHERE c.relkind IN ('r', 'p', 'f') AND NOT c.relispartition AND $1 IN (cn.nspname, pn.nspname)`,
    values: [schema],
  },
  'partition-across-schemas': {
    text: `SELECT CASE WHEN cn.nspname = $1 THEN c.relname ELSE p.relname END AS table,
                  CASE WHEN cn.nspname = $1 THEN 'partition of' ELSE 'partitioned into' END AS name,
                  CASE WHEN cn.nspname = $1 THEN ${qualified('pn', 'p')} ELSE ${qualified('cn', 'c')} END AS other
           FROM pg_inherits i
           JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_namespace cn ON cn.oid = c.relnamespace
           JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace pn ON pn.oid = p.relnamespace
           WHERE c.relkind IN ('r', 'p', 'f') AND c.relispartition AND cn.nspname <> pn.nspname AND $1 IN (cn.nspname, pn.nspname)`,
    values: [schema],
  },
  'multi-level-partitioning': {
    text: `SELECT t.relname AS table, '' AS name, '' AS other ${inSchema(`t.relkind = 'p' AND t.relispartition`)}`,
    values: [schema],
  },
  'typed-table': {
    text: `SELECT t.relname AS table, (SELECT ty.typname::text FROM pg_type ty WHERE ty.oid = t.reloftype) AS name, '' AS other
           ${inSchema(`t.relkind IN ('r', 'p') AND t.reloftype <> 0`)}`,
    values: [schema],
  },
  // An extension installed into the schema, or a table of the schema that belongs to one.
  extension: {
    text: `SELECT '' AS table, e.extname AS name, '' AS other
           FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE n.nspname = $1
           UNION ALL
           SELECT t.relname, e.extname, ''
           FROM pg_depend dep
           JOIN pg_class t ON dep.classid = 'pg_class'::regclass AND t.oid = dep.objid
           JOIN pg_namespace n ON n.oid = t.relnamespace
           JOIN pg_extension e ON dep.refclassid = 'pg_extension'::regclass AND e.oid = dep.refobjid
           WHERE dep.deptype = 'e' AND n.nspname = $1`,
    values: [schema],
  },
});
