// `enclave audit ...`: sealing, keys and retention of the audit trail; the
// bundle commands are registered from cli/audit-bundle.ts (export) and
// cli/audit-verify.ts (verify).
// The chain commands need the database: cli/audit-chain.ts is imported in
// their actions, so that `audit verify` never loads pg.
import type { Command } from 'commander';
import { registerAuditBundleCommands } from './audit-bundle.ts';
import { registerAuditVerifyCommand } from './audit-verify.ts';

const chainCommands = () => import('./audit-chain.ts');

export function registerAuditCommands(program: Command): Command {
  const audit = program
    .command('audit')
    .description('the tamper-evident audit trail: seal, keys, export, verify');
  audit
    .command('seal')
    .description('seal the audit inbox now: append to the hash chains and sign checkpoints')
    .option('--json', 'print machine-readable JSON')
    .action(async (opts) => {
      process.exitCode = await (await chainCommands()).sealCommand(opts);
    });
  audit
    .command('public-key')
    .description('print the current audit signing public key as PEM (--all: every key with its id)')
    .option('--all', 'every key, old ones included, with ids')
    .option('--json', 'print machine-readable JSON')
    .action(async (opts) => {
      process.exitCode = await (await chainCommands()).publicKeyCommand(opts);
    });
  audit
    .command('prune')
    .description(
      'drop the payload of audit entries older than AUDIT_RETENTION_DAYS (hashes kept; never under legal hold)',
    )
    .option('--json', 'print machine-readable JSON')
    .action(async (opts) => {
      process.exitCode = await (await chainCommands()).pruneCommand(opts);
    });
  audit
    .command('rotate-key')
    .description(
      'replace the audit signing key; the old public key stays published so old checkpoints still verify',
    )
    .option('--json', 'print machine-readable JSON')
    .action(async (opts) => {
      process.exitCode = await (await chainCommands()).rotateKeyCommand(opts);
    });
  registerAuditBundleCommands(audit); // export: cli/audit-bundle.ts
  registerAuditVerifyCommand(audit); // verify (offline): cli/audit-verify.ts
  return audit;
}
