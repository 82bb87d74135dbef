// Step 5 on every core: the main thread splits entries.jsonl into lines, knows
// each line's expected place (chain, seq) from the manifest alone, hashes the
// chains (sequential by nature, and cheap) and hands the lines in batches to
// worker threads (entry-worker.ts), which run the per-line checks: the
// expensive part (JSON, canonical form, fields, signatures of registry
// entries). Any line can go to any worker, so one long chain spreads as well
// as many short ones.
//
// The verdict does not depend on the number of workers: each failure carries
// the index of its line, and the first failure in stream order wins, as if one
// thread had checked the lines in order (`LinePool.first`). Registry records
// are applied in batch order. Memory stays flat: at most `MAX_IN_FLIGHT`
// batches of about `BATCH_BYTES` are out at any time; the reader waits
// (`pushed`) when that many are out.
import type { KeyObject } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import type { Checkpoint } from './entry.ts';
import { pinnedKeyId } from './keys.ts';
import { VerificationError, type VerifyReason } from './verification-error.ts';

const BATCH_BYTES = 256 << 10;
const BATCH_LINES = 1024;
const MAX_IN_FLIGHT_PER_WORKER = 4;
/** Each worker's young generation (MiB): a line's garbage dies young; small keeps the heap flat. */
const YOUNG_MB = 2;

export interface WorkerSetup {
  origin: string;
  /** The manifest's chain names; a line names its chain by index. */
  chains: string[];
  keys: Array<{ keyId: string; der: Uint8Array }>;
}

export interface BatchMessage {
  id: number;
  /** The global index of the batch's first line. */
  first: number;
  data: Uint8Array<ArrayBuffer>;
  /** Where each line ends in `data` (the next starts there). */
  ends: Uint32Array<ArrayBuffer>;
  chains: Uint32Array<ArrayBuffer>;
  seqs: Float64Array<ArrayBuffer>;
}

export interface RegistryLine {
  seq: number;
  checkpoint: Checkpoint;
  signature: string;
}

export interface LineFailure {
  index: number;
  reason: VerifyReason;
  message: string;
  chain: string | null;
  seq: number | null;
  file: string | undefined;
  expected: string | number | undefined;
  actual: string | number | undefined;
}

export interface BatchResult {
  id: number;
  failure: LineFailure | null;
  registry: RegistryLine[];
  /** The worker's heap in use after the batch (bytes). */
  heap: number;
  crash?: string;
}

/** A worker thread failed: a bug or a lack of resources, never a verdict on the bundle. */
export class WorkerFailure extends Error {
  override name = 'WorkerFailure';
}

export class LinePool {
  /** The earliest failing line reported so far (by index). */
  first: LineFailure | null = null;
  private readonly workers: Worker[];
  private readonly onRegistry: (line: RegistryLine) => void;
  private readonly done = new Map<number, BatchResult>();
  private nextId = 0;
  private nextApplied = 0;
  private turn = 0;
  private crashed: Error | null = null;
  private closed = false;
  private readonly batchLines: number;
  private readonly onHeap: ((bytes: number) => void) | undefined;
  private readonly heaps = new Map<Worker, number>();
  private waiter: (() => void) | null = null;
  private readonly maxInFlight: number;
  // The batch being filled.
  private parts: Buffer[] = [];
  private bytes = 0;
  private firstLine = 0;
  private ends: number[] = [];
  private chains: number[] = [];
  private seqs: number[] = [];

