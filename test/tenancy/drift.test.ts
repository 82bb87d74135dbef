import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { ident } from '../../kernel/identifiers.ts';
import {
  compareShapes,
  detectDrift,
  normalise,
  type ShapeObject,
  type TenantDrift,
} from '../../tenancy/drift.ts';
import { provisionTenant } from '../../tenancy/provision.ts';
import { loadTenantMigrations, renderMigration } from '../../tenancy/templates.ts';
import type { TenantRow } from '../../tenancy/tenant-sql.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';

const migrations = loadTenantMigrations();

const drifted = (result: TenantDrift[]) =>
  result.filter((t) => t.differences.length > 0).map((t) => t.tenantId);
const driftOf = (result: TenantDrift[], id: string) => result.find((t) => t.tenantId === id)?.differences;

describe('compareShapes', () => {
  const notes: ShapeObject[] = [
    { kind: 'table', table: 'notes', name: 'notes', definition: 'table' },
    {
      kind: 'column',
      table: 'notes',
      name: 'id',
      definition: 'bigint NOT NULL GENERATED ALWAYS AS IDENTITY',
    },
    { kind: 'column', table: 'notes', name: 'tags', definition: "text[] NOT NULL DEFAULT '{}'::text[]" },
    {
      kind: 'index',
      table: 'notes',
      name: 'notes_pkey',
      definition: 'CREATE UNIQUE INDEX notes_pkey ON {{schema}}.notes USING btree (id)',
    },
    { kind: 'constraint', table: 'notes', name: 'notes_pkey', definition: 'PRIMARY KEY (id)' },
  ];

  test('identical shapes have no differences, whatever the order', () => {
    assert.deepEqual(compareShapes(notes, [...notes].reverse()), []);
  });

  test('reports missing, unexpected and changed objects with expected and actual definitions', () => {
    const [table, , , index, constraint] = notes as [
      ShapeObject,
      ShapeObject,
      ShapeObject,
      ShapeObject,
      ShapeObject,
    ];
    const actual: ShapeObject[] = [
      table,
      { kind: 'column', table: 'notes', name: 'id', definition: 'integer NOT NULL' },
      index,
      constraint,
      {
        kind: 'index',
        table: 'notes',
        name: 'extra_idx',
        definition: 'CREATE INDEX extra_idx ON {{schema}}.notes USING btree (id)',
      },
    ];
    assert.deepEqual(compareShapes(notes, actual), [
      {
        kind: 'column',
        object: 'notes.id',
        problem: 'changed',
        expected: 'bigint NOT NULL GENERATED ALWAYS AS IDENTITY',
        actual: 'integer NOT NULL',
      },
      {
        kind: 'column',
        object: 'notes.tags',
        problem: 'missing',
        expected: "text[] NOT NULL DEFAULT '{}'::text[]",
      },
      {
        kind: 'index',
        object: 'notes.extra_idx',
        problem: 'unexpected',
        actual: 'CREATE INDEX extra_idx ON {{schema}}.notes USING btree (id)',
      },
    ]);
  });

  test('a missing or unexpected table is reported once, not once per column, index and constraint', () => {
    const other = notes.map((o) => ({ ...o, table: 'other', name: o.kind === 'table' ? 'other' : o.name }));
    assert.deepEqual(compareShapes(notes, other), [
      { kind: 'table', object: 'notes', problem: 'missing', expected: 'table' },
      { kind: 'table', object: 'other', problem: 'unexpected', actual: 'table' },
    ]);
  });

  test('normalise replaces the schema name, quoted or bare, and nothing that merely contains it', () => {
    const s = 't_abcdef123456';
    assert.equal(
      normalise(`REFERENCES ${s}.notes(id) "${s}".x ${s}_y x${s} nextval('${s}.seq')`, s),
      `REFERENCES {{schema}}.notes(id) {{schema}}.x ${s}_y x${s} nextval('{{schema}}.seq')`,
    );
    assert.throws(() => normalise('x', 'public'), /generated-name pattern/);
  });
});

