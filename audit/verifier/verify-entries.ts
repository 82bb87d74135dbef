// entries.jsonl, one line at a time, as it streams out of the archive. The
// rules of one line (docs/AUDIT-FORMAT.md, "Checks, in order", step 5) are
// shared by both formats: `parseEntryLine` (canonical bytes, exact fields and
// types) and `checkEntryBody` (origin, tenant, a registry entry's signed
// checkpoint); only where a line is expected differs. Memory is a few values
// per chain, never per entry.
//
// Format v1 (`EntryChecker`): chains come in contiguous runs with gapless
// sequence numbers, and the hash chain needs hash_{firstSeq-1}, which only the
// manifest (the last tar entry) gives. A chain that starts at seq 1 starts
// from zeros, so it is hashed as it streams; a chain that starts later has its
// lines spooled to a temporary file and hashed once the manifest is in (see
// Spool): disk, not memory. Format v2 needs no spool (verify-v2.ts).
import type { KeyObject } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { chainHash, type SignedCheckpoint, ZERO_HASH } from './bundle-format.ts';
import type { Checkpoint } from './entry.ts';
import {
  canonicalValue,
  checkSignature,
  entryProblem,
  type Json,
  REGISTRY,
  tenantOfChain,
} from './shapes.ts';
import { VerificationError } from './verification-error.ts';

export interface ChainRun {
  chain: string;
  firstSeq: number;
  lastSeq: number;
  count: number;
  /** The running hash; null while the chain is spooled (it did not start at seq 1). */
  hash: Buffer | null;
  /** Hashes kept at chosen sizes (the auditor's --prev, the registry's records). */
  kept: Map<number, Buffer>;
}

/** The newest checkpoint the registry chain records for a chain. */
export interface RegistryRecord {
  size: number;
  head: string;
  registrySeq: number;
  signed: SignedCheckpoint;
}

/** Splits chunks into lines ending in `\n`; a line longer than `maxBytes` fails. */
export class LineSplitter {
  private parts: Buffer[] = [];
  private partBytes = 0;
  readonly maxBytes: number;
  private readonly onLine: (line: Buffer) => void;

  constructor(maxBytes: number, onLine: (line: Buffer) => void) {
    this.maxBytes = maxBytes;
    this.onLine = onLine;
  }

  push(chunk: Buffer): void {
    let start = 0;
    for (let nl = chunk.indexOf(10, start); nl !== -1; nl = chunk.indexOf(10, start)) {
      let line = chunk.subarray(start, nl);
      if (this.parts.length > 0) {
        line = Buffer.concat([...this.parts, line]);
        this.parts = [];
        this.partBytes = 0;
      }
      if (line.length > this.maxBytes) this.tooLong();
      this.onLine(line);
      start = nl + 1;
    }
    if (start < chunk.length) {
      const rest = Buffer.from(chunk.subarray(start)); // a copy: the chunk's memory is not ours to keep
      this.partBytes += rest.length;
      if (this.partBytes > this.maxBytes) this.tooLong();
      this.parts.push(rest);
    }
  }

  /** Bytes after the last newline (a final line without its `\n`). */
  get pending(): number {
    return this.partBytes;
  }

  private tooLong(): never {
    throw new VerificationError('line-too-long', `a line is longer than ${this.maxBytes} bytes`, {
      file: 'entries.jsonl',
    });
  }
}

/**
 * Lines of chains that did not start at seq 1, in stream order, written to a
 * file in large batches; replayed once their starting hash is known.
 */
export class Spool {
  private file: FileHandle | undefined;
  private batch: Buffer[] = [];
  private batchBytes = 0;
  readonly path: string;

  constructor(path: string) {
    this.path = path;
  }

  /** Keeps the line for later; `flush()` must be awaited now and then (it writes whole batches). */
  add(line: Buffer): void {
    this.batch.push(Buffer.from(line), NEWLINE);
    this.batchBytes += line.length + 1;
  }

  get due(): boolean {
    return this.batchBytes >= 1 << 20;
  }

  async flush(): Promise<void> {
    if (this.batch.length === 0) return;
    this.file ??= await open(this.path, 'wx', 0o600);
    const data = Buffer.concat(this.batch);
    this.batch = [];
    this.batchBytes = 0;
    await this.file.write(data);
  }

