// Every attack file in this directory, applied to real bundles (bundle-fixture.ts)
// and verified offline: the verdict must be exactly the file's `FAIL: <place>:
// <reason>` (docs/AUDIT-FORMAT.md, "Verdict lines"). An insider's attack is
// also run without the key (the outsider variant), which must fail where the
// key's signature no longer covers the edit.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { verdictLines } from '../../../audit/verifier/verdict.ts';
import { verifyBundle } from '../../../audit/verifier/verify.ts';
import { createTestDatabase, type TestDatabase } from '../../helpers/database.ts';
import { buildFixture, type Fixture, ROLES } from '../bundle-fixture.ts';
import { type Applied, type AttackCase, applyCase, attacks, loadCases, realPlace } from './attacks.ts';

const cases = loadCases();

let db: TestDatabase;
let fx: Fixture;

before(async () => {
  db = await createTestDatabase();
  fx = await buildFixture(db.pool);
});
after(async () => {
  await db?.drop();
});

/** Verifies the applied attack and asserts the one FAIL line's place and reason. */
async function assertVerdict(applied: Applied): Promise<void> {
  const result = await verifyBundle(applied.bytes, fx.key, {
    ...(applied.prev ? { prev: applied.prev } : {}),
    ...(applied.origin === undefined ? {} : { origin: applied.origin }),
  });
  const lines = verdictLines(result);
  assert.equal(result.ok, false, `the attacked bundle verified:\n${lines.join('\n')}`);
  assert.equal(lines.length, 1, lines.join('\n'));
  const want = `FAIL: ${applied.expected.place}: ${applied.expected.reason}: `;
  assert.ok(lines[0]?.startsWith(want), `expected "${want}…", got:\n${lines[0]}`);
}

const KEYS = new Set([
  'description',
  'attacker',
  'bundle',
  'attack',
  'params',
  'fixManifest',
  'resign',
  'prev',
  'origin',
  'expected',
  'outsider',
]);

/** The reasons of docs/AUDIT-FORMAT.md, "Verdict lines". */
const REASONS = [
  'unreadable',
  'unexpected-file',
  'missing-file',
  'manifest-invalid',
  'unknown-key',
  'bad-signature',
  'wrong-origin',
  'filter-mismatch',
  'file-mismatch',
  'checkpoint-invalid',
  'missing-checkpoint',
  'anchor-mismatch',
  'line-too-long',
  'not-canonical',
  'invalid-entry',
  'foreign-entry',
  'sequence',
  'wrong-tenant',
  'range-mismatch',
  'head-mismatch',
  'registry-missing-chain',
  'registry-shrunk',
  'registry-unrecorded',
  'registry-head',
  'prev-invalid',
  'forked',
  'truncated',
  'prev-not-covered',
];

describe('the attack files', () => {
  test('cover every attack in attacks.ts, and name only attacks it has', () => {
    const used = new Set(cases.map((c) => c.attack));
    for (const name of Object.keys(attacks)) assert.ok(used.has(name), `no attack file uses ${name}`);
    for (const c of cases) assert.ok(attacks[c.attack], `${c.name}: unknown attack ${c.attack}`);
  });

  test('each says who the attacker is and expects a FAIL at a place in the spec form', () => {
    const place = /^(bundle|file [a-z.]+|chain (A|B|platform|registry)( seq \d+)?)$/;
    for (const c of cases as Array<AttackCase & Record<string, unknown>>) {
      for (const key of Object.keys(c))
        if (key !== 'name') assert.ok(KEYS.has(key), `${c.name}: unknown field ${key}`);
      assert.ok(c.attacker === 'insider' || c.attacker === 'outsider', `${c.name}: attacker`);
      assert.ok(c.description.length > 0, `${c.name}: description`);
      for (const v of [c.expected, c.outsider].filter(Boolean) as Array<{ reason: string; place: string }>) {
        assert.match(v.place, place, `${c.name}: place`);
        assert.ok(REASONS.includes(v.reason), `${c.name}: ${v.reason} is not a reason of the spec`);
        realPlace(v.place);
      }
      if (c.attacker === 'outsider')
        assert.equal(c.resign, undefined, `${c.name}: an outsider cannot re-sign`);
      if (c.attacker === 'insider')
        assert.equal(c.fixManifest, undefined, `${c.name}: an insider re-signs the manifest`);
    }
  });

  test('reach every reason of the spec', () => {
    const reached = new Set(
      cases.flatMap((c) => [c.expected.reason, ...(c.outsider ? [c.outsider.reason] : [])]),
    );
    // The outsider variant of an insider's changed --prev checkpoint cannot sign it.
    if (
      cases.some(
        (c) => c.attacker === 'insider' && !c.outsider && JSON.stringify(c.prev ?? '').match(/"(head|size)"/),
      )
    )
      reached.add('prev-invalid');
    assert.deepEqual(
      REASONS.filter((r) => !reached.has(r)),
      [],
    );
  });

  test('the roles name the fixture chains', () => {
    assert.deepEqual(Object.keys(ROLES).sort(), ['A', 'B', 'platform', 'registry']);
  });
});

describe('offline verify fails every attack exactly where the spec says', () => {
  for (const c of cases) {
    test(`${c.name} (${c.attacker}) fails with ${c.expected.reason} at ${c.expected.place}: ${c.description}`, async () => {
      await assertVerdict(await applyCase(c, fx));
    });
    if (c.attacker === 'insider')
      test(`${c.name}, the same edit without the signing key, fails ${
        c.outsider
          ? `with ${c.outsider.reason} at ${c.outsider.place}`
          : "at the manifest's signature (or, if the manifest is unchanged, at the first unsigned change)"
      }`, async () => {
        await assertVerdict(await applyCase(c, fx, 'outsider'));
      });
  }
});
