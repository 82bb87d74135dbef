// The mutations the attack files in this directory name, and how a file is
// applied (shared by attacks.test.ts and ../vectors/generate.ts).
//
// An attack file says what the attacker holds (docs/AUDIT-FORMAT.md, "What a
// verdict proves"):
// - "outsider": the bundle only. May recompute the manifest's file sizes and
//   hashes (unless the file says `"fixManifest": false`), cannot sign.
// - "insider": also the signing key (a key holder, or a buggy exporter). After
//   the edit the manifest's file hashes are recomputed and the manifest is
//   signed again; with `"resign": ["checkpoints"]` each chain's end checkpoint
//   is first made to match the edited chain and every checkpoint signed again.
//   This is how the verifier's inner checks are reached now that the manifest
//   is signed. The same edit without the key (the outsider variant) must fail
//   at the manifest's signature (or, when no manifest changed, where the
//   unsigned part shows: a file's hash, an earlier checkpoint's signature).
//
// Chains are named by role (A, B, platform, registry: see bundle-fixture.ts),
// in params and in places (`chain A seq 8`).
import { createHash, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CSV_FILE,
  canonicalBytes,
  ENTRIES_FILE,
  KEYS_FILE,
  MANIFEST_FILE,
  type SignedCheckpoint,
} from '../../../audit/verifier/bundle-format.ts';
import { EditableBundle, type Fixture, ROLES, type SigningKey, signCheckpoint } from '../bundle-fixture.ts';

export type Params = Record<string, unknown>;

export interface AttackContext {
  fixture: Fixture;
  /** The signing key, for an insider; null for an outsider. */
  key: SigningKey | null;
}

export type Attack = (
  bundle: EditableBundle,
  params: Params,
  context: AttackContext,
) => Promise<EditableBundle> | EditableBundle;

/** A verdict as the spec prints it: `FAIL: <place>: <reason>`. */
export interface Failure {
  reason: string;
  place: string;
}

/** A checkpoint the auditor kept: of one chain (by role) from the earlier or the latest full export. */
export interface PrevItem {
  chain: string;
  from: 'earlier' | 'latest';
  /** A head other than the genuine one, signed by the insider (an outsider cannot sign it). */
  head?: string;
  /**
   * Another (smaller) size, with the chain's genuine hash at that size as its
   * head, signed by the insider: a checkpoint the sealer would have signed had
   * a seal ended there.
   */
  size?: number;
}

export interface AttackCase {
  /** The file's name without .json. */
  name: string;
  description: string;
  attacker: 'outsider' | 'insider';
  /** The genuine bundle the attack starts from (default full). */
  bundle?: 'full' | 'tenantA' | 'tenantAFrom' | 'fullFrom';
  attack: string;
  params?: Params;
  /** Outsider only: false leaves the manifest as it was (default: its file hashes are recomputed). */
  fixManifest?: boolean;
  /** Insider only: what is signed again besides the manifest. */
  resign?: 'checkpoints'[];
  /** --prev: every end checkpoint of one export, or single (possibly forged) ones. */
  prev?: 'earlier' | 'latest' | PrevItem | PrevItem[];
  /** --origin. */
  origin?: string;
  /** The verdict. */
  expected: Failure;
  /** For an insider case, the outsider variant's verdict when it is not the derived one. */
  outsider?: Failure;
}

export const ATTACK_DIR = path.dirname(fileURLToPath(import.meta.url));

/** Every attack file, by name. */
export function loadCases(dir = ATTACK_DIR): AttackCase[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => ({ name: f.replace(/\.json$/, ''), ...JSON.parse(readFileSync(path.join(dir, f), 'utf8')) }));
}

// --- helpers -------------------------------------------------------------------

const chainOf = (params: Params, key = 'chain'): string => {
  const chain = ROLES[String(params[key])];
  if (!chain) throw new Error(`unknown chain role ${String(params[key])}`);
  return chain;
};

type Entry = Record<string, unknown>;
const parse = (line: string) => JSON.parse(line) as Entry;
const canonical = (value: unknown) => canonicalBytes(value).toString('utf8');

/** Sets `path` (dot separated) in an entry. */
function setPath(entry: Entry, path: string, value: unknown): void {
  const keys = path.split('.');
  let node = entry;
  for (const k of keys.slice(0, -1)) node = node[k] as Entry;
  node[keys.at(-1) as string] = value;
}

