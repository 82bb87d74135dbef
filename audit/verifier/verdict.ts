// The verdict as people (and other verifiers) read it: docs/AUDIT-FORMAT.md,
// "Verdict lines". On OK, the first line says what was verified, then one
// line per chain in manifest order, one per --prev chain by name, and any
// warning; on failure, exactly one FAIL line whose `<place>: <reason>` is
// normative (the explanation after it is for people).
import { placeOf } from './verification-error.ts';
import type { VerifiedChain, VerifyFailure, VerifyOk } from './verify.ts';

/** The lines of a verdict, without their newlines. */
export function verdictLines(result: VerifyOk | VerifyFailure): string[] {
  if (!result.ok) return [failLine(result)];
  const what =
    result.format === 1
      ? `format v1 export of ${result.origin}`
      : `${result.kind} export of ${result.origin}, manifest signed by key ${result.manifestKeyId}`;
  return [
    `OK: ${result.entries} entries in ${result.chains.length} chains, ${what}`,
    ...result.chains.map(chainLine),
    ...result.prev.map((p) =>
      p.status === 'consistent'
        ? `prev ${p.chain}: consistent with your checkpoint at size ${p.size}`
        : `prev ${p.chain}: not in this bundle (out of scope)`,
    ),
    ...result.warnings.map((w) => `WARNING: ${w}`),
  ].map(oneLine);
}

function chainLine(c: VerifiedChain): string {
  if (c.lastSeq < c.firstSeq) return `chain ${c.chain}: no entries in range, signed at size ${c.size}`;
  const range = `seq ${c.firstSeq}\u2013${c.lastSeq}`;
  return c.anchored
    ? `chain ${c.chain}: ${range}, anchored at signed size ${c.firstSeq - 1} (${c.start}), signed at size ${c.size}`
    : `chain ${c.chain}: ${range}, signed at size ${c.size}`;
}

/** `FAIL: <place>: <reason>: <explanation>[ (expected <x>, found <y>)]` */
export function failLine(
  f: Pick<VerifyFailure, 'reason' | 'chain' | 'seq' | 'file' | 'message' | 'expected' | 'actual'>,
) {
  const values = f.expected === undefined ? '' : ` (expected ${f.expected}, found ${f.actual ?? 'nothing'})`;
  return oneLine(`FAIL: ${placeOf(f)}: ${f.reason}: ${f.message}${values}`);
}

/** A name from the bundle (a tar entry's, a chain's) must not break the one-line form. */
function oneLine(line: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is escaped
  return line.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
