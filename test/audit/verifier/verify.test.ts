// The offline verifier against docs/AUDIT-FORMAT.md, "Offline verify": every
// reason at its normative place, and the order of the checks. No database:
// v2 bundles are made in memory (v2-builder.ts), v1 bundles are the test data
// in v1/ (made once by the v1 exporter). The attack files on real exports
// run in attack-files.test.ts.
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { pipeline } from 'node:stream/promises';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createGunzip, gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import {
  type Checkpoint,
  canonicalBytes,
  chainHash,
  type SignedCheckpoint,
} from '../../../audit/verifier/bundle-format.ts';
import {
  placeOf,
  readPinnedKeys,
  V1_WARNING,
  type VerifyFailure,
  type VerifyOk,
  verifyBundle,
} from '../../../audit/verifier/verify.ts';
import { LineSplitter } from '../../../audit/verifier/verify-entries.ts';
import { History, line, ORIGIN, type Parts, packTar, signCheckpoint, testKey } from './v2-builder.ts';

const V1 = path.join(path.dirname(fileURLToPath(import.meta.url)), 'v1');
const v1 = (name: string) => readFileSync(path.join(V1, name));
const V1_KEY = v1('public-key.pem').toString();
const v1Prev = (name: string) =>
  v1(name)
    .toString()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as SignedCheckpoint);
const V1_A = 't_aaaaaaaaaaa1';

type Result = VerifyOk | VerifyFailure;

function ok(result: Result): VerifyOk {
  assert.ok(result.ok, result.ok ? '' : `${placeOf(result)}: ${result.reason}: ${result.message}`);
  return result;
}

/** The failure's normative part: `<place>: <reason>`. */
function verdict(result: Result): string {
  assert.equal(result.ok, false, 'the bundle verified, but it must not');
  const f = result as VerifyFailure;
  return `${placeOf(f)}: ${f.reason}`;
}

/**
 * Seal 1: t_aaa 1..3, t_bbb 1..2, platform 1 (registry 1..3); seal 2: t_aaa
 * 4..5, platform 2 (registry 4..5).
 */
function history(): History {
  const h = new History();
  h.events('aaa', 3).events('bbb', 2).events(null, 1).seal();
  h.events('aaa', 2).events(null, 1).seal();
  return h;
}

const verifyParts = async (p: Parts, h: History, options: Parameters<typeof verifyBundle>[2] = {}) =>
  verifyBundle(await p.pack(), h.key.pem, options);

/** Re-signs the chain's checkpoint line (key holder's power) after `edit`. */
function resignCheckpoint(p: Parts, h: History, chain: string, size: number, edit: (c: Checkpoint) => void) {
  p.checkpointLines = p.checkpointLines.map((l) => {
    const sc = JSON.parse(l) as SignedCheckpoint;
    if (sc.checkpoint.chain !== chain || sc.checkpoint.size !== size) return l;
    edit(sc.checkpoint);
    return line(signCheckpoint(sc.checkpoint, h.key)).slice(0, -1);
  });
}

describe('format v2: a clean bundle', () => {
  test('a full export verifies, with its kind, manifest key, per-chain ranges and end checkpoints', async () => {
    const h = history();
    const r = ok(await verifyParts(h.export(), h));
    assert.equal(r.format, 2);
    assert.equal(r.kind, 'full');
    assert.equal(r.origin, ORIGIN);
    assert.equal(r.manifestKeyId, h.key.keyId);
    assert.equal(r.entries, 2 + 5 + 5 + 2);
    assert.deepEqual(
      r.chains.map((c) => [c.chain, c.firstSeq, c.lastSeq, c.anchored, c.size]),
      [
        ['platform', 1, 2, false, 2],
        ['registry', 1, 5, false, 5],
        ['t_aaa', 1, 5, false, 5],
        ['t_bbb', 1, 2, false, 2],
      ],
    );
    for (const c of r.chains) assert.equal(c.head, h.hashAt(c.chain, c.lastSeq));
    assert.deepEqual(r.checkpoints, h.latest());
    assert.deepEqual(r.warnings, []);
    assert.deepEqual(r.prev, []);
  });

  test('a tenant export from a later seq is anchored at the signed checkpoint before it', async () => {
    const h = history();
    const r = ok(await verifyParts(h.export({ tenant: 'aaa', fromSeq: { t_aaa: 5 } }), h));
    assert.equal(r.kind, 'tenant');
    assert.deepEqual(
      r.chains.map((c) => [c.chain, c.firstSeq, c.lastSeq, c.anchored]),
      [['t_aaa', 4, 5, true]],
    );
  });

  test('a chain with no entries in range is listed empty, anchored at its end checkpoint', async () => {
    const h = history();
    const r = ok(await verifyParts(h.export({ fromSeq: { t_bbb: 3 } }), h));
    const bbb = r.chains.find((c) => c.chain === 't_bbb');
    assert.deepEqual(bbb && [bbb.firstSeq, bbb.lastSeq, bbb.anchored], [3, 2, true]);
  });

  test('with filter.to each chain ends at its newest checkpoint signed by then', async () => {
    const h = new History();
    h.events('aaa', 2).events(null, 1);
    const t1 = h.seal();
    h.events('aaa', 2).seal();
    const r = ok(await verifyParts(h.export({ to: t1 }), h));
    assert.deepEqual(
      r.chains.map((c) => [c.chain, c.lastSeq]),
      [
        ['platform', 1],
        ['registry', 2],
        ['t_aaa', 2],
      ],
    );
  });

  test('the bundle is read as a stream: small chunks verify the same as one buffer', async () => {
    const h = history();
    const bytes = await h.export().pack();
    const chunks = Array.from({ length: Math.ceil(bytes.length / 97) }, (_, i) =>
      bytes.subarray(i * 97, i * 97 + 97),
    );
    const r = ok(await verifyBundle(Readable.from(chunks), h.key.pem));
    assert.equal(r.entries, 14);
  });

  test('a pinned key file may hold several keys (rotation); one without an Ed25519 key is refused up front', async () => {
    const h = history();
    const pem = `${testKey().pem}${h.key.pem}`;
    assert.equal(readPinnedKeys(pem).length, 2);
    ok(await verifyBundle(await h.export().pack(), pem));
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({
      format: 'pem',
      type: 'spki',
    });
    await assert.rejects(verifyBundle(await h.export().pack(), String(rsa)), { name: 'PinnedKeyError' });
    await assert.rejects(verifyBundle(Buffer.from('x'), 'not a key'), { name: 'PinnedKeyError' });
  });
});

