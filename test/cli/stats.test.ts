// `enclave tenants stats` as an operator runs it, against a real database: the
// fleet's top tenants by size and by growth (a table with human sizes, or
// JSON), one tenant's tables and indexes from the latest run or measured now
// with --exact; bad usage is one line and exit 2, an unknown tenant exit 1.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ident } from '../../kernel/identifiers.ts';
import { provisionTenant } from '../../tenancy/provision.ts';
import { recordStats } from '../../tenancy/statistics.ts';
import { loadTenantMigrations } from '../../tenancy/templates.ts';
import type { TenantRow } from '../../tenancy/tenant-sql.ts';
import { enclaveWith, oneLine } from '../helpers/cli.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';

const migrations = loadTenantMigrations();
let db: TestDatabase;
const enclave = enclaveWith(() => ({ DATABASE_URL: db.url, LOG_LEVEL: 'warn' }));

describe('enclave tenants stats', () => {
  let big: TenantRow;
  let small: TenantRow;
  const NOW = new Date('2026-06-15T12:00:00Z');

  before(async () => {
    db = await createTestDatabase(2);
    big = await provisionTenant(db.pool, { displayName: 'Big Corp' }, migrations);
    small = await provisionTenant(db.pool, { displayName: 'Small' }, migrations);
    await db.pool.query(
      `INSERT INTO ${ident(big.schema_name)}.notes (title, body)
       SELECT 'n' || i, repeat('words ', 200) FROM generate_series(1, 500) i`,
    );
    await db.pool.query('ANALYZE');
  });
  after(async () => {
    await db.drop();
  });

  test('before any run: says how to collect them, exit 0', () => {
    const r = enclave(['tenants', 'stats']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(oneLine(r.stdout), /^No statistics yet: .*enclave jobs run tenant-stats/);
    const one = enclave(['tenants', 'stats', small.id]);
    assert.equal(one.code, 0, one.stderr);
    assert.match(oneLine(one.stdout), /no statistics collected yet/);
  });

  test('bad usage: one line, exit 2', async () => {
    await recordStats(db.pool, new Date(NOW.getTime() - 8 * 86_400_000));
    await recordStats(db.pool, NOW);
    for (const args of [
      ['tenants', 'stats', 'NOT-AN-ID'],
      ['tenants', 'stats', '--limit', '0'],
      ['tenants', 'stats', '--limit', 'many'],
      ['tenants', 'stats', '--limit', '10001'],
      ['tenants', 'stats', '--sort', 'name'],
      ['tenants', 'stats', '--exact'],
      ['tenants', 'stats', big.id, '--limit', '3'],
      ['tenants', 'stats', big.id, '--sort', 'growth'],
      ['tenants', 'stats', big.id, small.id],
      ['tenants', 'stats', '--bogus'],
    ]) {
      const r = enclave(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(oneLine(r.stderr), /^enclave: /, args.join(' '));
      assert.equal(r.stdout, '');
    }
  });

  test('an unknown tenant: one line, exit 1', () => {
    for (const args of [
      ['tenants', 'stats', 'zzzzzzzzzzzz'],
      ['tenants', 'stats', 'zzzzzzzzzzzz', '--exact'],
    ]) {
      const r = enclave(args);
      assert.equal(r.code, 1, r.stderr);
      assert.match(oneLine(r.stderr), /^enclave: no tenant with id "zzzzzzzzzzzz"/);
    }
  });

  test('the fleet: totals and the top tenants by size as a table with human sizes', () => {
    const r = enclave(['tenants', 'stats']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.match(lines[0] as string, /^Collected 2026-06-15T12:00:00\.000Z: 2 tenants, [\d.]+ (KiB|MiB) /);
    assert.match(lines[1] as string, /^Top 2 by size:/);
    assert.match(
      lines[2] as string,
      /^TENANT\s+NAME\s+STATE\s+TOTAL\s+TABLES\s+INDEXES\s+TOAST\s+ROWS\s+DEAD\s+GROWTH_7D/,
    );
    assert.ok(lines[3]?.startsWith(big.id), 'the biggest first');
    assert.match(lines[3] as string, /Big Corp\s+active\s+[\d.]+ (KiB|MiB)/);
    assert.match(lines[3] as string, /\s501\s/, 'the row estimate (500 notes and the usage row)');
    assert.ok(lines[4]?.startsWith(small.id));
    const one = enclave(['tenants', 'stats', '--limit', '1']);
    assert.equal(one.stdout.trimEnd().split('\n').length, 4);
  });

  test('--json: machine-readable, by size or by growth', () => {
    const r = enclave(['tenants', 'stats', '--json', '--sort', 'growth', '--limit', '5']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.collectedAt, NOW.toISOString());
    assert.equal(out.sort, 'growth');
    assert.equal(out.tenants, 2);
    assert.equal(out.top.length, 2);
    assert.equal(out.top[0].tenantId, big.id, 'the same growth (none): the bigger first');
    assert.equal(out.top[0].weekAgoAt, new Date(NOW.getTime() - 8 * 86_400_000).toISOString());
    assert.equal(out.top[0].growthBytes, 0, 'both runs saw the same catalog');
    assert.ok(out.totals.totalBytes >= out.top[0].totalBytes + out.top[1].totalBytes);
  });

  test('one tenant: its tables and indexes from the latest run; --exact measures them now', async () => {
    const r = enclave(['tenants', 'stats', big.id]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.match(
      lines[0] as string,
      new RegExp(`^Tenant ${big.id} \\(Big Corp, active\\), collected 2026-06-15T12:00:00.000Z`),
    );
    assert.match(lines[0] as string, /7 days: \+?0 B/);
    assert.match(
      lines[1] as string,
      /^NAME\s+KIND\s+TABLE\s+SIZE\s+TOAST\s+ROWS\s+DEAD\s+LAST_VACUUM\s+LAST_ANALYZE/,
    );
    assert.ok(
      lines.some((l) => /^notes\s+table\s+-\s+[\d.]+ KiB\s+.*\s500\s/.test(l)),
      r.stdout,
    );
    assert.ok(
      lines.some((l) => /^notes_pkey\s+index\s+notes\s+/.test(l)),
      r.stdout,
    );

    const json = JSON.parse(enclave(['tenants', 'stats', big.id, '--json']).stdout);
    assert.equal(json.tenant.id, big.id);
    assert.equal(json.history.length, 2);
    const notes = json.latest.relations.find((x: { name: string }) => x.name === 'notes');
    const size = Number(
      (await db.pool.query(`SELECT pg_relation_size('${big.schema_name}.notes') AS n`)).rows[0].n,
    );
    assert.equal(notes.bytes, size);

    const exact = enclave(['tenants', 'stats', big.id, '--exact']);
    assert.equal(exact.code, 0, exact.stderr);
    assert.match(exact.stdout, new RegExp(`^Tenant ${big.id}, exact sizes measured `));
    const ej = JSON.parse(enclave(['tenants', 'stats', big.id, '--exact', '--json']).stdout);
    assert.equal(ej.exact, true);
    const total = Number(
      (
        await db.pool.query(
          `SELECT sum(pg_total_relation_size(c.oid))::bigint AS n FROM pg_class c
           WHERE c.relnamespace = $1::regnamespace AND c.relkind = 'r'`,
          [big.schema_name],
        )
      ).rows[0].n,
    );
    assert.equal(ej.totalBytes, total);
  });
});
