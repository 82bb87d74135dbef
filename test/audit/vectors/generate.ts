// Writes the test vectors of this directory (README.md): builds the bundle
// fixture (test/audit/bundle-fixture.ts) on a scratch database, applies every
// attack file of test/audit/attacks/, adds the good bundles and the saved
// format v1 bundles, and writes each bundle with its expected verdict.
//
//   TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres node test/audit/vectors/generate.ts
//
// The expected verdicts come from the spec, not from our verifier: a FAIL from
// the attack file, the OK lines from the manifest by the rules of
// docs/AUDIT-FORMAT.md, "Verdict lines". Our verifier is then run on every
// vector; any disagreement is printed and the exit code is 1 (the files are
// written anyway, so the disagreement can be looked at).
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { canonicalBytes, type SignedCheckpoint } from '../../../audit/verifier/bundle-format.ts';
import { publicKeyPem } from '../../../audit/verifier/keys.ts';
import { createTestDatabase } from '../../helpers/database.ts';
import { applyCase, loadCases } from '../attacks/attacks.ts';
import { buildFixture, EditableBundle, type Fixture, ROLES } from '../bundle-fixture.ts';
import { agrees, okLines, VECTOR_FILES, type Vector, verdictOf } from './vector-format.ts';

const DIR = path.dirname(fileURLToPath(import.meta.url));
const V1_DIR = path.join(DIR, '..', 'verifier', 'v1');

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

const vectors: Vector[] = [];

function writeBundle(name: string, bytes: Buffer): { bundle: string; sha256: string } {
  const file = `${name}.tar.gz`;
  writeFileSync(path.join(DIR, file), bytes);
  return { bundle: file, sha256: sha256(bytes) };
}

function writePrev(name: string, prev: readonly SignedCheckpoint[] | undefined) {
  if (!prev) return {};
  const bytes = Buffer.concat(prev.flatMap((c) => [canonicalBytes(c), Buffer.from('\n')]));
  const file = `${name}.prev.jsonl`;
  writeFileSync(path.join(DIR, file), bytes);
  return { prev: file, prevSha256: sha256(bytes) };
}

async function good(
  name: string,
  description: string,
  bytes: Buffer,
  prev?: readonly SignedCheckpoint[],
): Promise<void> {
  const bundle = await EditableBundle.from(bytes);
  vectors.push({
    name,
    description,
    ...writeBundle(name, bytes),
    ...writePrev(name, prev),
    expected: { verdict: 'OK', lines: okLines(bundle, prev ?? []) },
  });
}

