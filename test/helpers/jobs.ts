// A JobContext for tests: a job body run by hand against a scratch database,
// with a real signing key (published, so restores trust its archives), a
// backup directory of its own, a captured log, and a fan-out that runs the
// items here, one after another (the scheduler's inline fan-out runs them
// with the job's concurrency and records each; tests of a job body only
// need them run).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openSigner, publishSigningKey, type Signer } from '../../audit/signing.ts';
import { createBackups } from '../../backup/context.ts';
import type { AnyJob, JobContext, JobCounts } from '../../jobs/job.ts';
import { type Config, loadConfig } from '../../kernel/config.ts';
import type { Pool } from '../../kernel/db.ts';
import { loadTenantMigrations } from '../../tenancy/templates.ts';
import { type CapturedLog, captureLog } from './log.ts';

export interface TestJobContext extends JobContext {
  /** The published test key (a JobContext's is optional). */
  signer: Signer;
  captured: CapturedLog;
  /** The temporary directory (backups, key); removed by cleanup(). */
  dir: string;
  cleanup(): void;
}

export async function jobContext(
  db: { pool: Pool; url: string },
  options: { env?: Record<string, string>; clock?: () => Date } = {},
): Promise<TestJobContext> {
  const dir = mkdtempSync(path.join(tmpdir(), 'enclave-jobs-test-'));
  const config: Config = loadConfig({
    DATABASE_URL: db.url,
    DATA_DIR: dir,
    BACKUP_DIR: path.join(dir, 'backups'),
    ...options.env,
  });
  const signer = await openSigner(path.join(dir, 'audit-signing-key.pem'), { create: true });
  await publishSigningKey(db.pool, signer);
  const migrations = loadTenantMigrations(config.TENANT_MIGRATIONS_DIR);
  const captured = captureLog('debug');
  const ctx: TestJobContext = {
    pool: db.pool,
    log: captured.log,
    captured,
    config,
    clock: options.clock ?? (() => new Date()),
    signal: new AbortController().signal,
    backups: createBackups(config, db.pool, { signer, migrations, tmpDir: dir }),
    signer,
    migrations,
    fanOut: async (job: AnyJob, items: object[]): Promise<JobCounts> => {
      const counts = { succeeded: 0, failed: 0 };
      for (const item of items) {
        try {
          await job.run(ctx, item);
          counts.succeeded += 1;
        } catch (err) {
          counts.failed += 1;
          ctx.log.error(`${job.name} failed`, { error: err });
        }
      }
      return counts;
    },
    dir,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
  return ctx;
}
