// `enclave audit verify` as an auditor runs it: verdict lines on stdout and
// the exit code (0 OK, 1 FAIL, 2 usage), --origin, --json, and one kept
// checkpoints file (--save-checkpoints) merged across full and tenant exports,
// and checked as --prev before anything is merged into it.
// Offline: the bundles are made in memory (test/audit/verifier/v2-builder.ts).
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { SignedCheckpoint } from '../../audit/verifier/bundle-format.ts';
import { History, line, ORIGIN } from '../audit/verifier/v2-builder.ts';
import { enclave, oneLine } from '../helpers/cli.ts';

let dir: string;
const file = (name: string) => path.join(dir, name);
const OFFLINE = { env: { DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' } };
const verify = (...args: string[]) =>
  enclave(['audit', 'verify', '--key', file('pinned.pem'), ...args], OFFLINE);
const kept = (name: string) =>
  readFileSync(file(name), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as SignedCheckpoint);
/** The kept file as [chain, size] pairs, in file order. */
const keptSizes = (name: string) => kept(name).map((c) => [c.checkpoint.chain, c.checkpoint.size]);

// Seal 1: t_aaa 1..3, t_bbb 1..2, platform 1; seal 2: t_aaa 4..5.
const h = new History();

describe('enclave audit verify', () => {
  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'enclave-verify-cli-'));
    writeFileSync(file('pinned.pem'), h.key.pem);
    h.events('aaa', 3).events('bbb', 2).events(null, 1).seal();
    writeFileSync(file('full-1.tar.gz'), await h.export().pack());
    h.events('aaa', 2).seal();
    writeFileSync(file('tenant-aaa-2.tar.gz'), await h.export({ tenant: 'aaa' }).pack());
    // Another history under the same key and origin: t_aaa at size 3 with other entries.
    const fork = new History(h.key);
    fork.events('aaa', 3, 'note.delete').seal();
    writeFileSync(file('fork.tar.gz'), await fork.export({ tenant: 'aaa' }).pack());
    // And one where t_aaa is rewritten and longer: 5 entries, other than the first 3 kept.
    const rewritten = new History(h.key);
    rewritten.events('aaa', 5, 'note.delete').seal();
    writeFileSync(file('rewritten.tar.gz'), await rewritten.export({ tenant: 'aaa' }).pack());
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('OK: the verdict lines on stdout, exit 0', () => {
    const r = verify(file('full-1.tar.gz'));
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trimEnd().split('\n'), [
      `OK: 9 entries in 4 chains, full export of ${ORIGIN}, manifest signed by key ${h.key.keyId}`,
      'chain platform: seq 1\u20131, signed at size 1',
      'chain registry: seq 1\u20133, signed at size 3',
      'chain t_aaa: seq 1\u20133, signed at size 3',
      'chain t_bbb: seq 1\u20132, signed at size 2',
    ]);
  });

  test('--origin: the expected installation passes, another fails with one FAIL line, exit 1', () => {
    assert.equal(verify(file('full-1.tar.gz'), '--origin', ORIGIN).code, 0);
    const r = verify(file('full-1.tar.gz'), '--origin', 'enclave:elsewhere');
    assert.equal(r.code, 1, r.stderr);
    assert.match(oneLine(r.stdout), /^FAIL: bundle: wrong-origin: /);
  });

  test('--json prints the plain result', () => {
    const r = verify(file('tenant-aaa-2.tar.gz'), '--json');
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout);
    assert.equal(result.ok, true);
    assert.equal(result.kind, 'tenant');
    assert.equal(result.format, 2);
    const failure = JSON.parse(verify(file('fork.tar.gz'), '--json', '--origin', 'x').stdout);
    assert.deepEqual([failure.ok, failure.reason, 'error' in failure], [false, 'wrong-origin', false]);
  });

  test('--save-checkpoints merges a full then a tenant export: per chain the largest size, sorted by chain', () => {
    const r1 = verify(file('full-1.tar.gz'), '--save-checkpoints', file('kept.jsonl'));
    assert.equal(r1.code, 0, r1.stderr);
    assert.deepEqual(keptSizes('kept.jsonl'), [
      ['platform', 1],
      ['registry', 3],
      ['t_aaa', 3],
      ['t_bbb', 2],
    ]);
    const r2 = verify(
      file('tenant-aaa-2.tar.gz'),
      '--prev',
      file('kept.jsonl'),
      '--save-checkpoints',
      file('kept.jsonl'),
    );
    assert.equal(r2.code, 0, r2.stderr);
    assert.ok(r2.stdout.includes('prev t_aaa: consistent with your checkpoint at size 3'), r2.stdout);
    assert.ok(r2.stdout.includes('prev t_bbb: not in this bundle (out of scope)'), r2.stdout);
    assert.deepEqual(keptSizes('kept.jsonl'), [
      ['platform', 1],
      ['registry', 3],
      ['t_aaa', 5],
      ['t_bbb', 2],
    ]);
    // One canonical line each; nothing left aside.
    assert.equal(readFileSync(file('kept.jsonl'), 'utf8'), kept('kept.jsonl').map(line).join(''));
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.endsWith('.tmp')),
      [],
    );
    // An older export is checked against the kept file as --prev: cut short, and the kept file stays.
    const before = readFileSync(file('kept.jsonl'));
    const r3 = verify(file('full-1.tar.gz'), '--save-checkpoints', file('kept.jsonl'));
    assert.equal(r3.code, 1, r3.stderr);
    assert.match(oneLine(r3.stdout), /^FAIL: chain t_aaa seq 5: truncated: /);
    assert.deepEqual(readFileSync(file('kept.jsonl')), before);
  });

  test('--save-checkpoints without --prev checks an existing kept file as --prev: a larger, rewritten chain fails, the kept file unchanged', () => {
    // A kept file that does not exist yet: nothing to compare with.
    const r1 = verify(file('full-1.tar.gz'), '--save-checkpoints', file('implicit-kept.jsonl'));
    assert.equal(r1.code, 0, r1.stderr);
    assert.ok(!r1.stdout.includes('prev '), r1.stdout);
    const before = readFileSync(file('implicit-kept.jsonl'));
    // t_aaa rewritten and grown past the kept size 3: no same-size head to merge against, only --prev shows it.
    const r = verify(file('rewritten.tar.gz'), '--save-checkpoints', file('implicit-kept.jsonl'));
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      oneLine(r.stdout),
      /^FAIL: chain t_aaa seq 3: forked: .*\(expected [0-9a-f]{64}, found [0-9a-f]{64}\)$/,
    );
    assert.deepEqual(readFileSync(file('implicit-kept.jsonl')), before);
    // The genuine later export extends what is kept: consistent, and merged.
    const ok = verify(file('tenant-aaa-2.tar.gz'), '--save-checkpoints', file('implicit-kept.jsonl'));
    assert.equal(ok.code, 0, ok.stderr);
    assert.ok(ok.stdout.includes('prev t_aaa: consistent with your checkpoint at size 3'), ok.stdout);
    assert.ok(ok.stdout.includes('prev t_bbb: not in this bundle (out of scope)'), ok.stdout);
    assert.equal(kept('implicit-kept.jsonl').find((c) => c.checkpoint.chain === 't_aaa')?.checkpoint.size, 5);
  });

  test('--save-checkpoints refuses a fork: FAIL forked, exit 1, the kept file unchanged', () => {
    assert.equal(verify(file('full-1.tar.gz'), '--save-checkpoints', file('fork-kept.jsonl')).code, 0);
    const before = readFileSync(file('fork-kept.jsonl'));
    const r = verify(file('fork.tar.gz'), '--save-checkpoints', file('fork-kept.jsonl'));
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      oneLine(r.stdout),
      /^FAIL: chain t_aaa seq 3: forked: .*\(expected [0-9a-f]{64}, found [0-9a-f]{64}\)$/,
    );
    assert.deepEqual(readFileSync(file('fork-kept.jsonl')), before);
  });

  test('usage errors exit 2 with one line: unreadable key, bundle, --prev or kept file, and garbled ones', () => {
    writeFileSync(file('garbled.txt'), 'this is not JSON\n');
    const cases: Array<[string[], RegExp]> = [
      [['audit', 'verify', '--key', file('none.pem'), file('full-1.tar.gz')], /--key .*none\.pem: ENOENT/],
      [['audit', 'verify', '--key', file('garbled.txt'), file('full-1.tar.gz')], /--key .*: .*PUBLIC KEY/],
      [['audit', 'verify', '--key', file('pinned.pem'), file('none.tar.gz')], /cannot read .*none\.tar\.gz/],
      [
        ['audit', 'verify', '--key', file('pinned.pem'), '--prev', file('none'), file('full-1.tar.gz')],
        /--prev/,
      ],
      [
        [
          'audit',
          'verify',
          '--key',
          file('pinned.pem'),
          '--prev',
          file('garbled.txt'),
          file('full-1.tar.gz'),
        ],
        /--prev .*garbled\.txt: not a checkpoint/,
      ],
      [
        [
          'audit',
          'verify',
          '--key',
          file('pinned.pem'),
          '--save-checkpoints',
          file('garbled.txt'),
          file('full-1.tar.gz'),
        ],
        /--save-checkpoints .*garbled\.txt/,
      ],
      [
        ['audit', 'verify', '--key', file('pinned.pem'), '--save-checkpoints', dir, file('full-1.tar.gz')],
        /--save-checkpoints .*EISDIR/,
      ],
      [['audit', 'verify', '--key', file('pinned.pem'), '--origin', '', file('full-1.tar.gz')], /--origin/],
    ];
    for (const [args, message] of cases) {
      const r = enclave(args, OFFLINE);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.equal(r.stdout, '');
      assert.match(oneLine(r.stderr), message);
    }
    assert.equal(readFileSync(file('garbled.txt'), 'utf8'), 'this is not JSON\n');
    assert.ok(!existsSync(file('none')));
  });
});
