// `enclave backup ...` as an operator runs it, against a real database:
// create, list, verify (offline with --key, against the published keys, by
// restore), restore in place and as a new tenant, prune; bad usage exits 2
// and changes nothing; a refused archive exits 1 with one line.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ident } from '../../kernel/identifiers.ts';
import { provisionTenant } from '../../tenancy/provision.ts';
import { loadTenantMigrations } from '../../tenancy/templates.ts';
import type { TenantRow } from '../../tenancy/tenant-sql.ts';
import { contents, fill } from '../backup/fixture.ts';
import { enclaveWith, oneLine } from '../helpers/cli.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';

const migrations = loadTenantMigrations();
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const HOOK = fileURLToPath(new URL('./module-log-hook.ts', import.meta.url));

let db: TestDatabase;
let dir: string;
const dataDir = () => path.join(dir, 'data');
const backupDir = () => path.join(dataDir(), 'backups');

const enclave = enclaveWith(() => ({
  DATABASE_URL: db.url,
  DATA_DIR: dataDir(),
  AUDIT_SIGNING_KEY_FILE: '',
  BACKUP_DIR: '',
  BACKUP_AGE_RECIPIENTS: '',
  BACKUP_AGE_IDENTITY_FILE: '',
  BACKUP_KEEP_COUNT: '',
  BACKUP_KEEP_DAYS: '',
}));
/** With a database URL nobody answers on. */
const OFFLINE = { env: { DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' } };

const backupCount = async () =>
  Number((await db.pool.query('SELECT count(*)::int AS n FROM control.backups')).rows[0].n);
const tenantCount = async () =>
  Number((await db.pool.query('SELECT count(*)::int AS n FROM control.tenants')).rows[0].n);
const archives = () =>
  existsSync(backupDir()) ? readdirSync(backupDir()).filter((f) => !f.startsWith('.')) : [];

describe('enclave backup', () => {
  let a: TenantRow;
  let b: TenantRow;
  let archiveA: string;
  const file = (name: string) => path.join(dir, name);

  before(async () => {
    db = await createTestDatabase(4);
    dir = mkdtempSync(path.join(tmpdir(), 'enclave-backup-cli-'));
    a = await provisionTenant(db.pool, { displayName: 'Acme' }, migrations);
    b = await provisionTenant(db.pool, { displayName: 'Beta' }, migrations);
    await fill(db.pool, a.schema_name, 12);
    await fill(db.pool, b.schema_name, 3);
  });
  after(async () => {
    await db.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('bad usage: one line, exit 2, nothing backed up or changed', async () => {
    const before = await backupCount();
    const tenants = await tenantCount();
    writeFileSync(file('not-an-archive'), 'hello');
    for (const args of [
      ['backup', 'create'],
      ['backup', 'create', 'NOT-AN-ID'],
      ['backup', 'create', '--all', a.id],
      ['backup', 'create', '--all', '--concurrency', '0'],
      ['backup', 'create', '--all', '--concurrency', 'many'],
      ['backup', 'create', 'zzzzzzzzzzzz'],
      ['backup', 'create', a.id, '--out', file('not-an-archive')],
      ['backup', 'list', 'zzzzzzzzzzzz'],
      ['backup', 'list', '../etc'],
      ['backup', 'verify', file('missing.enclave-backup')],
      ['backup', 'verify', file('not-an-archive'), '--key', file('missing.pem')],
      ['backup', 'restore', file('missing.enclave-backup'), '--yes'],
      ['backup', 'restore', file('not-an-archive'), '--tenant', a.id, '--as-new', 'Clone', '--yes'],
      ['backup', 'restore', file('not-an-archive'), '--tenant', 'NOPE', '--yes'],
      ['backup', 'restore', file('not-an-archive'), '--as-new', '   ', '--yes'],
      ['backup', 'restore', file('not-an-archive')], // no --yes, no terminal to ask on
      ['backup', 'nonsense'],
    ]) {
      const r = enclave(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(oneLine(r.stderr), /^enclave: /, args.join(' '));
      assert.equal(r.stdout, '', args.join(' '));
    }
    assert.equal(await backupCount(), before);
    assert.equal(await tenantCount(), tenants);
  });

  test('create backs up a tenant into BACKUP_DIR and says so; list shows it', async () => {
    const r = enclave(['backup', 'create', a.id, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.deepEqual(out.failed, []);
    assert.equal(out.backups.length, 1);
    const made = out.backups[0];
    assert.equal(made.tenant, a.id);
    assert.equal(made.outcome, 'succeeded');
    assert.equal(made.kind, 'manual');
    assert.match(made.created_by, /^system:cli:/);
    assert.ok(made.rows > 0);
    assert.equal(path.dirname(made.location), backupDir());
    assert.ok(existsSync(made.location));
    archiveA = made.location;

    const human = enclave(['backup', 'create', b.id]);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /^TENANT\s+ID\s+VERSION\s+ROWS\s+BYTES/);
    assert.match(human.stdout, new RegExp(b.id));

    const list = enclave(['backup', 'list', a.id, '--json']);
    assert.equal(list.code, 0, list.stderr);
    const listed = JSON.parse(list.stdout);
    assert.equal(listed.length, 1);
    assert.equal(listed[0].id, made.id);
    const all = enclave(['backup', 'list']);
    assert.equal(all.code, 0, all.stderr);
    assert.match(all.stdout, /^ID\s+TENANT\s+KIND\s+OUTCOME/);
    assert.equal(all.stdout.trimEnd().split('\n').length, 3);
  });

  test('create --all --concurrency 2 --out DIR backs up every tenant into DIR', async () => {
    const out = file('elsewhere');
    const r = enclave(['backup', 'create', '--all', '--concurrency', '2', '--out', out, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const made = JSON.parse(r.stdout).backups as Array<{ tenant: string; location: string }>;
    assert.deepEqual(made.map((m) => m.tenant).sort(), [a.id, b.id].sort());
    for (const m of made) assert.equal(path.dirname(m.location), out);
    assert.equal(readdirSync(out).filter((f) => f.endsWith('.enclave-backup')).length, 2);
    // Drift is checked for the batch beforehand, and still recorded per backup.
    const drift = made.map((m) => (m as { drift?: unknown }).drift);
    assert.deepEqual(drift, [0, 0]);
  });

  test('create of several tenants records a hand-made change of one as drift, in that backup only', async () => {
    await db.pool.query(`CREATE INDEX drifted_by_hand ON ${ident(b.schema_name)}.notes (title)`);
    try {
      const r = enclave(['backup', 'create', a.id, b.id, '--out', file('drifted'), '--json']);
      assert.equal(r.code, 0, r.stderr);
      const made = JSON.parse(r.stdout).backups as Array<{ tenant: string; drift: number | null }>;
      assert.deepEqual(Object.fromEntries(made.map((m) => [m.tenant, m.drift])), { [a.id]: 0, [b.id]: 1 });
    } finally {
      await db.pool.query(`DROP INDEX ${ident(b.schema_name)}.drifted_by_hand`);
    }
  });

  test('verify --key needs no database (and loads no database driver); a flipped byte is refused with one line', () => {
    const pem = enclave(['audit', 'public-key', '--all']);
    assert.equal(pem.code, 0, pem.stderr);
    writeFileSync(file('keys.pem'), pem.stdout);

    const r = enclave(['backup', 'verify', archiveA, '--key', file('keys.pem')], OFFLINE);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      oneLine(r.stdout),
      new RegExp(
        `^OK: tenant ${a.id} \\(Acme\\), schema version \\d+, \\d+ tables, \\d+ rows, made .*, signed by key [0-9a-f]{16}$`,
      ),
    );
    const asJson = enclave(['backup', 'verify', archiveA, '--key', file('keys.pem'), '--json'], OFFLINE);
    assert.equal(asJson.code, 0, asJson.stderr);
    assert.equal(JSON.parse(asJson.stdout).ok, true);
    assert.equal(JSON.parse(asJson.stdout).tenant.id, a.id);

    // The modules it loads: no pg, no MikroORM, no argon2, no kernel/db.ts, and no age for a plain archive.
    const log = file('modules.txt');
    const hooked = spawnSync(
      process.execPath,
      ['--import', HOOK, 'bin/enclave.js', 'backup', 'verify', archiveA, '--key', file('keys.pem')],
      {
        cwd: ROOT,
        env: { ...process.env, MODULE_LOG: log, DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' },
        encoding: 'utf8',
        input: '',
      },
    );
    assert.equal(hooked.status, 0, hooked.stderr);
    const heavy = readFileSync(log, 'utf8')
      .split('\n')
      .filter((m) =>
        /\/node_modules\/(pg|pg-pool|pg-protocol|age-encryption|@mikro-orm\/[^/]+|@node-rs\/argon2[^/]*)\/|\/kernel\/db\.ts$/.test(
          m,
        ),
      );
    assert.deepEqual(heavy, []);

    const bytes = readFileSync(archiveA);
    const at = Math.floor(bytes.length / 2);
    bytes.writeUInt8(bytes.readUInt8(at) ^ 0x01, at);
    writeFileSync(file('flipped.enclave-backup'), bytes);
    const bad = enclave(
      ['backup', 'verify', file('flipped.enclave-backup'), '--key', file('keys.pem')],
      OFFLINE,
    );
    assert.equal(bad.code, 1, bad.stderr);
    assert.equal(bad.stdout, '');
    assert.match(oneLine(bad.stderr), /^enclave: /);

    // Another key: refused too.
    const { publicKey } = generateKeyPairSync('ed25519');
    writeFileSync(file('other.pem'), publicKey.export({ format: 'pem', type: 'spki' }));
    const other = enclave(['backup', 'verify', archiveA, '--key', file('other.pem')], OFFLINE);
    assert.equal(other.code, 1, other.stderr);
    assert.match(oneLine(other.stderr), /^enclave: /);
  });

  test('verify without --key checks against the published keys; --restore reloads every table', async () => {
    const r = enclave(['backup', 'verify', archiveA]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(oneLine(r.stdout), /^OK: tenant /);
    const schemasBefore = (await db.pool.query('SELECT count(*)::int AS n FROM pg_namespace')).rows[0].n;
    const restored = enclave(['backup', 'verify', archiveA, '--restore', '--json']);
    assert.equal(restored.code, 0, restored.stderr);
    const out = JSON.parse(restored.stdout);
    assert.equal(out.ok, true);
    assert.ok(out.restored.length >= 2);
    for (const t of out.restored) assert.equal(t.ok, true, t.name);
    assert.equal(
      (await db.pool.query('SELECT count(*)::int AS n FROM pg_namespace')).rows[0].n,
      schemasBefore,
    );
    const human = enclave(['backup', 'verify', archiveA, '--restore']);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /^TABLE\s+ROWS\s+EXPECTED\s+OK/);
    assert.match(human.stdout, /\nOK: tenant .*every table reloads/);
    const { rows } = await db.pool.query(
      `SELECT outcome, details FROM control.audit_inbox WHERE tenant_id = $1 AND action = 'tenant.backup.verify'`,
      [a.id],
    );
    assert.ok(rows.length >= 2, 'each load into the database is on the tenant chain');
    for (const r of rows) {
      assert.equal(r.outcome, 'success');
      assert.equal(r.details.restore, true);
    }
  });

  test('restore --yes in place brings every row back (after a safety backup); another tenant’s archive is refused', async () => {
    const before = await contents(db.pool, a.schema_name);
    const s = ident(a.schema_name);
    await db.pool.query(`DELETE FROM ${s}.tasks`);
    await db.pool.query(`UPDATE ${s}.notes SET title = 'changed'`);
    const changed = await contents(db.pool, a.schema_name);
    assert.notDeepEqual(changed, before);

    // b's archive into a: refused before anything changes.
    const listB = JSON.parse(enclave(['backup', 'list', b.id, '--json']).stdout);
    const refused = enclave(['backup', 'restore', listB[0].location, '--tenant', a.id, '--yes']);
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(oneLine(refused.stderr), /^enclave: the archive is of tenant /);
    assert.deepEqual(await contents(db.pool, a.schema_name), changed);

    const r = enclave(['backup', 'restore', archiveA, '--yes', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.tenantId, a.id);
    assert.equal(out.safetyBackup.kind, 'safety');
    assert.equal(out.safetyBackup.outcome, 'succeeded');
    assert.match(out.asideSchema, new RegExp(`^${a.schema_name}_p`));
    assert.deepEqual(await contents(db.pool, a.schema_name), before);
  });

  test('restore --as-new makes an independent clone', async () => {
    const tenants = await tenantCount();
    const r = enclave(['backup', 'restore', archiveA, '--as-new', 'Acme copy', '--yes']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /^Restored tenant [a-z0-9]{12}'s archive as new tenant [a-z0-9]{12} \(Acme copy\)/,
    );
    assert.equal(await tenantCount(), tenants + 1);
    const clone = (
      await db.pool.query<TenantRow>("SELECT * FROM control.tenants WHERE display_name = 'Acme copy'")
    ).rows[0] as TenantRow;
    assert.notEqual(clone.id, a.id);
    assert.deepEqual(await contents(db.pool, clone.schema_name), await contents(db.pool, a.schema_name));
  });

  test('BACKUP_AGE_RECIPIENTS: archives are encrypted; verify needs the identity; a bad recipient is a configuration error (78)', async () => {
    const { generateX25519Identity, identityToRecipient } = await import('age-encryption');
    const identity = await generateX25519Identity();
    const recipient = await identityToRecipient(identity);
    writeFileSync(file('age.key'), `# created for a test\n${identity}\n`, { mode: 0o600 });
    const out = file('encrypted');
    const r = enclave(['backup', 'create', b.id, '--out', out, '--json'], {
      env: { BACKUP_AGE_RECIPIENTS: recipient },
    });
    assert.equal(r.code, 0, r.stderr);
    const made = JSON.parse(r.stdout).backups[0];
    assert.equal(made.encrypted, true);
    assert.equal(readFileSync(made.location).subarray(0, 21).toString(), 'age-encryption.org/v1');

    const without = enclave(['backup', 'verify', made.location, '--key', file('keys.pem')], OFFLINE);
    assert.equal(without.code, 1, without.stderr);
    assert.match(oneLine(without.stderr), /^enclave: /);
    const withId = enclave(
      ['backup', 'verify', made.location, '--key', file('keys.pem'), '--identity', file('age.key')],
      OFFLINE,
    );
    assert.equal(withId.code, 0, withId.stderr);
    assert.match(oneLine(withId.stdout), new RegExp(`^OK: tenant ${b.id} `));

    for (const bad of ['nope', 'age1notreallyarecipientatallbutlongenough']) {
      const before = await backupCount();
      const c = enclave(['backup', 'create', b.id], { env: { BACKUP_AGE_RECIPIENTS: bad } });
      assert.equal(c.code, 78, c.stderr);
      assert.match(oneLine(c.stderr), /^enclave: configuration error: BACKUP_AGE_RECIPIENTS: /);
      assert.equal(await backupCount(), before);
    }
  });

  test('prune --dry-run says what it would delete and deletes nothing; prune then deletes it, keeping the newest', async () => {
    // A few more of b, so retention has something to delete.
    for (let i = 0; i < 2; i++) assert.equal(enclave(['backup', 'create', b.id]).code, 0);
    const env = { env: { BACKUP_KEEP_COUNT: '1' } };
    const beforeRows = await backupCount();
    const beforeFiles = archives();
    const dry = enclave(['backup', 'prune', '--dry-run', '--json'], env);
    assert.equal(dry.code, 0, dry.stderr);
    const plan = JSON.parse(dry.stdout);
    assert.equal(plan.dryRun, true);
    assert.ok(plan.deleted.length >= 2, dry.stdout);
    assert.equal(await backupCount(), beforeRows);
    assert.deepEqual(archives(), beforeFiles);
    const human = enclave(['backup', 'prune', '--dry-run'], env);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /Would delete \d+ backup\(s\)/);

    const real = enclave(['backup', 'prune', '--json'], env);
    assert.equal(real.code, 0, real.stderr);
    const done = JSON.parse(real.stdout);
    assert.deepEqual(
      done.deleted.map((d: { id: string }) => d.id).sort(),
      plan.deleted.map((d: { id: string }) => d.id).sort(),
    );
    for (const d of done.deleted) if (d.location) assert.equal(existsSync(d.location), false);
    const { rows } = await db.pool.query(
      "SELECT tenant_id, count(*)::int AS n FROM control.backups WHERE outcome = 'succeeded' GROUP BY tenant_id",
    );
    for (const r of rows) assert.equal(r.n, 1, `tenant ${r.tenant_id} keeps its newest good backup only`);
  });
});
