// The mutations the attack files in attacks/*.json name. Each edits a valid
// bundle the way an attacker without the signing key could; params name
// chains by role (A, B, platform, registry: see bundle-fixture.ts). Unless a
// case says `"fixManifest": false`, the attacker also recomputes the
// manifest's file hashes, which anyone can.
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import {
  canonicalBytes,
  chainHash,
  KEYS_FILE,
  type SignedCheckpoint,
  ZERO_HASH,
} from '../../../audit/verifier/bundle-format.ts';
import { EditableBundle, type Fixture, ROLES } from '../bundle-fixture.ts';

export type Params = Record<string, unknown>;
export type Attack = (
  bundle: EditableBundle,
  params: Params,
  fixture: Fixture,
) => Promise<EditableBundle> | EditableBundle;

const chainOf = (params: Params, key = 'chain'): string => {
  const chain = ROLES[String(params[key])];
  if (!chain) throw new Error(`unknown chain role ${String(params[key])}`);
  return chain;
};

type Entry = Record<string, unknown>;
const parse = (line: string) => JSON.parse(line) as Entry;
const canonical = (entry: Entry) => canonicalBytes(entry).toString('utf8');

/** Sets `path` (dot separated) in an entry. */
function setPath(entry: Entry, path: string, value: unknown): void {
  const keys = path.split('.');
  let node = entry;
  for (const k of keys.slice(0, -1)) node = node[k] as Entry;
  node[keys.at(-1) as string] = value;
}

function editEntry(bundle: EditableBundle, chain: string, seq: number, set: Params): void {
  const lines = bundle.lines;
  const i = bundle.indexOf(chain, seq);
  const entry = parse(lines[i] as string);
  for (const [path, value] of Object.entries(set)) setPath(entry, path, value);
  lines[i] = canonical(entry);
  bundle.lines = lines;
}

/** The chain's head recomputed over the bundle's (edited) lines, from the manifest's prevHash. */
function recomputeHead(bundle: EditableBundle, chain: string): string {
  const range = bundle.manifest.chains.find((c) => c.chain === chain);
  let hash = range ? Buffer.from(range.prevHash, 'hex') : ZERO_HASH;
  for (const line of bundle.lines) if (parse(line).chain === chain) hash = chainHash(hash, Buffer.from(line));
  return hash.toString('hex');
}

function replaceCheckpoint(
  bundle: EditableBundle,
  chain: string,
  edit: (c: SignedCheckpoint) => SignedCheckpoint,
) {
  bundle.checkpoints = bundle.checkpoints.map((c) => (c.checkpoint.chain === chain ? edit(c) : c));
}

function setLastSeq(bundle: EditableBundle, chain: string, lastSeq: number): void {
  const m = bundle.manifest;
  for (const c of m.chains) if (c.chain === chain) c.lastSeq = lastSeq;
  bundle.manifest = m;
}

