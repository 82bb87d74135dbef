// Every tenant migration must stay Citus-ready (schema-based sharding moves a
// whole tenant schema between nodes): bigint keys, no foreign key that leaves
// the tenant's schema, no CREATE TABLE AS, nothing outside {{schema}}.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { newTenantId, tenantNames } from '../../kernel/identifiers.ts';
import { loadTenantMigrations, renderMigration } from '../../tenancy/templates.ts';
import * as sql from '../../tenancy/tenant-sql.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';

const migrations = loadTenantMigrations();

/** Strips comments and string literals so the text rules look at SQL only. */
function code(template: string): string {
  return template
    .replace(/--[^\n]*/g, '')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/'(?:[^']|'')*'/g, "''");
}

const textRules: Array<[string, RegExp]> = [
  ['no CREATE TABLE ... AS', /CREATE\s+(?:UNLOGGED\s+|TEMP(?:ORARY)?\s+)?TABLE\s[^;(]*\bAS\b/i],
  ['no serial / smallserial / bigserial (use bigint identity)', /\b(?:small|big)?serial\b/i],
  ['no integer identity (keys are bigint)', /\b(?:int|integer|int4|smallint)\s+(?:NOT NULL\s+)?GENERATED\b/i],
  ['no REFERENCES outside the tenant schema', /REFERENCES\s+(?!\{\{schema\}\}\.)/i],
  ['no other schema named (control, public)', /\b(?:control|public)\s*\./i],
  // A statement of its own; a function's `SET search_path = ...` clause only applies inside that function.
  ['no search_path or role changes', /(?:^|;)\s*SET\s+(?:LOCAL\s+)?(?:search_path|ROLE|SESSION)\b/i],
  [
    'a SECURITY DEFINER function pins its search_path',
    /SECURITY\s+DEFINER(?![^;$]*SET\s+search_path\s*=\s*pg_catalog\s*,\s*pg_temp\b)/i,
  ],
  ['no CREATE SCHEMA, no CREATE/ALTER ROLE', /\bCREATE\s+SCHEMA\b|\b(?:CREATE|ALTER|DROP)\s+ROLE\b/i],
  ['no grants to PUBLIC', /\bTO\s+PUBLIC\b/i],
];

describe('tenant migrations stay Citus-ready', () => {
  for (const m of migrations) {
    for (const [rule, pattern] of textRules) {
      test(`${m.name}: ${rule}`, () => {
        assert.doesNotMatch(code(m.template), pattern);
      });
    }
    test(`${m.name}: every table and function is qualified with {{schema}}`, () => {
      for (const [, target] of code(m.template).matchAll(
        /\b(?:TABLE|ON|INTO|UPDATE|FROM|FUNCTION)\s+(?:FUNCTION\s+)?(?:IF\s+(?:NOT\s+)?EXISTS\s+)?([^\s(;]+)/gi,
      )) {
        // ON CONFLICT, ON DELETE/UPDATE (foreign keys), UPDATE OR ... (trigger events), REVOKE ... FROM PUBLIC.
        if (/^(?:USING|ONLY|CONFLICT|DELETE|UPDATE|OR|PUBLIC)$/i.test(target ?? '')) continue;
        assert.match(target ?? '', /^\{\{schema\}\}\./, `unqualified name ${target}`);
      }
    });
  }

  describe('checked in the catalog after applying them all', () => {
    let db: TestDatabase;
    let schema: string;
    const outside =
      "SELECT count(*)::int AS n FROM pg_class WHERE relnamespace NOT IN (SELECT oid FROM pg_namespace WHERE nspname IN ($1, 'pg_toast'))";
    let outsideBefore: number;
    before(async () => {
      db = await createTestDatabase(1);
      const names = tenantNames(newTenantId());
      schema = names.schema;
      // Applied to a scratch schema in a transaction that is kept only for the checks below.
      await db.pool.query('BEGIN');
      outsideBefore = (await db.pool.query(outside, [names.schema])).rows[0].n;
      await db.pool.query(sql.createRole(names.role));
      await db.pool.query(sql.createSchema(names.schema));
      for (const m of migrations) await db.pool.query(renderMigration(m, names));
    });
    after(async () => {
      await db.pool.query('ROLLBACK');
      await db.drop();
    });

    test('every primary key is a single bigint column', async () => {
      const { rows } = await db.pool.query(
        `SELECT c.conrelid::regclass::text AS tbl, array_agg(format_type(a.atttypid, a.atttypmod)) AS types
           FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
          WHERE c.contype = 'p' AND c.connamespace = $1::regnamespace GROUP BY 1`,
        [schema],
      );
      assert.ok(rows.length >= 2);
      for (const r of rows) assert.deepEqual(r.types, ['bigint'], r.tbl);
    });

    test('no foreign key points outside the tenant schema', async () => {
      const { rows } = await db.pool.query(
        `SELECT conname, confrelid::regclass::text AS target FROM pg_constraint
          WHERE contype = 'f' AND connamespace = $1::regnamespace
            AND (SELECT relnamespace FROM pg_class WHERE oid = confrelid) <> $1::regnamespace`,
        [schema],
      );
      assert.deepEqual(rows, []);
    });

    test('nothing was created outside the tenant schema', async () => {
      const after = (await db.pool.query(outside, [schema])).rows[0].n;
      assert.equal(after, outsideBefore);
    });
  });
});
