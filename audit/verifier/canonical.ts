// RFC 8785 (JSON Canonicalization Scheme) bytes of an audit entry or
// checkpoint: what is hashed, signed, stored and exported, byte for byte.
//
// Only a subset of JSON is accepted: objects, arrays, strings, booleans,
// null and safe integers (|n| <= 2^53 - 1). Fractions and big integers have
// number forms that parsers disagree on (1e21, 0.1 + 0.2, 2^64 rounding on
// JSON.parse), so an offline verifier in another language could fail to
// reproduce the bytes; the sealer turns such numbers into strings first
// (`numbersAsStrings`), and anything else that slips through is refused here.
import canonicalize from 'canonicalize';

export class NonCanonicalValueError extends Error {
  override name = 'NonCanonicalValueError';
  readonly path: string;
  constructor(path: string, why: string) {
    super(`cannot canonicalise ${path}: ${why}`);
    this.path = path;
  }
}

export type Canonical = null | boolean | string | number | Canonical[] | { [key: string]: Canonical };

/** The UTF-8 bytes of the RFC 8785 form of value; throws NonCanonicalValueError on anything outside the subset. */
export function canonicalBytes(value: unknown): Buffer {
  assertCanonical(value, '$');
  const text = canonicalize(value);
  if (text === undefined) throw new NonCanonicalValueError('$', 'nothing to serialise');
  return Buffer.from(text, 'utf8');
}

// No depth limit on purpose: whatever jsonb held and JSON.parse accepted must
// seal, or one odd inbox row would block its chain forever.
function assertCanonical(value: unknown, path: string): void {
  if (value === null || typeof value === 'boolean') return;
  if (typeof value === 'string') {
    if (!value.isWellFormed()) throw new NonCanonicalValueError(path, 'a lone surrogate in a string');
    return;
  }
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value))
      throw new NonCanonicalValueError(path, `${value} is not an integer within ±(2^53 - 1)`);
    return;
  }
  if (Array.isArray(value)) {
    value.forEach((v, i) => {
      assertCanonical(v, `${path}[${i}]`);
    });
    return;
  }
  if (typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    for (const [key, v] of Object.entries(value)) {
      if (!key.isWellFormed()) throw new NonCanonicalValueError(path, 'a lone surrogate in a key');
      assertCanonical(v, `${path}.${key}`);
    }
    return;
  }
  throw new NonCanonicalValueError(path, `a ${describe(value)} is not JSON`);
}

function describe(value: unknown): string {
  if (typeof value !== 'object') return typeof value;
  return (value as object).constructor?.name ?? 'object';
}

/**
 * Parses JSON text with every number that is not a safe integer kept as its
 * exact source text (a string), e.g. `{"a":1.5,"b":12345678901234567890}` ->
 * `{ a: "1.5", b: "12345678901234567890" }`. Used on `details` (jsonb read as
 * text) before sealing, per docs/AUDIT-FORMAT.md.
 */
export function numbersAsStrings(json: string): unknown {
  return JSON.parse(json, (_key, value: unknown, context?: { source?: string }) =>
    typeof value === 'number' && !Number.isSafeInteger(value) ? (context?.source ?? String(value)) : value,
  );
}

/** Parses canonical bytes back (export, verify, tests). */
export function parseCanonical(bytes: Uint8Array): unknown {
  return JSON.parse(Buffer.from(bytes).toString('utf8'));
}
