// The verdict lines of docs/AUDIT-FORMAT.md ("Verdict lines"), exactly: the
// OK lines of a v2 and a v1 result, and the one FAIL line at each kind of place.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { failLine, verdictLines } from '../../../audit/verifier/verdict.ts';
import {
  V1_WARNING,
  VerificationError,
  type VerifyOk,
  verifyBundle,
} from '../../../audit/verifier/verify.ts';
import { History, ORIGIN } from './v2-builder.ts';

const chain = (c: string, firstSeq: number, lastSeq: number, anchored: boolean) => ({
  chain: c,
  firstSeq,
  lastSeq,
  head: '00'.repeat(32),
  anchored,
  start: anchored ? ('from' as const) : ('genesis' as const),
  size: lastSeq,
});

const v2: VerifyOk = {
  ok: true,
  format: 2,
  kind: 'full',
  origin: 'enclave:abc',
  manifestKeyId: '0123456789abcdef',
  entries: 12,
  chains: [chain('platform', 1, 4, false), chain('t_abc', 5, 9, true), chain('t_def', 4, 3, true)],
  prev: [
    { chain: 't_abc', size: 7, status: 'consistent' },
    { chain: 't_zzz', size: 2, status: 'out-of-scope' },
  ],
  warnings: [],
  checkpoints: [],
};

test('a v2 OK: the summary, one line per chain (genesis, anchored, empty), then one per --prev chain', () => {
  assert.deepEqual(verdictLines(v2), [
    'OK: 12 entries in 3 chains, full export of enclave:abc, manifest signed by key 0123456789abcdef',
    'chain platform: seq 1\u20134, signed at size 4',
    'chain t_abc: seq 5\u20139, anchored at signed size 4 (from), signed at size 9',
    'chain t_def: no entries in range, signed at size 3',
    'prev t_abc: consistent with your checkpoint at size 7',
    'prev t_zzz: not in this bundle (out of scope)',
  ]);
});

test('a v1 OK says format v1, has no manifest key, and ends with the WARNING line', () => {
  const v1: VerifyOk = {
    ...v2,
    format: 1,
    kind: null,
    manifestKeyId: null,
    chains: [chain('t_abc', 5, 9, false)],
    prev: [],
    warnings: [V1_WARNING],
  };
  assert.deepEqual(verdictLines(v1), [
    'OK: 12 entries in 1 chains, format v1 export of enclave:abc',
    'chain t_abc: seq 5\u20139, signed at size 9',
    'WARNING: format v1: the manifest is not signed and a chain that does not start at seq 1 has an unproven start; export again for format v2',
  ]);
});

test('FAIL: one line, at the place bundle, file, chain, or chain and seq, with expected and found when known', () => {
  const fail = (reason: 'unreadable', detail: ConstructorParameters<typeof VerificationError>[2]) => {
    const e = new VerificationError(reason, 'why', detail);
    return failLine({ ...e, message: e.message });
  };
  assert.equal(fail('unreadable', {}), 'FAIL: bundle: unreadable: why');
  assert.equal(fail('unreadable', { file: 'entries.jsonl' }), 'FAIL: file entries.jsonl: unreadable: why');
  assert.equal(fail('unreadable', { chain: 't_a' }), 'FAIL: chain t_a: unreadable: why');
  assert.equal(
    fail('unreadable', { chain: 't_a', seq: 3, file: 'x', expected: 'ab', actual: 'cd' }),
    'FAIL: chain t_a seq 3: unreadable: why (expected ab, found cd)',
  );
  assert.equal(
    fail('unreadable', { file: 'a\nOK: b' }),
    'FAIL: file a\\u000aOK: b: unreadable: why',
    'a name from the bundle cannot add a line',
  );
});

test('verdictLines of a real failure is the single FAIL line', async () => {
  const h = new History();
  h.events('aaa', 2).seal();
  const r = await verifyBundle(await h.export().pack(), h.key.pem, { origin: 'enclave:other' });
  const lines = verdictLines(r);
  assert.equal(lines.length, 1);
  assert.match(
    lines[0] as string,
    new RegExp(`^FAIL: bundle: wrong-origin: .* \\(expected enclave:other, found ${ORIGIN}\\)$`),
  );
});
