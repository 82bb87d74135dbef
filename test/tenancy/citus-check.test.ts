// The Citus readiness check (tenancy/citus-check.ts): the shipped templates
// pass, and a template that breaks a rule is reported with the exact rule,
// table and migration. This is what keeps the templates fit for Citus
// schema-based sharding in CI (docs/SCALING.md).
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { type CitusViolation, checkCitusReadiness } from '../../tenancy/citus-check.ts';
import { loadTenantMigrations } from '../../tenancy/templates.ts';
import { enclaveWith, oneLine } from '../helpers/cli.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';
import { migrationsDirWith } from '../helpers/migrations.ts';

let db: TestDatabase;
const dirs: string[] = [];

before(async () => {
  db = await createTestDatabase();
});
after(async () => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  await db?.drop();
});

/** The violations of the shipped templates plus one extra migration `bad`. */
async function checkWith(sql: string): Promise<{ violations: CitusViolation[]; migration: string }> {
  const extra = migrationsDirWith({ bad: sql });
  dirs.push(extra.dir);
  const violations = await checkCitusReadiness(db.pool, loadTenantMigrations(extra.dir));
  return { violations, migration: extra.names.bad as string };
}

/** rule, table and migration of each violation, in the reported order. */
const brief = (vs: CitusViolation[]) =>
  vs.map((v) => ({ rule: v.rule, table: v.table, migration: v.migration }));

describe('checkCitusReadiness', () => {
  test('the shipped tenant templates have no violation', async () => {
    assert.deepEqual(await checkCitusReadiness(db.pool, loadTenantMigrations()), []);
  });

  test('leaves nothing behind: no scratch schema, role or outside object survives the check', async () => {
    const before = (await db.pool.query('SELECT count(*)::int AS n FROM pg_namespace')).rows[0].n;
    await checkWith('CREATE SCHEMA leftover; CREATE TABLE leftover.x (id int PRIMARY KEY);');
    const after = (await db.pool.query('SELECT count(*)::int AS n FROM pg_namespace')).rows[0].n;
    assert.equal(after, before);
  });

  test('a foreign key to a table in another schema (the control plane) is foreign-key-out', async () => {
    const { violations, migration } = await checkWith(
      'ALTER TABLE {{schema}}.notes ADD COLUMN tenant_id text REFERENCES control.tenants (id);',
    );
    assert.deepEqual(brief(violations), [{ rule: 'foreign-key-out', table: 'notes', migration }]);
    assert.equal(violations[0]?.source, 'citus');
    assert.match(violations[0]?.message ?? '', /notes_tenant_id_fkey references control\.tenants/);
  });

  test('a foreign key from another schema into the tenant schema is foreign-key-in', async () => {
    const { violations, migration } = await checkWith(
      'CREATE TABLE public.outside (id int PRIMARY KEY, note_id bigint REFERENCES {{schema}}.notes (id));',
    );
    assert.deepEqual(brief(violations), [{ rule: 'foreign-key-in', table: 'notes', migration }]);
    assert.match(violations[0]?.message ?? '', /public\.outside references it/);
  });

  test('a table without a primary key is no-replica-identity, and so is REPLICA IDENTITY NOTHING', async () => {
    const { violations, migration } = await checkWith(
      `CREATE TABLE {{schema}}.events (at timestamptz NOT NULL, what text);
       CREATE TABLE {{schema}}.blobs (id bigint PRIMARY KEY);
       ALTER TABLE {{schema}}.blobs REPLICA IDENTITY NOTHING;`,
    );
    assert.deepEqual(brief(violations), [
      { rule: 'no-replica-identity', table: 'blobs', migration },
      { rule: 'no-replica-identity', table: 'events', migration },
    ]);
    assert.match(violations[0]?.message ?? '', /REPLICA IDENTITY NOTHING/);
    assert.match(violations[1]?.message ?? '', /has no primary key/);
  });

  test('a unique index declared as replica identity, or REPLICA IDENTITY FULL, is enough without a primary key', async () => {
    const { violations } = await checkWith(
      `CREATE TABLE {{schema}}.events (seq bigint NOT NULL, at timestamptz);
       CREATE UNIQUE INDEX events_seq_idx ON {{schema}}.events (seq);
       ALTER TABLE {{schema}}.events REPLICA IDENTITY USING INDEX events_seq_idx;
       CREATE TABLE {{schema}}.log (at timestamptz);
       ALTER TABLE {{schema}}.log REPLICA IDENTITY FULL;`,
    );
    assert.deepEqual(violations, []);
  });

  test('a DEFAULT nextval() of a sequence in another schema is sequence-in-other-schema (an Enclave rule)', async () => {
    const { violations, migration } = await checkWith(
      `CREATE SEQUENCE public.shared_ids;
       CREATE TABLE {{schema}}.labels (id bigint PRIMARY KEY DEFAULT nextval('public.shared_ids'), name text);`,
    );
    assert.deepEqual(brief(violations), [{ rule: 'sequence-in-other-schema', table: 'labels', migration }]);
    assert.equal(violations[0]?.source, 'enclave');
    assert.match(violations[0]?.message ?? '', /column id .*\(public\.shared_ids\)/);
  });

  test('identity, serial and a sequence of the tenant schema itself are fine', async () => {
    const { violations } = await checkWith(
      `CREATE SEQUENCE {{schema}}.label_ids;
       CREATE TABLE {{schema}}.labels (id bigint PRIMARY KEY DEFAULT nextval('{{schema}}.label_ids'));
       CREATE TABLE {{schema}}.tags (id bigserial PRIMARY KEY);
       CREATE TABLE {{schema}}.marks (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY);`,
    );
    assert.deepEqual(violations, []);
  });

  test('table inheritance is refused, both the child and its missing primary key are reported', async () => {
    const { violations, migration } = await checkWith(
      'CREATE TABLE {{schema}}.archived_notes () INHERITS ({{schema}}.notes);',
    );
    assert.deepEqual(brief(violations), [
      { rule: 'inheritance', table: 'archived_notes', migration },
      { rule: 'no-replica-identity', table: 'archived_notes', migration },
    ]);
    assert.match(violations[0]?.message ?? '', /inherits notes by table inheritance/);
  });

  test('partitioning within the schema is fine; a partition in another schema or a second level is not', async () => {
    const { violations, migration } = await checkWith(
      `CREATE TABLE {{schema}}.log (id bigint, at date, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
       CREATE TABLE {{schema}}.log_2024 PARTITION OF {{schema}}.log FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
       CREATE TABLE public.log_2025 PARTITION OF {{schema}}.log FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
       CREATE TABLE {{schema}}.log_2026 PARTITION OF {{schema}}.log
         FOR VALUES FROM ('2026-01-01') TO ('2027-01-01') PARTITION BY LIST (id);`,
    );
    assert.deepEqual(brief(violations), [
      { rule: 'partition-across-schemas', table: 'log', migration },
      { rule: 'multi-level-partitioning', table: 'log_2026', migration },
    ]);
    assert.match(violations[0]?.message ?? '', /partitioned into public\.log_2025/);
  });

  test('a foreign table is refused', async () => {
    const { violations, migration } = await checkWith(
      `CREATE FOREIGN DATA WRAPPER citus_check_fdw;
       CREATE SERVER citus_check_server FOREIGN DATA WRAPPER citus_check_fdw;
       CREATE FOREIGN TABLE {{schema}}.remote (id int) SERVER citus_check_server;`,
    );
    assert.deepEqual(brief(violations), [{ rule: 'foreign-table', table: 'remote', migration }]);
  });

  test('a typed table (CREATE TABLE ... OF) is refused', async () => {
    const { violations, migration } = await checkWith(
      `CREATE TYPE {{schema}}.pair AS (a int, b int);
       CREATE TABLE {{schema}}.pairs OF {{schema}}.pair (PRIMARY KEY (a));`,
    );
    assert.deepEqual(brief(violations), [{ rule: 'typed-table', table: 'pairs', migration }]);
    assert.match(violations[0]?.message ?? '', /OF pair/);
  });

  test('an extension installed into the tenant schema is refused', async () => {
    const { violations, migration } = await checkWith('CREATE EXTENSION pg_trgm SCHEMA {{schema}};');
    assert.deepEqual(brief(violations), [{ rule: 'extension', table: '', migration }]);
    assert.match(violations[0]?.message ?? '', /extension pg_trgm is installed into the tenant schema/);
  });

  test('a violation is named after the migration that introduced it and is gone once a later one fixes it', async () => {
    const extra = migrationsDirWith({
      events: 'CREATE TABLE {{schema}}.events (at timestamptz NOT NULL);',
      events_tenant:
        'ALTER TABLE {{schema}}.events ADD COLUMN tenant_id text REFERENCES control.tenants (id);',
      events_key:
        'ALTER TABLE {{schema}}.events ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY;',
    });
    dirs.push(extra.dir);
    const violations = await checkCitusReadiness(db.pool, loadTenantMigrations(extra.dir));
    assert.deepEqual(brief(violations), [
      { rule: 'foreign-key-out', table: 'events', migration: extra.names.events_tenant },
    ]);
  });
});