function editEntry(
  bundle: EditableBundle,
  chain: string,
  seq: number,
  set: Params = {},
  unset: string[] = [],
): void {
  const lines = bundle.lines;
  const i = bundle.indexOf(chain, seq);
  const entry = parse(lines[i] as string);
  for (const [path, value] of Object.entries(set)) setPath(entry, path, value);
  for (const key of unset) delete entry[key];
  lines[i] = canonical(entry);
  bundle.lines = lines;
}

/** The chain's head recomputed over the lines at its positions, from the manifest's prevHash. */
function recomputeHead(bundle: EditableBundle, chain: string): string {
  const range = bundle.manifest.chains.find((c) => c.chain === chain);
  if (!range) throw new Error(`no chain ${chain} in the manifest`);
  return EditableBundle.headOf(range.prevHash, bundle.linesAt(chain));
}

/** Replaces the chain's end checkpoint (its largest in checkpoints.jsonl). */
function replaceEndCheckpoint(
  bundle: EditableBundle,
  chain: string,
  edit: (c: SignedCheckpoint) => SignedCheckpoint,
) {
  const end = bundle.endCheckpoints().get(chain);
  bundle.checkpoints = bundle.checkpoints.map((c, i) => (i === end?.index ? edit(c) : c));
}

function setRange(bundle: EditableBundle, chain: string, range: { firstSeq?: number; lastSeq?: number }) {
  bundle.editManifest((m) => {
    for (const c of m.chains) if (c.chain === chain) Object.assign(c, range);
  });
}

/** Keeps only the lines at `chain`'s positions for which `keep(seq)` holds (other chains untouched). */
function filterChainLines(bundle: EditableBundle, chain: string, keep: (seq: number) => boolean): void {
  const range = bundle.manifest.chains.find((c) => c.chain === chain);
  if (!range) throw new Error(`no chain ${chain} in the manifest`);
  const out: string[] = [];
  for (const c of bundle.manifest.chains) {
    const lines = bundle.linesAt(c.chain);
    out.push(...(c.chain === chain ? lines.filter((_, i) => keep(c.firstSeq + i)) : lines));
  }
  bundle.lines = out;
}

/** An Ed25519 key pair of the attacker's own, with the keyId the spec derives from it. */
function ownKey(): { privateKey: KeyObject; publicKey: KeyObject; keyId: string; pem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x as string, 'base64url');
  return {
    privateKey,
    publicKey,
    keyId: createHash('sha256').update(raw).digest('hex').slice(0, 16),
    pem: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
  };
}

// --- the attacks -------------------------------------------------------------------

