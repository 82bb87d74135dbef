// Our offline verifier against the test vectors of this directory (README.md):
// no database, only the files. Each vector's bundle (and --prev file) must be
// byte for byte the one generated, and the verdict exactly the expected one:
// every OK line, or the FAIL line's place and reason.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { readPinnedKeys } from '../../../audit/verifier/verify.ts';
import { VECTOR_FILES, type Vector, verdictOf } from './vector-format.ts';

const DIR = path.dirname(fileURLToPath(import.meta.url));
const vectors = JSON.parse(readFileSync(path.join(DIR, 'vectors.json'), 'utf8')) as Vector[];
const pem = readFileSync(path.join(DIR, 'public-keys.pem'), 'utf8');
const sha256 = (file: string) =>
  createHash('sha256')
    .update(readFileSync(path.join(DIR, file)))
    .digest('hex');

describe('test vectors', () => {
  test('public-keys.pem holds public keys only', () => {
    assert.ok(!/PRIVATE/.test(pem), 'public-keys.pem holds a private key');
    const blocks = pem.match(/-----BEGIN ([A-Z ]+)-----/g) ?? [];
    assert.ok(blocks.length > 0);
    for (const b of blocks) assert.equal(b, '-----BEGIN PUBLIC KEY-----');
    assert.equal(readPinnedKeys(pem).length, blocks.length);
  });

  test('every file of the directory belongs to a vector, and every vector file is there', () => {
    const used = new Set(vectors.flatMap((v) => [v.bundle, ...(v.prev ? [v.prev] : [])]));
    const present = readdirSync(DIR).filter(
      (f) => ![...VECTOR_FILES, 'public-keys.pem', 'vectors.json'].includes(f),
    );
    assert.deepEqual(present.sort(), [...used].sort());
    assert.equal(new Set(vectors.map((v) => v.name)).size, vectors.length, 'vector names repeat');
  });

  test('there are good bundles (v2 and v1) and failing ones', () => {
    const ok = vectors.filter((v) => v.expected.verdict === 'OK');
    assert.ok(
      ok.some((v) => v.expected.verdict === 'OK' && v.expected.lines.some((l) => l.includes('anchored'))),
    );
    assert.ok(
      ok.some(
        (v) => v.expected.verdict === 'OK' && v.expected.lines.at(-1)?.startsWith('WARNING: format v1'),
      ),
    );
    assert.ok(vectors.length - ok.length >= 28);
  });

  for (const v of vectors) {
    const want =
      v.expected.verdict === 'OK'
        ? `OK (${v.expected.lines.length} lines)`
        : `FAIL at ${v.expected.place}: ${v.expected.reason}`;
    test(`${v.name}: ${want}`, async () => {
      assert.equal(
        sha256(v.bundle),
        v.sha256,
        `${v.bundle} is not the generated bundle: regenerate the vectors`,
      );
      if (v.prev) assert.equal(sha256(v.prev), v.prevSha256, `${v.prev} is not the generated file`);
      const lines = await verdictOf(DIR, v, pem);
      if (v.expected.verdict === 'OK') assert.deepEqual(lines, v.expected.lines);
      else {
        assert.equal(lines.length, 1, lines.join('\n'));
        const prefix = `FAIL: ${v.expected.place}: ${v.expected.reason}: `;
        assert.ok(lines[0]?.startsWith(prefix), `expected "${prefix}…", got:\n${lines[0]}`);
      }
    });
  }
});
