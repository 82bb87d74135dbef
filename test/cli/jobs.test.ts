// `enclave jobs list|run|history` as an operator runs them: a run now is
// recorded like a scheduled one; bad usage is one line and exit 2, and
// records nothing.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { enclaveWith, oneLine } from '../helpers/cli.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';

let db: TestDatabase;
let dir: string;
const enclave = enclaveWith(() => ({
  DATABASE_URL: db.url,
  DATA_DIR: dir,
  AUDIT_SIGNING_KEY_FILE: '',
  AUDIT_PRUNE_SCHEDULE: '17 3 * * *',
  LOG_LEVEL: 'warn',
}));
const runCount = async () =>
  Number((await db.pool.query('SELECT count(*)::int AS n FROM control.job_runs')).rows[0].n);

describe('enclave jobs', () => {
  before(async () => {
    db = await createTestDatabase(2);
    dir = mkdtempSync(path.join(tmpdir(), 'enclave-jobs-cli-'));
  });
  after(async () => {
    await db.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('jobs run NAME runs it now, once, and the history and the list show it', async () => {
    const ran = enclave(['jobs', 'run', 'audit-prune', '--json']);
    assert.equal(ran.code, 0, ran.stderr);
    assert.deepEqual(JSON.parse(ran.stdout), {
      job: 'audit-prune',
      outcome: 'succeeded',
      counts: { pruned: 0 },
    });
    const history = enclave(['jobs', 'history', 'audit-prune', '--json']);
    assert.equal(history.code, 0, history.stderr);
    const runs = JSON.parse(history.stdout).runs as Array<{ trigger: string; outcome: string }>;
    assert.deepEqual(
      runs.map((r) => [r.trigger, r.outcome]),
      [['manual', 'succeeded']],
    );
    const list = enclave(['jobs', 'list', '--json']);
    assert.equal(list.code, 0, list.stderr);
    const prune = (JSON.parse(list.stdout).jobs as Array<Record<string, unknown>>).find(
      (j) => j.name === 'audit-prune',
    );
    assert.equal(prune?.schedule, '17 3 * * *');
    assert.equal(prune?.lastOutcome, 'succeeded');
    assert.match(String(prune?.nextRun), /T03:17:00\.000Z$/);
    const table = enclave(['jobs', 'list']);
    assert.match(table.stdout, /^NAME\s+SCHEDULE\s+NEXTRUN/m);
    assert.match(table.stdout, /audit-prune\s+17 3 \* \* \*/);
  });

  test('an unknown job, a bad limit or an unknown option is one line, exit 2, and runs nothing', async () => {
    const before_ = await runCount();
    for (const args of [
      ['jobs', 'run', 'nope'],
      ['jobs', 'history', 'nope'],
      ['jobs', 'history', '--limit', '0'],
      ['jobs', 'run', 'audit-prune', '--bogus'],
    ]) {
      const r = enclave(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(oneLine(r.stderr), /^enclave: /);
    }
    assert.match(
      enclave(['jobs', 'run', 'nope']).stderr,
      /the jobs are: tenant-stats, audit-prune, backup-fleet/,
    );
    assert.equal(await runCount(), before_);
  });
});
