// Provisioning latency next to its floor, shared by bench/tenancy.bench.ts and
// bench/scale.bench.ts: the floor scripts (the same DDL, migrations and ledger
// rows from the same builders, with values inlined), the samplers that run
// Enclave's provisionTenant and the floors in rotating order, and the
// percentile arithmetic. One copy, so both benchmarks measure the same floor.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { SYSTEM } from '../kernel/audit-inbox.ts';
import type { Pool, Statement } from '../kernel/db.ts';
import { newTenantId, tenantNames } from '../kernel/identifiers.ts';
import { provisionScript, provisionTenant, registerStatement } from '../tenancy/provision.ts';
import { renderMigration, type TenantMigration } from '../tenancy/templates.ts';
import * as sql from '../tenancy/tenant-sql.ts';
import type { ScratchDatabase } from '../test/helpers/database.ts';

export const round = (n: number, digits = 2) => Number(n.toFixed(digits));

/** Nearest-rank percentile of unsorted samples. */
export function percentile(samples: readonly number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}
export const median = (samples: readonly number[]) => percentile(samples, 50);

export interface Latency {
  p50: number;
  p95: number;
  p99: number;
  min: number;
  max: number;
}
export const latency = (ms: readonly number[]): Latency => ({
  p50: round(percentile(ms, 50)),
  p95: round(percentile(ms, 95)),
  p99: round(percentile(ms, 99)),
  min: round(Math.min(...ms)),
  max: round(Math.max(...ms)),
});

export async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; result: T }> {
  const started = performance.now();
  const result = await fn();
  return { ms: performance.now() - started, result };
}

/** A statement with its $n values written in as literals, for a plain SQL script. */
export function inline(stmt: Statement): string {
  return stmt.text.replace(/\$(\d+)/g, (_, n: string) => {
    const v = stmt.values[Number(n) - 1];
    if (v === null) return 'NULL';
    if (typeof v === 'number' && Number.isFinite(v)) return String(v);
    if (typeof v === 'string') return pg.escapeLiteral(v);
    throw new Error(`cannot inline value ${String(v)} of ${stmt.text}`);
  });
}

/**
 * The floor: provisioning's DDL, migrations, ledger rows and updates, from the same
 * builders, with values inlined; without Enclave's lock, audit event and per-migration
 * timing markers (kept as it was, so that runs before and after issue 14 compare).
 */
export function floorScript(migrations: readonly TenantMigration[]): {
  id: string;
  role: string;
  script: string;
} {
  const id = newTenantId();
  const names = tenantNames(id);
  const statements = [
    inline(sql.insertProvisioning(id, `bench ${id}`, names.schema, names.role)),
    sql.createRole(names.role),
    sql.grantRoleToApp(names.role),
    sql.createSchema(names.schema),
    sql.grantSchemaUsage(names.schema, names.role),
    inline(sql.setSearchPath(names.schema)),
    ...migrations.flatMap((m) => [
      renderMigration(m, names),
      inline(sql.recordMigration(id, m, 0, 'applied', null)),
    ]),
    inline(sql.setVersion(id, migrations.at(-1)?.version ?? 0)),
    inline(sql.activate(id)),
  ];
  // The separator on its own line also ends a statement whose text ends in a comment.
  const script = `${statements.map((s) => s.trim().replace(/;$/, '')).join('\n;\n')}\n;\n`;
  return { id, role: names.role, script };
}

/**
 * Enclave's own SQL (its two round trips: lock + row + audit event, then the
 * provisioning script) with values inlined, for one query: what the round trips
 * and the parameters cost, next to what Enclave's extra SQL costs.
 */
export function sameSqlScript(migrations: readonly TenantMigration[]): {
  id: string;
  role: string;
  script: string;
} {
  const id = newTenantId();
  const names = tenantNames(id);
  const first = inline(registerStatement(id, `bench ${id}`, names, migrations, SYSTEM));
  return { id, role: names.role, script: `${first}\n;\n${provisionScript(id, names, migrations)}` };
}

export type Method = 'enclave' | 'psql' | 'raw' | 'rawSame' | 'psqlStart';
export const METHODS: readonly Method[] = ['enclave', 'psql', 'raw', 'rawSame', 'psqlStart'];

export const METHOD_LABEL: Record<Method, string> = {
  enclave: 'enclave provisionTenant',
  psql: 'floor: psql -1 -f (incl. process start)',
  psqlStart: "psql -c 'SELECT 1' (start + connect only)",
  raw: 'floor: one query, open connection',
  rawSame: "Enclave's own SQL in one query, open connection",
};