describe('detectDrift', () => {
  let db: TestDatabase;
  let clean: TenantRow[];
  let older: TenantRow;
  const provision = (name: string, list = migrations) =>
    provisionTenant(db.pool, { displayName: name }, list);
  const exec = (text: string) => db.pool.query(text);
  // Checks the clean tenants plus `extra`: "exactly that tenant" means none of the clean ones drifted.
  const driftWith = (...extra: TenantRow[]) =>
    detectDrift(db.pool, migrations, { tenantIds: [...clean, older, ...extra].map((t) => t.id) });

  before(async () => {
    db = await createTestDatabase();
    clean = [await provision('Clean A'), await provision('Clean B'), await provision('Clean C')];
    older = await provision('Older', migrations.slice(0, 1));
  });
  after(async () => {
    await db.drop();
  });

  test('a freshly provisioned fleet shows no drift, one entry per live tenant', async (t) => {
    const started = performance.now();
    const result = await detectDrift(db.pool, migrations);
    t.diagnostic(`drift over ${result.length} tenants took ${(performance.now() - started).toFixed(0)} ms`);
    assert.deepEqual(result.map((r) => r.tenantId).sort(), [...clean, older].map((r) => r.id).sort());
    assert.deepEqual(drifted(result), []);
  });

  test('a tenant at an older schema_version is compared with that version, not the latest', async () => {
    const result = await driftWith();
    const entry = result.find((r) => r.tenantId === older.id);
    assert.equal(entry?.version, 1);
    assert.deepEqual(entry?.differences, []);
  });

  test('a column dropped by hand is reported as missing, for that tenant only', async () => {
    const victim = await provision('Dropped column');
    await exec(`ALTER TABLE ${ident(victim.schema_name)}.notes DROP COLUMN tags`);
    const result = await driftWith(victim);
    assert.deepEqual(drifted(result), [victim.id]);
    assert.deepEqual(
      driftOf(result, victim.id)?.map((d) => [d.kind, d.object, d.problem]),
      [
        ['column', 'notes.tags', 'missing'],
        // PostgreSQL drops the column's index with it: that is drift too.
        ['index', 'notes.notes_tags_idx', 'missing'],
      ],
    );
  });

  test('an index created by hand is reported as unexpected, for that tenant only', async () => {
    const victim = await provision('Extra index');
    await exec(`CREATE INDEX tasks_title_idx ON ${ident(victim.schema_name)}.tasks (title)`);
    const result = await driftWith(victim);
    assert.deepEqual(drifted(result), [victim.id]);
    assert.deepEqual(driftOf(result, victim.id), [
      {
        kind: 'index',
        object: 'tasks.tasks_title_idx',
        problem: 'unexpected',
        actual: 'CREATE INDEX tasks_title_idx ON {{schema}}.tasks USING btree (title)',
      },
    ]);
  });

  test('a column whose type was changed by hand is reported as changed, with both definitions', async () => {
    const victim = await provision('Changed type');
    await exec(`ALTER TABLE ${ident(victim.schema_name)}.notes ALTER COLUMN version TYPE bigint`);
    const result = await driftWith(victim);
    assert.deepEqual(drifted(result), [victim.id]);
    assert.deepEqual(driftOf(result, victim.id), [
      {
        kind: 'column',
        object: 'notes.version',
        problem: 'changed',
        expected: 'integer NOT NULL DEFAULT 1',
        actual: 'bigint NOT NULL DEFAULT 1',
      },
    ]);
  });

  test('a table from a later migration, applied without recording the version, is one unexpected table', async () => {
    const victim = await provision('Half migrated', migrations.slice(0, 1));
    const client = await db.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(`SET LOCAL search_path TO ${ident(victim.schema_name)}`);
      await client.query(
        renderMigration(migrations[1] as (typeof migrations)[number], {
          schema: victim.schema_name,
          role: victim.role_name,
        }),
      );
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    const result = await driftWith(victim);
    assert.deepEqual(drifted(result), [victim.id]);
    assert.deepEqual(driftOf(result, victim.id), [
      { kind: 'table', object: 'tasks', problem: 'unexpected', actual: 'table' },
    ]);
  });

  test('a tenant whose schema is gone is reported as a missing schema', async () => {
    const victim = await provision('No schema');
    await exec(`DROP SCHEMA ${ident(victim.schema_name)} CASCADE`);
    const result = await driftWith(victim);
    assert.deepEqual(drifted(result), [victim.id]);
    assert.deepEqual(driftOf(result, victim.id), [
      { kind: 'schema', object: victim.schema_name, problem: 'missing' },
    ]);
  });

  test('a tenant ahead of the known migrations is refused, not compared with a guess', async () => {
    await assert.rejects(
      detectDrift(db.pool, migrations.slice(0, 1)),
      new RegExp(`at schema version ${migrations.length} but migrations only go to 1`),
    );
  });

  // Roles are cluster-wide and other test files create theirs concurrently, so
  // a leftover role is one that is not our tenant yet holds a privilege here.
  async function scratchLeftovers() {
    const { rows } = await db.pool.query(
      `SELECT 'schema' AS what, nspname AS name FROM pg_namespace n
        WHERE nspname LIKE 't\\_%' AND NOT EXISTS (SELECT 1 FROM control.tenants t WHERE t.schema_name = n.nspname)
       UNION ALL
       SELECT 'role', rolname FROM pg_roles r
        WHERE rolname LIKE 't\\_%' AND NOT EXISTS (SELECT 1 FROM control.tenants t WHERE t.role_name = r.rolname)
          AND EXISTS (SELECT 1 FROM pg_shdepend s JOIN pg_database d ON d.oid = s.dbid
                       WHERE s.refclassid = 'pg_authid'::regclass AND s.refobjid = r.oid AND d.datname = current_database())`,
    );
    return rows;
  }

  test('the scratch schemas and roles never survive a drift run', async () => {
    await detectDrift(db.pool, migrations);
    assert.deepEqual(await scratchLeftovers(), []);
  });

  test('an expected shape is built once per pool and migration texts: later checks create no scratch schema', async () => {
    const pool = new pg.Pool({ connectionString: db.url, max: 1 });
    const created: string[] = [];
    pool.on('connect', (client) => {
      const query = client.query.bind(client) as (...args: unknown[]) => unknown;
      (client as { query: unknown }).query = (...args: unknown[]) => {
        const text = typeof args[0] === 'string' ? args[0] : (args[0] as { text?: string })?.text;
        if (text?.startsWith('CREATE SCHEMA')) created.push(text);
        return query(...args);
      };
    });
    try {
      const ids = { tenantIds: [clean[0]?.id as string] };
      assert.deepEqual(drifted(await detectDrift(pool, migrations, ids)), []);
      assert.equal(created.length, 1, 'the first check builds the expected shape');
      assert.deepEqual(drifted(await detectDrift(pool, migrations, ids)), []);
      assert.equal(created.length, 1, 'the second check reuses it');
      const edited = migrations.map((m) =>
        m.version === 2 ? { ...m, template: `${m.template}\n-- edited` } : m,
      );
      await detectDrift(pool, edited, ids);
      assert.equal(created.length, 2, 'a changed migration text is built again, never served from the cache');
    } finally {
      await pool.end();
    }
    assert.deepEqual(await scratchLeftovers(), []);
  });

  test('a migration that fails while building the expected shape names itself and leaves nothing behind', async () => {
    const broken = migrations.map((m) =>
      m.version === 2 ? { ...m, template: 'CREATE TABLE {{schema}}.oops (x no_such_type);' } : m,
    );
    await assert.rejects(
      detectDrift(db.pool, broken),
      /migration 0002_tasks failed: type "no_such_type" does not exist/,
    );
    assert.deepEqual(await scratchLeftovers(), []);
    assert.deepEqual(drifted(await driftWith()), [], 'the pool still works after the failed run');
  });
});
