// `enclave tenants ...`: the ops face of the tenancy service.
import { createInterface } from 'node:readline/promises';
import cliProgress from 'cli-progress';
import { run } from '../kernel/db.ts';
import { isTenantId } from '../kernel/identifiers.ts';
import { detectDrift } from '../tenancy/drift.ts';
import { migrateFleet } from '../tenancy/fleet-migrate.ts';
import { dropTenant } from '../tenancy/lifecycle.ts';
import { provisionTenant } from '../tenancy/provision.ts';
import { latestVersion } from '../tenancy/templates.ts';
import * as sql from '../tenancy/tenant-sql.ts';
import { cliBy } from './audit-by.ts';
import { connect } from './connect.ts';
import { notice, printJson, printTable } from './output.ts';
import { UsageError } from './usage-error.ts';

const TENANT_COLUMNS = ['id', 'name', 'schema', 'role', 'state', 'version', 'created_at', 'last_active_at'];

/** The public shape of a tenant in CLI output (stable for scripts). */
export function tenantView(t: sql.TenantRow) {
  return {
    id: t.id,
    name: t.display_name,
    schema: t.schema_name,
    role: t.role_name,
    state: t.state,
    version: t.schema_version,
    legal_hold: t.legal_hold,
    created_at: t.created_at,
    last_active_at: t.last_active_at,
  };
}

export function checkTenantIds(ids: readonly string[]): string[] {
  for (const id of ids) {
    if (!isTenantId(id))
      throw new UsageError(
        `"${id}" is not a tenant id (12 characters, a-z and 0-9; see \`enclave tenants list\`)`,
      );
  }
  return [...ids];
}

export async function createCommand(opts: { name: string; json?: boolean }): Promise<number> {
  const ctx = await connect(2);
  try {
    const tenant = tenantView(
      await provisionTenant(ctx.pool, { displayName: opts.name }, ctx.migrations, { by: cliBy() }),
    );
    if (opts.json) printJson(tenant);
    else printTable([tenant], TENANT_COLUMNS, '');
    return 0;
  } finally {
    await ctx.close();
  }
}

export async function listCommand(opts: { json?: boolean; all?: boolean }): Promise<number> {
  const ctx = await connect(1);
  try {
    const tenants = (await run<sql.TenantRow>(ctx.pool, sql.listTenants(Boolean(opts.all)))).rows.map(
      tenantView,
    );
    if (opts.json) printJson(tenants);
    else
      printTable(
        tenants,
        TENANT_COLUMNS,
        'No tenants yet: create one with `enclave tenants create --name NAME`.',
      );
    return 0;
  } finally {
    await ctx.close();
  }
}

async function requireExisting(pool: import('../kernel/db.ts').Pool, ids: string[]): Promise<void> {
  const found = new Set((await run<{ id: string }>(pool, sql.selectExisting(ids))).rows.map((r) => r.id));
  const missing = ids.filter((id) => !found.has(id));
  if (missing.length)
    throw new UsageError(`no such tenant: ${missing.join(', ')} (see \`enclave tenants list\`)`);
}