/** Runs psql to completion; the time includes its process start and a new connection (a new backend). */
function psql(url: string, args: readonly string[]): number {
  const started = performance.now();
  const out = spawnSync('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', url, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const ms = performance.now() - started;
  if (out.status !== 0)
    throw new Error(`psql failed (${out.status}): ${out.stderr?.toString() ?? out.error}`);
  return ms;
}

/** Drops tenants a sample round made (schema, role, control-plane rows), in one transaction. */
export async function removeTenants(pool: Pool, ids: readonly string[]): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    for (const id of ids) {
      const names = tenantNames(id);
      await client.query(sql.dropSchema(names.schema));
      await client.query(sql.dropOwned(names.role));
      await client.query(sql.dropRole(names.role));
    }
    await client.query('DELETE FROM control.tenant_migrations WHERE tenant_id = ANY($1)', [ids]);
    await client.query('DELETE FROM control.tenants WHERE id = ANY($1)', [ids]);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

export interface SampleOptions {
  warmup: number;
  samples: number;
  /** Which methods run (default: all of METHODS); the others get no samples. */
  methods?: readonly Method[];
  /** Where the psql method writes its script. */
  workDir: string;
  /** Checked before every round. */
  signal?: AbortSignal;
}

/**
 * Rounds of one sample per method, in a rotating order so that noise and
 * position effects hit every method alike. The tenants a round creates are
 * removed after it (untimed), so every sample sees the same number of tenants.
 * `raw` is a client of its own on the scratch database (an open connection).
 */
export async function provisionSamples(
  scratch: ScratchDatabase,
  raw: pg.Client,
  migrations: readonly TenantMigration[],
  opts: SampleOptions,
): Promise<Record<Method, number[]>> {
  const methods = opts.methods ?? METHODS;
  const samples: Record<Method, number[]> = { enclave: [], psql: [], raw: [], rawSame: [], psqlStart: [] };
  const file = path.join(opts.workDir, 'provision.sql');
  const run: Record<Method, () => Promise<{ id: string | null; ms: number }>> = {
    enclave: async () => {
      const { ms, result } = await timed(() =>
        provisionTenant(scratch.pool, { displayName: 'bench' }, migrations),
      );
      scratch.roles.add(result.role_name);
      return { id: result.id, ms };
    },
    psql: async () => {
      const floor = floorScript(migrations);
      writeFileSync(file, floor.script);
      scratch.roles.add(floor.role);
      return { id: floor.id, ms: psql(scratch.url, ['-1', '-f', file]) };
    },
    raw: async () => {
      const floor = floorScript(migrations);
      scratch.roles.add(floor.role);
      const { ms } = await timed(() => raw.query(`BEGIN;\n${floor.script}COMMIT;`));
      return { id: floor.id, ms };
    },
    rawSame: async () => {
      const same = sameSqlScript(migrations);
      scratch.roles.add(same.role);
      const { ms } = await timed(() => raw.query(`BEGIN;\n${same.script}COMMIT;`));
      return { id: same.id, ms };
    },
    // What psql costs before any DDL: process start, connection, one trivial query.
    psqlStart: async () => ({ id: null, ms: psql(scratch.url, ['-c', 'SELECT 1']) }),
  };
  for (let r = 0; r < opts.warmup + opts.samples; r++) {
    opts.signal?.throwIfAborted();
    const ids: string[] = [];
    for (let k = 0; k < methods.length; k++) {
      const method = methods[(r + k) % methods.length] as Method;
      const { id, ms } = await run[method]();
      if (id) ids.push(id);
      if (r >= opts.warmup) samples[method].push(ms);
    }
    await removeTenants(scratch.pool, ids);
  }
  return samples;
}

/** Checkpoints started so far, cluster-wide (pg_stat_checkpointer from PostgreSQL 17 on). */
export async function checkpointCount(pool: Pool): Promise<number> {
  const text = (await pool.query("SELECT to_regclass('pg_catalog.pg_stat_checkpointer') IS NOT NULL AS v17"))
    .rows[0]?.v17
    ? 'SELECT num_timed + num_requested AS n FROM pg_stat_checkpointer'
    : 'SELECT checkpoints_timed + checkpoints_req AS n FROM pg_stat_bgwriter';
  return Number((await pool.query<{ n: string }>(text)).rows[0]?.n ?? 0);
}

/** Writes dirty buffers and syncs the files the setup created, so that a run does not pay for the setup. */
export async function checkpoint(pool: Pool, log: (line: string) => void): Promise<void> {
  await pool
    .query('CHECKPOINT')
    .catch((err) => log(`  CHECKPOINT refused (${err.message}); going on without`));
  // The checkpointer publishes its statistics just after CHECKPOINT returns: let it, before counting.
  await sleep(300);
}
