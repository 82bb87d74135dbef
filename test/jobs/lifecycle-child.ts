// The lifecycle in a process of its own, for the kill -9 tests
// (lifecycle-kill.test.ts): it runs the job body as of the clock given, until
// the step named in the job, prints `STEP <step>` and waits forever for the
// test to SIGKILL it there. `backup:<step>` stops inside the final backup
// itself (backup/backup.ts's steps). Reaching the end it prints `DONE`.
//
// The job comes as JSON in ENCLAVE_CHILD_JOB: { url, applicationName, dataDir, backupDir, keyFile,
// nowMs, stopAt }: the test's own directories and signing key (its published key).
import { openSigner } from '../../audit/signing.ts';
import { backupTenant } from '../../backup/backup.ts';
import { createBackups } from '../../backup/context.ts';
import { LIFECYCLE_BY, lifecycleDeps } from '../../jobs/lifecycle.ts';
import { loadConfig } from '../../kernel/config.ts';
import { createPool } from '../../kernel/db.ts';
import { runLifecycle } from '../../tenancy/inactivity.ts';
import { loadTenantMigrations } from '../../tenancy/templates.ts';
import { captureLog } from '../helpers/log.ts';

interface Job {
  url: string;
  applicationName: string;
  dataDir: string;
  backupDir: string;
  keyFile: string;
  nowMs: number;
  stopAt: string;
}

const job = JSON.parse(process.env.ENCLAVE_CHILD_JOB ?? '{}') as Job;
const pool = createPool(job.url, 4, job.applicationName);
const config = loadConfig({ DATABASE_URL: job.url, DATA_DIR: job.dataDir, BACKUP_DIR: job.backupDir });
const signer = await openSigner(job.keyFile, { create: false });
const migrations = loadTenantMigrations(config.TENANT_MIGRATIONS_DIR);
const ctx = {
  pool,
  log: captureLog('error').log,
  config,
  clock: () => new Date(job.nowMs),
  backups: createBackups(config, pool, { signer, migrations, tmpDir: job.dataDir }),
};

const hang = async (step: string) => {
  process.stdout.write(`STEP ${step}\n`);
  setInterval(() => {}, 60_000);
  await new Promise<never>(() => {});
};

const deps = lifecycleDeps(ctx, {
  afterStep: async (_tenantId, step) => {
    if (step === job.stopAt) await hang(step);
  },
});
if (job.stopAt.startsWith('backup:')) {
  deps.finalBackup = async (tenantId) => {
    const b = await backupTenant(ctx.backups.backupContext(), tenantId, {
      by: LIFECYCLE_BY,
      kind: 'final',
      hooks: {
        afterStep: async (step) => {
          if (`backup:${step}` === job.stopAt) await hang(job.stopAt);
        },
      },
    });
    return { id: b.id, location: b.location, sha256: b.sha256, bytes: b.bytes, rows: b.rows };
  };
}
await runLifecycle(deps);
process.stdout.write('DONE\n');
await pool.end();