export const attacks: Record<string, Attack> = {
  /** Changes fields of one entry (kept canonical, so only the hashes can tell). */
  editPayload(bundle, p) {
    editEntry(bundle, chainOf(p), Number(p.seq), p.set as Params);
    return bundle;
  },

  /** Removes one entry. */
  deleteEntry(bundle, p) {
    const lines = bundle.lines;
    lines.splice(bundle.indexOf(chainOf(p), Number(p.seq)), 1);
    bundle.lines = lines;
    return bundle;
  },

  /** Keeps a chain's entries up to seq `keep` and says so in the manifest; the (genuine) checkpoint stays. */
  truncateTail(bundle, p) {
    const chain = chainOf(p);
    const keep = Number(p.keep);
    bundle.lines = bundle.lines.filter((l) => {
      const e = parse(l);
      return e.chain !== chain || (e.seq as number) <= keep;
    });
    setLastSeq(bundle, chain, keep);
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
   * applied; with `renumber`, later entries move up by one and the manifest
   * is made to agree.
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
      setLastSeq(
        bundle,
        chain,
        (bundle.manifest.chains.find((c) => c.chain === chain)?.lastSeq as number) + 1,
      );
    }
    bundle.lines = lines;
    return bundle;
  },

  /** Cuts the chain back to the fixture's earlier checkpoint and ships that (genuine) checkpoint as the head. */
  rollBack(bundle, p, fixture) {
    const chain = chainOf(p);
    const earlier = fixture.earlier.get(chain) as SignedCheckpoint;
    bundle.lines = bundle.lines.filter((l) => {
      const e = parse(l);
      return e.chain !== chain || (e.seq as number) <= earlier.checkpoint.size;
    });
    setLastSeq(bundle, chain, earlier.checkpoint.size);
    replaceCheckpoint(bundle, chain, () => earlier);
    return bundle;
  },

  /** Edits an entry, puts the new head into the checkpoint and keeps the old signature or writes junk. */
  forgeCheckpoint(bundle, p) {
    const chain = chainOf(p);
    editEntry(bundle, chain, Number(p.seq), p.set as Params);
    const head = recomputeHead(bundle, chain);
    replaceCheckpoint(bundle, chain, (c) => ({
      checkpoint: { ...c.checkpoint, head },
      signature: p.signature === 'keep' ? c.signature : Buffer.alloc(64, 7).toString('base64'),
    }));
    return bundle;
  },

  /** Flips one bit of a genuine signature. */
  flipSignatureBit(bundle, p) {
    replaceCheckpoint(bundle, chainOf(p), (c) => {
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
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x as string, 'base64url');
    const keyId = p.keepKeyId ? undefined : createHash('sha256').update(raw).digest('hex').slice(0, 16);
    const pem = publicKey.export({ format: 'pem', type: 'spki' }).toString();
    bundle.files.set(KEYS_FILE, Buffer.from(JSON.stringify({ keys: [{ keyId, publicKey: pem }] }, null, 2)));
    replaceCheckpoint(bundle, chain, (c) => {
      const checkpoint = { ...c.checkpoint, head, ...(keyId ? { keyId } : {}) };
      return { checkpoint, signature: sign(null, canonicalBytes(checkpoint), privateKey).toString('base64') };
    });
    return bundle;
  },

  /**
   * Puts chain `from`'s entry `seq` in place of chain `into`'s entry `seq`.
   * With `rewriteChain`, the spliced entry's `chain` field is changed to fit.
   */
  async spliceFromChain(bundle, p, fixture) {
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

  /** Hands over the export taken after the first seal instead of the current one. */
  async replayOlderExport(_bundle, p, fixture) {
    return EditableBundle.from(p.tenantOnly ? fixture.older.tenantA : fixture.older.full);
  },

  /** Rewrites the raw text of one line: `find` (first occurrence) -> `replace`. */
  rewriteLine(bundle, p) {
    const lines = bundle.lines;
    const i = bundle.indexOf(chainOf(p), Number(p.seq));
    const line = lines[i] as string;
    if (!line.includes(String(p.find))) throw new Error(`line ${i} has no ${String(p.find)}`);
    lines[i] = line.replace(String(p.find), String(p.replace));
    bundle.lines = lines;
    return bundle;
  },

  /** Re-serialises one line with its keys in reverse order (same JSON value, other bytes). */
  reverseKeyOrder(bundle, p) {
    const lines = bundle.lines;
    const i = bundle.indexOf(chainOf(p), Number(p.seq));
    const entry = parse(lines[i] as string);
    lines[i] = JSON.stringify(Object.fromEntries(Object.entries(entry).reverse()));
    bundle.lines = lines;
    return bundle;
  },

  /**
   * Removes a whole chain: its entries, its checkpoint and its line in the
   * manifest; with `claimTenant`, the (unsigned) manifest also claims to be
   * filtered to that tenant.
   */
  dropChain(bundle, p) {
    const chain = chainOf(p);
    bundle.lines = bundle.lines.filter((l) => parse(l).chain !== chain);
    bundle.checkpoints = bundle.checkpoints.filter((c) => c.checkpoint.chain !== chain);
    const m = bundle.manifest;
    m.chains = m.chains.filter((c) => c.chain !== chain);
    if (p.claimTenant) m.filter.tenant = chainOf(p, 'claimTenant').slice(2);
    bundle.manifest = m;
    return bundle;
  },
};
