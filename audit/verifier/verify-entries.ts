// Checks entries.jsonl one line at a time, as it streams out of the archive:
// each line must be its own RFC 8785 form, byte for byte; chains come in
// contiguous runs with gapless sequence numbers; origin and tenant belong to
// the chain. Memory is a few values per chain, never per entry.
//
// The hash chain needs hash_{firstSeq-1}, which only the manifest (the last
// tar entry) gives. A chain that starts at seq 1 starts from zeros, so it is
// hashed as it streams; a chain that starts later (an export with --from, or
// after pruned payloads) has its lines spooled to a temporary file and hashed
// once the manifest is in (see Spool): disk, not memory.
import { createReadStream } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { canonicalBytes, chainHash, ZERO_HASH } from './bundle-format.ts';
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
    throw new VerificationError('line-too-long', `a line is longer than ${this.maxBytes} bytes`);
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

/** The chain a tenant's events go to; anything else is `platform` or `registry`. */
const TENANT_CHAIN = /^t_[a-z0-9]+$/;

type Json = Record<string, unknown>;

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

  /** `keep`: for a chain, a size whose hash must be kept (the auditor's earlier checkpoint). */
  constructor(spool: Spool, keep: ReadonlyMap<string, number>) {
    this.spool = spool;
    this.keep = keep;
  }

  line(bytes: Buffer): void {
    // Where a failure is reported: the entry's own chain and seq if it has them, else the next expected.
    const at = (entry?: Json) => ({
      chain: typeof entry?.chain === 'string' ? entry.chain : (this.current?.chain ?? null),
      seq: Number.isSafeInteger(entry?.seq)
        ? (entry?.seq as number)
        : this.current
          ? this.current.lastSeq + 1
          : null,
    });
    let value: unknown;
    try {
      value = JSON.parse(bytes.toString('utf8'));
    } catch {
      throw new VerificationError('not-canonical', 'the line is not JSON', at());
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value))
      throw new VerificationError('invalid-entry', 'the line is not a JSON object', at());
    const entry = value as Json;
    let canonical: Buffer | undefined;
    try {
      canonical = canonicalBytes(entry);
    } catch {
      // outside the canonical subset (canonical.ts): a lone surrogate, a number that is not a safe integer
    }
    if (!canonical?.equals(bytes))
      throw new VerificationError(
        'not-canonical',
        'the line differs from its RFC 8785 canonical form (key order, number form or white space)',
        at(entry),
      );
    const { chain, seq, origin } = entry;
    if (
      entry.v !== 1 ||
      typeof chain !== 'string' ||
      !Number.isSafeInteger(seq) ||
      typeof origin !== 'string'
    )
      throw new VerificationError('invalid-entry', 'the entry lacks v = 1, chain, seq or origin', at(entry));
    this.place(chain, seq as number);
    const here = { chain, seq: seq as number };
    if (this.origin === null) this.origin = origin;
    else if (origin !== this.origin)
      throw new VerificationError('wrong-origin', 'the entry comes from another installation', {
        ...here,
        expected: this.origin,
        actual: origin,
      });
    this.checkTenant(entry, here);
    this.hash(bytes, here.seq);
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

  private checkTenant(entry: Json, at: { chain: string; seq: number }): void {
    const { chain } = at;
    if (chain === 'registry') {
      this.recordCheckpoint(entry, at);
      return;
    }
    const expected = chain === 'platform' ? null : TENANT_CHAIN.test(chain) ? chain.slice(2) : undefined;
    if (expected === undefined)
      throw new VerificationError('invalid-entry', `"${chain}" is not a chain name`, at);
    if (entry.tenant !== expected)
      throw new VerificationError('wrong-tenant', `the entry's tenant does not belong to chain ${chain}`, {
        ...at,
        expected: String(expected),
        actual: String(entry.tenant),
      });
  }

  /** A registry entry: remember the newest checkpoint it records per chain. */
  private recordCheckpoint(entry: Json, at: { chain: string; seq: number }): void {
    const cp = entry.checkpoint as Json | null | undefined;
    if (
      entry.kind !== 'checkpoint' ||
      'tenant' in entry ||
      typeof entry.signature !== 'string' ||
      !cp ||
      typeof cp !== 'object' ||
      typeof cp.chain !== 'string' ||
      !Number.isSafeInteger(cp.size) ||
      typeof cp.head !== 'string'
    )
      throw new VerificationError('invalid-entry', 'a registry entry must record one signed checkpoint', at);
    const seen = this.registry.get(cp.chain);
    if (!seen || (cp.size as number) >= seen.size)
      this.registry.set(cp.chain, { size: cp.size as number, head: cp.head, registrySeq: at.seq });
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
