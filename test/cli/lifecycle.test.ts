// `enclave tenants suspend|resume|archive|hold|release ID` and `enclave tenants
// lifecycle [--dry-run]` as an operator runs them, in a child process against
// the test's database: each change audited with the CLI as actor, the dry run
// changes nothing, the run takes the due steps, bad ids are usage errors (2).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { lifecycleOf } from '../../tenancy/inactivity.ts';
import { provisionTenant } from '../../tenancy/provision.ts';
import { loadTenantMigrations } from '../../tenancy/templates.ts';
import type { TenantRow } from '../../tenancy/tenant-sql.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

// The real program, with the lifecycle commands added if cli/program.ts does not wire them yet.
const HARNESS = `
import { buildProgram } from './cli/program.ts';
import { registerLifecycleCommands } from './cli/lifecycle-commands.ts';
import { UsageError } from './cli/usage-error.ts';
const program = buildProgram();
const tenants = program.commands.find((c) => c.name() === 'tenants');
if (!tenants.commands.some((c) => c.name() === 'lifecycle')) registerLifecycleCommands(tenants);
try {
  await program.parseAsync(process.argv.slice(1), { from: 'user' });
} catch (err) {
  process.stderr.write('enclave: ' + err.message + '\\n');
  process.exitCode = err instanceof UsageError || err.code?.startsWith?.('commander.') ? 2 : 1;
}
`;

describe('enclave tenants lifecycle commands', () => {
  let db: TestDatabase;
  let dir: string;
  let t: TenantRow;

  const cli = (args: string[]) => {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', HARNESS, ...args], {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: db.url, DATA_DIR: dir, LOG_LEVEL: 'error' },
      encoding: 'utf8',
    });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };

  before(async () => {
    db = await createTestDatabase(2);
    dir = mkdtempSync(path.join(tmpdir(), 'enclave-cli-lifecycle-'));
    t = await provisionTenant(db.pool, { displayName: 'Cli Tenant' }, loadTenantMigrations());
  });
  after(async () => {
    await db.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('suspend, resume, hold and release: one call each, audited with the CLI as actor', async () => {
    let r = cli(['tenants', 'suspend', t.id]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), `tenant ${t.id} (Cli Tenant) suspended`);
    assert.equal((await lifecycleOf(db.pool, t.id)).state, 'suspended');
    r = cli(['tenants', 'resume', t.id, '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).state, 'active');
    assert.equal(cli(['tenants', 'hold', t.id]).code, 0);
    assert.equal((await lifecycleOf(db.pool, t.id)).legal_hold, true);
    assert.equal(cli(['tenants', 'release', t.id]).code, 0);
    assert.equal((await lifecycleOf(db.pool, t.id)).legal_hold, false);
    const actions = (
      await db.pool.query<{ action: string; actor_type: string; actor_id: string }>(
        "SELECT action, actor_type, actor_id FROM control.audit_inbox WHERE tenant_id = $1 AND action <> 'tenant.provision' ORDER BY id",
        [t.id],
      )
    ).rows;
    assert.deepEqual(
      actions.map((a) => a.action),
      ['tenant.suspend', 'tenant.resume', 'tenant.legal_hold.on', 'tenant.legal_hold.off'],
    );
    assert.ok(actions.every((a) => a.actor_type === 'system' && a.actor_id.startsWith('cli:')));
  });

  test('bad or unknown ids: 2 for a malformed id, 1 for an unknown one, nothing changed', () => {
    const bad = cli(['tenants', 'suspend', 'NOPE']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /is not a tenant id/);
    const unknown = cli(['tenants', 'hold', 'aaaaaaaaaaaa']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no tenant/);
  });

  test('--dry-run lists the step, the tenant and the due date and changes nothing; the run then takes it', async () => {
    await db.pool.query(
      "UPDATE control.tenants SET last_active_at = now() - interval '100 days' WHERE id = $1",
      [t.id],
    );
    const dry = cli(['tenants', 'lifecycle', '--dry-run', '--json']);
    assert.equal(dry.code, 0, dry.stderr);
    const p = JSON.parse(dry.stdout);
    const mine = p.steps.find((s: { tenant: string }) => s.tenant === t.id);
    assert.equal(mine.step, 'flag');
    assert.equal(mine.name, 'Cli Tenant');
    assert.equal(mine.now, 'yes');
    assert.ok(Date.parse(mine.due) < Date.now());
    assert.equal((await lifecycleOf(db.pool, t.id)).stage, null, 'the dry run changed nothing');
    const table = cli(['tenants', 'lifecycle', '--dry-run']);
    assert.match(table.stdout, new RegExp(`${t.id}\\s+Cli Tenant\\s+active\\s+-\\s+flag`));
    assert.match(table.stdout, /nothing changed/);

    const ran = cli(['tenants', 'lifecycle', '--json']);
    assert.equal(ran.code, 0, ran.stderr);
    assert.equal(JSON.parse(ran.stdout).counts.flagged, 1);
    assert.equal((await lifecycleOf(db.pool, t.id)).stage, 'flagged');
    const runs = await db.pool.query("SELECT outcome FROM control.job_runs WHERE job = 'tenant-lifecycle'");
    assert.deepEqual(runs.rows, [{ outcome: 'succeeded' }], 'recorded in the job history');
  });
});