describe('format v2, step 1: the archive', () => {
  const h = history();
  const files = async () => {
    const p = h.export();
    const manifest = p.manifestBytes();
    return { p, manifest };
  };

  test('what is not a whole .tar.gz is unreadable', async () => {
    assert.equal(verdict(await verifyBundle(Buffer.from('hello'), h.key.pem)), 'bundle: unreadable');
    const whole = await h.export().pack();
    const cut = whole.subarray(0, whole.length - 40);
    assert.equal(verdict(await verifyBundle(cut, h.key.pem)), 'bundle: unreadable');
  });

  test('an empty archive lacks the manifest; a first file of neither format is unexpected', async () => {
    assert.equal(
      verdict(await verifyBundle(gzipSync(Buffer.alloc(1024)), h.key.pem)),
      'file manifest.json: missing-file',
    );
    const other = await packTar([['notes.txt', Buffer.from('hi')]]);
    assert.equal(verdict(await verifyBundle(other, h.key.pem)), 'file notes.txt: unexpected-file');
  });

  test('files out of order, repeated, not regular, or after keys.json are unexpected; an absent one is missing', async () => {
    const { p, manifest } = await files();
    const f = p.files;
    const at = (list: Array<[string, Buffer]>) => packTar(list);
    const order = async (names: string[]) =>
      verdict(
        await verifyBundle(
          await at(names.map((n) => [n, n === 'manifest.json' ? manifest : (f[n] ?? Buffer.from('x'))])),
          h.key.pem,
        ),
      );
    assert.equal(
      await order(['manifest.json', 'entries.jsonl', 'checkpoints.jsonl', 'entries.csv', 'keys.json']),
      'file entries.jsonl: unexpected-file',
    );
    assert.equal(
      await order(['manifest.json', 'checkpoints.jsonl', 'checkpoints.jsonl']),
      'file checkpoints.jsonl: unexpected-file',
    );
    assert.equal(
      await order(['manifest.json', 'checkpoints.jsonl', 'entries.jsonl', 'entries.csv']),
      'file keys.json: missing-file',
    );
    assert.equal(
      await order(['manifest.json', 'checkpoints.jsonl', 'entries.jsonl', 'entries.csv', 'keys.json', 'x']),
      'file x: unexpected-file',
    );
    const dir = await packTar([
      ['manifest.json', manifest],
      ['checkpoints.jsonl', Buffer.alloc(0), 'directory'],
    ]);
    assert.equal(verdict(await verifyBundle(dir, h.key.pem)), 'file checkpoints.jsonl: unexpected-file');
  });
});

