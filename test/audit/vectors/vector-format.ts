// What a test vector is (README.md), the OK lines the spec prescribes for a
// bundle (docs/AUDIT-FORMAT.md, "Verdict lines"), and how our verifier is run
// on a vector: shared by generate.ts and vectors.test.ts.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { SignedCheckpoint } from '../../../audit/verifier/bundle-format.ts';
import { verdictLines } from '../../../audit/verifier/verdict.ts';
import { verifyBundle } from '../../../audit/verifier/verify.ts';
import type { EditableBundle } from '../bundle-fixture.ts';

export interface Vector {
  name: string;
  description: string;
  /** The .tar.gz, in this directory. */
  bundle: string;
  /** SHA-256 of the bundle file: a vector whose bundle changed is no longer this vector. */
  sha256: string;
  /** --prev: signed checkpoints, one canonical JSON line each. */
  prev?: string;
  prevSha256?: string;
  /** --origin. */
  origin?: string;
  expected: { verdict: 'OK'; lines: string[] } | { verdict: 'FAIL'; place: string; reason: string };
}

/** The files of this directory that are not vectors (nor public-keys.pem, vectors.json). */
export const VECTOR_FILES = ['README.md', 'generate.ts', 'vector-format.ts', 'vectors.test.ts'];

/** The warning the spec prints after an OK of a format v1 bundle. */
export const V1_WARNING_LINE =
  'WARNING: format v1: the manifest is not signed and a chain that does not start at seq 1 has an unproven start; export again for format v2';

interface Range {
  chain: string;
  firstSeq: number;
  lastSeq: number;
  start?: string;
}

const byName = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

/**
 * The verdict lines of a bundle that verifies, by the spec's rules: the first
 * line, one per chain in manifest order, one per --prev chain by name, and
 * the v1 warning. (The first line of a v1 bundle, which has no kind and no
 * manifest key, is `format v1 export of <origin>`: the spec leaves it open.)
 */
export function okLines(bundle: EditableBundle, prev: readonly SignedCheckpoint[]): string[] {
  const raw = JSON.parse(bundle.text('manifest.json')) as {
    v?: number;
    origin?: string;
    chains?: Range[];
    manifest?: { kind: string; origin: string; keyId: string; chains: Range[] };
  };
  const v1 = raw.v === 1;
  const m = v1
    ? { kind: null, origin: raw.origin as string, keyId: null, chains: raw.chains as Range[] }
    : (raw.manifest as NonNullable<typeof raw.manifest>);
  const entries = bundle.text('entries.jsonl').split('\n').length - 1;
  const what = v1
    ? `format v1 export of ${m.origin}`
    : `${m.kind} export of ${m.origin}, manifest signed by key ${m.keyId}`;
  const lines = [`OK: ${entries} entries in ${m.chains.length} chains, ${what}`];
  for (const c of m.chains) {
    if (c.lastSeq < c.firstSeq)
      lines.push(`chain ${c.chain}: no entries in range, signed at size ${c.lastSeq}`);
    else if (v1 || c.start === 'genesis')
      lines.push(`chain ${c.chain}: seq ${c.firstSeq}\u2013${c.lastSeq}, signed at size ${c.lastSeq}`);
    else
      lines.push(
        `chain ${c.chain}: seq ${c.firstSeq}\u2013${c.lastSeq}, anchored at signed size ${c.firstSeq - 1} (${c.start}), signed at size ${c.lastSeq}`,
      );
  }
  const largest = new Map<string, number>();
  for (const p of prev)
    largest.set(p.checkpoint.chain, Math.max(largest.get(p.checkpoint.chain) ?? 0, p.checkpoint.size));
  for (const [chain, size] of [...largest].sort(([a], [b]) => byName(a, b)))
    lines.push(
      m.chains.some((c) => c.chain === chain)
        ? `prev ${chain}: consistent with your checkpoint at size ${size}`
        : `prev ${chain}: not in this bundle (out of scope)`,
    );
  if (v1) lines.push(V1_WARNING_LINE);
  return lines;
}

/** Our verifier's verdict lines for a vector of `dir`, the pinned keys being `pem`. */
export async function verdictOf(dir: string, v: Vector, pem: string): Promise<string[]> {
  const prev = v.prev
    ? readFileSync(path.join(dir, v.prev), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as SignedCheckpoint)
    : undefined;
  const result = await verifyBundle(readFileSync(path.join(dir, v.bundle)), pem, {
    ...(prev ? { prev } : {}),
    ...(v.origin === undefined ? {} : { origin: v.origin }),
  });
  return verdictLines(result);
}

/** The lines are the expected verdict: every OK line, or one FAIL line with the place and reason. */
export function agrees(v: Vector, lines: readonly string[]): boolean {
  if (v.expected.verdict === 'OK') return JSON.stringify(lines) === JSON.stringify(v.expected.lines);
  return (
    lines.length === 1 && (lines[0] ?? '').startsWith(`FAIL: ${v.expected.place}: ${v.expected.reason}: `)
  );
}
