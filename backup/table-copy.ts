// One tenant schema's tables, read from the catalog (that schema only), and
// the COPY statements that move their rows out and in. Every COPY runs on a
// dedicated client through pg-copy-streams, one at a time (never in and out at
// once on one connection, never through pool.query). Identifiers come from
// the catalog and are quoted with ident(); the schema name is checked first.
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import type { Client, Statement } from '../kernel/db.ts';
import { ident } from '../kernel/identifiers.ts';

export interface TableInfo {
  name: string;
  /** Columns copied, in attnum order; generated columns are left out (recomputed on load). */
  columns: string[];
  /** Primary key columns in key order (empty: no primary key, rows copied in no set order). */
  primaryKey: string[];
}

export interface SequenceInfo {
  name: string;
  lastValue: string;
  isCalled: boolean;
}

/**
 * COPY text is made deterministic by these transaction-local settings: the
 * same rows always give the same bytes (the manifest's contentSha256, and
 * verify's comparison of a reloaded table, depend on it).
 */
export const copySettings: Statement = {
  text: `SELECT set_config('TimeZone', 'UTC', true), set_config('DateStyle', 'ISO, YMD', true),
                set_config('IntervalStyle', 'postgres', true), set_config('extra_float_digits', '1', true),
                set_config('bytea_output', 'hex', true)`,
  values: [],
};

export const setLockTimeout = (ms: number): Statement => ({
  text: "SELECT set_config('lock_timeout', $1, true)",
  values: [`${Math.max(0, Math.trunc(ms))}ms`],
});

// --- catalog ---------------------------------------------------------------

const selectTables = (schema: string): Statement => ({
  text: `SELECT c.relname AS name,
                array(SELECT a.attname::text FROM pg_attribute a
                      WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
                      ORDER BY a.attnum) AS columns,
                coalesce((SELECT array(SELECT a.attname::text
                                       FROM unnest(x.indkey) WITH ORDINALITY AS k(attnum, ord)
                                       JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
                                       ORDER BY k.ord)
                          FROM pg_index x WHERE x.indrelid = c.oid AND x.indisprimary), '{}') AS primary_key
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition
         ORDER BY c.relname`,
  values: [schema],
});

/** Foreign keys between tables of the schema (child references parent). */
const selectForeignKeys = (schema: string): Statement => ({
  text: `SELECT ch.relname AS child, pa.relname AS parent
         FROM pg_constraint k
         JOIN pg_class ch ON ch.oid = k.conrelid JOIN pg_namespace n ON n.oid = ch.relnamespace
         JOIN pg_class pa ON pa.oid = k.confrelid JOIN pg_namespace pn ON pn.oid = pa.relnamespace
         WHERE k.contype = 'f' AND n.nspname = $1 AND pn.nspname = $1 AND ch.oid <> pa.oid`,
  values: [schema],
});

const selectSequenceNames = (schema: string): Statement => ({
  text: `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = $1 AND c.relkind = 'S' ORDER BY c.relname`,
  values: [schema],
});

/**
 * The schema's tables, parents before children (foreign keys between its own
 * tables), then by name: the order a load must follow, as FK checks stay on.
 */
export async function discoverTables(client: Client, schema: string): Promise<TableInfo[]> {
  const tables = (
    await client.query<{ name: string; columns: string[]; primary_key: string[] }>(selectTables(schema))
  ).rows.map((r) => ({ name: r.name, columns: r.columns, primaryKey: r.primary_key }));
  return orderByDependencies(tables, await discoverForeignKeys(client, schema));
}

/** Foreign keys between the schema's own tables (a table referring to itself is left out). */
export async function discoverForeignKeys(
  client: Client,
  schema: string,
): Promise<{ child: string; parent: string }[]> {
  return (await client.query<{ child: string; parent: string }>(selectForeignKeys(schema))).rows;
}

/** Topological order (parents first), ties by name; a cycle keeps its members in name order at the end. */
export function orderByDependencies<T extends { name: string }>(
  tables: readonly T[],
  fks: readonly { child: string; parent: string }[],
): T[] {
  const byName = new Map(tables.map((t) => [t.name, t]));
  const parents = new Map<string, Set<string>>(tables.map((t) => [t.name, new Set()]));
  for (const { child, parent } of fks)
    if (byName.has(child) && byName.has(parent)) parents.get(child)?.add(parent);
  const out: T[] = [];
  const placed = new Set<string>();
  const names = [...byName.keys()].sort();
  while (placed.size < names.length) {
    const ready = names.filter(
      (n) => !placed.has(n) && [...(parents.get(n) ?? [])].every((p) => placed.has(p)),
    );
    const next = ready.length ? ready : names.filter((n) => !placed.has(n));
    for (const n of next) {
      placed.add(n);
      out.push(byName.get(n) as T);
    }
  }
  return out;
}

/** Every sequence of the schema with its position (read now: sequences are not transactional). */
export async function readSequences(client: Client, schema: string): Promise<SequenceInfo[]> {
  const names = (await client.query<{ name: string }>(selectSequenceNames(schema))).rows.map((r) => r.name);
  const out: SequenceInfo[] = [];
  for (const name of names) {
    const { rows } = await client.query<{ last_value: string; is_called: boolean }>(
      `SELECT last_value::text AS last_value, is_called FROM ${ident(schema)}.${ident(name)}`,
    );
    const row = rows[0] as { last_value: string; is_called: boolean };
    out.push({ name, lastValue: row.last_value, isCalled: row.is_called });
  }
  return out;
}