describe('format v2, step 2: the manifest', () => {
  const h = history();
  const raw = async (bytes: Buffer) => {
    const p = h.export();
    p.manifestBytes(); // fix the file list
    p.rawManifest = bytes;
    return verdict(await verifyParts(p, h));
  };
  const signed = (manifest: unknown, key = h.key) =>
    Buffer.from(
      line({
        manifest,
        signature: sign(
          null,
          Buffer.concat([Buffer.from('enclave-audit-manifest-v2\n'), canonicalBytes(manifest)]),
          key.privateKey,
        ).toString('base64'),
      }),
    );
  const good = () => {
    const p = h.export();
    return JSON.parse(p.manifestBytes().toString()) as {
      manifest: Record<string, unknown>;
      signature: string;
    };
  };

  test('the manifest must be one canonical line of exactly {manifest, signature}', async () => {
    const g = good();
    assert.equal(
      await raw(Buffer.from(`${JSON.stringify(g, null, 2)}\n`)),
      'file manifest.json: manifest-invalid',
    );
    assert.equal(await raw(Buffer.from(line(g).slice(0, -1))), 'file manifest.json: manifest-invalid');
    assert.equal(await raw(Buffer.from(line({ ...g, extra: 1 }))), 'file manifest.json: manifest-invalid');
    assert.equal(await raw(signed({ ...g.manifest, note: 'x' })), 'file manifest.json: manifest-invalid');
    assert.equal(await raw(signed({ ...g.manifest, v: 1 })), 'file manifest.json: manifest-invalid');
  });

  test('chains in ascending byte order, each once, each with a valid start', async () => {
    const g = good().manifest;
    const chains = g.chains as Array<Record<string, unknown>>;
    const withChains = (list: unknown[]) => signed({ ...g, chains: list });
    assert.equal(await raw(withChains([...chains].reverse())), 'file manifest.json: manifest-invalid');
    assert.equal(await raw(withChains([chains[0], ...chains])), 'file manifest.json: manifest-invalid');
    const genesisNotZero = chains.map((c) => (c.chain === 't_aaa' ? { ...c, prevHash: 'ab'.repeat(32) } : c));
    assert.equal(await raw(withChains(genesisNotZero)), 'file manifest.json: manifest-invalid');
    const registryPruned = chains.map((c) =>
      c.chain === 'registry' ? { ...c, firstSeq: 2, start: 'retention' } : c,
    );
    assert.equal(await raw(withChains(registryPruned)), 'file manifest.json: manifest-invalid');
    const fromAtOne = chains.map((c) => (c.chain === 't_aaa' ? { ...c, start: 'from' } : c));
    assert.equal(await raw(withChains(fromAtOne)), 'file manifest.json: manifest-invalid');
  });

  test('the four files, in tar order, are listed', async () => {
    const g = good().manifest;
    const files = g.files as unknown[];
    assert.equal(
      await raw(signed({ ...g, files: files.slice(0, 3) })),
      'file manifest.json: manifest-invalid',
    );
    assert.equal(
      await raw(signed({ ...g, files: [files[1], files[0], files[2], files[3]] })),
      'file manifest.json: manifest-invalid',
    );
  });

  test('signed by a key that is not pinned: unknown-key; signature not verifying: bad-signature', async () => {
    const g = good().manifest;
    const other = testKey();
    assert.equal(await raw(signed({ ...g, keyId: other.keyId }, other)), 'file manifest.json: unknown-key');
    assert.equal(await raw(signed(g, other)), 'file manifest.json: bad-signature');
    // The prefix: the same key's signature over the bare manifest bytes does not pass.
    const bare = Buffer.from(
      line({ manifest: g, signature: sign(null, canonicalBytes(g), h.key.privateKey).toString('base64') }),
    );
    assert.equal(await raw(bare), 'file manifest.json: bad-signature');
  });

  test('--origin pins the installation: another one fails at the bundle', async () => {
    const r = await verifyParts(h.export(), h, { origin: 'enclave:someone-else' });
    assert.equal(verdict(r), 'bundle: wrong-origin');
    ok(await verifyParts(h.export(), h, { origin: ORIGIN }));
  });

  test('kind and filter agree with the chains', async () => {
    const g = good().manifest;
    const chains = g.chains as Array<Record<string, unknown>>;
    const filter = g.filter as Record<string, unknown>;
    assert.equal(
      await raw(signed({ ...g, kind: 'tenant', filter: { ...filter, tenant: 'aaa' } })),
      'chain platform: filter-mismatch',
    );
    assert.equal(await raw(signed({ ...g, kind: 'tenant' })), 'bundle: filter-mismatch');
    assert.equal(
      await raw(signed({ ...g, filter: { ...filter, tenant: 'aaa' } })),
      'bundle: filter-mismatch',
    );
    // A full export without the registry (its checkpoints and entries are not even read).
    assert.equal(
      await raw(signed({ ...g, chains: chains.filter((c) => c.chain !== 'registry') })),
      'bundle: filter-mismatch',
    );
    const t = h.export({ tenant: 'aaa', fromSeq: { t_aaa: 5 } });
    const tm = JSON.parse(t.manifestBytes().toString()).manifest;
    t.rawManifest = signed({ ...tm, filter: { ...tm.filter, from: null } });
    assert.equal(verdict(await verifyParts(t, h)), 'chain t_aaa: filter-mismatch');
  });
});

