// `enclave audit verify`: the check a compliance officer runs on an exported
// bundle, offline (docs/AUDIT-FORMAT.md, "Offline verify"). It needs no
// database, server or configuration: a bundle file and a pinned key file, and
// it loads nothing that touches them (test/cli/lazy-loading.test.ts): the
// verifier itself is imported in the action.
//
// Exit codes: 0 OK, 1 the bundle failed (one FAIL line), 2 bad usage (a key,
// --prev or kept-checkpoints file that cannot be read or parsed). An existing
// --save-checkpoints file is checked as --prev as well, then merged into.
import { randomBytes } from 'node:crypto';
import { open, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { canonicalBytes, type SignedCheckpoint } from '../audit/verifier/bundle-format.ts';
import type { VerifyFailure, VerifyOk } from '../audit/verifier/verify.ts';
import { printJson } from './output.ts';
import { UsageError } from './usage-error.ts';

export function registerAuditVerifyCommand(audit: Command): void {
  audit
    .command('verify')
    .description(
      'verify an exported bundle offline against pinned public keys (no database or server needed)',
    )
    .argument('<file>', 'the bundle (.tar.gz) from `enclave audit export`')
    .requiredOption(
      '--key <file>',
      'the pinned public keys: PEM from `enclave audit public-key --all` (several keys allowed)',
    )
    .option('--origin <origin>', 'the installation the bundle must come from (enclave:<id>)')
    .option(
      '--prev <file>',
      'earlier checkpoints: one { "checkpoint", "signature" } object, a JSON array of them, or one per line',
    )
    .option(
      '--save-checkpoints <file>',
      "on OK, merge the bundle's end checkpoints into this file; what it already keeps is checked as --prev too",
    )
    .option(
      '--threads <n>',
      'threads checking entry lines (default: the available cores; 1: one thread); the verdict is the same',
    )
    .option('--json', 'print machine-readable JSON')
    .action(async (file, opts) => {
      process.exitCode = await verifyCommand(file, opts);
    });
}

export interface VerifyCommandOptions {
  key: string;
  origin?: string;
  prev?: string;
  saveCheckpoints?: string;
  json?: boolean;
  threads?: string;
}

export async function verifyCommand(file: string, opts: VerifyCommandOptions): Promise<number> {
  const { PinnedKeyError, readPinnedKeys, verifyBundle } = await import('../audit/verifier/verify.ts');
  const { verdictLines, failLine } = await import('../audit/verifier/verdict.ts');
  let keys: ReturnType<typeof readPinnedKeys>;
  try {
    keys = readPinnedKeys(await readText(opts.key, '--key'));
  } catch (err) {
    if (err instanceof PinnedKeyError) throw new UsageError(`--key ${opts.key}: ${err.message}`);
    throw err;
  }
  const threads = opts.threads === undefined ? undefined : Number(opts.threads);
  if (threads !== undefined && !(Number.isSafeInteger(threads) && threads >= 1 && threads <= 256))
    throw new UsageError(`--threads: ${opts.threads} is not a whole number from 1 to 256`);
  if (opts.origin !== undefined && opts.origin.trim() === '')
    throw new UsageError('--origin: an empty origin (expected enclave:<id>)');
  const given = opts.prev ? readPrev(await readText(opts.prev, '--prev'), `--prev ${opts.prev}`) : undefined;
  const kept = opts.saveCheckpoints ? await readKept(opts.saveCheckpoints) : undefined;
  // What the kept file holds is checked as --prev too (with or without --prev):
  // a kept checkpoint is never replaced by a larger one of a rewritten chain.
  const prev = withKept(given, kept);
  const result = await verifyFile(file, keys, { ...opts, threads }, prev, verifyBundle);
  const print = (r: VerifyOk | VerifyFailure) => {
    if (opts.json) {
      const { error: _error, ...plain } = r as VerifyFailure;
      printJson(plain);
    } else process.stdout.write(`${verdictLines(r).join('\n')}\n`);
  };
  if (result.ok && opts.saveCheckpoints && kept) {
    const merged = mergeCheckpoints(kept, result.checkpoints);
    if (!merged.ok) {
      if (opts.json) printJson({ ...merged.failure, file: opts.saveCheckpoints });
      else process.stdout.write(`${failLine(merged.failure)}\n`);
      return 1;
    }
    await writeKept(opts.saveCheckpoints, merged.checkpoints);
  }
  print(result);
  return result.ok ? 0 : 1;
}

async function verifyFile(
  file: string,
  keys: Parameters<typeof import('../audit/verifier/verify.ts').verifyBundle>[1],
  opts: Omit<VerifyCommandOptions, 'threads'> & { threads: number | undefined },
  prev: SignedCheckpoint[] | undefined,
  verifyBundle: typeof import('../audit/verifier/verify.ts').verifyBundle,
): Promise<VerifyOk | VerifyFailure> {
  let bundle: Awaited<ReturnType<typeof open>>;
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
  try {
    return await verifyBundle(counted, keys, {
      ...(prev ? { prev } : {}),
      ...(opts.origin === undefined ? {} : { origin: opts.origin }),
      ...(opts.threads === undefined ? {} : { threads: opts.threads }),
      onProgress: (n) => {
        entries = n;
      },
    });
  } finally {
    bar?.stop();
    await bundle.close().catch(() => {});
  }
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

/**
 * One `{ checkpoint, signature }` object, a JSON array of them, or one per
 * line (a kept file, a checkpoints.jsonl). Their fields and signatures are
 * the verifier's to judge (`prev-invalid`); text that is not such JSON at all
 * is a usage error. `what` names the file in the message.
 */
export function readPrev(text: string, what: string): SignedCheckpoint[] {
  const bad = () =>
    new UsageError(
      `${what}: not a checkpoint ({ "checkpoint": {...}, "signature": "..." }) per line or array`,
    );
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

// --- --save-checkpoints: one kept file for full and tenant exports alike -----------------

/** The kept file's checkpoints; a missing file is an empty one, an unreadable or garbled one a usage error. */
async function readKept(file: string): Promise<SignedCheckpoint[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new UsageError(
      `--save-checkpoints ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  if (text.trim() === '') return [];
  const kept = readPrev(text, `--save-checkpoints ${file}`);
  const { signedCheckpointProblem } = await import('../audit/verifier/shapes.ts');
  for (const k of kept) {
    const problem = signedCheckpointProblem(k);
    if (problem)
      throw new UsageError(`--save-checkpoints ${file}: a kept checkpoint is malformed: ${problem}`);
  }
  return kept;
}

/** The --prev checkpoints and the kept ones, each once (the kept file is often --prev too). */
function withKept(
  prev: SignedCheckpoint[] | undefined,
  kept: SignedCheckpoint[] | undefined,
): SignedCheckpoint[] | undefined {
  if (!kept || kept.length === 0) return prev;
  const seen = new Set((prev ?? []).map((c) => JSON.stringify(c)));
  const added = kept.filter((c) => !seen.has(JSON.stringify(c)));
  return [...(prev ?? []), ...added];
}

type Merge =
  | { ok: true; checkpoints: SignedCheckpoint[] }
  | {
      ok: false;
      failure: Pick<VerifyFailure, 'reason' | 'chain' | 'seq' | 'message' | 'expected' | 'actual'>;
    };

/**
 * Per chain the checkpoint of the largest size, sorted by chain (byte order);
 * two of one chain and size with different heads are a fork.
 */
export function mergeCheckpoints(kept: SignedCheckpoint[], verified: SignedCheckpoint[]): Merge {
  const bySize = new Map<string, SignedCheckpoint>();
  const largest = new Map<string, SignedCheckpoint>();
  for (const sc of [...kept, ...verified]) {
    const { chain, size, head } = sc.checkpoint;
    const key = `${size} ${chain}`;
    const same = bySize.get(key);
    if (same && same.checkpoint.head !== head)
      return {
        ok: false,
        failure: {
          reason: 'forked',
          chain,
          seq: size,
          message: 'the bundle signs another head at the size of a kept checkpoint: history was rewritten',
          expected: same.checkpoint.head,
          actual: head,
        },
      };
    bySize.set(key, sc);
    const before = largest.get(chain);
    if (!before || before.checkpoint.size < size) largest.set(chain, sc);
  }
  const chains = [...largest.keys()].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  return { ok: true, checkpoints: chains.map((c) => largest.get(c) as SignedCheckpoint) };
}

/** One canonical line per chain, written aside then renamed over the kept file. */
async function writeKept(file: string, checkpoints: SignedCheckpoint[]): Promise<void> {
  const aside = path.join(
    path.dirname(file),
    `.${path.basename(file)}.${randomBytes(4).toString('hex')}.tmp`,
  );
  try {
    await writeFile(aside, checkpoints.map((c) => `${canonicalBytes(c).toString('utf8')}\n`).join(''), {
      flag: 'wx',
      mode: 0o644,
    });
    await rename(aside, file);
  } catch (err) {
    await unlink(aside).catch(() => {});
    throw new UsageError(
      `--save-checkpoints ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
}
