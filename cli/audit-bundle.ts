// `enclave audit export` and `enclave audit verify`: the bundle a compliance
// officer takes away, and the check they run on it. `verify` needs no
// database, server or configuration: a bundle file and a pinned key file.
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import { type FileHandle, open, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import cliProgress from 'cli-progress';
import { type Command, InvalidArgumentError } from 'commander';
import { canonicalBytes, type SignedCheckpoint } from '../audit/verifier/bundle-format.ts';
import type { VerifyFailure, VerifyOk } from '../audit/verifier/verify.ts';
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
  audit
    .command('verify')
    .description(
      'verify an exported bundle offline against a pinned public key (no database or server needed)',
    )
    .argument('<file>', 'the bundle (.tar.gz) from `enclave audit export`')
    .requiredOption(
      '--key <file>',
      'the pinned public key: PEM from `enclave audit public-key` (several keys allowed)',
    )
    .option(
      '--prev <file>',
      'an earlier checkpoint, { "checkpoint", "signature" } JSON, or a checkpoints.jsonl',
    )
    .option('--save-checkpoints <file>', "on OK, write the bundle's checkpoints here: the next --prev")
    .option('--json', 'print machine-readable JSON')
    .action(async (file, opts) => {
      process.exitCode = await verifyCommand(file, opts);
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

// --- verify ----------------------------------------------------------------------

export async function verifyCommand(
  file: string,
  opts: { key: string; prev?: string; saveCheckpoints?: string; json?: boolean },
): Promise<number> {
  const { PinnedKeyError, readPinnedKeys, verifyBundle } = await import('../audit/verifier/verify.ts');
  let keys: ReturnType<typeof readPinnedKeys>;
  try {
    keys = readPinnedKeys(await readText(opts.key, '--key'));
  } catch (err) {
    if (err instanceof PinnedKeyError) throw new UsageError(`--key ${opts.key}: ${err.message}`);
    throw err;
  }
  const prev = opts.prev ? readPrev(await readText(opts.prev, '--prev'), opts.prev) : undefined;
  let bundle: FileHandle;
  try {
    bundle = await open(file, 'r');
  } catch (err) {
    throw new UsageError(
      `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  const size = (await bundle.stat()).size;
  const bar =
    process.stderr.isTTY && !opts.json
      ? new cliProgress.SingleBar(
          {
            stream: process.stderr,
            format: 'Verifying {bar} {percentage}% | {entries} entries | ETA {eta}s',
          },
          cliProgress.Presets.shades_classic,
        )
      : undefined;
  bar?.start(size, 0, { entries: 0 });
  let read = 0;
  let entries = 0;
  const counted = new Transform({
    transform(chunk: Buffer, _enc, done) {
      read += chunk.length;
      bar?.update(read, { entries });
      done(null, chunk);
    },
  });
  // pipeline, not pipe: a read error must end the verifier's input, not leave it waiting.
  pipeline(bundle.createReadStream({ autoClose: false }), counted).catch(() => {});
  let result: VerifyOk | VerifyFailure;
  try {
    result = await verifyBundle(counted, keys, {
      ...(prev ? { prev } : {}),
      onProgress: (n) => {
        entries = n;
      },
    });
  } finally {
    bar?.stop();
    await bundle.close().catch(() => {});
  }
  if (opts.json) {
    const { error: _error, ...plain } = result as VerifyFailure;
    printJson(plain);
  } else process.stdout.write(`${resultLine(result)}\n`);
  if (result.ok && opts.saveCheckpoints) await saveCheckpoints(opts.saveCheckpoints, result.checkpoints);
  return result.ok ? 0 : 1;
}

export function resultLine(result: VerifyOk | VerifyFailure): string {
  if (result.ok)
    return `OK: ${result.entries} entries in ${result.chains.length} chains, checkpoints verified`;
  const where =
    result.chain === null
      ? (result.file ?? 'bundle')
      : `chain ${result.chain}${result.seq === null ? '' : ` seq ${result.seq}`}`;
  const values =
    result.expected === undefined
      ? ''
      : ` (expected ${result.expected}, found ${result.actual ?? 'nothing'})`;
  return `FAIL: ${where}: ${result.reason}: ${result.message}${values}`;
}

async function readText(file: string, option: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new UsageError(
      `${option} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
}

/** One `{ checkpoint, signature }` object, an array of them, or one per line (a checkpoints.jsonl). */
export function readPrev(text: string, file: string): SignedCheckpoint[] {
  const bad = () =>
    new UsageError(`--prev ${file}: not a checkpoint ({ "checkpoint": {...}, "signature": "..." })`);
  let values: unknown[];
  try {
    const whole = JSON.parse(text) as unknown;
    values = Array.isArray(whole) ? whole : [whole];
  } catch {
    try {
      values = text
        .split('\n')
        .filter((l) => l.trim())
        .map((l) => JSON.parse(l) as unknown);
    } catch {
      throw bad();
    }
  }
  if (values.length === 0 || !values.every((v) => typeof v === 'object' && v !== null && 'checkpoint' in v))
    throw bad();
  return values as SignedCheckpoint[];
}

/** The checkpoints of a verified bundle, one canonical line each, written aside then renamed. */
async function saveCheckpoints(file: string, checkpoints: SignedCheckpoint[]): Promise<void> {
  const aside = `${file}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(aside, checkpoints.map((c) => `${canonicalBytes(c).toString('utf8')}\n`).join(''), {
    flag: 'wx',
  });
  await rename(aside, file);
}
