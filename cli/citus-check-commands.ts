// `enclave tenants check-citus`: are the tenant migration templates fit for
// Citus schema-based sharding (docs/SCALING.md)? Applies them to a scratch
// schema in a transaction that is rolled back; reads no tenant.
//
// Exit codes: 0 fit, 1 one line per violation on stdout (or a template that
// does not apply), 78 bad configuration.
import { type Command, Option } from 'commander';
import type { CitusViolation } from '../tenancy/citus-check.ts';
import { printJson } from './output.ts';

export function registerCitusCheckCommand(tenants: Command): Command {
  return tenants
    .command('check-citus')
    .description('check the tenant migration templates against what Citus schema-based sharding requires')
    .addOption(new Option('--json', 'print machine-readable JSON'))
    .action(async (opts: { json?: boolean }) => {
      process.exitCode = await checkCitusCommand(opts);
    });
}

export async function checkCitusCommand(opts: { json?: boolean }): Promise<number> {
  const { connect } = await import('./connect.ts');
  const { checkCitusReadiness, formatViolation } = await import('../tenancy/citus-check.ts');
  const ctx = await connect(1);
  try {
    const violations: CitusViolation[] = await checkCitusReadiness(ctx.pool, ctx.migrations);
    if (opts.json) printJson({ migrations: ctx.migrations.length, violations });
    else if (violations.length === 0)
      process.stdout.write(
        `OK: ${ctx.migrations.length} tenant migrations fit Citus schema-based sharding.\n`,
      );
    else for (const v of violations) process.stdout.write(`${formatViolation(v)}\n`);
    return violations.length > 0 ? 1 : 0;
  } finally {
    await ctx.close();
  }
}
