// A worker thread of the offline verifier (parallel-lines.ts): step 5's
// per-line checks (canonical form, fields, place, origin, tenant, a registry
// entry's signature) on batches of entries.jsonl lines whose places the main
// thread already knows. It stops a batch at its first failure and reports it
// with the line's index; the main thread hashes the chains and picks the
// verdict.
import { createPublicKey, type KeyObject } from 'node:crypto';
import { getHeapStatistics } from 'node:v8';
import { parentPort, workerData } from 'node:worker_threads';
import type { Checkpoint } from './entry.ts';
import type { BatchMessage, BatchResult, WorkerSetup } from './parallel-lines.ts';
import { VerificationError } from './verification-error.ts';
import { checkEntryAt } from './verify-entries.ts';

const setup = workerData as WorkerSetup;
const keys = new Map<string, KeyObject>(
  setup.keys.map((k) => [k.keyId, createPublicKey({ key: Buffer.from(k.der), format: 'der', type: 'spki' })]),
);
const port = parentPort as NonNullable<typeof parentPort>;

port.on('message', (m: BatchMessage) => {
  const data = Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength);
  const result: BatchResult = { id: m.id, failure: null, registry: [], heap: 0 };
  let start = 0;
  try {
    for (let i = 0; i < m.ends.length; i++) {
      const end = m.ends[i] as number;
      const chain = setup.chains[m.chains[i] as number] as string;
      const here = { chain, seq: m.seqs[i] as number };
      try {
        const entry = checkEntryAt(data.subarray(start, end), here, setup.origin, keys);
        if (chain === 'registry')
          result.registry.push({
            seq: here.seq,
            checkpoint: entry.checkpoint as Checkpoint,
            signature: entry.signature as string,
          });
      } catch (err) {
        if (!(err instanceof VerificationError)) throw err;
        result.failure = {
          index: m.first + i,
          reason: err.reason,
          message: err.message,
          chain: err.chain,
          seq: err.seq,
          file: err.file,
          expected: err.expected,
          actual: err.actual,
        };
        break;
      }
      start = end;
    }
  } catch (err) {
    result.crash = err instanceof Error ? (err.stack ?? err.message) : String(err);
  }
  result.heap = getHeapStatistics().used_heap_size;
  port.postMessage(result);
});