describe('enclave tenants check-citus', () => {
  const enclave = enclaveWith(() => ({ DATABASE_URL: db.url, DIRECT_DATABASE_URL: db.directUrl }));

  test('exits 0 with one OK line on the shipped templates', () => {
    const r = enclave(['tenants', 'check-citus']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      oneLine(r.stdout),
      `OK: ${loadTenantMigrations().length} tenant migrations fit Citus schema-based sharding.`,
    );
  });

  test('exits 1 with one line per violation: migration, table, problem, rule and fix', () => {
    const extra = migrationsDirWith({
      bad: `CREATE TABLE {{schema}}.events (at timestamptz);
            ALTER TABLE {{schema}}.notes ADD COLUMN tenant_id text REFERENCES control.tenants (id);`,
    });
    dirs.push(extra.dir);
    const r = enclave(['tenants', 'check-citus'], { env: { TENANT_MIGRATIONS_DIR: extra.dir } });
    assert.equal(r.code, 1, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.equal(lines.length, 2, r.stdout);
    assert.match(
      lines[0] as string,
      new RegExp(
        `^${extra.names.bad}: events: has no primary key; .* \\[no-replica-identity\\]\\. Fix: give the table a PRIMARY KEY`,
      ),
    );
    assert.match(
      lines[1] as string,
      new RegExp(
        `^${extra.names.bad}: notes: foreign key notes_tenant_id_fkey references control\\.tenants, .* \\[foreign-key-out\\]\\. Fix: `,
      ),
    );
  });

  test('--json gives the violations with rule, source, migration, table, message and fix', () => {
    const extra = migrationsDirWith({ bad: 'CREATE TABLE {{schema}}.events (at timestamptz);' });
    dirs.push(extra.dir);
    const r = enclave(['tenants', 'check-citus', '--json'], { env: { TENANT_MIGRATIONS_DIR: extra.dir } });
    assert.equal(r.code, 1, r.stderr);
    const out = JSON.parse(r.stdout) as { migrations: number; violations: CitusViolation[] };
    assert.equal(out.migrations, extra.latest);
    assert.deepEqual(
      out.violations.map((v) => [v.rule, v.source, v.migration, v.table]),
      [['no-replica-identity', 'citus', extra.names.bad, 'events']],
    );
  });
});
