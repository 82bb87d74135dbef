// `enclave audit verify` promises to need no database: it must not even load
// the database driver, the ORM or the password hasher. Each run records every
// module the CLI process resolves (module-log-hook.ts) and checks the list.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const HOOK = fileURLToPath(new URL('./module-log-hook.ts', import.meta.url));
const dir = mkdtempSync(path.join(tmpdir(), 'enclave-lazy-'));

/** pg, MikroORM, argon2 and the repository's own database seam. */
const HEAVY =
  /\/node_modules\/(pg|pg-pool|pg-protocol|@mikro-orm\/[^/]+|@node-rs\/argon2[^/]*)\/|\/kernel\/db\.ts$/;

let runs = 0;
/** Runs node with the hook and `args`; returns its exit code and the modules it loaded. */
function loaded(args: string[]): { code: number | null; stdout: string; stderr: string; modules: string[] } {
  const log = path.join(dir, `modules-${++runs}.txt`);
  const r = spawnSync(process.execPath, ['--import', HOOK, ...args], {
    cwd: ROOT,
    env: { ...process.env, MODULE_LOG: log },
    encoding: 'utf8',
    input: '',
  });
  return {
    code: r.status,
    stdout: r.stdout,
    stderr: r.stderr,
    modules: readFileSync(log, 'utf8').split('\n'),
  };
}

const heavy = (modules: string[]) => modules.filter((m) => HEAVY.test(m));

describe('the CLI loads command modules lazily', () => {
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('the hook sees pg when it is loaded (the check can fail)', () => {
    const r = loaded(['--input-type=module', '-e', "await import('pg')"]);
    assert.equal(r.code, 0, r.stderr);
    assert.notDeepEqual(heavy(r.modules), []);
  });

  test('audit verify runs its whole check without loading pg, MikroORM or argon2', () => {
    const key = path.join(dir, 'key.pem');
    const bundle = path.join(dir, 'bundle.tar.gz');
    const { publicKey } = generateKeyPairSync('ed25519');
    writeFileSync(key, publicKey.export({ format: 'pem', type: 'spki' }));
    writeFileSync(bundle, 'not a bundle');
    const r = loaded(['bin/enclave.js', 'audit', 'verify', '--key', key, bundle]);
    assert.equal(r.code, 1, r.stderr); // the bundle fails verification, as it should
    assert.match(r.stdout, /^FAIL: bundle: unreadable/);
    assert.ok(
      r.modules.some((m) => m.endsWith('/audit/verifier/verify.ts')),
      'the verifier was loaded',
    );
    assert.deepEqual(heavy(r.modules), []);
  });

  test('--help of every command loads none of them either', () => {
    for (const args of [
      [],
      ['audit', 'verify'],
      ['tenants', 'list'],
      ['users', 'create-admin'],
      ['audit', 'seal'],
    ]) {
      const r = loaded(['bin/enclave.js', ...args, '--help']);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(heavy(r.modules), [], args.join(' '));
    }
  });
});
