// The export bundle's shapes and the few primitives both ends need: the
// writer (audit/bundle.ts) and the offline verifier (verify.ts). Everything here
// follows docs/AUDIT-FORMAT.md; the verifier imports nothing that touches a
// database, a server or a configuration.
import type { Checkpoint } from './entry.ts';

export { canonicalBytes } from './canonical.ts';
export { type Checkpoint, chainHash, FORMAT_VERSION, ZERO_HASH } from './entry.ts';

/** The bundle's files, in tar order; the manifest is always last. */
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
