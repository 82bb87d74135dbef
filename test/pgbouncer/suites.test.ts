// The isolation tests and the HTTP workspace and accounts tests, run again with
// the application's DATABASE_URL through a private PgBouncer in transaction
// mode (2 server connections per database): they must pass unchanged. Each
// file's scratch database is created, migrated and dropped directly, and
// DIRECT_DATABASE_URL stays direct (test/helpers/database.ts, server.ts).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, test } from 'node:test';
import { startPgBouncer } from '../helpers/pgbouncer.ts';

/** Runs test files in a child `node --test` with extra env; its exit code and output. */
function runSuites(files: string[], env: Record<string, string>): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        '--test',
        '--test-global-setup=test/global-setup.ts',
        '--test-concurrency=2',
        '--test-reporter=spec',
        ...files,
      ],
      // NODE_TEST_CONTEXT would make the child a subtest runner of this one (it then runs no files).
      { env: { ...process.env, NODE_TEST_CONTEXT: undefined, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout.on('data', (d) => {
      output += d;
    });
    child.stderr.on('data', (d) => {
      output += d;
    });
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), output }));
  });
}

/** The spec reporter's summary of failures (or the output's end when there is none). */
function failures(output: string): string {
  const at = output.lastIndexOf('failing tests:');
  return at >= 0 ? output.slice(at, at + 20_000) : output.slice(-20_000);
}

/** Runs `files` with DATABASE_URL through a fresh bouncer of `poolSize` server connections per database. */
async function passThrough(files: string[], poolSize: number, scratchDatabases: number): Promise<void> {
  const bouncer = await startPgBouncer({ poolSize });
  try {
    const { code, output } = await runSuites(files, { TEST_VIA_PGBOUNCER: bouncer.address });
    assert.equal(code, 0, `${files.join(', ')} failed through the bouncer:\n${failures(output)}`);
    assert.match(output, /ℹ fail 0\n/);
    assert.match(output, /ℹ cancelled 0\n/);
    const passed = Number(/ℹ pass (\d+)/.exec(output)?.[1]);
    assert.ok(passed > 0, 'the tests ran');
    // Each file's scratch database was reached through the bouncer (one per file, one per test server).
    const through = new Set(bouncer.output().match(/auto-database: db=enclave_test_\w+/g));
    assert.ok(through.size >= scratchDatabases, `databases reached through the bouncer: ${[...through]}`);
    console.log(`${files.join(', ')}: ${passed} tests passed through ${bouncer.address} (pool ${poolSize})`);
  } finally {
    await bouncer.stop();
  }
}

describe('existing suites through PgBouncer in transaction mode', () => {
  test('the unit-of-work, workspace API and accounts API tests pass with DATABASE_URL through 2 server connections', async () => {
    await passThrough(
      [
        'test/tenancy/unit-of-work.test.ts',
        'test/server/api/workspace-api.test.ts',
        'test/server/api/accounts-api.test.ts',
      ],
      2,
      4,
    );
  });

  // The fair share (TENANT_MAX_CONCURRENT, here 2 of an app pool of 6) keeps
  // one tenant from holding every connection only when the server connections
  // outnumber it: with a bouncer pool of 2, tenant A's two open units of work
  // hold both server connections and tenant B waits at the bouncer, not at the
  // gate. So the bouncer's pool must exceed TENANT_MAX_CONCURRENT x instances
  // (docs/OPERATIONS.md); 3 is the smallest that does here.
  test('the tenant-gate tests pass with DATABASE_URL through 3 server connections (more than the per-tenant share of 2)', async () => {
    await passThrough(['test/tenancy/tenant-gate.test.ts'], 3, 1);
  });
});