  /** The spooled lines, in order. */
  async *lines(maxBytes: number): AsyncGenerator<Buffer> {
    await this.flush();
    if (!this.file) return;
    await this.file.close();
    this.file = undefined;
    const out: Buffer[] = [];
    const splitter = new LineSplitter(maxBytes, (line) => out.push(line));
    for await (const chunk of createReadStream(this.path, { highWaterMark: 1 << 20 })) {
      splitter.push(chunk as Buffer);
      yield* out.splice(0);
    }
  }

  async close(): Promise<void> {
    await this.file?.close();
    this.file = undefined;
  }
}

const NEWLINE = Buffer.from('\n');

// --- the rules of one line, both formats ------------------------------------------

export interface Place {
  chain: string | null;
  seq: number | null;
}

/**
 * The entry a line holds: its canonical JSON (`not-canonical`) with exactly
 * the fields and types of its chain's kind (`invalid-entry`). `at` says where
 * a failure is reported, given what could be read of the entry.
 */
export function parseEntryLine(bytes: Buffer, at: (entry?: Json) => Place): Json {
  const value = canonicalValue(bytes);
  if (value === undefined)
    throw new VerificationError(
      'not-canonical',
      'the line is not byte for byte its RFC 8785 canonical JSON (key order, number form, white space, or not JSON)',
      at(looseObject(bytes)),
    );
  const problem = entryProblem(value);
  if (problem)
    throw new VerificationError('invalid-entry', `not an audit entry: ${problem}`, at(value as Json));
  return value as Json;
}