export const attacks: Record<string, Attack> = {
  /** Changes (`set`) or removes (`unset`: top-level keys) fields of one entry, kept canonical. */
  editPayload(bundle, p) {
    editEntry(
      bundle,
      chainOf(p),
      Number(p.seq),
      p.set as Params | undefined,
      p.unset as string[] | undefined,
    );
    return bundle;
  },

  /** Removes one entry. */
  deleteEntry(bundle, p) {
    const lines = bundle.lines;
    lines.splice(bundle.indexOf(chainOf(p), Number(p.seq)), 1);
    bundle.lines = lines;
    return bundle;
  },

  /** Keeps a chain's entries up to seq `keep` and says so in the manifest; the (genuine) end checkpoint stays. */
  truncateTail(bundle, p) {
    const chain = chainOf(p);
    const keep = Number(p.keep);
    filterChainLines(bundle, chain, (seq) => seq <= keep);
    setRange(bundle, chain, { lastSeq: keep });
    return bundle;
  },

  /** Swaps an entry with the next one. */
  swapEntries(bundle, p) {
    const lines = bundle.lines;
    const i = bundle.indexOf(chainOf(p), Number(p.seq));
    [lines[i], lines[i + 1]] = [lines[i + 1] as string, lines[i] as string];
    bundle.lines = lines;
    return bundle;
  },

  /**
   * Inserts a made-up entry after seq `after`, a copy of that entry with `set`
   * applied; with `renumber`, later entries move up by one and the manifest's
   * range is made to agree.
   */
  insertEntry(bundle, p) {
    const chain = chainOf(p);
    const after = Number(p.after);
    const lines = bundle.lines;
    const i = bundle.indexOf(chain, after);
    const forged = { ...parse(lines[i] as string), seq: after + 1 };
    for (const [path, value] of Object.entries(p.set as Params)) setPath(forged, path, value);
    lines.splice(i + 1, 0, canonical(forged));
    if (p.renumber) {
      for (let j = i + 2; j < lines.length; j++) {
        const e = parse(lines[j] as string);
        if (e.chain !== chain) break;
        e.seq = (e.seq as number) + 1;
        lines[j] = canonical(e);
      }
      const range = bundle.manifest.chains.find((c) => c.chain === chain);
      setRange(bundle, chain, { lastSeq: (range?.lastSeq as number) + 1 });
    }
    bundle.lines = lines;
    return bundle;
  },

  /** Cuts the chain back to the fixture's earlier checkpoint and ships that (genuine) checkpoint as its end. */
  rollBack(bundle, p, { fixture }) {
    const chain = chainOf(p);
    const earlier = fixture.earlier.get(chain) as SignedCheckpoint;
    filterChainLines(bundle, chain, (seq) => seq <= earlier.checkpoint.size);
    setRange(bundle, chain, { lastSeq: earlier.checkpoint.size });
    replaceEndCheckpoint(bundle, chain, () => earlier);
    return bundle;
  },

  /** Edits an entry, puts the new head into the end checkpoint and keeps the old signature or writes junk. */
  forgeCheckpoint(bundle, p) {
    const chain = chainOf(p);
    editEntry(bundle, chain, Number(p.seq), p.set as Params);
    const head = recomputeHead(bundle, chain);
    replaceEndCheckpoint(bundle, chain, (c) => ({
      checkpoint: { ...c.checkpoint, head },
      signature: p.signature === 'keep' ? c.signature : Buffer.alloc(64, 7).toString('base64'),
    }));
    return bundle;
  },

  /** Flips one bit of a genuine end checkpoint's signature. */
  flipSignatureBit(bundle, p) {
    replaceEndCheckpoint(bundle, chainOf(p), (c) => {
      const sig = Buffer.from(c.signature, 'base64');
      sig[10] = (sig[10] as number) ^ 1;
      return { ...c, signature: sig.toString('base64') };
    });
    return bundle;
  },

  /**
   * Edits an entry, then signs the new head with the attacker's own key and
   * ships that key in keys.json (as the key the bundle claims to be signed by).
   * With `keepKeyId`, the checkpoint still names the genuine key id.
   */
  resignWithOwnKey(bundle, p) {
    const chain = chainOf(p);
    editEntry(bundle, chain, Number(p.seq), p.set as Params);
    const head = recomputeHead(bundle, chain);
    const own = ownKey();
    const keyId = p.keepKeyId ? undefined : own.keyId;
    bundle.files.set(
      KEYS_FILE,
      Buffer.from(`${JSON.stringify({ keys: [{ keyId, publicKey: own.pem }] }, null, 2)}\n`),
    );
    replaceEndCheckpoint(bundle, chain, (c) => {
      const checkpoint = { ...c.checkpoint, head, ...(keyId ? { keyId } : {}) };
      return {
        checkpoint,
        signature: sign(null, canonicalBytes(checkpoint), own.privateKey).toString('base64'),
      };
    });
    return bundle;
  },

  /**
   * Edits an entry, recomputes the manifest's file hashes and signs the
   * manifest with the attacker's own key, shipped in keys.json. With
   * `keepKeyId`, the manifest still names the genuine key id.
   */
  signManifestWithOwnKey(bundle, p) {
    editEntry(bundle, chainOf(p), Number(p.seq), p.set as Params);
    const own = ownKey();
    bundle.files.set(
      KEYS_FILE,
      Buffer.from(`${JSON.stringify({ keys: [{ keyId: own.keyId, publicKey: own.pem }] }, null, 2)}\n`),
    );
    bundle.fixManifest();
    bundle.signManifest({
      keyId: p.keepKeyId ? bundle.manifest.keyId : own.keyId,
      sign: (bytes) => sign(null, bytes, own.privateKey),
    });
    return bundle;
  },

  /**
   * Puts chain `from`'s entry `seq` (from the current full export) in place of
   * chain `into`'s entry `seq`. With `rewriteChain`, the spliced entry's
   * `chain` field is changed to fit.
   */
  async spliceFromChain(bundle, p, { fixture }) {
    const into = chainOf(p, 'into');
    const from = chainOf(p, 'from');
    const seq = Number(p.seq);
    const source = await EditableBundle.from(fixture.current.full);
    const donor = parse(source.lines[source.indexOf(from, seq)] as string);
    if (p.rewriteChain) donor.chain = into;
    const lines = bundle.lines;
    lines[bundle.indexOf(into, seq)] = canonical(donor);
    bundle.lines = lines;
    return bundle;
  },

  /** Hands over a genuine export taken after the first seal instead of the current one. */
  async replayOlderExport(_bundle, p, { fixture }) {
    return EditableBundle.from(p.tenantOnly ? fixture.older.tenantA : fixture.older.full);
  },

  /** Hands over the genuine bundle as it is (the attack is elsewhere: --origin, --prev). */
  asIs(bundle) {
    return bundle;
  },

  /** Rewrites the raw text of one entry line: `find` (first occurrence) -> `replace`. */
  rewriteLine(bundle, p) {
    const lines = bundle.lines;
    const i = bundle.indexOf(chainOf(p), Number(p.seq));
    const line = lines[i] as string;
    if (!line.includes(String(p.find))) throw new Error(`line ${i} has no ${String(p.find)}`);
    lines[i] = line.replace(String(p.find), String(p.replace));
    bundle.lines = lines;
    return bundle;
  },

  /** Re-serialises one entry line with its keys in reverse order (same JSON value, other bytes). */
  reverseKeyOrder(bundle, p) {
    const lines = bundle.lines;
    const i = bundle.indexOf(chainOf(p), Number(p.seq));
    const entry = parse(lines[i] as string);
    lines[i] = JSON.stringify(Object.fromEntries(Object.entries(entry).reverse()));
    bundle.lines = lines;
    return bundle;
  },

  /** Rewrites the raw text of a chain's end checkpoint line: `find` (first occurrence) -> `replace`. */
  rewriteCheckpointLine(bundle, p) {
    const chain = chainOf(p);
    const end = bundle.endCheckpoints().get(chain);
    const lines = bundle.text('checkpoints.jsonl').split('\n').slice(0, -1);
    const line = lines[end?.index as number] as string;
    if (!line.includes(String(p.find)))
      throw new Error(`the checkpoint line of ${chain} has no ${String(p.find)}`);
    lines[end?.index as number] = line.replace(String(p.find), String(p.replace));
    bundle.files.set('checkpoints.jsonl', Buffer.from(lines.map((l) => `${l}\n`).join('')));
    return bundle;
  },

  /**
   * Removes whole chains (`chain`, or each of `chains`): their entries, their
   * checkpoints and their lines in the manifest. With `claimTenant`, the
   * manifest's filter also names that tenant (its kind stays what it was).
   */
  dropChain(bundle, p) {
    const drop = (Array.isArray(p.chains) ? p.chains : [p.chain]).map((role) => chainOf({ role }, 'role'));
    const keep = bundle.manifest.chains.filter((c) => !drop.includes(c.chain));
    bundle.lines = keep.flatMap((c) => bundle.linesAt(c.chain));
    bundle.checkpoints = bundle.checkpoints.filter((c) => !drop.includes(c.checkpoint.chain));
    bundle.editManifest((m) => {
      m.chains = keep;
      if (p.claimTenant) m.filter.tenant = chainOf(p, 'claimTenant').slice(2);
    });
    return bundle;
  },

  /**
   * Drops a chain's first `count` entries and starts its range after them:
   * firstSeq = count + 1, prevHash = hash_count (recomputed from the dropped
   * lines), start as given ("retention" or "from"); no anchor checkpoint is added.
   */
  dropFirstEntries(bundle, p) {
    const chain = chainOf(p);
    const count = Number(p.count);
    const range = bundle.manifest.chains.find((c) => c.chain === chain);
    if (range?.firstSeq !== 1) throw new Error(`chain ${chain} does not start at seq 1`);
    const prevHash = EditableBundle.headOf(range.prevHash, bundle.linesAt(chain).slice(0, count));
    filterChainLines(bundle, chain, (seq) => seq > count);
    bundle.editManifest((m) => {
      for (const c of m.chains)
        if (c.chain === chain) Object.assign(c, { firstSeq: count + 1, prevHash, start: String(p.start) });
    });
    return bundle;
  },

  /**
   * Starts a chain that starts at genesis at its genuine checkpoint of the
   * fixture's earlier export instead, as an exporter honouring --from for it
   * would: its entries up to that size dropped, firstSeq = size + 1, prevHash
   * = that checkpoint's head, start "from", and the checkpoint added as the
   * anchor, before the chain's end checkpoint.
   */
  anchorAtEarlier(bundle, p, { fixture }) {
    const chain = chainOf(p);
    const anchor = fixture.earlier.get(chain) as SignedCheckpoint;
    const range = bundle.manifest.chains.find((c) => c.chain === chain);
    if (range?.start !== 'genesis') throw new Error(`chain ${chain} does not start at genesis`);
    const size = anchor.checkpoint.size;
    filterChainLines(bundle, chain, (seq) => seq > size);
    const end = bundle.endCheckpoints().get(chain);
    const checkpoints = bundle.checkpoints;
    checkpoints.splice(end?.index as number, 0, anchor);
    bundle.checkpoints = checkpoints;
    bundle.editManifest((m) => {
      for (const c of m.chains)
        if (c.chain === chain)
          Object.assign(c, { firstSeq: size + 1, prevHash: anchor.checkpoint.head, start: 'from' });
    });
    return bundle;
  },

  /** Drops every entry of every chain: each range emptied (lastSeq = firstSeq - 1), checkpoints left as they are. */
  emptyAllRanges(bundle) {
    bundle.lines = [];
    bundle.editManifest((m) => {
      for (const c of m.chains) c.lastSeq = c.firstSeq - 1;
    });
    return bundle;
  },

  /** Rewrites a cell of entries.csv (the people's view): `find` (first occurrence) -> `replace`. */
  editCsv(bundle, p) {
    const csv = bundle.text(CSV_FILE);
    if (!csv.includes(String(p.find))) throw new Error(`entries.csv has no ${String(p.find)}`);
    bundle.files.set(CSV_FILE, Buffer.from(csv.replace(String(p.find), String(p.replace))));
    return bundle;
  },

  /**
   * In a one-tenant bundle, carries chain `carry` of the current full export
   * (entries, checkpoints, manifest line) instead of the bundle's own chain,
   * or, with `alongside`, after it; the filter still names the bundle's tenant.
   */
  async carryOtherChain(bundle, p, { fixture }) {
    const carry = chainOf(p, 'carry');
    const source = await EditableBundle.from(fixture.current.full);
    const range = source.manifest.chains.find((c) => c.chain === carry);
    if (!range) throw new Error(`no chain ${carry} in the full export`);
    const own = p.alongside ? bundle.manifest.chains : [];
    if (own.some((c) => Buffer.compare(Buffer.from(c.chain), Buffer.from(carry)) >= 0))
      throw new Error(`${carry} must sort after the bundle's own chain`);
    bundle.lines = [...own.flatMap((c) => bundle.linesAt(c.chain)), ...source.linesAt(carry)];
    bundle.checkpoints = [
      ...(p.alongside ? bundle.checkpoints : []),
      ...source.checkpoints.filter((c) => c.checkpoint.chain === carry),
    ];
    bundle.editManifest((m) => {
      m.chains = [...own, range];
    });
    return bundle;
  },

  /**
   * Swaps two chains (`chains`: two roles) in the manifest's order, with their
   * entries and checkpoints, so every file is consistent with the new order.
   */
  reorderChains(bundle, p) {
    const [a, b] = (p.chains as string[]).map((role) => chainOf({ role }, 'role'));
    const order = bundle.manifest.chains.map((c) => (c.chain === a ? b : c.chain === b ? a : c.chain));
    const byChain = new Map(bundle.manifest.chains.map((c) => [c.chain, c]));
    const lines = new Map(order.map((c) => [c, bundle.linesAt(c as string)]));
    const checkpoints = bundle.checkpoints;
    bundle.editManifest((m) => {
      m.chains = order.map((c) => byChain.get(c as string) as (typeof m.chains)[number]);
    });
    bundle.lines = order.flatMap((c) => lines.get(c) as string[]);
    bundle.checkpoints = order.flatMap((c) => checkpoints.filter((cp) => cp.checkpoint.chain === c));
    return bundle;
  },

  /**
   * Breaks the signature recorded in registry entry `seq` (one bit flipped;
   * the line stays canonical). With `"resign": ["checkpoints"]` the insider
   * then signs the recomputed registry head, so only the record itself is wrong.
   */
  breakRegistryRecord(bundle, p) {
    const lines = bundle.lines;
    const i = bundle.indexOf('registry', Number(p.seq));
    const entry = parse(lines[i] as string);
    const sig = Buffer.from(entry.signature as string, 'base64');
    sig[10] = (sig[10] as number) ^ 1;
    entry.signature = sig.toString('base64');
    lines[i] = canonical(entry);
    bundle.lines = lines;
    return bundle;
  },

  /** Gives the manifest another origin (`origin`). */
  relabelOrigin(bundle, p) {
    bundle.editManifest((m) => {
      m.origin = String(p.origin);
    });
    return bundle;
  },
  /** Pads one entry's details with a string of `bytes` x's (kept canonical): an over-long line. */
  padEntry(bundle, p) {
    editEntry(bundle, chainOf(p), Number(p.seq), { 'details.pad': 'x'.repeat(Number(p.bytes)) });
    return bundle;
  },

  /** Adds line `text` (or a copy of the bundle's last entry line) after the last one. */
  appendLine(bundle, p) {
    const lines = bundle.lines;
    lines.push(p.text === undefined ? (lines.at(-1) as string) : String(p.text));
    bundle.lines = lines;
    return bundle;
  },

  /** Removes the newline after the last line of entries.jsonl. */
  stripFinalNewline(bundle) {
    const bytes = bundle.files.get(ENTRIES_FILE) as Buffer;
    bundle.files.set(ENTRIES_FILE, bytes.subarray(0, bytes.length - 1));
    return bundle;
  },

  /**
   * Edits manifest fields: `set` (dot paths from the manifest, e.g.
   * `filter.to`), and `chainSet` on the line of chain `chain`.
   */
  editManifest(bundle, p) {
    bundle.editManifest((m) => {
      for (const [key, value] of Object.entries((p.set as Params | undefined) ?? {}))
        setPath(m as unknown as Entry, key, value);
      if (p.chain !== undefined) {
        const chain = chainOf(p);
        for (const c of m.chains) if (c.chain === chain) Object.assign(c, p.chainSet as Params);
      }
    });
    return bundle;
  },

  /** Writes manifest.json pretty-printed: the same JSON value (and signature), not its canonical bytes. */
  prettyManifest(bundle) {
    bundle.files.set(MANIFEST_FILE, Buffer.from(`${JSON.stringify(bundle.signed, null, 2)}\n`));
    return bundle;
  },

  /** Adds a file `name` (content `text`) at the end of the tar. */
  addFile(bundle, p) {
    bundle.files.set(String(p.name), Buffer.from(String(p.text ?? '')));
    return bundle;
  },

  /** Removes file `name` from the tar. */
  removeFile(bundle, p) {
    bundle.files.delete(String(p.name));
    return bundle;
  },

  /** Puts the tar's files in the order `order` (names; files not named follow in their order). */
  reorderFiles(bundle, p) {
    const order = p.order as string[];
    const files = new Map<string, Buffer>();
    for (const name of order) files.set(name, bundle.files.get(name) as Buffer);
    for (const [name, bytes] of bundle.files) if (!files.has(name)) files.set(name, bytes);
    bundle.files = files;
    return bundle;
  },

  /** The .tar.gz's bytes with the last `cut` bytes cut off, or replaced by `text`. */
  async rawBytes(bundle, p) {
    if (p.text !== undefined) bundle.raw = Buffer.from(String(p.text));
    else {
      const bytes = await bundle.toBuffer();
      bundle.raw = bytes.subarray(0, bytes.length - Number(p.cut));
    }
    return bundle;
  },
};

