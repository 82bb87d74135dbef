// Writes an export bundle, format v2 (.tar.gz, docs/AUDIT-FORMAT.md) from
// chains of sealed entries, streaming: entries pass through one at a time and
// are never all in memory.
//
// The manifest goes first in the tar, so a verifier can check its signature
// and learn every file's hash, every chain's range and anchor before it reads
// anything else; but it carries the SHA-256 of every file, and a tar header
// the size of its file. So each file is first spooled to a temporary file
// while it is hashed and counted (phase one, `spoolBundle`), the manifest is
// built and signed; then the tar streams the manifest and the spooled files
// (phase two, `writeTo`). The export reads the database only in phase one, so
// its snapshot is released before a slow reader (an HTTP client) drains phase two.

import { createHash, type Hash } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { writeTarGz } from '../kernel/archive.ts';
import {
  BUNDLE_FORMAT_V2,
  type BundleFilter,
  type BundleKind,
  CHECKPOINTS_FILE,
  CSV_FILE,
  canonicalBytes,
  ENTRIES_FILE,
  KEYS_FILE,
  MANIFEST_FILE,
  type ManifestChainV2,
  type ManifestFile,
  type ManifestV2,
  manifestSigningBytes,
  type SignedCheckpoint,
  type SignedManifest,
} from './verifier/bundle-format.ts';
import { formatTime } from './verifier/entry.ts';

export interface BundleChain {
  /** firstSeq..lastSeq, hash_{firstSeq-1} and why it starts there, as they go into the manifest. */
  range: ManifestChainV2;
  /** The signed checkpoint at firstSeq - 1, when the range does not start at genesis. */
  anchor: SignedCheckpoint | null;
  /** The signed checkpoint at lastSeq. */
  checkpoint: SignedCheckpoint;
  /** The exact stored bytes of entries firstSeq..lastSeq, in order. */
  entries: AsyncIterable<Uint8Array> | Iterable<Uint8Array>;
}

/** What signs the manifest: the audit signing key (audit/signing.ts Signer fits). */
export interface ManifestSigner {
  readonly keyId: string;
  sign(bytes: Uint8Array): Buffer;
}

export interface BundleContent {
  origin: string;
  createdAt?: Date;
  kind: BundleKind;
  filter?: Partial<BundleFilter>;
  /** keys.json: the published public keys (informational; verifiers pin their own). */
  keys: unknown;
  /** In ascending byte order of chain name (the manifest's order). */
  chains: AsyncIterable<BundleChain> | Iterable<BundleChain>;
  signer: ManifestSigner;
}

export interface BundleOptions {
  tmpDir?: string;
  /** Called now and then with the number of entries spooled so far. */
  onProgress?: (entries: number) => void;
}

export interface SpooledBundle {
  manifest: ManifestV2;
  /** manifest.json exactly as it goes into the tar. */
  manifestBytes: Buffer;
  entries: number;
  /** Streams the .tar.gz into `out`; resolves once `out` has it all. */
  writeTo(out: Writable): Promise<void>;
  /** Removes the spooled files. */
  dispose(): Promise<void>;
}

/** Phase one and two in one call. */
export async function writeBundle(out: Writable, content: BundleContent, options: BundleOptions = {}) {
  const spooled = await spoolBundle(content, options);
  try {
    await spooled.writeTo(out);
    return { manifest: spooled.manifest, entries: spooled.entries };
  } finally {
    await spooled.dispose();
  }
}

const CSV_COLUMNS = ['chain', 'seq', 'at', 'tenant', 'actor', 'action', 'resource', 'outcome'];
const NEWLINE = 0x0a;

