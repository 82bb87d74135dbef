import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../kernel/config.ts';
import { StartupError, startServer } from '../../server/start.ts';
import { migrateControlPlane } from '../../tenancy/control-plane.ts';
import { dropTenant } from '../../tenancy/lifecycle.ts';
import { provisionTenant } from '../../tenancy/provision.ts';
import { DEFAULT_TENANT_MIGRATIONS_DIR, loadTenantMigrations } from '../../tenancy/templates.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';
import { captureLog } from '../helpers/log.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MAIN = path.join(ROOT, 'server/main.ts');

async function freePort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

interface Run {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<number | null>;
}

/** Runs `node server/main.ts` with exactly the given environment (plus PATH). */
function runMain(env: Record<string, string>): Run {
  const child = spawn(process.execPath, [MAIN], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...env } });
  let out = '';
  let err = '';
  child.stdout.on('data', (c) => {
    out += c;
  });
  child.stderr.on('data', (c) => {
    err += c;
  });
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  return { child, stdout: () => out, stderr: () => err, exited };
}

async function waitFor(predicate: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe('startServer', () => {
  let db: TestDatabase;
  before(async () => {
    db = await createTestDatabase(1);
  });
  after(async () => {
    await db.drop();
  });

  test('starts on the given database, is ready, and stops cleanly', async () => {
    const config = { ...loadConfig({ DATABASE_URL: db.url, DB_POOL_SIZE: '2' }), PORT: 0 };
    const captured = captureLog('info');
    const server = await startServer(config, { log: captured.log });
    try {
      assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
      const res = await fetch(`${server.url}/readyz`);
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { status: 'ready', checks: { database: 'ok' } });
    } finally {
      await server.stop();
    }
    await assert.rejects(fetch(`${server.url}/healthz`));
    assert.ok(captured.lines().some((l) => l.message === 'listening' && l.url === server.url));
  });

  test('a tenant behind the tenant migrations is named in a warning at start, with the command that fixes it', async () => {
    await migrateControlPlane(db.pool);
    const migrations = loadTenantMigrations(DEFAULT_TENANT_MIGRATIONS_DIR);
    const tenant = await provisionTenant(db.pool, { displayName: 'Left behind' }, migrations);
    await db.pool.query('UPDATE control.tenants SET schema_version = 1 WHERE id = $1', [tenant.id]);
    const config = { ...loadConfig({ DATABASE_URL: db.url, DB_POOL_SIZE: '2' }), PORT: 0 };
    const captured = captureLog('info');
    const server = await startServer(config, { log: captured.log });
    await server.stop();
    const warning = captured.lines().find((l) => l.level === 'warn' && l.tenantsBehind !== undefined);
    assert.ok(warning, 'no warning about tenants behind');
    assert.equal(warning.tenantsBehind, 1);
    assert.equal(warning.latestVersion, migrations.length);
    assert.match(String(warning.message), /enclave tenants migrate/);
    await dropTenant(db.pool, tenant.id);
  });

  test('an unreachable database is a StartupError naming host and port, not the password', async () => {
    const config = { ...loadConfig({ DATABASE_URL: 'postgres://u:hunter2@127.0.0.1:1/x' }), PORT: 0 };
    const err = await startServer(config, { log: captureLog().log }).catch((e: unknown) => e);
    assert.ok(err instanceof StartupError, String(err));
    assert.match(err.message, /127\.0\.0\.1:1\/x/);
    assert.match(err.message, /ECONNREFUSED/);
    assert.doesNotMatch(err.message, /hunter2/);
  });

  test('an unreachable DIRECT_DATABASE_URL is a StartupError naming that setting, not the password', async () => {
    const config = {
      ...loadConfig({ DATABASE_URL: db.url, DIRECT_DATABASE_URL: 'postgres://u:hunter2@127.0.0.1:1/x' }),
      PORT: 0,
    };
    const err = await startServer(config, { log: captureLog().log }).catch((e: unknown) => e);
    assert.ok(err instanceof StartupError, String(err));
    assert.match(err.message, /DIRECT_DATABASE_URL at 127\.0\.0\.1:1\/x/);
    assert.doesNotMatch(err.message, /hunter2/);
  });

  test('a port already in use is a StartupError and the database is closed again', async () => {
    const blocker = net.createServer().listen(0, '127.0.0.1');
    await once(blocker, 'listening');
    const { port } = blocker.address() as net.AddressInfo;
    try {
      const config = { ...loadConfig({ DATABASE_URL: db.url }), PORT: port };
      const err = await startServer(config, { log: captureLog().log }).catch((e: unknown) => e);
      assert.ok(err instanceof StartupError, String(err));
      assert.match(err.message, /EADDRINUSE/);
    } finally {
      blocker.close();
    }
    // Only our own helper pool is named 'enclave'; the ORM's connections must be gone (backends exit a moment later).
    const others = async () =>
      (
        await db.pool.query(
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name <> 'enclave'",
        )
      ).rows[0].n as number;
    let n = await others();
    for (let i = 0; n > 0 && i < 40; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      n = await others();
    }
    assert.equal(n, 0);
  });
});

describe('npm start (server/main.ts)', () => {
  let db: TestDatabase;
  before(async () => {
    db = await createTestDatabase(1);
  });
  after(async () => {
    await db.drop();
  });

  test('PORT=abc exits 78 with exactly one stderr line naming PORT', async () => {
    const run = runMain({ PORT: 'abc' });
    assert.equal(await run.exited, 78);
    const lines = run.stderr().split('\n').filter(Boolean);
    assert.equal(lines.length, 1, run.stderr());
    assert.match(lines[0] ?? '', /^enclave: configuration error: PORT: /);
    assert.equal(run.stdout(), '');
  });

  test('a bad DATABASE_URL exits 78 without printing its password', async () => {
    const run = runMain({ DATABASE_URL: 'mysql://u:hunter2@h/db' });
    assert.equal(await run.exited, 78);
    assert.match(run.stderr(), /^enclave: configuration error: DATABASE_URL: [^\n]*\n$/);
    assert.doesNotMatch(run.stderr(), /hunter2/);
  });

  test('an unreachable database exits 1 with one error line and no password', async () => {
    const run = runMain({
      DATABASE_URL: 'postgres://u:hunter2@127.0.0.1:1/x',
      PORT: String(await freePort()),
    });
    assert.equal(await run.exited, 1);
    const errors = run
      .stdout()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l))
      .filter((l) => l.level === 'error');
    assert.equal(errors.length, 1, run.stdout());
    assert.match(errors[0].message, /cannot start: cannot connect to the database at 127\.0\.0\.1:1\/x/);
    assert.equal(errors[0].error, undefined, 'no stack trace for an explained failure');
    assert.doesNotMatch(run.stdout() + run.stderr(), /hunter2/);
  });

  test('starts, answers /readyz 200, and exits 0 on SIGTERM', async () => {
    const port = await freePort();
    const run = runMain({ DATABASE_URL: db.url, PORT: String(port) });
    try {
      await waitFor(() => run.stdout().includes('"listening"'), 20_000, 'the listening line');
      const res = await fetch(`http://127.0.0.1:${port}/readyz`);
      assert.equal(res.status, 200);
      run.child.kill('SIGTERM');
      assert.equal(await run.exited, 0, run.stdout() + run.stderr());
      assert.match(run.stdout(), /"message":"stopped"/);
      assert.equal(run.stderr(), '');
    } finally {
      run.child.kill('SIGKILL');
    }
  });
});