describe('format v2, step 3: a changed file fails on its hash before its content', () => {
  const h = history();

  test('an entry edited into garbage: file-mismatch, unless the manifest is re-made (then the line fails)', async () => {
    const p = h.export();
    p.manifestBytes();
    const lines = p.lines;
    lines[2] = '{not json';
    p.lines = lines;
    assert.equal(
      verdict(await verifyBundle(await p.pack({ fixFiles: false }), h.key.pem)),
      'file entries.jsonl: file-mismatch',
    );
    assert.equal(verdict(await verifyParts(p, h)), 'chain registry seq 1: not-canonical');
  });

  test('a checkpoints.jsonl with a broken line and a changed size: file-mismatch', async () => {
    const p = h.export();
    p.manifestBytes();
    p.checkpointLines = ['garbage', ...p.checkpointLines];
    assert.equal(
      verdict(await verifyBundle(await p.pack({ fixFiles: false }), h.key.pem)),
      'file checkpoints.jsonl: file-mismatch',
    );
    assert.equal(verdict(await verifyParts(p, h)), 'file checkpoints.jsonl: checkpoint-invalid');
  });

  test('entries.csv and keys.json are authenticated by their hashes only', async () => {
    for (const name of ['entries.csv', 'keys.json']) {
      const p = h.export();
      p.manifestBytes();
      p.files[name] = Buffer.from('changed\n');
      assert.equal(
        verdict(await verifyBundle(await p.pack({ fixFiles: false }), h.key.pem)),
        `file ${name}: file-mismatch`,
      );
      ok(await verifyParts(p, h)); // re-signed by the key holder: its content is not checked
    }
  });
});

describe('format v2, step 4: checkpoints.jsonl', () => {
  const h = history();
  const anchored = () => h.export({ tenant: 'aaa', fromSeq: { t_aaa: 5 } });

  test('the anchor and the end checkpoint, in order: a missing one is missing-checkpoint', async () => {
    const p = anchored();
    assert.equal(p.checkpointLines.length, 2);
    p.checkpointLines = p.checkpointLines.slice(1);
    assert.equal(verdict(await verifyParts(p, h)), 'chain t_aaa seq 3: missing-checkpoint');
    const q = anchored();
    q.checkpointLines = q.checkpointLines.slice(0, 1);
    assert.equal(verdict(await verifyParts(q, h)), 'chain t_aaa seq 5: missing-checkpoint');
  });

  test('an unexpected checkpoint (a repeat, an extra, another size) is checkpoint-invalid at its chain and size', async () => {
    const p = anchored();
    p.checkpointLines = [...p.checkpointLines, p.checkpointLines[1] as string];
    assert.equal(verdict(await verifyParts(p, h)), 'chain t_aaa seq 5: checkpoint-invalid');
    const q = h.export({ tenant: 'aaa' });
    q.checkpointLines = [line(h.signed('t_aaa', 3)).slice(0, -1)];
    assert.equal(verdict(await verifyParts(q, h)), 'chain t_aaa seq 3: checkpoint-invalid');
  });

  test('a line that is not a canonical signed checkpoint with exactly its fields fails at the file', async () => {
    const shapes = [
      (sc: Record<string, unknown>) => JSON.stringify(sc, null, 1).replaceAll('\n', ''),
      (sc: Record<string, unknown>) => line({ ...sc, note: 1 }).slice(0, -1),
      (sc: Record<string, unknown>) =>
        line({ ...sc, checkpoint: { ...(sc.checkpoint as object), extra: true } }).slice(0, -1),
      (sc: Record<string, unknown>) => line({ ...sc, signature: 'AAAA' }).slice(0, -1),
    ];
    for (const shape of shapes) {
      const p = h.export({ tenant: 'aaa' });
      p.checkpointLines = p.checkpointLines.map((l) => shape(JSON.parse(l)));
      assert.equal(verdict(await verifyParts(p, h)), 'file checkpoints.jsonl: checkpoint-invalid');
    }
  });

  test('a checkpoint of another origin, an unpinned key or a bad signature fails at its chain and size', async () => {
    const p = h.export({ tenant: 'aaa' });
    resignCheckpoint(p, h, 't_aaa', 5, (c) => {
      c.origin = 'enclave:elsewhere';
    });
    assert.equal(verdict(await verifyParts(p, h)), 'chain t_aaa seq 5: wrong-origin');
    const other = testKey();
    const q = h.export({ tenant: 'aaa' });
    q.checkpointLines = q.checkpointLines.map((l) => {
      const sc = JSON.parse(l) as SignedCheckpoint;
      return line(signCheckpoint({ ...sc.checkpoint, keyId: other.keyId }, other)).slice(0, -1);
    });
    assert.equal(verdict(await verifyParts(q, h)), 'chain t_aaa seq 5: unknown-key');
    const r = h.export({ tenant: 'aaa' });
    r.checkpointLines = r.checkpointLines.map((l) => {
      const sc = JSON.parse(l) as SignedCheckpoint;
      return line({ ...sc, checkpoint: { ...sc.checkpoint, time: '2026-11-22T18:00:00.000000Z' } }).slice(
        0,
        -1,
      );
    });
    assert.equal(verdict(await verifyParts(r, h)), 'chain t_aaa seq 5: bad-signature');
  });

  test('with filter.to, a checkpoint signed after it is filter-mismatch', async () => {
    const p = h.export({ tenant: 'aaa' });
    p.manifest.filter.to = '2026-11-22T17:00:01.000000Z';
    assert.equal(verdict(await verifyParts(p, h)), 'chain t_aaa seq 5: filter-mismatch');
  });

  test("an anchor whose head is not the manifest's prevHash is anchor-mismatch at seq firstSeq - 1", async () => {
    const p = anchored();
    (p.manifest.chains[0] as { prevHash: string }).prevHash = 'cd'.repeat(32);
    assert.equal(verdict(await verifyParts(p, h)), 'chain t_aaa seq 3: anchor-mismatch');
  });
});