/** Phase one: every file written aside, hashed and counted; the manifest built. */
export async function spoolBundle(
  content: BundleContent,
  options: BundleOptions = {},
): Promise<SpooledBundle> {
  const dir = await mkdtemp(path.join(options.tmpDir ?? tmpdir(), 'enclave-bundle-'));
  const dispose = () => rm(dir, { recursive: true, force: true });
  try {
    const checkpointsFile = new SpoolFile(path.join(dir, CHECKPOINTS_FILE));
    const entriesFile = new SpoolFile(path.join(dir, ENTRIES_FILE));
    const csvFile = new SpoolFile(path.join(dir, CSV_FILE));
    const keysFile = new SpoolFile(path.join(dir, KEYS_FILE));
    const spools = [checkpointsFile, entriesFile, csvFile, keysFile]; // V2_FILES, in tar order
    const chains: ManifestChainV2[] = [];
    let entries = 0;
    try {
      await csvFile.write(Buffer.from(`${CSV_COLUMNS.join(',')}\r\n`));
      for await (const chain of content.chains) {
        const last = chains.at(-1)?.chain;
        if (last !== undefined && Buffer.compare(Buffer.from(last), Buffer.from(chain.range.chain)) >= 0)
          throw new Error(
            `chains must come in ascending byte order of name: ${chain.range.chain} after ${last}`,
          );
        chains.push({ ...chain.range });
        for await (const bytes of chain.entries) {
          if (bytes.includes(NEWLINE))
            throw new Error(`an entry of chain ${chain.range.chain} holds a raw newline: not canonical JSON`);
          await entriesFile.write(bytes);
          await entriesFile.write(LF);
          await csvFile.write(Buffer.from(csvRow(bytes)));
          entries++;
          if (options.onProgress && entries % 10_000 === 0) options.onProgress(entries);
        }
        // After the entries: a writer may sign the end checkpoint once it has hashed them.
        for (const cp of checkpointsOf(chain))
          await checkpointsFile.write(Buffer.concat([canonicalBytes(cp), LF]));
      }
      await keysFile.write(Buffer.from(`${JSON.stringify(content.keys, null, 2)}\n`));
    } finally {
      await Promise.all(spools.map((s) => s.close()));
    }
    options.onProgress?.(entries);
    const createdAt = content.createdAt ?? new Date();
    const manifest: ManifestV2 = {
      v: BUNDLE_FORMAT_V2,
      origin: content.origin,
      createdAt: formatTime(createdAt),
      keyId: content.signer.keyId,
      kind: content.kind,
      filter: {
        tenant: content.filter?.tenant ?? null,
        from: content.filter?.from ?? null,
        to: content.filter?.to ?? null,
      },
      chains,
      files: spools.map((s) => s.summary()),
    };
    const signed: SignedManifest = {
      manifest,
      signature: content.signer.sign(manifestSigningBytes(manifest)).toString('base64'),
    };
    const manifestBytes = Buffer.concat([canonicalBytes(signed), LF]);
    return {
      manifest,
      manifestBytes,
      entries,
      writeTo: (out) =>
        writeTarGz(
          out,
          [
            { name: MANIFEST_FILE, body: manifestBytes },
            ...spools.map((s) => ({ name: path.basename(s.path), file: s.path, size: s.bytes })),
          ],
          createdAt,
        ),
      dispose,
    };
  } catch (err) {
    await dispose();
    throw err;
  }
}

/** checkpoints.jsonl's lines for one chain: its anchor, then its end (one line when they are the same size). */
function checkpointsOf(chain: BundleChain): SignedCheckpoint[] {
  const { anchor, checkpoint, range } = chain;
  if ((range.start === 'genesis') !== (anchor === null))
    throw new Error(
      `chain ${range.chain}: an anchor is needed exactly when the range does not start at genesis`,
    );
  if (anchor && anchor.checkpoint.size !== range.firstSeq - 1)
    throw new Error(`chain ${range.chain}: the anchor is not at seq ${range.firstSeq - 1}`);
  if (checkpoint.checkpoint.size !== range.lastSeq)
    throw new Error(`chain ${range.chain}: the end checkpoint is not at seq ${range.lastSeq}`);
  return anchor && anchor.checkpoint.size !== checkpoint.checkpoint.size
    ? [anchor, checkpoint]
    : [checkpoint];
}

const LF = Buffer.from('\n');

/** A file written aside while hashed and counted, with backpressure. */
class SpoolFile {
  readonly path: string;
  bytes = 0;
  private readonly sha: Hash = createHash('sha256');
  private readonly stream: WriteStream;
  private sha256: string | undefined;

  constructor(file: string) {
    this.path = file;
    this.stream = createWriteStream(file, { flags: 'wx', mode: 0o600 });
  }

  async write(bytes: Uint8Array): Promise<void> {
    this.sha.update(bytes);
    this.bytes += bytes.length;
    if (!this.stream.write(bytes)) await once(this.stream, 'drain');
  }

  async close(): Promise<void> {
    this.sha256 ??= this.sha.digest('hex');
    if (this.stream.closed) return;
    this.stream.end();
    await once(this.stream, 'close');
  }

  summary(): ManifestFile {
    return { name: path.basename(this.path), bytes: this.bytes, sha256: this.sha256 as string };
  }
}

// --- entries.csv: a convenience view, not verified ---------------------------

type Json = Record<string, unknown>;

function csvRow(bytes: Uint8Array): string {
  const e = JSON.parse(Buffer.from(bytes).toString('utf8')) as Json;
  const pair = (v: unknown) => {
    const o = v as { type?: unknown; id?: unknown } | null;
    return o ? (o.id == null ? String(o.type) : `${o.type}:${o.id}`) : '';
  };
  const outcome = e.outcome as { result?: unknown; code?: unknown } | undefined;
  const cp = e.checkpoint as { chain?: unknown; size?: unknown } | undefined;
  const fields =
    e.kind === 'checkpoint'
      ? [e.chain, e.seq, e.at, '', 'system', 'checkpoint', cp ? `${cp.chain}:${cp.size}` : '', '']
      : [
          e.chain,
          e.seq,
          e.at,
          e.tenant ?? '',
          pair(e.actor),
          e.action,
          pair(e.resource),
          outcome ? (outcome.code == null ? outcome.result : `${outcome.result}:${outcome.code}`) : '',
        ];
  return `${fields.map(csvField).join(',')}\r\n`;
}

/** RFC 4180 quoting, and a leading quote mark on anything a spreadsheet would run as a formula. */
export function csvField(value: unknown): string {
  let s = value == null ? '' : String(value);
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}
