// Offline verify throughput on a bundle of 1,000,000 entries, and the memory
// it takes. The bundle is synthetic but format-exact (v2, kind full): entries
// are built by the sealer's own code (audit/verifier/entry.ts entryOf + RFC 8785
// canonicalBytes), hashed into chains, every chain's checkpoint signed with a
// bench Ed25519 key and recorded in a registry chain, and written and signed by
// the real bundle writer (audit/bundle.ts). No database.
//
// Each verify sample runs in a fresh child process, so its heap holds nothing
// but the verifier's own state; the child samples heap and RSS every 50 ms,
// and the verifier's worker threads report their heaps after each batch
// (`onWorkerHeap`): peak heap is the main thread's, the workers' (summed) and
// the two together. BENCH_THREADS=N sets the verifier's threads (default: the
// available cores).
// Side by side in the same run: the floor (gunzip + tar + split into lines,
// no checks) and the whole CLI (`enclave audit verify`, process start included).
//
//   node bench/audit-verify.bench.ts [--entries 1000000] [--chains 50] [--samples 3] [--keep]
// Every option can also be set as BENCH_<NAME>. Results: bench/results/audit-verify-<time>.json.
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import {
  createReadStream,
  createWriteStream,
  mkdirSync,
  mkdtempSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import { type BundleChain, writeBundle } from '../audit/bundle.ts';
import {
  type Checkpoint,
  canonicalBytes,
  chainHash,
  type SignedCheckpoint,
  ZERO_HASH,
} from '../audit/verifier/bundle-format.ts';
import {
  checkpointOf,
  entryOf,
  formatTime,
  type InboxRow,
  REGISTRY_CHAIN,
  registryEntryOf,
  tenantChain,
} from '../audit/verifier/entry.ts';
import { pinnedKeyId } from '../audit/verifier/keys.ts';
import { verifyBundle } from '../audit/verifier/verify.ts';
import { LineSplitter } from '../audit/verifier/verify-entries.ts';

const ORIGIN = 'enclave:0123456789abcdef0123456789abcdef';

function options() {
  const { values } = parseArgs({
    options: {
      entries: { type: 'string' },
      chains: { type: 'string' },
      samples: { type: 'string' },
      child: { type: 'string' },
      file: { type: 'string' },
      key: { type: 'string' },
      keep: { type: 'boolean' },
    },
  });
  const int = (name: 'entries' | 'chains' | 'samples', fallback: number) => {
    const raw = values[name] ?? process.env[`BENCH_${name.toUpperCase()}`] ?? String(fallback);
    const n = Number(raw);
    if (!Number.isSafeInteger(n) || n < 1)
      throw new Error(`--${name} must be a positive integer, got ${raw}`);
    return n;
  };
  return {
    entries: int('entries', 1_000_000),
    chains: int('chains', 50),
    samples: int('samples', 3),
    child: values.child,
    file: values.file,
    key: values.key,
    keep: values.keep ?? false,
  };
}

// --- the bundle -------------------------------------------------------------

function inboxRow(id: number, tenant: string, at: Date): InboxRow {
  return {
    id,
    tenant_id: tenant,
    actor_type: 'user',
    actor_id: `6f1c2a8e-4b7d-4e2a-9c3b-${String(id % 1_000_000_000_000).padStart(12, '0')}`,
    action: 'note.update',
    resource_type: 'note',
    resource_id: String(id),
    outcome: 'success',
    outcome_code: null,
    at: formatTime(at),
    ip: '203.0.113.7',
    user_agent: 'Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0',
    request_id: `req-${id.toString(36)}`,
    details: JSON.stringify({
      title: { from: `Note ${id}`, to: `Note ${id} (edited)` },
      words: { from: 120, to: 131 },
    }),
  };
}

async function generate(file: string, entries: number, chains: number, privateKey: KeyObject, keyId: string) {
  const perChain = Math.ceil(entries / chains);
  const start = Date.UTC(2026, 0, 1);
  const signed = (checkpoint: Checkpoint): SignedCheckpoint => ({
    checkpoint,
    signature: sign(null, canonicalBytes(checkpoint), privateKey).toString('base64'),
  });
  // Chain c holds entries with ids c * perChain + 1..: the same bytes on both passes.
  const tenants = Array.from({ length: chains }, (_, c) => ({
    tenant: `bench${String(c).padStart(7, '0')}`,
    size: Math.max(0, Math.min(perChain, entries - c * perChain)),
    firstId: c * perChain,
  })).filter((t) => t.size > 0);
  function* linesOf(t: (typeof tenants)[number]): Generator<Buffer> {
    for (let seq = 1; seq <= t.size; seq++) {
      const id = t.firstId + seq;
      yield canonicalBytes(
        entryOf(inboxRow(id, t.tenant, new Date(start + id * 1000)), tenantChain(t.tenant), seq, ORIGIN),
      );
    }
  }
  // Pass one: every chain's head, so the registry (which sorts before the t_ chains) can record it.
  const time = formatTime(new Date(start + entries * 1000));
  const ends = tenants.map((t) => {
    let head = ZERO_HASH;
    for (const bytes of linesOf(t)) head = chainHash(head, bytes);
    const chain = tenantChain(t.tenant);
    return signed(
      checkpointOf({ origin: ORIGIN, chain, size: t.size, head: head.toString('hex'), keyId, time }),
    );
  });
  let registryHead = ZERO_HASH;
  const registryLines = ends.map((end, i) => {
    const bytes = canonicalBytes(
      registryEntryOf(end.checkpoint, Buffer.from(end.signature, 'base64'), i + 1, ORIGIN),
    );
    registryHead = chainHash(registryHead, bytes);
    return bytes;
  });
  const genesis = (chain: string, size: number) => ({
    chain,
    firstSeq: 1,
    lastSeq: size,
    prevHash: ZERO_HASH.toString('hex'),
    start: 'genesis' as const,
  });
  function* chainsOf(): Generator<BundleChain> {
    yield {
      range: genesis(REGISTRY_CHAIN, registryLines.length),
      anchor: null,
      checkpoint: signed(
        checkpointOf({
          origin: ORIGIN,
          chain: REGISTRY_CHAIN,
          size: registryLines.length,
          head: registryHead.toString('hex'),
          keyId,
          time,
        }),
      ),
      entries: registryLines,
    };
    for (const [i, t] of tenants.entries())
      yield {
        range: genesis(tenantChain(t.tenant), t.size),
        anchor: null,
        checkpoint: ends[i] as SignedCheckpoint,
        entries: linesOf(t),
      };
  }
  const started = performance.now();
  const { manifest } = await writeBundle(createWriteStream(file), {
    origin: ORIGIN,
    kind: 'full',
    keys: { keys: [{ keyId }] },
    chains: chainsOf(),
    signer: { keyId, sign: (bytes) => sign(null, bytes, privateKey) },
  });
  return { seconds: (performance.now() - started) / 1000, manifest };
}

// --- one sample, in a child ---------------------------------------------------

async function child(mode: string, file: string, keyFile: string) {
  let peakHeap = 0;
  let peakRss = 0;
  let workerHeap = 0;
  let peakWorkerHeap = 0;
  let peakTotalHeap = 0;
  const sample = () => {
    const m = process.memoryUsage();
    peakHeap = Math.max(peakHeap, m.heapUsed);
    peakRss = Math.max(peakRss, m.rss);
    peakTotalHeap = Math.max(peakTotalHeap, m.heapUsed + workerHeap);
  };
  const threads = process.env.BENCH_THREADS === undefined ? undefined : Number(process.env.BENCH_THREADS);
  const timer = setInterval(sample, 50);
  const started = performance.now();
  let entries = 0;
  if (mode === 'verify') {
    const { readFileSync } = await import('node:fs');
    const result = await verifyBundle(createReadStream(file), readFileSync(keyFile, 'utf8'), {
      ...(threads === undefined ? {} : { threads }),
      // The workers' heaps (summed), reported after each batch: with the main heap, the whole.
      onWorkerHeap: (bytes) => {
        workerHeap = bytes;
        peakWorkerHeap = Math.max(peakWorkerHeap, bytes);
      },
    });
    if (!result.ok) throw new Error(`the bench bundle does not verify: ${result.message}`);
    entries = result.entries;
  } else {
    // The floor: the same stream work with no checks at all.
    const extract = tar.extract();
    createReadStream(file).pipe(createGunzip()).pipe(extract);
    for await (const entry of extract) {
      const splitter = new LineSplitter(16 << 20, () => {
        entries++;
      });
      for await (const chunk of entry)
        if (entry.header.name === 'entries.jsonl') splitter.push(chunk as Buffer);
    }
  }
  const seconds = (performance.now() - started) / 1000;
  sample();
  clearInterval(timer);
  process.stdout.write(
    `${JSON.stringify({ mode, entries, seconds, peakHeapMiB: peakHeap / 2 ** 20, peakWorkerHeapMiB: peakWorkerHeap / 2 ** 20, peakTotalHeapMiB: peakTotalHeap / 2 ** 20, peakRssMiB: peakRss / 2 ** 20 })}\n`,
  );
}

function runChild(mode: string, file: string, keyFile: string) {
  const r = spawnSync(
    process.execPath,
    [fileURLToPath(import.meta.url), '--child', mode, '--file', file, '--key', keyFile],
    {
      encoding: 'utf8',
    },
  );
  if (r.status !== 0) throw new Error(`child ${mode} failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as {
    mode: string;
    entries: number;
    seconds: number;
    peakHeapMiB: number;
    peakWorkerHeapMiB?: number;
    peakTotalHeapMiB?: number;
    peakRssMiB: number;
  };
}

function runCli(file: string, keyFile: string) {
  const started = performance.now();
  const r = spawnSync(process.execPath, ['bin/enclave.js', 'audit', 'verify', file, '--key', keyFile], {
    encoding: 'utf8',
    cwd: fileURLToPath(new URL('..', import.meta.url)),
  });
  const seconds = (performance.now() - started) / 1000;
  if (r.status !== 0) throw new Error(`enclave audit verify failed: ${r.stdout}${r.stderr}`);
  return { line: r.stdout.split('\n')[0] as string, seconds }; // the verdict; the per-chain lines follow it
}

// --- main -----------------------------------------------------------------------

async function main() {
  const opts = options();
  if (opts.child) return child(opts.child, opts.file as string, opts.key as string);
  const log = (s: string) => process.stderr.write(`${s}\n`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'enclave-bench-verify-'));
  try {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const keyFile = path.join(dir, 'pinned.pem');
    writeFileSync(keyFile, publicKey.export({ format: 'pem', type: 'spki' }));
    const file = path.join(dir, 'bundle.tar.gz');
    log(`generating ${opts.entries} entries in ${opts.chains} chains...`);
    const gen = await generate(file, opts.entries, opts.chains, privateKey, pinnedKeyId(publicKey));
    const entriesFile = gen.manifest.files.find((f) => f.name === 'entries.jsonl');
    const bundle = {
      compressedMiB: statSync(file).size / 2 ** 20,
      entriesJsonlMiB: (entriesFile?.bytes ?? 0) / 2 ** 20,
    };
    log(
      `written in ${gen.seconds.toFixed(1)} s: ${bundle.compressedMiB.toFixed(1)} MiB .tar.gz, entries.jsonl ${bundle.entriesJsonlMiB.toFixed(1)} MiB`,
    );
    const samples: Array<ReturnType<typeof runChild>> = [];
    const cli: Array<ReturnType<typeof runCli>> = [];
    for (let i = 0; i < opts.samples; i++) {
      // Interleaved, so drift on the shared machine hits all three alike.
      for (const mode of ['floor', 'verify']) {
        const s = runChild(mode, file, keyFile);
        log(
          `${mode}: ${s.entries} entries in ${s.seconds.toFixed(2)} s = ${Math.round(s.entries / s.seconds)}/s, peak heap ${s.peakHeapMiB.toFixed(1)} MiB (with workers ${(s.peakTotalHeapMiB ?? s.peakHeapMiB).toFixed(1)} MiB), peak RSS ${s.peakRssMiB.toFixed(1)} MiB`,
        );
        samples.push(s);
      }
      const c = runCli(file, keyFile);
      log(`cli: ${c.line} in ${c.seconds.toFixed(2)} s`);
      cli.push(c);
    }
    const summary = (mode: string) => {
      const runs = samples.filter((s) => s.mode === mode);
      const rates = runs.map((s) => s.entries / s.seconds).sort((a, b) => a - b);
      return {
        entriesPerSecondMedian: Math.round(rates[Math.floor(rates.length / 2)] as number),
        entriesPerSecondMin: Math.round(rates[0] as number),
        entriesPerSecondMax: Math.round(rates.at(-1) as number),
        peakHeapMiBMax: Math.max(...runs.map((s) => s.peakHeapMiB)),
        peakWorkerHeapMiBMax: Math.max(...runs.map((s) => s.peakWorkerHeapMiB ?? 0)),
        peakTotalHeapMiBMax: Math.max(...runs.map((s) => s.peakTotalHeapMiB ?? s.peakHeapMiB)),
        peakRssMiBMax: Math.max(...runs.map((s) => s.peakRssMiB)),
      };
    };
    const results = {
      startedAt: new Date().toISOString(),
      node: process.version,
      cpus: os.cpus().length,
      options: { entries: opts.entries, chains: opts.chains, samples: opts.samples },
      generate: { seconds: gen.seconds, ...bundle },
      floor: summary('floor'),
      verify: summary('verify'),
      cliSeconds: cli.map((c) => c.seconds),
      samples,
    };
    const out = fileURLToPath(new URL('./results/', import.meta.url));
    mkdirSync(out, { recursive: true });
    const name = path.join(
      out,
      `audit-verify-${results.startedAt.replaceAll(':', '-').replace(/\.\d+Z$/, 'Z')}.json`,
    );
    writeFileSync(name, `${JSON.stringify(results, null, 2)}\n`);
    process.stdout.write(
      `${JSON.stringify({ floor: results.floor, verify: results.verify, cliSeconds: results.cliSeconds }, null, 2)}\n`,
    );
    log(`results written to ${path.relative(process.cwd(), name)}`);
  } finally {
    if (opts.keep) log(`bundle and key kept in ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

await main();
