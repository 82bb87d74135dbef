// Are the tenant migration templates fit for Citus schema-based sharding
// (docs/SCALING.md)? Not by parsing SQL: the templates are applied, rendered
// exactly as provisioning renders them, to a scratch role and schema inside a
// transaction that is always rolled back, and the catalogs are read after each
// migration. A violation is reported if the final shape has it, named after
// the migration that introduced it.
//
// The rules Citus enforces are those of its source (schema_based_sharding.c,
// table.c, shard_transfer.c); `sequence-in-other-schema` is Enclave's own:
// Citus accepts it, but a tenant must stay self-contained.
import { type Client, type Pool, type Statement, transaction } from '../kernel/db.ts';
import { newTenantId, tenantNames } from '../kernel/identifiers.ts';
import { type CitusRow, type CitusRule, citusChecks } from './citus-check-sql.ts';
import { renderMigration, type TenantMigration } from './templates.ts';
import { MigrationError } from './tenancy-errors.ts';
import * as sql from './tenant-sql.ts';

export type { CitusRule } from './citus-check-sql.ts';

export interface CitusViolation {
  rule: CitusRule;
  /** Who refuses it: Citus itself, or Enclave's own rule. */
  source: 'citus' | 'enclave';
  /** The migration after which it first appeared, e.g. "0005_events". */
  migration: string;
  /** The tenant schema's table concerned ('' for the schema itself). */
  table: string;
  /** What is wrong, in a sentence. */
  message: string;
  /** What to change in the template. */
  fix: string;
}

type Describe = (row: CitusRow) => { message: string; fix: string };

const RULES: Record<CitusRule, { source: 'citus' | 'enclave'; describe: Describe }> = {
  'foreign-key-out': {
    source: 'citus',
    describe: (r) => ({
      message: `foreign key ${r.name} references ${r.other}, outside the tenant schema; Citus allows foreign keys from a distributed schema only to its own tables or to reference tables, and Enclave has none`,
      fix: 'reference a table of the same tenant schema, or drop the constraint and check the value in the application',
    }),
  },
  'foreign-key-in': {
    source: 'citus',
    describe: (r) => ({
      message: `${r.other} references it by foreign key ${r.name}; Citus refuses foreign keys into a distributed schema from another schema`,
      fix: 'drop the constraint: nothing outside a tenant schema may reference its tables',
    }),
  },
  'no-replica-identity': {
    source: 'citus',
    describe: (r) => ({
      message: `${r.name === 'n' ? 'has REPLICA IDENTITY NOTHING' : 'has no primary key'}; citus_schema_move copies a tenant by logical replication, which refuses a table whose UPDATE and DELETE it cannot replicate`,
      fix: 'give the table a PRIMARY KEY (or REPLICA IDENTITY USING INDEX on a unique index of NOT NULL columns)',
    }),
  },
  'sequence-in-other-schema': {
    source: 'enclave',
    describe: (r) => ({
      message: `column ${r.name} takes its default from a sequence shared across schemas (${r.other}); a tenant must be self-contained: its backup, its restore, its role's privileges and citus_schema_move cover its own schema only`,
      fix: 'use GENERATED ALWAYS AS IDENTITY, or a sequence created in the tenant schema',
    }),
  },
  'foreign-table': {
    source: 'citus',
    describe: () => ({
      message: 'is a foreign table; Citus refuses foreign tables in a distributed schema',
      fix: 'keep foreign tables out of tenant schemas',
    }),
  },
  inheritance: {
    source: 'citus',
    describe: (r) => ({
      message: `${r.name} ${r.other} by table inheritance; Citus refuses inheritance in a distributed schema`,
      fix: 'use a separate table, or declarative partitioning within the tenant schema',
    }),
  },
  'partition-across-schemas': {
    source: 'citus',
    describe: (r) => ({
      message: `is ${r.name} ${r.other}, in another schema; Citus requires a distributed schema's partitions and their parent in the same schema`,
      fix: 'create the partition in the same schema as its parent',
    }),
  },
  'multi-level-partitioning': {
    source: 'citus',
    describe: () => ({
      message:
        'is a partition that is itself partitioned; Citus does not distribute multi-level partitioned tables',
      fix: 'partition one level deep only',
    }),
  },
  'typed-table': {
    source: 'citus',
    describe: (r) => ({
      message: `is a typed table (CREATE TABLE ... OF ${r.name}); Citus refuses typed tables in a distributed schema`,
      fix: 'declare the columns instead of OF type',
    }),
  },
  extension: {
    source: 'citus',
    describe: (r) => ({
      message: r.table
        ? `belongs to extension ${r.name}; Citus refuses to distribute a schema with a table owned by an extension`
        : `extension ${r.name} is installed into the tenant schema; Citus refuses to distribute an extension's schema`,
      fix: 'install extensions into a schema of their own, once per database, and call them schema-qualified',
    }),
  },
};

const keyOf = (rule: CitusRule, r: CitusRow) => `${rule}\0${r.table}\0${r.name}\0${r.other}`;

async function violationsOf(client: Client, schema: string): Promise<Map<string, [CitusRule, CitusRow]>> {
  const found = new Map<string, [CitusRule, CitusRow]>();
  for (const [rule, statement] of Object.entries(citusChecks(schema)) as [CitusRule, Statement][]) {
    for (const row of (await client.query<CitusRow>(statement)).rows)
      found.set(keyOf(rule, row), [rule, row]);
  }
  return found;
}

/**
 * Every violation of the Citus rules by `migrations`, in the order the
 * migrations introduce them (then by table). Empty when the templates are fit.
 * Needs the rights provisioning needs (create a role and a schema); changes nothing.
 */
export async function checkCitusReadiness(
  pool: Pool,
  migrations: readonly TenantMigration[],
): Promise<CitusViolation[]> {
  return transaction(
    pool,
    async (client) => {
      const names = tenantNames(newTenantId());
      await client.query(sql.createRole(names.role));
      await client.query(sql.grantRoleToApp(names.role));
      await client.query(sql.createSchema(names.schema));
      await client.query(sql.grantSchemaUsage(names.schema, names.role));
      await client.query(sql.setSearchPath(names.schema));
      const firstSeen = new Map<string, string>();
      let current = new Map<string, [CitusRule, CitusRow]>();
      for (const m of migrations) {
        try {
          await client.query(renderMigration(m, names));
        } catch (err) {
          throw new MigrationError(m.name, err);
        }
        current = await violationsOf(client, names.schema);
        for (const key of current.keys()) if (!firstSeen.has(key)) firstSeen.set(key, m.name);
      }
      const order = new Map(migrations.map((m, i) => [m.name, i]));
      return [...current]
        .map(([key, [rule, row]]): CitusViolation => {
          const { source, describe } = RULES[rule];
          return {
            rule,
            source,
            migration: firstSeen.get(key) as string,
            table: row.table,
            ...describe(row),
          };
        })
        .sort(
          (a, b) =>
            (order.get(a.migration) ?? 0) - (order.get(b.migration) ?? 0) ||
            a.table.localeCompare(b.table) ||
            a.rule.localeCompare(b.rule),
        );
    },
    { rollback: true },
  );
}

/** One line for a person: where, what, which rule, how to fix it. */
export function formatViolation(v: CitusViolation): string {
  return `${v.migration}: ${v.table ? `${v.table}: ` : ''}${v.message} [${v.rule}]. Fix: ${v.fix}.`;
}
