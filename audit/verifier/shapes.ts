// The exact shapes of what a bundle holds (docs/AUDIT-FORMAT.md, "Entry" and
// "Checkpoint"): field sets, types and byte forms, and checkpoint signatures,
// shared by the v1 and v2 paths of the verifier and by --prev. Each shape
// check returns why a value is not of its shape (a phrase for the
// explanation), or null when it is.
import { isUtf8 } from 'node:buffer';
import { type KeyObject, verify } from 'node:crypto';
import type { Checkpoint, SignedCheckpoint } from './bundle-format.ts';
import { canonicalBytes } from './canonical.ts';
import { VerificationError, type VerifyReason } from './verification-error.ts';

export const HEX64 = /^[0-9a-f]{64}$/;
export const KEY_ID = /^[0-9a-f]{16}$/;
/** 64 bytes in strict base64 (88 characters with padding): one spelling per signature. */
export const SIGNATURE = /^[A-Za-z0-9+/]{86}==$/;
/** `at` and `time`: UTC, six fraction digits, `Z`. */
export const TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;
export const TENANT_ID = /^[a-z0-9]+$/;
export const TENANT_CHAIN = /^t_[a-z0-9]+$/;
export const PLATFORM = 'platform';
export const REGISTRY = 'registry';

export type Json = Record<string, unknown>;

export const isObject = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v);
const isString = (v: unknown): v is string => typeof v === 'string';
const isStringOrNull = (v: unknown) => v === null || typeof v === 'string';
const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 1;

/** The object has exactly these keys (in any order). */
export function hasExactly(value: Json, keys: readonly string[]): boolean {
  const own = Object.keys(value);
  return own.length === keys.length && keys.every((k) => Object.hasOwn(value, k));
}

/** A chain name of the three kinds: `t_<tenant id>`, `platform`, `registry`. */
export function isChainName(name: unknown): name is string {
  return name === PLATFORM || name === REGISTRY || (isString(name) && TENANT_CHAIN.test(name));
}

/** The tenant a chain's entries must name: the id of a `t_` chain, null on `platform`. */
export function tenantOfChain(chain: string): string | null {
  return chain === PLATFORM ? null : chain.slice(2);
}

/**
 * The value these bytes are the canonical JSON of (RFC 8785, integers within
 * ±(2^53 − 1)), or `undefined` when they are not byte for byte its canonical
 * form (or not JSON at all).
 */
export function canonicalValue(bytes: Buffer): unknown {
  // Fast path: valid UTF-8 whose text is exactly JSON.stringify of what it parses to,
  // with every object's keys in ascending UTF-16 order, every number a safe integer and
  // no `\ud...` escape, is its canonical form (RFC 8785 serialises strings and integers
  // as JSON.stringify does, and sorts keys). Anything the fast path cannot prove goes
  // through the full re-canonicalisation below, so both accept exactly the same lines.
  if (!isUtf8(bytes)) return canonicalValueSlow(bytes);
  const text = bytes.toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!text.includes('\\u')) {
    try {
      if (sortedIntegers(value, 0) && JSON.stringify(value) === text) return value;
    } catch {
      // too deep or odd: the slow path decides
    }
  }
  return recanonicalised(value, bytes);
}

/** The full check: re-serialise with RFC 8785 and compare byte for byte. */
export function canonicalValueSlow(bytes: Buffer): unknown {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
  return recanonicalised(value, bytes);
}

function recanonicalised(value: unknown, bytes: Buffer): unknown {
  try {
    return canonicalBytes(value).equals(bytes) ? value : undefined;
  } catch {
    return undefined; // a number outside the integer range, a lone surrogate
  }
}

/** Parsed JSON whose objects have strictly ascending keys and whose numbers are safe integers (depth <= 32). */
function sortedIntegers(value: unknown, depth: number): boolean {
  if (typeof value === 'number') return Number.isSafeInteger(value);
  if (value === null || typeof value !== 'object') return true;
  if (depth > 32) return false;
  if (Array.isArray(value)) {
    for (const v of value) if (!sortedIntegers(v, depth + 1)) return false;
    return true;
  }
  let previous: string | undefined;
  for (const key in value) {
    if (previous !== undefined && !(previous < key)) return false;
    previous = key;
    if (!sortedIntegers((value as Json)[key], depth + 1)) return false;
  }
  return true;
}

/** What entries and checkpoints share: exactly their fields, `v` 1 and an `origin`. */
function versionedProblem(value: Json, fields: readonly string[]): string | null {
  if (!hasExactly(value, fields)) return `not exactly the fields ${fields.join(', ')}`;
  if (value.v !== 1) return 'v is not 1';
  if (!isString(value.origin)) return 'origin is not a string';
  return null;
}

const CHECKPOINT_FIELDS = ['v', 'origin', 'chain', 'size', 'head', 'keyId', 'time'] as const;

/** Why `value` is not a checkpoint with exactly its fields, or null. */
export function checkpointProblem(value: unknown): string | null {
  if (!isObject(value)) return 'not an object';
  const common = versionedProblem(value, CHECKPOINT_FIELDS);
  if (common) return common;
  if (!isString(value.chain)) return 'chain is not a string';
  if (!isCount(value.size)) return 'size is not an integer >= 1';
  if (!isString(value.head) || !HEX64.test(value.head)) return 'head is not 64 hex digits';
  if (!isString(value.keyId) || !KEY_ID.test(value.keyId)) return 'keyId is not 16 hex digits';
  if (!isString(value.time) || !TIME.test(value.time))
    return 'time is not of the form YYYY-MM-DDTHH:MM:SS.ffffffZ';
  return null;
}