describe('format v2, step 5: entries.jsonl, line by line at its expected position', () => {
  const h = history();
  const full = () => h.export();

  test('a line over the limit is line-too-long at the file', async () => {
    assert.equal(
      verdict(await verifyParts(full(), h, { maxLineBytes: 64 })),
      'file entries.jsonl: line-too-long',
    );
  });

  test('not canonical, or a number out of the integer range, or no final newline: not-canonical at the position', async () => {
    const p = full();
    const lines = p.lines;
    const i = p.indexOf('t_aaa', 2);
    lines[i] = JSON.stringify(JSON.parse(lines[i] as string), null, 1).replaceAll('\n', '');
    p.lines = lines;
    assert.equal(verdict(await verifyParts(p, h)), 'chain t_aaa seq 2: not-canonical');
    const q = full().editEntry('t_aaa', 2, (e) => {
      e.details = 'x';
    });
    q.lines = q.lines.map((l, j) => (j === i ? l.replace('"details":"x"', '"details":9007199254740993') : l));
    assert.equal(verdict(await verifyParts(q, h)), 'chain t_aaa seq 2: not-canonical');
    const r = full();
    r.files['entries.jsonl'] = (r.files['entries.jsonl'] as Buffer).subarray(0, -1);
    assert.equal(verdict(await verifyParts(r, h)), 'chain t_bbb seq 2: not-canonical');
  });

  test("an entry without exactly its kind's fields and types is invalid-entry", async () => {
    const edits: Array<(e: Record<string, unknown>) => void> = [
      (e) => {
        e.extra = 1;
      },
      (e) => {
        delete e.where;
      },
      (e) => {
        e.resource = { type: 'note', id: 42 };
      },
      (e) => {
        e.at = '2026-11-22T17:00:00Z';
      },
      (e) => {
        e.action = '';
      },
      (e) => {
        e.outcome = { result: 'success' };
      },
    ];
    for (const edit of edits)
      assert.equal(
        verdict(await verifyParts(full().editEntry('t_aaa', 2, edit), h)),
        'chain t_aaa seq 2: invalid-entry',
      );
    const registry = full().editEntry('registry', 2, (e) => {
      e.at = '2026-11-22T17:00:00.000000Z';
    });
    assert.equal(verdict(await verifyParts(registry, h)), 'chain registry seq 2: invalid-entry');
  });

  test('an entry of another chain is foreign-entry; a gap or repeat is sequence', async () => {
    const p = full();
    const lines = p.lines;
    lines[p.indexOf('t_aaa', 2)] = lines[p.indexOf('t_bbb', 2)] as string;
    p.lines = lines;
    assert.equal(verdict(await verifyParts(p, h)), 'chain t_aaa seq 2: foreign-entry');
    const q = full();
    q.lines = q.lines.filter((_, i) => i !== q.indexOf('t_aaa', 2));
    assert.equal(verdict(await verifyParts(q, h)), 'chain t_aaa seq 2: sequence');
    const r = full();
    const rl = r.lines;
    rl.splice(r.indexOf('t_aaa', 2), 0, rl[r.indexOf('t_aaa', 1)] as string);
    r.lines = rl;
    assert.equal(verdict(await verifyParts(r, h)), 'chain t_aaa seq 2: sequence');
  });

  test('origin and tenant belong to the bundle and the chain', async () => {
    const p = full().editEntry('t_aaa', 3, (e) => {
      e.origin = 'enclave:elsewhere';
    });
    assert.equal(verdict(await verifyParts(p, h)), 'chain t_aaa seq 3: wrong-origin');
    const q = full().editEntry('t_aaa', 3, (e) => {
      e.tenant = 'bbb';
    });
    assert.equal(verdict(await verifyParts(q, h)), 'chain t_aaa seq 3: wrong-tenant');
    const r = full().editEntry('platform', 1, (e) => {
      e.tenant = 'aaa';
    });
    assert.equal(verdict(await verifyParts(r, h)), 'chain platform seq 1: wrong-tenant');
  });

  test("a registry entry's recorded checkpoint: of the origin, a pinned key and a good signature", async () => {
    const other = testKey();
    const cases: Array<[(e: Record<string, unknown>) => void, string]> = [
      [
        (e) => {
          const sc = signCheckpoint({ ...(e.checkpoint as Checkpoint), origin: 'enclave:elsewhere' }, h.key);
          Object.assign(e, sc);
        },
        'chain registry seq 2: wrong-origin',
      ],
      [
        (e) => {
          Object.assign(e, signCheckpoint({ ...(e.checkpoint as Checkpoint), keyId: other.keyId }, other));
        },
        'chain registry seq 2: unknown-key',
      ],
      [
        (e) => {
          e.signature = (e.signature as string).replace(/^./, (c) => (c === 'A' ? 'B' : 'A'));
        },
        'chain registry seq 2: bad-signature',
      ],
    ];
    for (const [edit, want] of cases)
      assert.equal(verdict(await verifyParts(full().editEntry('registry', 2, edit), h)), want);
  });

  test('too few lines: range-mismatch at the first missing seq; a line after the last: at the file', async () => {
    const p = full();
    p.lines = p.lines.slice(0, -1);
    assert.equal(verdict(await verifyParts(p, h)), 'chain t_bbb seq 2: range-mismatch');
    const q = full();
    q.lines = [...q.lines, q.lines.at(-1) as string];
    assert.equal(verdict(await verifyParts(q, h)), 'file entries.jsonl: range-mismatch');
  });

  test("a changed payload is head-mismatch at the chain's last seq", async () => {
    const p = full().editEntry('t_aaa', 2, (e) => {
      e.details = { forged: true };
    });
    assert.equal(verdict(await verifyParts(p, h)), 'chain t_aaa seq 5: head-mismatch');
  });
});