// --- applying a case -------------------------------------------------------------------

/** A place with roles (`chain A seq 8`) as the verifier prints it (`chain t_aaaaaaaaaaa1 seq 8`). */
export function realPlace(place: string): string {
  const m = /^chain (\S+)(.*)$/.exec(place);
  if (!m) return place;
  const chain = ROLES[m[1] as string];
  if (!chain) throw new Error(`unknown chain role in place "${place}"`);
  return `chain ${chain}${m[2]}`;
}

function prevItems(c: AttackCase): PrevItem[] {
  if (c.prev === undefined) return [];
  if (typeof c.prev === 'string')
    return Object.keys(ROLES).map((chain) => ({ chain, from: c.prev as 'latest' }));
  return Array.isArray(c.prev) ? c.prev : [c.prev];
}

/**
 * --prev: the kept checkpoints; a changed one (another head, or another size
 * with the chain's genuine hash there) signed by `key`, or, without a key,
 * left with the old signature.
 */
export async function prevOf(
  c: AttackCase,
  fixture: Fixture,
  key: SigningKey | null,
): Promise<SignedCheckpoint[] | undefined> {
  const items = prevItems(c);
  if (items.length === 0) return undefined;
  const full = await EditableBundle.from(fixture.current.full);
  return items.map((item) => {
    const chain = ROLES[item.chain];
    if (!chain) throw new Error(`unknown chain role ${item.chain}`);
    const kept = (item.from === 'latest' ? fixture.latest : fixture.earlier).get(chain);
    if (!kept) throw new Error(`no ${item.from} checkpoint of ${chain}`);
    if (item.head === undefined && item.size === undefined) return kept;
    const size = item.size ?? kept.checkpoint.size;
    const head = item.head ?? EditableBundle.headOf('00'.repeat(32), full.linesAt(chain).slice(0, size));
    const checkpoint = { ...kept.checkpoint, size, head };
    return key ? signCheckpoint(checkpoint, key) : { checkpoint, signature: kept.signature };
  });
}