/** Why `value` is not `{checkpoint, signature}` with exactly those fields, or null. */
export function signedCheckpointProblem(value: unknown): string | null {
  if (!isObject(value)) return 'not an object';
  if (!hasExactly(value, ['checkpoint', 'signature'])) return 'not exactly the fields checkpoint, signature';
  const problem = checkpointProblem(value.checkpoint);
  if (problem) return `the checkpoint: ${problem}`;
  if (!isString(value.signature) || !SIGNATURE.test(value.signature))
    return 'the signature is not 88 base64 characters';
  return null;
}

/** Ed25519 over canonical(checkpoint) with the pinned key of its keyId: 'ok', 'unknown-key' or 'bad-signature'. */
export function checkpointSignature(
  checkpoint: Checkpoint,
  signature: string,
  keys: ReadonlyMap<string, KeyObject>,
): 'ok' | 'unknown-key' | 'bad-signature' {
  const key = keys.get(checkpoint.keyId);
  if (!key) return 'unknown-key';
  return verify(null, canonicalBytes(checkpoint), key, Buffer.from(signature, 'base64'))
    ? 'ok'
    : 'bad-signature';
}

/**
 * Fails unless the checkpoint was signed by a pinned key: `unknown-key`,
 * `bad-signature` (or `prevFailure` for both), at its chain and size unless
 * `at` says otherwise (a registry entry's place).
 */
export function checkSignature(
  sc: SignedCheckpoint,
  keys: ReadonlyMap<string, KeyObject>,
  what: string,
  options: { prevFailure?: VerifyReason; at?: { chain: string; seq: number } } = {},
): void {
  const cp = sc.checkpoint;
  const at = options.at ?? { chain: cp.chain, seq: cp.size };
  const signed = checkpointSignature(cp, sc.signature, keys);
  if (signed === 'unknown-key')
    throw new VerificationError(
      options.prevFailure ?? 'unknown-key',
      `${what} is signed by key ${cp.keyId}, which is not a pinned key`,
      { ...at, expected: [...keys.keys()].join(','), actual: cp.keyId },
    );
  if (signed === 'bad-signature')
    throw new VerificationError(
      options.prevFailure ?? 'bad-signature',
      `${what}'s signature does not verify with the pinned key`,
      at,
    );
}

const ENTRY_FIELDS = [
  'v',
  'origin',
  'chain',
  'seq',
  'id',
  'at',
  'tenant',
  'actor',
  'action',
  'resource',
  'outcome',
  'where',
  'details',
] as const;
const REGISTRY_FIELDS = ['v', 'origin', 'chain', 'seq', 'at', 'kind', 'checkpoint', 'signature'] as const;

/** `{type: string, id: string or null}` */
function isTypeAndId(v: unknown): boolean {
  return isObject(v) && hasExactly(v, ['type', 'id']) && isString(v.type) && isStringOrNull(v.id);
}

/**
 * Why `value` is not an entry with exactly the fields and types of the kind
 * its own `chain` names (a tenant or the platform chain, or the registry), or null.
 */
export function entryProblem(value: unknown): string | null {
  if (!isObject(value)) return 'not a JSON object';
  if (!isChainName(value.chain)) return 'chain is not t_<tenant id>, platform or registry';
  return value.chain === REGISTRY ? registryEntryProblem(value) : eventEntryProblem(value);
}

function eventEntryProblem(e: Json): string | null {
  const common = versionedProblem(e, ENTRY_FIELDS);
  if (common) return common;
  if (!isCount(e.seq)) return 'seq is not an integer >= 1';
  if (!isCount(e.id)) return 'id is not an integer >= 1';
  if (!isString(e.at) || !TIME.test(e.at)) return 'at is not of the form YYYY-MM-DDTHH:MM:SS.ffffffZ';
  if (!isStringOrNull(e.tenant)) return 'tenant is not a string or null';
  if (!isTypeAndId(e.actor)) return 'actor is not {type, id}';
  if (!isString(e.action) || e.action === '') return 'action is not a non-empty string';
  if (e.resource !== null && !isTypeAndId(e.resource)) return 'resource is not {type, id} or null';
  const o = e.outcome;
  if (!isObject(o) || !hasExactly(o, ['result', 'code']) || !isString(o.result) || !isStringOrNull(o.code))
    return 'outcome is not {result, code}';
  const w = e.where;
  if (
    !isObject(w) ||
    !hasExactly(w, ['ip', 'ua', 'request']) ||
    !isStringOrNull(w.ip) ||
    !isStringOrNull(w.ua) ||
    !isStringOrNull(w.request)
  )
    return 'where is not {ip, ua, request}';
  return null;
}

function registryEntryProblem(e: Json): string | null {
  const common = versionedProblem(e, REGISTRY_FIELDS);
  if (common) return common;
  if (!isCount(e.seq)) return 'seq is not an integer >= 1';
  if (e.kind !== 'checkpoint') return 'kind is not "checkpoint"';
  const problem = checkpointProblem(e.checkpoint);
  if (problem) return `the recorded checkpoint: ${problem}`;
  const cp = e.checkpoint as unknown as Checkpoint;
  if (cp.chain === REGISTRY || !isChainName(cp.chain))
    return 'the recorded checkpoint is not of a tenant or the platform chain';
  if (e.at !== cp.time) return "at is not the recorded checkpoint's time";
  if (!isString(e.signature) || !SIGNATURE.test(e.signature))
    return 'the signature is not 88 base64 characters';
  return null;
}