export const setSequence = (schema: string, s: SequenceInfo): Statement => {
  if (!/^-?\d{1,19}$/.test(s.lastValue))
    throw new RangeError(`sequence ${s.name}: bad position ${s.lastValue}`);
  return {
    text: 'SELECT setval($1::regclass, $2::bigint, $3)',
    values: [`${ident(schema)}.${ident(s.name)}`, s.lastValue, s.isCalled],
  };
};

/**
 * What a bulk load builds faster afterwards than row by row: the schema's
 * plain indexes (those that back no constraint) and its foreign keys, each
 * with the definition PostgreSQL prints for it. A load into tables made in
 * the same transaction drops them first and creates them again, identical,
 * once the rows are in (as pg_restore orders it): one sorted index build and
 * one join per foreign key instead of a GIN insert and a lookup per row.
 */
export interface DeferredObjects {
  indexes: { table: string; name: string; definition: string }[];
  foreignKeys: { table: string; name: string; definition: string }[];
}

const selectDeferrable = (schema: string): Statement => ({
  text: `SELECT 'index' AS kind, t.relname AS table, i.relname AS name, pg_get_indexdef(i.oid) AS definition
         FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
         JOIN pg_namespace n ON n.oid = t.relnamespace
         WHERE n.nspname = $1 AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.oid)
           AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.refobjid = i.oid AND d.refclassid = 'pg_class'::regclass
                           AND d.deptype = 'n')
         UNION ALL
         SELECT 'fk', t.relname, k.conname, pg_get_constraintdef(k.oid)
         FROM pg_constraint k JOIN pg_class t ON t.oid = k.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace
         WHERE n.nspname = $1 AND k.contype = 'f'
         ORDER BY 1, 2, 3`,
  values: [schema],
});

export async function discoverDeferrable(client: Client, schema: string): Promise<DeferredObjects> {
  const { rows } = await client.query<{ kind: string; table: string; name: string; definition: string }>(
    selectDeferrable(schema),
  );
  const pick = (kind: string) =>
    rows.filter((r) => r.kind === kind).map(({ table, name, definition }) => ({ table, name, definition }));
  return { indexes: pick('index'), foreignKeys: pick('fk') };
}

export const dropIndex = (schema: string, name: string) => `DROP INDEX ${ident(schema)}.${ident(name)}`;
export const dropConstraint = (schema: string, table: string, name: string) =>
  `ALTER TABLE ${ident(schema)}.${ident(table)} DROP CONSTRAINT ${ident(name)}`;
/** pg_get_constraintdef's text, as printed by PostgreSQL for a constraint of this very schema. */
export const addConstraint = (schema: string, table: string, name: string, definition: string) =>
  `ALTER TABLE ${ident(schema)}.${ident(table)} ADD CONSTRAINT ${ident(name)} ${definition}`;

/** LOCK TABLE … IN <mode> MODE on the given tables of one schema, in one statement. */
export function lockTables(
  schema: string,
  tables: readonly string[],
  mode: 'ACCESS SHARE' | 'ACCESS EXCLUSIVE',
) {
  if (tables.length === 0) return null;
  return `LOCK TABLE ${tables.map((t) => `${ident(schema)}.${ident(t)}`).join(', ')} IN ${mode} MODE`;
}

/** TRUNCATE of every given table at once (foreign keys between them allow it only together). */
export function truncateTables(schema: string, tables: readonly string[]) {
  if (tables.length === 0) return null;
  return `TRUNCATE ${tables.map((t) => `${ident(schema)}.${ident(t)}`).join(', ')}`;
}

export const setUserTriggers = (schema: string, table: string, enabled: boolean) =>
  `ALTER TABLE ${ident(schema)}.${ident(table)} ${enabled ? 'ENABLE' : 'DISABLE'} TRIGGER USER`;

// --- COPY ------------------------------------------------------------------

const columnList = (columns: readonly string[]) => columns.map(ident).join(', ');

export function copyOutSql(
  schema: string,
  table: { name: string; columns: readonly string[]; primaryKey: readonly string[] },
) {
  const order = table.primaryKey.length ? ` ORDER BY ${columnList(table.primaryKey)}` : '';
  return `COPY (SELECT ${columnList(table.columns)} FROM ${ident(schema)}.${ident(table.name)}${order}) TO STDOUT`;
}

export function copyInSql(schema: string, table: string, columns: readonly string[]) {
  return `COPY ${ident(schema)}.${ident(table)} (${columnList(columns)}) FROM STDIN`;
}

/**
 * Streams one table's rows (COPY text) into `sink`, ending it when done unless
 * `end` is false. Returns the row count PostgreSQL reports.
 */
export async function copyTableOut(
  client: Client,
  schema: string,
  table: TableInfo,
  sink: Writable,
  options: { end?: boolean } = {},
): Promise<number> {
  const source = client.query(copyTo(copyOutSql(schema, table)));
  await pipeline(source, sink, { end: options.end ?? true });
  return source.rowCount;
}

/** Loads COPY text from `rows` into one table; returns the row count PostgreSQL reports. */
export async function copyTableIn(
  client: Client,
  schema: string,
  table: string,
  columns: readonly string[],
  rows: Readable,
): Promise<number> {
  const sink = client.query(copyFrom(copyInSql(schema, table, columns)));
  await pipeline(rows, sink);
  return sink.rowCount;
}