export interface Applied {
  bundle: EditableBundle;
  bytes: Buffer;
  prev: SignedCheckpoint[] | undefined;
  origin: string | undefined;
  expected: Failure;
}

/**
 * Applies a case as its own attacker, or (`as: 'outsider'` on an insider case)
 * the same edit without the key, and says which verdict must come out (places
 * with real chain names).
 */
export async function applyCase(c: AttackCase, fixture: Fixture, as = c.attacker): Promise<Applied> {
  const attack = attacks[c.attack];
  if (!attack) throw new Error(`${c.name}: unknown attack ${c.attack}`);
  if (c.attacker === 'outsider' && as === 'insider') throw new Error(`${c.name} is an outsider's attack`);
  const key = as === 'insider' ? fixture.signer : null;
  const genuine = await EditableBundle.from(fixture.current[c.bundle ?? 'full']);
  const bundle = await attack(genuine.clone(), c.params ?? {}, { fixture, key });
  if (key && c.resign?.includes('checkpoints')) bundle.resignCheckpoints(key);
  if (key || c.fixManifest !== false) bundle.fixManifest();
  if (key) bundle.signManifest(key);
  const prev = await prevOf(c, fixture, key);
  const expected = as === c.attacker ? c.expected : (c.outsider ?? outsiderVerdict(c, genuine, bundle, prev));
  return {
    bundle,
    bytes: await bundle.toBuffer(),
    prev,
    origin: c.origin,
    expected: { reason: expected.reason, place: realPlace(expected.place) },
  };
}

/**
 * What the same edit must give without the key: the first thing the key
 * would have signed that no longer verifies. A changed manifest: its
 * signature. Otherwise a file that changed: its hash. Otherwise a forged
 * earlier checkpoint: --prev.
 */
function outsiderVerdict(
  c: AttackCase,
  genuine: EditableBundle,
  edited: EditableBundle,
  prev: SignedCheckpoint[] | undefined,
): Failure {
  const same = (name: string) => genuine.files.get(name)?.equals(edited.files.get(name) ?? Buffer.alloc(0));
  if (!same(MANIFEST_FILE)) return { reason: 'bad-signature', place: `file ${MANIFEST_FILE}` };
  const changed = [...genuine.files.keys()].find((name) => !same(name));
  if (changed) return { reason: 'file-mismatch', place: `file ${changed}` };
  const forged = prevItems(c).findIndex((p) => p.head !== undefined || p.size !== undefined);
  const kept = prev?.[forged];
  if (kept)
    return {
      reason: 'prev-invalid',
      place: `chain ${prevItems(c)[forged]?.chain} seq ${kept.checkpoint.size}`,
    };
  throw new Error(
    `${c.name}: the insider's edit changes nothing the key signs; make it an outsider's attack`,
  );
}
