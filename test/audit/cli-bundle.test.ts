import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { enclaveWith, oneLine } from '../helpers/cli.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';
import { EditableBundle } from './bundle-fixture.ts';
import { event, insertEvent, sealUntilDrainedByCli } from './chain-helpers.ts';

let db: TestDatabase;
let dir: string;
const TENANT = 'cccccccccc01';

/** The CLI with the test database. */
const enclave = enclaveWith(() => ({
  DATABASE_URL: db.url,
  DATA_DIR: path.join(dir, 'data'),
  AUDIT_SIGNING_KEY_FILE: '',
}));
/** With a database URL nobody answers on. */
const OFFLINE = { env: { DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' } };

const sealUntilDrained = () => sealUntilDrainedByCli(enclave, db.pool);

describe('enclave audit export / verify', () => {
  const file = (name: string) => path.join(dir, name);

  before(async () => {
    db = await createTestDatabase();
    dir = mkdtempSync(path.join(tmpdir(), 'enclave-bundle-cli-'));
    for (let i = 0; i < 5; i++) await insertEvent(db.pool, event(TENANT, 'note.update', { n: i }));
    await insertEvent(db.pool, event(null, 'auth.login'));
    await sealUntilDrained();
    const pem = enclave(['audit', 'public-key']);
    assert.equal(pem.code, 0, pem.stderr);
    writeFileSync(file('pinned.pem'), pem.stdout);
  });
  after(async () => {
    await db.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('audit export writes the bundle atomically, says what it wrote, and is itself audited', async () => {
    const r = enclave(['audit', 'export', '--out', file('all.tar.gz')]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      oneLine(r.stdout),
      /^Exported \d+ entries in 3 chains to .*all\.tar\.gz \(manifest SHA-256 [0-9a-f]{64}\)\.$/,
    );
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.endsWith('.tmp')),
      [],
      'no temporary file is left behind',
    );
    const { rows } = await db.pool.query(
      "SELECT actor_type, actor_id, tenant_id, outcome, details FROM control.audit_inbox WHERE action = 'audit.export'",
    );
    assert.equal(rows.length, 1);
    assert.equal(rows[0].actor_type, 'system');
    assert.match(rows[0].actor_id, /^cli:/);
    assert.equal(rows[0].outcome, 'success');
    assert.deepEqual(rows[0].details.filter, { tenant: null, from: null, to: null });
  });

  test('audit verify needs no database: OK with counts and what is proven per chain, exit 0', () => {
    const r = enclave(['audit', 'verify', file('all.tar.gz'), '--key', file('pinned.pem')], OFFLINE);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.match(
      lines[0] as string,
      /^OK: \d+ entries in 3 chains, full export of enclave:[0-9a-f]{32}, manifest signed by key [0-9a-f]{16}$/,
    );
    assert.deepEqual(
      lines.slice(1).map((l) => l.replace(/\d+/g, 'N')),
      [
        'chain platform: seq N–N, signed at size N',
        'chain registry: seq N–N, signed at size N',
        `chain t_${TENANT.replace(/\d+/g, 'N')}: seq N–N, signed at size N`,
      ],
    );
  });

  test('audit verify on a tampered bundle prints one FAIL line with the place and the reason, and exits 1', async () => {
    const bundle = await EditableBundle.from(readFileSync(file('all.tar.gz')));
    const lines = bundle.lines;
    lines.splice(bundle.indexOf(`t_${TENANT}`, 2), 1);
    bundle.lines = lines;
    writeFileSync(file('tampered.tar.gz'), await bundle.toBuffer());
    const r = enclave(['audit', 'verify', file('tampered.tar.gz'), '--key', file('pinned.pem')], OFFLINE);
    assert.equal(r.code, 1);
    assert.match(oneLine(r.stdout), /^FAIL: file entries\.jsonl: file-mismatch: /);
  });

  test('--save-checkpoints keeps what the next --prev needs; an older export then fails as truncated', async () => {
    const older = file('tenant-older.tar.gz');
    assert.equal(enclave(['audit', 'export', '--tenant', TENANT, '--out', older]).code, 0);
    await insertEvent(db.pool, event(TENANT, 'note.delete'));
    await sealUntilDrained();
    const newer = file('tenant-newer.tar.gz');
    assert.equal(enclave(['audit', 'export', '--tenant', TENANT, '--out', newer, '--json']).code, 0);

    const first = enclave(
      ['audit', 'verify', older, '--key', file('pinned.pem'), '--save-checkpoints', file('kept.jsonl')],
      OFFLINE,
    );
    assert.equal(first.code, 0, first.stdout);
    const next = enclave(
      [
        'audit',
        'verify',
        newer,
        '--key',
        file('pinned.pem'),
        '--prev',
        file('kept.jsonl'),
        '--save-checkpoints',
        file('kept2.jsonl'),
      ],
      OFFLINE,
    );
    assert.equal(next.code, 0, next.stdout);
    const replayed = enclave(
      ['audit', 'verify', older, '--key', file('pinned.pem'), '--prev', file('kept2.jsonl')],
      OFFLINE,
    );
    assert.equal(replayed.code, 1);
    assert.match(oneLine(replayed.stdout), new RegExp(`^FAIL: chain t_${TENANT} seq \\d+: truncated: `));
    // A single { checkpoint, signature } file works as --prev too.
    const single = JSON.stringify(JSON.parse(readFileSync(file('kept2.jsonl'), 'utf8').trim()), null, 2);
    writeFileSync(file('one.json'), single);
    assert.equal(
      enclave(['audit', 'verify', newer, '--key', file('pinned.pem'), '--prev', file('one.json')], OFFLINE)
        .code,
      0,
    );
  });

  test('the routine: one kept file across a full export, a tenant export and a later full export', async () => {
    const run = (bundle: string, first = false) =>
      enclave(
        [
          'audit',
          'verify',
          bundle,
          '--key',
          file('pinned.pem'),
          ...(first ? [] : ['--prev', file('routine.jsonl')]),
          '--save-checkpoints',
          file('routine.jsonl'),
        ],
        OFFLINE,
      );
    const export_ = (name: string, ...args: string[]) => {
      const r = enclave(['audit', 'export', ...args, '--out', file(name)]);
      assert.equal(r.code, 0, r.stderr);
      return file(name);
    };
    const full1 = run(export_('routine-full-1.tar.gz'), true);
    assert.equal(full1.code, 0, full1.stdout);
    await insertEvent(db.pool, event(TENANT, 'note.update', { routine: 1 }));
    await sealUntilDrained();
    const tenant = run(export_('routine-tenant.tar.gz', '--tenant', TENANT));
    assert.equal(tenant.code, 0, tenant.stdout);
    assert.match(
      tenant.stdout,
      new RegExp(`^prev t_${TENANT}: consistent with your checkpoint at size \\d+$`, 'm'),
    );
    assert.match(tenant.stdout, /^prev platform: not in this bundle \(out of scope\)$/m);
    assert.match(tenant.stdout, /^prev registry: not in this bundle \(out of scope\)$/m);
    await insertEvent(db.pool, event(null, 'auth.login'));
    await sealUntilDrained();
    const full2 = run(export_('routine-full-2.tar.gz'));
    assert.equal(full2.code, 0, full2.stdout);
    for (const chain of ['platform', 'registry', `t_${TENANT}`])
      assert.match(
        full2.stdout,
        new RegExp(`^prev ${chain}: consistent with your checkpoint at size \\d+$`, 'm'),
      );
    // The first full export, replayed against what was kept since, is an old export.
    const replayed = run(file('routine-full-1.tar.gz'));
    assert.equal(replayed.code, 1);
    assert.match(oneLine(replayed.stdout), /^FAIL: chain \S+ seq \d+: (truncated|registry-shrunk): /);
  });

  test('bad usage is one line on stderr and exit code 2', () => {
    writeFileSync(file('junk.txt'), 'not json, not a key');
    for (const args of [
      ['audit', 'verify', file('all.tar.gz')], // no --key
      ['audit', 'verify', file('all.tar.gz'), '--key', file('junk.txt')],
      ['audit', 'verify', file('missing.tar.gz'), '--key', file('pinned.pem')],
      ['audit', 'verify', file('all.tar.gz'), '--key', file('pinned.pem'), '--prev', file('junk.txt')],
      ['audit', 'export', '--tenant', 'NOT-AN-ID', '--out', file('x.tar.gz')],
      ['audit', 'export', '--from', 'yesterday', '--out', file('x.tar.gz')],
      ['audit', 'export', '--tenant', 'zzzzzzzzzz99', '--out', file('x.tar.gz')],
      ['audit', 'export', '--to', '2001-01-01T00:00:00Z', '--out', file('x.tar.gz')], // nothing signed by then
    ]) {
      const r = enclave(args, args[1] === 'verify' ? OFFLINE : {});
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(oneLine(r.stderr), /^enclave: /);
    }
    assert.equal(existsSync(file('x.tar.gz')), false);
  });
});