/** The line read as plain JSON, for telling where a non-canonical line is (format v1). */
function looseObject(bytes: Buffer): Json | undefined {
  try {
    const v = JSON.parse(bytes.toString('utf8')) as unknown;
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * An entry at its place: of the bundle's origin (`wrong-origin`), of the
 * chain's tenant (`wrong-tenant`), and for a registry entry a recorded
 * checkpoint of this origin signed by a pinned key (`wrong-origin`,
 * `unknown-key`, `bad-signature`).
 */
export function checkEntryBody(
  entry: Json,
  here: { chain: string; seq: number },
  origin: string,
  keys: ReadonlyMap<string, KeyObject>,
): void {
  if (entry.origin !== origin)
    throw new VerificationError('wrong-origin', 'the entry comes from another installation', {
      ...here,
      expected: origin,
      actual: String(entry.origin),
    });
  if (here.chain !== REGISTRY) {
    const tenant = tenantOfChain(here.chain);
    if (entry.tenant !== tenant)
      throw new VerificationError(
        'wrong-tenant',
        `the entry's tenant does not belong to chain ${here.chain}`,
        {
          ...here,
          expected: String(tenant),
          actual: String(entry.tenant),
        },
      );
    return;
  }
  const cp = entry.checkpoint as Checkpoint;
  if (cp.origin !== origin)
    throw new VerificationError(
      'wrong-origin',
      'the registry entry records a checkpoint of another installation',
      {
        ...here,
        expected: origin,
        actual: cp.origin,
      },
    );
  checkSignature({ checkpoint: cp, signature: entry.signature as string }, keys, 'the recorded checkpoint', {
    at: here,
  });
}

/** The newest checkpoint the registry chain records for a chain: the first of the largest size. */
export function recordRegistry(
  registry: Map<string, RegistryRecord>,
  entry: Json,
  registrySeq: number,
): void {
  const cp = entry.checkpoint as Checkpoint;
  const seen = registry.get(cp.chain);
  if (!seen || cp.size > seen.size)
    registry.set(cp.chain, {
      size: cp.size,
      head: cp.head,
      registrySeq,
      signed: { checkpoint: cp, signature: entry.signature as string },
    });
}

// --- format v1: chains in contiguous runs, placed by their own chain and seq ---------

export class EntryChecker {
  readonly runs = new Map<string, ChainRun>();
  /** Runs waiting for their starting hash, in the order their lines were spooled. */
  readonly spooled: ChainRun[] = [];
  readonly registry = new Map<string, RegistryRecord>();
  origin: string | null = null;
  entries = 0;
  private current: ChainRun | null = null;
  private readonly keep: ReadonlyMap<string, number>;
  private readonly spool: Spool;
  private readonly keys: ReadonlyMap<string, KeyObject>;

  /** `keep`: for a chain, a size whose hash must be kept (the auditor's earlier checkpoint). */
  constructor(spool: Spool, keep: ReadonlyMap<string, number>, keys: ReadonlyMap<string, KeyObject>) {
    this.spool = spool;
    this.keep = keep;
    this.keys = keys;
  }

  line(bytes: Buffer): void {
    // Where a failure is reported: the entry's own chain and seq if it has them, else the next expected.
    const at = (entry?: Json): Place => ({
      chain: typeof entry?.chain === 'string' ? entry.chain : (this.current?.chain ?? null),
      seq: Number.isSafeInteger(entry?.seq)
        ? (entry?.seq as number)
        : this.current
          ? this.current.lastSeq + 1
          : null,
    });
    const entry = parseEntryLine(bytes, at);
    const chain = entry.chain as string;
    const seq = entry.seq as number;
    this.place(chain, seq);
    const here = { chain, seq };
    this.origin ??= entry.origin as string;
    checkEntryBody(entry, here, this.origin, this.keys);
    if (chain === REGISTRY) recordRegistry(this.registry, entry, seq);
    this.hash(bytes, seq);
    this.entries++;
  }

  /** Puts the entry into its chain's run, or fails on a splice, gap, repeat or reordering. */
  private place(chain: string, seq: number): void {
    let run = this.current;
    if (run?.chain !== chain) {
      const earlier = this.runs.get(chain);
      if (earlier && run)
        throw new VerificationError(
          'foreign-entry',
          `an entry of chain ${run.chain} sits inside chain ${chain}: spliced in from another chain`,
          { chain, seq: earlier.lastSeq + 1, expected: chain, actual: run.chain },
        );
      run = {
        chain,
        firstSeq: seq,
        lastSeq: seq - 1,
        count: 0,
        hash: seq === 1 ? ZERO_HASH : null,
        kept: new Map(),
      };
      this.runs.set(chain, run);
      if (run.hash === null) this.spooled.push(run);
      this.current = run;
    }
    if (seq !== run.lastSeq + 1)
      throw new VerificationError(
        'sequence',
        `expected seq ${run.lastSeq + 1}, found ${seq}: an entry is missing, repeated or out of order`,
        { chain, seq: run.lastSeq + 1, expected: run.lastSeq + 1, actual: seq },
      );
    run.lastSeq = seq;
    run.count++;
  }

  private hash(bytes: Buffer, seq: number): void {
    const run = this.current as ChainRun;
    if (run.hash === null) {
      this.spool.add(bytes);
      return;
    }
    run.hash = chainHash(run.hash, bytes);
    this.keepIfWanted(run, seq);
  }

  private keepIfWanted(run: ChainRun, seq: number): void {
    if (this.keep.get(run.chain) === seq || this.registry.get(run.chain)?.size === seq)
      run.kept.set(seq, run.hash as Buffer);
  }

  get spoolDue(): boolean {
    return this.spool.due;
  }

  flush(): Promise<void> {
    return this.spool.flush();
  }

  /** Hashes the spooled runs from their starting hashes (from the manifest), in order. */
  async replay(startHash: (chain: string) => Buffer, maxLineBytes: number): Promise<void> {
    const runs = this.spooled[Symbol.iterator]();
    let run: ChainRun | undefined;
    let left = 0;
    for await (const line of this.spool.lines(maxLineBytes)) {
      while (left === 0) {
        run = runs.next().value;
        if (!run) throw new Error('spool holds more lines than were spooled');
        run.hash = startHash(run.chain);
        left = run.count;
      }
      const r = run as ChainRun;
      const seq = r.lastSeq - left + 1;
      r.hash = chainHash(r.hash as Buffer, line);
      this.keepIfWanted(r, seq);
      left--;
    }
  }
}

// --- format v2: one line at its expected place (inline, or in a worker: parallel-lines.ts) ---

/**
 * Step 5's checks of one line at its expected place (chain, seq), in their
 * order: canonical, an entry, the expected chain (`foreign-entry`) and seq
 * (`sequence`), origin, tenant, a registry entry's signed checkpoint. Returns
 * the entry; the caller hashes the line.
 */
export function checkEntryAt(
  bytes: Buffer,
  here: { chain: string; seq: number },
  origin: string,
  keys: ReadonlyMap<string, KeyObject>,
): Json {
  const entry = parseEntryLine(bytes, () => here);
  if (entry.chain !== here.chain)
    throw new VerificationError(
      'foreign-entry',
      `an entry of chain ${String(entry.chain)} sits in chain ${here.chain}`,
      {
        ...here,
        expected: here.chain,
        actual: String(entry.chain),
      },
    );
  if (entry.seq !== here.seq)
    throw new VerificationError(
      'sequence',
      `expected seq ${here.seq}, found ${String(entry.seq)}: an entry is missing, repeated or out of order`,
      { ...here, expected: here.seq, actual: entry.seq as number },
    );
  checkEntryBody(entry, here, origin, keys);
  return entry;
}
