// `enclave tenants suspend|resume|archive|hold|release ID` and `enclave
// tenants lifecycle [--dry-run]` (docs/LIFECYCLE.md). Each change is one call
// and audited on the tenant's chain with the CLI as the actor (cli/audit-by.ts).
// `lifecycle --dry-run` prints what each step would do, to whom and when,
// changing nothing; without it the lifecycle runs now, as the scheduled job
// does (its run is recorded in the job history). Modules that load pg are
// imported inside the actions.
//
// Exit codes: 0 ok, 1 failed or refused (one line `enclave: ...`), 2 bad usage.
import { type Command, InvalidArgumentError, Option } from 'commander';
import type { LifecycleRow, PlannedStep } from '../tenancy/inactivity.ts';
import { notice, printJson, printTable } from './output.ts';
import { UsageError } from './usage-error.ts';

const TENANT_ID = /^[a-z0-9]{12}$/;
const json = () => new Option('--json', 'print machine-readable JSON');

function days(value: string): number {
  if (!/^\d{1,4}$/.test(value)) throw new InvalidArgumentError('must be a whole number of days, 0 to 9999');
  return Number(value);
}

type Change = 'suspend' | 'resume' | 'archive' | 'hold' | 'release';

const CHANGES: Array<[Change, string]> = [
  ['suspend', 'suspend a tenant (ops): none of its data is served; the lifecycle never drops it'],
  ['resume', 'resume a suspended or archived tenant; it leaves the lifecycle and counts as active now'],
  ['archive', 'archive a tenant (ops): none of its data is served; it leaves the lifecycle'],
  ['hold', 'put a tenant under legal hold: no lifecycle step, drop or backup deletion touches it'],
  ['release', 'lift the legal hold of a tenant'],
];

const DONE: Record<Change, string> = {
  suspend: 'suspended',
  resume: 'resumed',
  archive: 'archived',
  hold: 'is under legal hold',
  release: 'is no longer under legal hold',
};

export function registerLifecycleCommands(tenants: Command): Command {
  for (const [name, description] of CHANGES) {
    tenants
      .command(name)
      .description(description)
      .argument('<id>', 'tenant id')
      .addOption(json())
      .action(async (id: string, opts: { json?: boolean }) => {
        process.exitCode = await changeCommand(name, id, opts);
      });
  }
  tenants
    .command('lifecycle')
    .description(
      'the inactive-tenant lifecycle now (flag, suspend, final backup + verify, drop); --dry-run: what it would do, to whom, when',
    )
    .option('--dry-run', 'list the steps with their tenants and due dates; change nothing')
    .option('--within <days>', 'with --dry-run: also tenants whose first flag is due within DAYS', days)
    .addOption(json())
    .action(async (opts: { dryRun?: boolean; within?: number; json?: boolean }) => {
      process.exitCode = await lifecycleCommand(opts);
    });
  return tenants;
}