describe('format v2, step 7: the registry in a full export', () => {
  test('a chain the registry records but the bundle lacks: registry-missing-chain', async () => {
    const h = history();
    const p = h.export();
    p.manifest.chains = p.manifest.chains.filter((c) => c.chain !== 't_bbb');
    p.checkpointLines = p.checkpointLines.filter((l) => !l.includes('"chain":"t_bbb"'));
    p.lines = p.lines.filter((l) => !l.startsWith('{"action"') || !l.includes('"chain":"t_bbb"'));
    assert.equal(verdict(await verifyParts(p, h)), 'chain t_bbb seq 2: registry-missing-chain');
  });

  test('a chain rolled back behind the registry: registry-shrunk', async () => {
    const h = history();
    const p = h.export();
    const aaa = p.manifest.chains.find((c) => c.chain === 't_aaa') as { lastSeq: number };
    aaa.lastSeq = 3;
    p.checkpointLines = p.checkpointLines.map((l) =>
      l.includes('"chain":"t_aaa"') ? line(h.signed('t_aaa', 3)).slice(0, -1) : l,
    );
    p.lines = p.lines.filter((_, i) => i !== p.indexOf('t_aaa', 4) && i !== p.indexOf('t_aaa', 5));
    assert.equal(verdict(await verifyParts(p, h)), 'chain t_aaa seq 5: registry-shrunk');
  });

  test('a chain past what the registry records, or never recorded: registry-unrecorded', async () => {
    const h = history();
    h.events('aaa', 1);
    h.checkpointOnly('t_aaa');
    assert.equal(verdict(await verifyParts(h.export(), h)), 'chain t_aaa seq 6: registry-unrecorded');
    const g = history();
    g.events('zzz', 2);
    g.checkpointOnly('t_zzz');
    assert.equal(verdict(await verifyParts(g.export(), g)), 'chain t_zzz seq 2: registry-unrecorded');
  });

  test('a full export whose registry does not start at genesis: filter-mismatch at the registry, whatever the other chains', async () => {
    // Anchored, the registry would not name t_zzz (recorded only before its anchor): never judged.
    const g = history();
    g.events('zzz', 2).seal();
    g.events('aaa', 1).seal();
    const p = g.export({ fromSeq: { registry: 7, t_aaa: 6, t_bbb: 3, t_zzz: 3, platform: 3 } });
    assert.equal(verdict(await verifyParts(p, g)), 'chain registry: filter-mismatch');
    // From genesis, the same --from export verifies, the quiet chains listed empty...
    const full = g.export({ fromSeq: { t_aaa: 6, t_bbb: 3, t_zzz: 3, platform: 3 } });
    const r = ok(await verifyParts(full, g));
    assert.deepEqual(
      r.chains.map((c) => [c.chain, c.firstSeq, c.lastSeq]),
      [
        ['platform', 3, 2],
        ['registry', 1, 7],
        ['t_aaa', 6, 6],
        ['t_bbb', 3, 2],
        ['t_zzz', 3, 2],
      ],
    );
    // ...and a quiet chain dropped from it (manifest re-signed) is missed.
    full.manifest.chains = full.manifest.chains.filter((c) => c.chain !== 't_zzz');
    full.checkpointLines = full.checkpointLines.filter((l) => !l.includes('"chain":"t_zzz"'));
    assert.equal(verdict(await verifyParts(full, g)), 'chain t_zzz seq 2: registry-missing-chain');
  });

  test('a chain re-signed by the key holder with another head than the registry records: registry-head', async () => {
    const h = history();
    const p = h.export().editEntry('t_bbb', 1, (e) => {
      e.details = { rewritten: true };
    });
    const hash = p.lines
      .filter((l) => JSON.parse(l).chain === 't_bbb')
      .reduce<Buffer>((acc, l) => chainHash(acc, Buffer.from(l)), Buffer.alloc(32));
    resignCheckpoint(p, h, 't_bbb', 2, (c) => {
      c.head = hash.toString('hex');
    });
    assert.equal(verdict(await verifyParts(p, h)), 'chain t_bbb seq 2: registry-head');
  });
});

