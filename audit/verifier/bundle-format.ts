// The export bundle's shapes and the few primitives both ends need: the
// writer (audit/bundle.ts) and the offline verifier (verify.ts). Everything here
// follows docs/AUDIT-FORMAT.md; the verifier imports nothing that touches a
// database, a server or a configuration.
import { canonicalBytes } from './canonical.ts';
import type { Checkpoint } from './entry.ts';

export { type Checkpoint, chainHash, FORMAT_VERSION, ZERO_HASH } from './entry.ts';
export { canonicalBytes };

/** The bundle's files; in v1 in this tar order with the manifest last (v2: V2_FILES). */
export const ENTRIES_FILE = 'entries.jsonl';
export const CSV_FILE = 'entries.csv';
export const CHECKPOINTS_FILE = 'checkpoints.jsonl';
export const KEYS_FILE = 'keys.json';
export const MANIFEST_FILE = 'manifest.json';
export const CONTENT_FILES = [ENTRIES_FILE, CSV_FILE, CHECKPOINTS_FILE, KEYS_FILE] as const;

export interface SignedCheckpoint {
  checkpoint: Checkpoint;
  signature: string; // base64 Ed25519 over canonical(checkpoint)
}

export interface ManifestChain {
  chain: string;
  firstSeq: number;
  lastSeq: number; // firstSeq - 1 when the bundle holds none of the chain's entries
  prevHash: string; // hex of hash_{firstSeq-1}
}

export interface ManifestFile {
  name: string;
  bytes: number;
  sha256: string;
}

export interface BundleFilter {
  tenant: string | null;
  from: string | null;
  to: string | null;
}

export interface Manifest {
  v: number;
  origin: string;
  createdAt: string;
  filter: BundleFilter;
  chains: ManifestChain[];
  files: ManifestFile[];
}

// --- format v2 (docs/AUDIT-FORMAT.md, "Export bundle, format v2") -------------

export const BUNDLE_FORMAT_V2 = 2;
/** v2 tar order: the signed manifest first, then the files it lists, in this order. */
export const V2_FILES = [CHECKPOINTS_FILE, ENTRIES_FILE, CSV_FILE, KEYS_FILE] as const;
/** Signed before the manifest's canonical bytes, so a manifest signature never passes as a checkpoint's. */
export const MANIFEST_SIGNING_PREFIX = 'enclave-audit-manifest-v2\n';

export type BundleKind = 'full' | 'tenant';
/** Why a chain's range starts where it does: at seq 1, or anchored at a signed checkpoint. */
export type ChainStart = 'genesis' | 'from' | 'retention';

export interface ManifestChainV2 extends ManifestChain {
  start: ChainStart;
}

export interface ManifestV2 {
  v: 2;
  origin: string;
  createdAt: string;
  keyId: string;
  kind: BundleKind;
  filter: BundleFilter;
  chains: ManifestChainV2[];
  files: ManifestFile[];
}

export interface SignedManifest {
  manifest: ManifestV2;
  signature: string; // base64 Ed25519 over MANIFEST_SIGNING_PREFIX + canonical(manifest)
}

/** The bytes a manifest signature covers. */
export function manifestSigningBytes(manifest: ManifestV2): Buffer {
  return Buffer.concat([Buffer.from(MANIFEST_SIGNING_PREFIX, 'utf8'), canonicalBytes(manifest)]);
}