function checkTenantId(id: string): string {
  if (!TENANT_ID.test(id))
    throw new UsageError(
      `"${id}" is not a tenant id (12 characters, a-z and 0-9; see \`enclave tenants list\`)`,
    );
  return id;
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

/** A tenant and its place in the lifecycle, as the CLI prints it (stable for scripts). */
export function lifecycleView(r: LifecycleRow) {
  return {
    id: r.id,
    name: r.display_name,
    state: r.state,
    legal_hold: r.legal_hold,
    last_active_at: iso(r.last_active_at ?? r.created_at),
    stage: r.stage,
    inactive_since: iso(r.inactive_since),
    flagged_at: iso(r.flagged_at),
    suspended_at: iso(r.suspended_at),
    suspend_reason: r.suspend_reason,
    final_backup_id: r.final_backup_id,
    verified_at: iso(r.verified_at),
    dropped_at: iso(r.dropped_at),
  };
}

function stepView(s: PlannedStep) {
  return {
    tenant: s.tenantId,
    name: s.tenantName,
    state: s.state,
    stage: s.stage,
    step: s.step,
    due: s.due ? s.due.toISOString() : 'never',
    now: s.dueNow ? 'yes' : 'no',
    blocked: s.blocked,
    final_backup: s.finalBackupId,
    action: s.action,
  };
}

export async function changeCommand(change: Change, id: string, opts: { json?: boolean }): Promise<number> {
  checkTenantId(id);
  const { connect } = await import('./connect.ts');
  const { cliBy } = await import('./audit-by.ts');
  const life = await import('../tenancy/inactivity.ts');
  const ctx = await connect(2);
  try {
    const by = cliBy();
    if (change === 'suspend') await life.suspendByOps(ctx.pool, id, by);
    else if (change === 'resume') await life.resumeTenant(ctx.pool, id, by);
    else if (change === 'archive') await life.archiveByOps(ctx.pool, id, by);
    else await life.holdTenant(ctx.pool, id, change === 'hold', by);
    const row = await life.lifecycleOf(ctx.pool, id);
    if (opts.json) printJson(lifecycleView(row));
    else process.stdout.write(`tenant ${row.id} (${row.display_name}) ${DONE[change]}\n`);
    return 0;
  } finally {
    await ctx.close();
  }
}

export async function lifecycleCommand(opts: {
  dryRun?: boolean;
  within?: number;
  json?: boolean;
}): Promise<number> {
  if (opts.within !== undefined && !opts.dryRun) throw new UsageError('--within goes with --dry-run');
  const { connect } = await import('./connect.ts');
  const life = await import('../tenancy/inactivity.ts');
  const ctx = await connect(4);
  try {
    const settings = life.lifecycleSettings(ctx.config);
    if (settings.inactiveAfterDays === 0)
      notice(
        'note: INACTIVE_AFTER_DAYS is 0: the lifecycle is off (no tenant is flagged; flags left are cleared)',
      );
    if (opts.dryRun) {
      const p = await life.plan(ctx.pool, settings, new Date(), opts.within ?? 0);
      if (opts.json)
        printJson({
          dryRun: true,
          asOf: p.asOf.toISOString(),
          settings: p.settings,
          steps: p.steps.map(stepView),
          dropped: p.dropped.map((d) => ({
            tenant: d.tenantId,
            name: d.tenantName,
            dropped_at: d.droppedAt.toISOString(),
            final_backup: d.finalBackupId,
          })),
        });
      else {
        printTable(
          p.steps.map(stepView),
          ['tenant', 'name', 'state', 'stage', 'step', 'due', 'now', 'blocked', 'action'],
          'No tenant has a lifecycle step due.',
        );
        const due = p.steps.filter((s) => s.dueNow).length;
        process.stdout.write(
          `Dry run as of ${p.asOf.toISOString()}: ${due} step(s) due now, nothing changed (inactive after ${settings.inactiveAfterDays} days, suspended after ${settings.suspendAfterDays}, dropped ${settings.dropAfterSuspendedDays || 'never'}${settings.dropAfterSuspendedDays ? ' days after suspension' : ''}).\n`,
        );
      }
      return 0;
    }
    const counts = await runNow(ctx, opts);
    if (opts.json) printJson({ dryRun: false, counts });
    else
      process.stdout.write(
        `${Object.entries(counts)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')}\n`,
      );
    return 0;
  } finally {
    await ctx.close();
  }
}

/** The job, now, in this process: its run is in the job history, and it waits for no other run of it. */
async function runNow(
  ctx: import('./connect.ts').CliContext,
  opts: { json?: boolean },
): Promise<Record<string, number>> {
  const { runJobNow } = await import('../jobs/scheduler.ts');
  const { lifecycleJob } = await import('../jobs/lifecycle.ts');
  const { jobBase } = await import('./jobs-commands.ts');
  const winston = (await import('winston')).default;
  // Each step on stderr as it is taken (a run that drops tenants takes a while); errors always.
  const log = winston.createLogger({
    level: process.stderr.isTTY && !opts.json ? 'info' : 'error',
    format: winston.format.printf(({ level, message, tenantId, error }) => {
      const who = tenantId ? ` ${String(tenantId)}` : '';
      const why = error instanceof Error ? `: ${error.message}` : '';
      return `${level === 'info' ? '' : `${level}: `}${String(message)}${who}${why}`;
    }),
    transports: [new winston.transports.Stream({ stream: process.stderr })],
  });
  return runJobNow(lifecycleJob, await jobBase(ctx, log));
}