  constructor(
    threads: number,
    setup: { origin: string; chains: string[]; keys: ReadonlyMap<string, KeyObject> },
    onRegistry: (line: RegistryLine) => void,
    onHeap?: (bytes: number) => void,
    batchLines = BATCH_LINES,
  ) {
    this.onHeap = onHeap;
    this.batchLines = Math.max(1, batchLines);
    const workerData: WorkerSetup = {
      origin: setup.origin,
      chains: setup.chains,
      keys: [...setup.keys.values()].map((k) => ({
        keyId: pinnedKeyId(k),
        der: new Uint8Array(k.export({ type: 'spki', format: 'der' })),
      })),
    };
    this.onRegistry = onRegistry;
    this.maxInFlight = threads * MAX_IN_FLIGHT_PER_WORKER;
    this.workers = Array.from({ length: threads }, () => {
      const w = new Worker(new URL('./entry-worker.ts', import.meta.url), {
        workerData,
        // A small young generation: a line's garbage dies young, and the heap stays small.
        resourceLimits: { maxYoungGenerationSizeMb: YOUNG_MB },
      });
      w.on('message', (r: BatchResult) => {
        if (this.onHeap) {
          this.heaps.set(w, r.heap);
          let sum = 0;
          for (const h of this.heaps.values()) sum += h;
          this.onHeap(sum);
        }
        this.received(r);
      });
      w.on('error', (err) =>
        this.crash(new WorkerFailure(`a verifier worker failed: ${err.message}`, { cause: err })),
      );
      w.on('exit', (code) => {
        if (code !== 0) this.crash(new WorkerFailure(`a verifier worker exited with code ${code}`));
      });
      return w;
    });
  }

  /** Adds a line (index = the number of lines added before it) at its place. */
  add(line: Buffer, index: number, chain: number, seq: number): void {
    if (this.ends.length === 0) this.firstLine = index;
    this.parts.push(line);
    this.bytes += line.length;
    this.ends.push(this.bytes);
    this.chains.push(chain);
    this.seqs.push(seq);
    if (this.bytes >= BATCH_BYTES || this.ends.length >= this.batchLines) this.send();
  }

  /** A promise to await before adding more when too many batches are out; undefined when there is room. */
  pushed(): Promise<void> | undefined {
    if (this.crashed) throw this.crashed;
    if (this.nextId - this.nextApplied < this.maxInFlight) return undefined;
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }

  /** Sends what is left and waits for every result. */
  async finish(): Promise<void> {
    this.send();
    while (this.nextApplied < this.nextId) {
      if (this.crashed) throw this.crashed;
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
      });
    }
    if (this.crashed) throw this.crashed;
  }

  /** The earliest failure as a VerificationError, or null. */
  failure(): { index: number; error: VerificationError } | null {
    const f = this.first;
    if (!f) return null;
    const detail = {
      chain: f.chain,
      seq: f.seq,
      ...(f.file === undefined ? {} : { file: f.file }),
      ...(f.expected === undefined ? {} : { expected: f.expected }),
      ...(f.actual === undefined ? {} : { actual: f.actual }),
    };
    return { index: f.index, error: new VerificationError(f.reason, f.message, detail) };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.workers) {
      w.removeAllListeners('exit');
      void w.terminate();
    }
  }

  private send(): void {
    if (this.ends.length === 0) return;
    const data = new Uint8Array(this.bytes);
    let at = 0;
    for (const p of this.parts) {
      data.set(p, at);
      at += p.length;
    }
    const m: BatchMessage = {
      id: this.nextId++,
      first: this.firstLine,
      data,
      ends: Uint32Array.from(this.ends),
      chains: Uint32Array.from(this.chains),
      seqs: Float64Array.from(this.seqs),
    };
    this.parts = [];
    this.bytes = 0;
    this.ends = [];
    this.chains = [];
    this.seqs = [];
    const worker = this.workers[this.turn++ % this.workers.length] as Worker;
    worker.postMessage(m, [m.data.buffer, m.ends.buffer, m.chains.buffer, m.seqs.buffer]);
  }

  private received(r: BatchResult): void {
    if (r.crash) {
      this.crash(new WorkerFailure(`a verifier worker failed: ${r.crash}`));
      return;
    }
    this.done.set(r.id, r);
    // In batch order: registry records are order-sensitive (the first of the largest size).
    for (let next = this.done.get(this.nextApplied); next; next = this.done.get(this.nextApplied)) {
      this.done.delete(this.nextApplied++);
      if (next.failure && (!this.first || next.failure.index < this.first.index)) this.first = next.failure;
      if (!this.first) for (const line of next.registry) this.onRegistry(line);
    }
    this.wake();
  }

  private crash(err: Error): void {
    this.crashed ??= err;
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }
}
