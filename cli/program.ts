// The `enclave` ops CLI. Exit codes: 0 ok, 1 the operation failed (or found
// drift), 2 bad usage, 78 bad configuration, 130 interrupted.
//
// Command modules are imported in their actions, not up front: `--help` and
// the offline `audit verify` never load pg, MikroORM or argon2
// (test/cli/lazy-loading.test.ts).
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { InvalidInputError } from '../kernel/errors.ts';
import { AppError } from '../server/app-errors.ts';
import { TenancyError } from '../tenancy/tenancy-errors.ts';
import { registerAuditCommands } from './audit-commands.ts';
import { registerBackupCommands } from './backup-commands.ts';
import { registerCitusCheckCommand } from './citus-check-commands.ts';
import { registerJobCommands } from './jobs-commands.ts';
import { registerLifecycleCommands } from './lifecycle-commands.ts';
import { registerStatsCommands } from './stats-commands.ts';
import { UsageError } from './usage-error.ts';

const tenantCommands = () => import('./tenants.ts');
const userCommands = () => import('./users.ts');

function concurrency(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > 64)
    throw new InvalidArgumentError('must be a whole number from 1 to 64');
  return n;
}

const json = () => new Option('--json', 'print machine-readable JSON');

export function buildProgram(): Command {
  const program = new Command('enclave')
    .description(
      'Enclave ops: tenants (fleet migrations, drift), admin and auditor accounts, the audit trail, backups',
    )
    .showSuggestionAfterError()
    .exitOverride()
    .configureOutput({ outputError: () => {} });

  const tenants = program.command('tenants').description('create, list, migrate, check and drop tenants');
  tenants
    .command('create')
    .description('provision a tenant: role, schema and every tenant migration, in one transaction')
    .requiredOption('--name <name>', 'display name of the workspace')
    .addOption(json())
    .action(async (opts) => {
      process.exitCode = await (await tenantCommands()).createCommand(opts);
    });
  tenants
    .command('list')
    .description('list tenants with their schema, role, state and schema version')
    .option('--all', 'include deleted tenants')
    .addOption(json())
    .action(async (opts) => {
      process.exitCode = await (await tenantCommands()).listCommand(opts);
    });
  tenants
    .command('migrate')
    .description('apply pending tenant migrations to every tenant (or the given ones); resumable')
    .option('--concurrency <n>', 'tenants migrated at once (default: MIGRATION_CONCURRENCY)', concurrency)
    .option('--tenant <id...>', 'only these tenants')
    .addOption(json())
    .action(async (opts) => {
      process.exitCode = await (await tenantCommands()).migrateCommand(opts);
    });
  tenants
    .command('drift')
    .description("compare each tenant's tables, columns and indexes with its recorded version")
    .option('--tenant <id...>', 'only these tenants')
    .addOption(json())
    .action(async (opts) => {
      process.exitCode = await (await tenantCommands()).driftCommand(opts);
    });
  tenants
    .command('drop')
    .description("drop a tenant's schema and role and mark it deleted (refused under legal hold)")
    .argument('<id>', 'tenant id')
    .option('--yes', 'do not ask for confirmation')
    .addOption(json())
    .action(async (id, opts) => {
      process.exitCode = await (await tenantCommands()).dropCommand(id, opts);
    });
  registerStatsCommands(tenants); // tenants stats: cli/stats-commands.ts
  registerLifecycleCommands(tenants); // suspend|resume|archive|hold|release, lifecycle: cli/lifecycle-commands.ts
  registerCitusCheckCommand(tenants); // tenants check-citus: cli/citus-check-commands.ts
  const users = program.command('users').description('admin and auditor accounts');
  users
    .command('create-admin')
    .description('create an admin (or auditor) account; the password is typed, or read from stdin when piped')
    .requiredOption('--email <email>', 'sign-in email')
    .option('--name <name>', 'display name', 'Administrator')
    .option('--role <role>', 'admin or auditor', 'admin')
    .option('--require-mfa', 'must enrol MFA before doing anything else')
    .addOption(json())
    .action(async (opts) => {
      process.exitCode = await (await userCommands()).createAdminCommand(opts);
    });
  users
    .command('require-mfa')
    .description('make an admin or auditor enrol MFA before doing anything else (--off to lift it)')
    .argument('<email>', 'the account')
    .option('--off', 'no longer require MFA')
    .action(async (email, opts) => {
      process.exitCode = await (await userCommands()).requireMfaCommand(email, opts);
    });
  registerAuditCommands(program);
  registerBackupCommands(program); // per-tenant backups: cli/backup-commands.ts
  registerJobCommands(program); // enclave worker, enclave jobs …: cli/jobs-commands.ts
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return Number(process.exitCode ?? 0);
  } catch (err) {
    return await report(err);
  }
}

async function report(err: unknown): Promise<number> {
  const line = (message: string) => process.stderr.write(`enclave: ${message}\n`);
  if (err instanceof CommanderError) {
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return 0;
    if (err.code === 'commander.help') return 2; // help shown because no command was given
    if (err.code === 'commander.executeSubCommandAsync') return err.exitCode;
    line(`${err.message.replace(/^error: /, '')} (see --help)`);
    return 2;
  }
  if (err instanceof UsageError || err instanceof InvalidInputError) {
    line(err.message);
    return 2;
  }
  // kernel/config.ts (and zod) only if an error came: a ConfigError can only
  // have been thrown by a command that loaded it.
  const { ConfigError } = await import('../kernel/config.ts');
  if (err instanceof ConfigError) {
    line(`configuration error: ${err.message}`);
    return 78;
  }
  if (err instanceof TenancyError || err instanceof AppError) {
    line(err.message);
    return 1;
  }
  line(err instanceof Error ? err.message : String(err));
  return 1;
}
