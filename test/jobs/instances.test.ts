// Two app instances and one `enclave worker` on one database: each scheduled
// job runs once per tick, not three times, and the worker (no HTTP server)
// runs jobs too and stops cleanly on SIGTERM.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../kernel/config.ts';
import { type RunningServer, startServer } from '../../server/start.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';
import { captureLog } from '../helpers/log.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

let db: TestDatabase;
let dir: string;

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe('several instances', () => {
  before(async () => {
    db = await createTestDatabase(4);
    dir = mkdtempSync(path.join(tmpdir(), 'enclave-instances-'));
  });
  after(async () => {
    await db.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('two servers and a worker: a job scheduled every minute runs once per minute, not three times', async () => {
    const env: Record<string, string> = {
      DATABASE_URL: db.url,
      DATA_DIR: dir,
      SESSION_SECRET: randomBytes(32).toString('hex'),
      AUDIT_SEAL_INTERVAL_SECONDS: '2',
      AUDIT_PRUNE_SCHEDULE: '* * * * *',
      STATS_SCHEDULE: 'off',
      BACKUP_SCHEDULE: 'off',
      RESTORE_CHECK_SCHEDULE: 'off',
      LIFECYCLE_SCHEDULE: 'off',
      LOG_LEVEL: 'info',
    };
    const config = { ...loadConfig(env), PORT: 0 };
    const servers: RunningServer[] = [];
    let worker: ChildProcess | undefined;
    let workerOut = '';
    try {
      // The first start makes the signing key in DATA_DIR; the others share it.
      servers.push(await startServer(config, { log: captureLog('warn').log, shutdownGraceMs: 200 }));
      servers.push(await startServer(config, { log: captureLog('warn').log, shutdownGraceMs: 200 }));
      worker = spawn(process.execPath, ['bin/enclave.js', 'worker'], {
        cwd: ROOT,
        env: { ...process.env, ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      worker.stdout?.on('data', (b: Buffer) => {
        workerOut += b.toString();
      });
      worker.stderr?.on('data', (b: Buffer) => {
        workerOut += b.toString();
      });
      await waitFor('the worker to start', async () => workerOut.includes('worker started'), 30_000);
      const runs = async () =>
        (
          await db.pool.query<{ minute: Date; n: number; instances: string[] }>(
            `SELECT date_trunc('minute', started_at) AS minute, count(*)::int AS n,
                    array_agg(DISTINCT instance) AS instances
             FROM control.job_runs WHERE job = 'audit-prune' GROUP BY 1 ORDER BY 1`,
          )
        ).rows;
      // pg-boss's cron has minute precision: the first occurrence comes within ~90 s.
      await waitFor('a scheduled run', async () => (await runs()).length >= 1, 120_000);
      // Every instance's cron pass (every 30 s) has seen that occurrence by now, some twice.
      await new Promise((r) => setTimeout(r, 45_000));
      const seen = await runs();
      assert.ok(seen.length >= 1);
      for (const slot of seen)
        assert.equal(slot.n, 1, `minute ${slot.minute.toISOString()} ran ${slot.n} times`);
      const outcomes = (
        await db.pool.query<{ outcome: string }>(
          "SELECT outcome FROM control.job_runs WHERE job = 'audit-prune'",
        )
      ).rows;
      assert.ok(
        outcomes.every((o) => o.outcome === 'succeeded'),
        JSON.stringify(outcomes),
      );
    } finally {
      for (const s of servers) await s.stop();
      if (worker && worker.exitCode === null) {
        const exited = new Promise<number | null>((resolve) => worker?.once('exit', (code) => resolve(code)));
        worker.kill('SIGTERM');
        assert.equal(await exited, 0, workerOut.slice(-2000));
      }
    }
    assert.match(workerOut, /worker stopped/);
  });
});