describe('format v2, step 8: earlier checkpoints (--prev)', () => {
  test('consistent at the end, at an anchor and in between; each --prev chain reported by name', async () => {
    const h = history();
    const r = ok(await verifyParts(h.export(), h, { prev: [h.signed('t_aaa', 3), h.signed('platform', 2)] }));
    assert.deepEqual(r.prev, [
      { chain: 'platform', size: 2, status: 'consistent' },
      { chain: 't_aaa', size: 3, status: 'consistent' },
    ]);
    const anchoredAt3 = h.export({ tenant: 'aaa', fromSeq: { t_aaa: 5 } });
    ok(await verifyParts(anchoredAt3, h, { prev: h.signed('t_aaa', 3) }));
    const mid = new History(h.key);
    mid.events('aaa', 2).seal();
    mid.events('aaa', 3).seal();
    mid.events('aaa', 1).seal();
    ok(await verifyParts(mid.export(), mid, { prev: mid.signed('t_aaa', 5) }));
  });

  test('a tenant export leaves other chains out of scope; a full export without them is truncated', async () => {
    const h = history();
    const prev = h.latest();
    const r = ok(await verifyParts(h.export({ tenant: 'bbb' }), h, { prev }));
    assert.deepEqual(
      r.prev.map((p) => [p.chain, p.status]),
      [
        ['platform', 'out-of-scope'],
        ['registry', 'out-of-scope'],
        ['t_aaa', 'out-of-scope'],
        ['t_bbb', 'consistent'],
      ],
    );
    const g = new History(h.key);
    g.events('aaa', 1).seal();
    assert.equal(
      verdict(await verifyParts(g.export(), g, { prev: h.signed('t_bbb', 2) })),
      'chain t_bbb seq 2: truncated',
    );
  });

  test('a chain shorter than the earlier checkpoint is truncated; one starting after it is prev-not-covered', async () => {
    const h = history();
    const older = h.export({ to: '2026-11-22T17:00:07.000000Z' });
    assert.equal(
      verdict(await verifyParts(older, h, { prev: h.signed('t_aaa', 5) })),
      'chain t_aaa seq 5: truncated',
    );
    h.events('aaa', 2).seal();
    const later = h.export({ tenant: 'aaa', fromSeq: { t_aaa: 7 } });
    assert.equal(
      verdict(await verifyParts(later, h, { prev: h.signed('t_aaa', 3) })),
      'chain t_aaa seq 3: prev-not-covered',
    );
  });

  test('another signed head at the size of an earlier checkpoint is forked, in the bundle or between two --prev', async () => {
    const h = history();
    const forged = signCheckpoint({ ...h.signed('t_aaa', 3).checkpoint, head: 'ab'.repeat(32) }, h.key);
    assert.equal(verdict(await verifyParts(h.export(), h, { prev: forged })), 'chain t_aaa seq 3: forked');
    assert.equal(
      verdict(await verifyParts(h.export({ tenant: 'bbb' }), h, { prev: [h.signed('t_aaa', 3), forged] })),
      'chain t_aaa seq 3: forked',
    );
  });

  test('an earlier checkpoint that is malformed, unsigned or of another origin is prev-invalid', async () => {
    const h = history();
    const sc = h.signed('t_aaa', 3);
    const cases: Array<[unknown, string]> = [
      [{ ...sc, checkpoint: { ...sc.checkpoint, size: 2 } }, 'chain t_aaa seq 2: prev-invalid'],
      [{ ...sc, extra: 1 }, 'chain t_aaa seq 3: prev-invalid'],
      [{ nothing: true }, 'bundle: prev-invalid'],
      [{ checkpoint: { chain: 't_aaa' }, signature: sc.signature }, 'bundle: prev-invalid'],
      [
        signCheckpoint({ ...sc.checkpoint, origin: 'enclave:elsewhere' }, h.key),
        'chain t_aaa seq 3: prev-invalid',
      ],
    ];
    for (const [prev, want] of cases)
      assert.equal(verdict(await verifyParts(h.export(), h, { prev: prev as SignedCheckpoint })), want);
  });

  test('the bundle is judged before --prev: a bad bundle with a bad --prev fails on the bundle', async () => {
    const h = history();
    const p = h.export().editEntry('t_aaa', 2, (e) => {
      e.details = { forged: true };
    });
    assert.equal(
      verdict(await verifyParts(p, h, { prev: { nothing: true } as unknown as SignedCheckpoint })),
      'chain t_aaa seq 5: head-mismatch',
    );
  });
});

// --- format v1: the test data in v1/ ------------------------------------------------------

async function unpack(bytes: Buffer): Promise<Array<[string, Buffer]>> {
  const out: Array<[string, Buffer]> = [];
  const extract = tar.extract();
  const done = pipeline(Readable.from([bytes]), createGunzip(), extract);
  for await (const entry of extract)
    out.push([entry.header.name, await buffer(entry as AsyncIterable<Buffer>)]);
  await done;
  return out;
}