export async function migrateCommand(opts: {
  concurrency?: number;
  tenant?: string[];
  json?: boolean;
}): Promise<number> {
  const tenantIds = opts.tenant ? checkTenantIds(opts.tenant) : undefined;
  const probe = await connect(1);
  const concurrency = opts.concurrency ?? probe.config.MIGRATION_CONCURRENCY;
  await probe.close();
  const ctx = await connect(concurrency + 1);
  const abort = new AbortController();
  const onSignal = () => {
    if (abort.signal.aborted) process.exit(130); // second Ctrl-C: in-flight transactions roll back server-side
    abort.abort();
    notice('\nStopping after the tenants in flight (Ctrl-C again to stop now; a rerun finishes the rest)...');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const bar =
    process.stderr.isTTY && !opts.json
      ? new cliProgress.SingleBar(
          {
            stream: process.stderr,
            format: 'Migrating {bar} {value}/{total} tenants | {failed} failed | ETA {eta}s',
          },
          cliProgress.Presets.shades_classic,
        )
      : undefined;
  try {
    if (tenantIds) await requireExisting(ctx.pool, tenantIds);
    let started = false;
    const summary = await migrateFleet(ctx.pool, ctx.migrations, {
      concurrency,
      ...(tenantIds ? { tenantIds } : {}),
      signal: abort.signal,
      by: cliBy(),
      onProgress: (p) => {
        if (!bar) return;
        if (!started) bar.start(p.total, 0, { failed: 0 });
        started = true;
        bar.update(p.done, { failed: p.failed });
      },
    });
    bar?.stop();
    if (opts.json) {
      printJson({ ...summary, outcomes: summary.outcomes.filter((o) => o.status !== 'skipped') });
    } else {
      printMigrateSummary(summary, latestVersion(ctx.migrations));
    }
    if (summary.interrupted) return 130;
    return summary.failed > 0 ? 1 : 0;
  } finally {
    bar?.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await ctx.close();
  }
}

function printMigrateSummary(s: Awaited<ReturnType<typeof migrateFleet>>, latest: number): void {
  const seconds = s.durationMs / 1000;
  const rate = s.migrated > 0 && seconds > 0 ? ` (${Math.round(s.migrated / seconds)} tenants/s)` : '';
  process.stdout.write(
    `Target version ${latest}: ${s.migrated} migrated, ${s.failed} failed, ${s.skipped} already current` +
      `${s.notStarted ? `, ${s.notStarted} not started (interrupted: rerun to finish)` : ''} in ${seconds.toFixed(2)} s${rate}.\n`,
  );
  const failures = s.outcomes.filter((o) => o.status === 'failed');
  if (failures.length) {
    printTable(
      failures.map((f) => ({
        tenant: f.tenantId,
        version: f.from,
        migration: f.migration ?? '-',
        error: f.error,
      })),
      ['tenant', 'version', 'migration', 'error'],
      '',
    );
    process.stdout.write(
      'Failed tenants stay at their old version and keep serving; fix the cause and rerun.\n',
    );
  }
}

export async function driftCommand(opts: { tenant?: string[]; json?: boolean }): Promise<number> {
  const tenantIds = opts.tenant ? checkTenantIds(opts.tenant) : undefined;
  const ctx = await connect(2);
  try {
    if (tenantIds) await requireExisting(ctx.pool, tenantIds);
    const report = await detectDrift(ctx.pool, ctx.migrations, tenantIds ? { tenantIds } : {});
    const drifted = report.filter((t) => t.differences.length > 0);
    if (opts.json) {
      printJson({ checked: report.length, drifted: drifted.length, tenants: drifted });
    } else {
      const rows = drifted.flatMap((t) =>
        t.differences.map((d) => ({
          tenant: t.tenantId,
          version: t.version,
          kind: d.kind,
          object: d.object,
          problem: d.problem,
          detail:
            d.problem === 'changed'
              ? `expected ${d.expected}, found ${d.actual}`
              : (d.expected ?? d.actual ?? ''),
        })),
      );
      printTable(rows, ['tenant', 'version', 'kind', 'object', 'problem', 'detail'], '');
      process.stdout.write(`${report.length} tenants checked, ${drifted.length} with drift.\n`);
    }
    return drifted.length > 0 ? 1 : 0;
  } finally {
    await ctx.close();
  }
}

export async function dropCommand(id: string, opts: { yes?: boolean; json?: boolean }): Promise<number> {
  checkTenantIds([id]);
  if (!opts.yes) {
    if (!process.stdin.isTTY)
      throw new UsageError('dropping a tenant deletes its data: pass --yes to confirm');
    const rl = createInterface({ input: process.stdin, output: process.stderr });
    const answer = await rl.question(
      `This deletes tenant ${id}'s schema and data. Type the tenant id to confirm: `,
    );
    rl.close();
    if (answer.trim() !== id) throw new UsageError('not confirmed; nothing was dropped');
  }
  const ctx = await connect(1);
  try {
    const tenant = tenantView(await dropTenant(ctx.pool, id, cliBy()));
    if (opts.json) printJson(tenant);
    else
      process.stdout.write(
        `Dropped tenant ${id}: schema ${tenant.schema} and role ${tenant.role} are gone.\n`,
      );
    return 0;
  } finally {
    await ctx.close();
  }
}
