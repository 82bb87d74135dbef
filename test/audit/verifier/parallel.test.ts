// The verifier on every core (audit/verifier/parallel-lines.ts) gives the
// verdict of one thread, line for line: on every test vector (which include
// every attack of test/audit/attacks/ on a real export), and when failures
// sit in lines checked by different workers. And the fast canonical check
// accepts exactly what the full re-canonicalisation accepts.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { SignedCheckpoint } from '../../../audit/verifier/bundle-format.ts';
import { canonicalValue, canonicalValueSlow } from '../../../audit/verifier/shapes.ts';
import { verdictLines } from '../../../audit/verifier/verdict.ts';
import { type VerifyOptions, verifyBundle } from '../../../audit/verifier/verify.ts';
import { agrees, type Vector } from '../vectors/vector-format.ts';
import { History, type Parts } from './v2-builder.ts';

const VECTORS = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'vectors');
const vectors = JSON.parse(readFileSync(path.join(VECTORS, 'vectors.json'), 'utf8')) as Vector[];
const pem = readFileSync(path.join(VECTORS, 'public-keys.pem'), 'utf8');

/** One thread; or three workers, from the first byte, one line per batch (lines spread over workers). */
const ONE: VerifyOptions = { threads: 1 };
const MANY: VerifyOptions = { threads: 3, parallelFromBytes: 0, parallelBatchLines: 1 };
const FEW: VerifyOptions = { threads: 2, parallelFromBytes: 0, parallelBatchLines: 2 };

async function vectorLines(v: Vector, options: VerifyOptions): Promise<string[]> {
  const prev = v.prev
    ? readFileSync(path.join(VECTORS, v.prev), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as SignedCheckpoint)
    : undefined;
  const result = await verifyBundle(readFileSync(path.join(VECTORS, v.bundle)), pem, {
    ...options,
    ...(prev ? { prev } : {}),
    ...(v.origin === undefined ? {} : { origin: v.origin }),
  });
  return verdictLines(result);
}

describe('verify with 1 and N workers', () => {
  test('every test vector (every attack bundle among them) gets the same verdict lines', async () => {
    for (const v of vectors) {
      const one = await vectorLines(v, ONE);
      assert.ok(agrees(v, one), `${v.name}: ${one.join('\n')}`);
      assert.deepEqual(await vectorLines(v, MANY), one, `${v.name} with 3 workers, 1 line per batch`);
    }
  });

  /** t_aaa 1..6 then t_bbb 1..6 (and the registry, platform-free). */
  function twoChains(): { h: History; p: Parts } {
    const h = new History();
    h.events('aaa', 6).events('bbb', 6).seal();
    return { h, p: h.export() };
  }

  async function both(p: Parts, h: History): Promise<string> {
    const bytes = await p.pack();
    const run = async (o: VerifyOptions) => verdictLines(await verifyBundle(bytes, h.key.pem, o)).join('\n');
    const one = await run(ONE);
    assert.equal(await run(MANY), one, 'three workers, one line per batch');
    assert.equal(await run(FEW), one, 'two workers, two lines per batch');
    return one.replace(/^(FAIL: [^:]+: [a-z-]+): .*$/s, '$1');
  }

  const nonCanonical = (p: Parts, chain: string, seq: number) => {
    const lines = p.lines;
    const i = p.indexOf(chain, seq);
    lines[i] = (lines[i] as string).replace('{', '{ ');
    p.lines = lines;
  };

  test('two chains broken in lines of different workers: the first in stream order is the verdict', async () => {
    const { h, p } = twoChains();
    nonCanonical(p, 't_bbb', 1);
    p.editEntry('t_aaa', 3, (e) => {
      e.tenant = 'zzz';
    });
    assert.equal(await both(p, h), 'FAIL: chain t_aaa seq 3: wrong-tenant');
    const q = twoChains();
    nonCanonical(q.p, 't_aaa', 4);
    q.p.editEntry('t_bbb', 2, (e) => {
      e.tenant = 'zzz';
    });
    assert.equal(await both(q.p, q.h), 'FAIL: chain t_aaa seq 4: not-canonical');
  });

  test("a chain's head-mismatch (this thread) comes before a later chain's line failure (a worker)", async () => {
    const { h, p } = twoChains();
    p.editEntry('t_aaa', 2, (e) => {
      e.details = { forged: true };
    });
    nonCanonical(p, 't_bbb', 1);
    assert.equal(await both(p, h), 'FAIL: chain t_aaa seq 6: head-mismatch');
  });

  test("a failure in a chain's last line comes before that chain's head-mismatch", async () => {
    const { h, p } = twoChains();
    p.editEntry('t_aaa', 6, (e) => {
      e.tenant = 'zzz';
    });
    assert.equal(await both(p, h), 'FAIL: chain t_aaa seq 6: wrong-tenant');
  });

  test('a line too many after a failing line: the failing line wins', async () => {
    const { h, p } = twoChains();
    nonCanonical(p, 't_bbb', 6);
    p.lines = [...p.lines, 'not json at all'];
    assert.equal(await both(p, h), 'FAIL: chain t_bbb seq 6: not-canonical');
  });

  test('an intact bundle verifies the same with any number of workers', async () => {
    const { h, p } = twoChains();
    assert.match(await both(p, h), /^OK: /);
  });
});

describe('the fast canonical check', () => {
  test('accepts and refuses exactly what the full re-canonicalisation does', () => {
    const cases = [
      '{"a":1,"b":2}',
      '{"b":2,"a":1}',
      '{"a":1,"a":1}',
      '{"a":1.5}',
      '{"a":1e3}',
      '{"a":-0}',
      '{"a":9007199254740991}',
      '{"a":9007199254740992}',
      '{"a":"\\u0001"}',
      '{"a":"\\u00e9"}',
      '{"a":"é"}',
      '{"a":"\\ud800"}',
      '{"a":"\\ud83d\\ude00"}',
      '{"a":"😀"}',
      '{"a":"\\/"}',
      '{"a":"/"}',
      '{"10":1,"9":2}',
      '{"9":2,"10":1}',
      '{"__proto__":1,"a":2}',
      '{"toJSON":1,"a":2}',
      '{"a":2,"toJSON":1}',
      '{"a":[1,2,{"c":1,"b":2}]}',
      '{"a":[1,2,{"b":2,"c":1}]}',
      '{"a": 1}',
      '{"a":1}\r',
      '\ufeff{"a":1}',
      '[]',
      '"x"',
      'null',
      'tru',
      '{"é":1,"z":2}',
      '{"z":1,"é":2}',
      '{"\\u00e9":1}',
      `{"a":${'['.repeat(40)}${']'.repeat(40)}}`,
      `{"a":${'['.repeat(5000)}${']'.repeat(5000)}}`,
    ];
    const bytes = cases.map((c) => Buffer.from(c, 'utf8'));
    bytes.push(Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d])); // invalid UTF-8
    bytes.push(Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xed, 0xa0, 0x80, 0x22, 0x7d])); // a surrogate in UTF-8
    for (const b of bytes)
      assert.deepEqual(canonicalValue(b), canonicalValueSlow(b), `${JSON.stringify(b.toString('utf8'))}`);
  });
});