/** A v1 bundle with its entries edited and the (unsigned) manifest's file hashes fixed. */
async function editV1(name: string, edit: (lines: string[]) => string[]): Promise<Buffer> {
  const files = await unpack(v1(name));
  const get = (n: string) => (files.find(([f]) => f === n) as [string, Buffer])[1];
  const lines = edit(get('entries.jsonl').toString().split('\n').slice(0, -1));
  const entries = Buffer.from(lines.map((l) => `${l}\n`).join(''));
  const manifest = JSON.parse(get('manifest.json').toString());
  for (const f of manifest.files)
    if (f.name === 'entries.jsonl') {
      f.bytes = entries.length;
      f.sha256 = createHash('sha256').update(entries).digest('hex');
    }
  return packTar(
    files.map(([n, b]) => [
      n,
      n === 'entries.jsonl' ? entries : n === 'manifest.json' ? Buffer.from(JSON.stringify(manifest)) : b,
    ]),
  );
}

const editV1Entry = (
  lines: string[],
  chain: string,
  seq: number,
  edit: (e: Record<string, unknown>) => void,
) =>
  lines.map((l) => {
    const e = JSON.parse(l);
    if (e.chain !== chain || e.seq !== seq) return l;
    edit(e);
    return canonicalBytes(e).toString();
  });

describe('format v1 (read, with a warning)', () => {
  test('every v1 test bundle still verifies, as format 1 with no kind, no manifest key and the warning', async () => {
    for (const [name, entries] of [
      ['full.tar.gz', 23],
      ['older-full.tar.gz', 12],
      ['tenant-a.tar.gz', 8],
      ['tenant-a-from-seq5.tar.gz', 4],
    ] as const) {
      const r = ok(await verifyBundle(v1(name), V1_KEY));
      assert.equal(r.format, 1, name);
      assert.equal(r.kind, null);
      assert.equal(r.manifestKeyId, null);
      assert.equal(r.entries, entries, name);
      assert.deepEqual(r.warnings, [V1_WARNING]);
      assert.ok(r.chains.every((c) => !c.anchored && c.size === c.lastSeq));
    }
  });

  test('--prev on v1: consistent with earlier checkpoints, truncated when an older export is replayed', async () => {
    const r = ok(
      await verifyBundle(v1('full.tar.gz'), V1_KEY, { prev: v1Prev('earlier-checkpoints.jsonl') }),
    );
    assert.deepEqual(
      r.prev.map((p) => [p.chain, p.size, p.status]),
      [
        ['platform', 2, 'consistent'],
        ['registry', 3, 'consistent'],
        [V1_A, 4, 'consistent'],
        ['t_bbbbbbbbbbb2', 3, 'consistent'],
      ],
    );
    const from = v1Prev('earlier-checkpoints.jsonl').filter((p) => p.checkpoint.chain === V1_A);
    ok(await verifyBundle(v1('tenant-a-from-seq5.tar.gz'), V1_KEY, { prev: from }));
    const replayed = await verifyBundle(v1('older-full.tar.gz'), V1_KEY, {
      prev: v1Prev('latest-checkpoints.jsonl'),
    });
    assert.equal(verdict(replayed), 'chain platform seq 4: truncated');
    // An unsigned v1 filter proves nothing: a chain absent from a v1 tenant bundle is truncated, not out of scope.
    const tenant = await verifyBundle(v1('tenant-a.tar.gz'), V1_KEY, {
      prev: v1Prev('latest-checkpoints.jsonl'),
    });
    assert.equal(verdict(tenant), 'chain platform seq 4: truncated');
  });

  test('v1 gets the shared entry rules: exact fields and types, and registry entries signed by a pinned key', async () => {
    const extra = await editV1('tenant-a.tar.gz', (lines) =>
      editV1Entry(lines, V1_A, 2, (e) => {
        e.extra = true;
      }),
    );
    assert.equal(verdict(await verifyBundle(extra, V1_KEY)), `chain ${V1_A} seq 2: invalid-entry`);
    const resigned = await editV1('full.tar.gz', (lines) =>
      editV1Entry(lines, 'registry', 2, (e) => {
        e.signature = (e.signature as string).replace(/^./, (c) => (c === 'A' ? 'B' : 'A'));
      }),
    );
    assert.equal(verdict(await verifyBundle(resigned, V1_KEY)), 'chain registry seq 2: bad-signature');
    const other = testKey();
    assert.equal(
      verdict(await verifyBundle(v1('full.tar.gz'), other.pem)),
      'chain registry seq 1: unknown-key',
    );
  });

  test('--origin on v1: another installation fails at the bundle', async () => {
    assert.equal(
      verdict(await verifyBundle(v1('tenant-a.tar.gz'), V1_KEY, { origin: 'enclave:elsewhere' })),
      'bundle: wrong-origin',
    );
  });
});

test('LineSplitter joins lines cut across chunks and counts a trailing partial line', () => {
  const lines: string[] = [];
  const s = new LineSplitter(100, (l) => lines.push(l.toString()));
  for (const chunk of ['{"a"', ':1}\n{"b":2}\n{', '"c":', '3}\n{"d"']) s.push(Buffer.from(chunk));
  assert.deepEqual(lines, ['{"a":1}', '{"b":2}', '{"c":3}']);
  assert.equal(s.pending, 4);
});