async function generate(fx: Fixture, pem: string): Promise<void> {
  const all = (kept: Map<string, SignedCheckpoint>) => [...kept.values()];
  await good(
    'full',
    'A genuine full export: every chain from genesis (platform, registry, two tenants).',
    fx.current.full,
  );
  await good(
    'tenant-a',
    `A genuine one-tenant export (tenant ${ROLES.A}), from genesis.`,
    fx.current.tenantA,
  );
  await good(
    'tenant-a-from',
    'A genuine one-tenant export with --from the time of seq 5: seq 5..8, anchored at the signed checkpoint of size 4.',
    fx.current.tenantAFrom,
  );
  await good(
    'full-from',
    `A genuine full export with --from the time of tenant ${ROLES.B}'s seq 4: tenant ${ROLES.A}, quiet since then, listed with no entries in range at its signed size; the other tenant and platform anchored; the registry from genesis.`,
    fx.current.fullFrom,
  );
  await good(
    'full-with-prev',
    "The genuine full export, with --prev the end checkpoints of the full export taken after the first seal: every chain extends the auditor's.",
    fx.current.full,
    all(fx.earlier),
  );
  await good(
    'tenant-a-from-with-prev',
    "The anchored one-tenant export with --prev the tenant's earlier checkpoint of size 4: its head is the anchor's.",
    fx.current.tenantAFrom,
    [fx.earlier.get(ROLES.A as string) as SignedCheckpoint],
  );
  await good(
    'tenant-a-with-full-prev',
    "The one-tenant export with --prev every end checkpoint of the latest full export: the other chains are out of a tenant export's scope.",
    fx.current.tenantA,
    all(fx.latest),
  );

  for (const c of loadCases()) {
    const variants = c.attacker === 'insider' ? (['insider', 'outsider'] as const) : ([c.attacker] as const);
    for (const as of variants) {
      const applied = await applyCase(c, fx, as);
      // The outsider variant of an insider's edit is (almost always) a bad manifest
      // signature; keep only those that show something else.
      if (as !== c.attacker && applied.expected.reason === 'bad-signature') continue;
      const name = as === c.attacker ? c.name : `${c.name}.outsider`;
      vectors.push({
        name,
        description:
          as === c.attacker
            ? `${c.description} (attacker: ${c.attacker})`
            : `${c.description} The same edit without the signing key.`,
        ...writeBundle(name, applied.bytes),
        ...writePrev(name, applied.prev),
        ...(applied.origin === undefined ? {} : { origin: applied.origin }),
        expected: { verdict: 'FAIL', place: applied.expected.place, reason: applied.expected.reason },
      });
    }
  }

  const v1 = [
    ['v1-full', 'full.tar.gz', 'A format v1 full export (manifest last, unsigned).'],
    ['v1-older-full', 'older-full.tar.gz', 'A format v1 full export taken after the first seal.'],
    ['v1-tenant-a', 'tenant-a.tar.gz', 'A format v1 one-tenant export.'],
    [
      'v1-tenant-a-from-seq5',
      'tenant-a-from-seq5.tar.gz',
      'A format v1 one-tenant export starting at seq 5 (its start is not proven in v1).',
    ],
  ] as const;
  for (const [name, file, description] of v1) {
    const bytes = readFileSync(path.join(V1_DIR, file));
    await good(name, `${description} Verifies with the v1 warning.`, bytes);
  }
  const v1Earlier = readFileSync(path.join(V1_DIR, 'earlier-checkpoints.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as SignedCheckpoint);
  await good(
    'v1-full-with-prev',
    'The format v1 full export with --prev the end checkpoints of the v1 export taken after the first seal. Verifies with the v1 warning.',
    readFileSync(path.join(V1_DIR, 'full.tar.gz')),
    v1Earlier,
  );

  writeFileSync(path.join(DIR, 'public-keys.pem'), pem);
  writeFileSync(path.join(DIR, 'vectors.json'), `${JSON.stringify(vectors, null, 2)}\n`);
}

/** Runs our verifier on every vector; returns the disagreements. */
async function check(pem: string): Promise<string[]> {
  const problems: string[] = [];
  for (const v of vectors) {
    const lines = await verdictOf(DIR, v, pem);
    if (!agrees(v, lines))
      problems.push(
        `${v.name}: expected ${JSON.stringify(v.expected)}, our verifier says\n  ${lines.join('\n  ')}`,
      );
  }
  return problems;
}

const db = await createTestDatabase();
try {
  for (const f of readdirSync(DIR))
    if (f.endsWith('.tar.gz') || f.endsWith('.prev.jsonl') || f === 'vectors.json' || f === 'public-keys.pem')
      rmSync(path.join(DIR, f));
  const fx = await buildFixture(db.pool);
  // Every key a vector needs: the fixture's, and the (rotated-away) key of the v1 bundles.
  const pem = `${publicKeyPem(fx.signer.publicKey)}${readFileSync(path.join(V1_DIR, 'public-key.pem'), 'utf8')}`;
  if (pem.includes('PRIVATE')) throw new Error('public-keys.pem must hold public keys only');
  await generate(fx, pem);
  const problems = await check(pem);
  const files = readdirSync(DIR).filter((f) => !VECTOR_FILES.includes(f));
  const bytes = files.reduce((n, f) => n + readFileSync(path.join(DIR, f)).length, 0);
  console.log(`${vectors.length} vectors, ${files.length} files, ${Math.round(bytes / 1024)} KiB in ${DIR}`);
  if (problems.length > 0) {
    console.error(`our verifier disagrees with ${problems.length} vector(s):\n${problems.join('\n')}`);
    process.exitCode = 1;
  }
} finally {
  await db.drop();
}
