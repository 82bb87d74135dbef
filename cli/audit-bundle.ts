// `enclave audit export`: the bundle a compliance officer takes away (the
// check they run on it, `enclave audit verify`, is in cli/audit-verify.ts).
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import { rename, unlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import cliProgress from 'cli-progress';
import { type Command, InvalidArgumentError } from 'commander';
import { printJson } from './output.ts';
import { UsageError } from './usage-error.ts';

export function registerAuditBundleCommands(audit: Command): void {
  audit
    .command('export')
    .description(
      'export the sealed audit trail as a .tar.gz bundle (entries, checkpoints, public keys, manifest)',
    )
    .option(
      '--tenant <id>',
      "only this tenant's chain (default: every chain, the platform and registry chains included)",
    )
    .option('--from <time>', 'each chain from its first entry at or after this time (ISO 8601)', time)
    .option(
      '--to <time>',
      'each chain up to its latest checkpoint signed at or before this time (ISO 8601)',
      time,
    )
    .requiredOption('--out <file>', 'the bundle to write (written aside, then renamed into place)')
    .option('--json', 'print machine-readable JSON')
    .action(async (opts) => {
      process.exitCode = await exportCommand(opts);
    });
}

function time(value: string): Date {
  const ms = Date.parse(value);
  if (!/^\d{4}-\d\d-\d\d/.test(value) || Number.isNaN(ms))
    throw new InvalidArgumentError('must be an ISO 8601 time, e.g. 2026-11-22T17:00:00Z');
  return new Date(ms);
}

// --- export --------------------------------------------------------------------

export async function exportCommand(opts: {
  tenant?: string;
  from?: Date;
  to?: Date;
  out: string;
  json?: boolean;
}): Promise<number> {
  const { checkTenantIds } = await import('./tenants.ts');
  const [tenant] = opts.tenant ? checkTenantIds([opts.tenant]) : [];
  if (opts.from && opts.to && opts.from > opts.to) throw new UsageError('--from is after --to');
  const { connect } = await import('./connect.ts');
  const { exportBundle } = await import('../audit/export.ts');
  const { selectHasChain } = await import('../audit/export-sql.ts');
  const { tenantChain } = await import('../audit/verifier/entry.ts');
  const { loadSigner } = await import('../audit/signing.ts');
  const ctx = await connect(2);
  const aside = path.join(
    path.dirname(opts.out),
    `.${path.basename(opts.out)}.${randomBytes(4).toString('hex')}.tmp`,
  );
  let file: WriteStream | undefined;
  const bar =
    process.stderr.isTTY && !opts.json
      ? new cliProgress.SingleBar(
          { stream: process.stderr, format: 'Exporting {bar} {value}/{total} entries | ETA {eta}s' },
          cliProgress.Presets.shades_classic,
        )
      : undefined;
  try {
    if (tenant && (await ctx.pool.query(selectHasChain(tenantChain(tenant)))).rowCount === 0)
      throw new UsageError(`tenant ${tenant} has no sealed audit trail yet (see \`enclave audit seal\`)`);
    // The manifest is signed with the audit signing key: the published current one, or a clear error.
    const signer = await loadSigner(ctx.config, ctx.pool);
    // flush: fsync before close, so the file is on disk before it takes its final name.
    file = createWriteStream(aside, { flags: 'wx', mode: 0o600, flush: true });
    await once(file, 'open').catch((err: Error) => {
      throw new UsageError(`cannot write ${opts.out}: ${err.message}`);
    });
    let started = false;
    const summary = await exportBundle(ctx.pool, file, {
      tenant: tenant ?? null,
      from: opts.from ?? null,
      to: opts.to ?? null,
      actor: { type: 'system', id: `cli:${os.userInfo().username}` },
      signer,
      onProgress: (done, total) => {
        if (!bar) return;
        if (!started) bar.start(total, 0);
        started = true;
        bar.update(done);
      },
    });
    bar?.stop();
    if (!file.closed) await once(file, 'close');
    await rename(aside, opts.out);
    if (opts.json) printJson({ file: opts.out, ...summary });
    else
      process.stdout.write(
        `Exported ${summary.entries} entries in ${summary.chains} chains to ${opts.out} (manifest SHA-256 ${summary.manifestSha256}).\n`,
      );
    return 0;
  } catch (err) {
    bar?.stop();
    file?.destroy();
    await unlink(aside).catch(() => {});
    throw err;
  } finally {
    await ctx.close();
  }
}
