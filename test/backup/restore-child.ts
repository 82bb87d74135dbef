// A restore or a backup in a process of its own, for the kill -9 tests
// (kill.test.ts): it runs until the step named in the job, prints
// `STEP <step>` and then waits forever, for the test to SIGKILL it there.
// Reaching the end without meeting the step, it prints `DONE` and exits.
//
// The job comes as JSON in ENCLAVE_CHILD_JOB: { url, applicationName, mode:
// 'restore' | 'backup', tenantId, location?, stopAt, privateKeyPem,
// storageDir, tmpDir }.
import { createPrivateKey, createPublicKey, sign } from 'node:crypto';
import { keyIdOf, rawPublicKey } from '../../audit/verifier/keys.ts';
import { backupTenant } from '../../backup/backup.ts';
import { type RestoreContext, restoreTenant } from '../../backup/restore.ts';
import { DirectoryStorage } from '../../backup/storage.ts';
import { createPool } from '../../kernel/db.ts';
import { loadTenantMigrations } from '../../tenancy/templates.ts';

interface Job {
  url: string;
  applicationName: string;
  mode: 'restore' | 'backup';
  tenantId: string;
  location?: string;
  stopAt: string;
  privateKeyPem: string;
  storageDir: string;
  tmpDir: string;
}

const job = JSON.parse(process.env.ENCLAVE_CHILD_JOB ?? '{}') as Job;
const privateKey = createPrivateKey(job.privateKeyPem);
const keyId = keyIdOf(rawPublicKey(privateKey));
const pool = createPool(job.url, 4, job.applicationName);
const storage = new DirectoryStorage(job.storageDir);
const ctx: RestoreContext = {
  pool,
  signer: { keyId, sign: (bytes) => sign(null, bytes, privateKey) },
  keys: new Map([[keyId, createPublicKey(privateKey)]]),
  storage,
  migrations: loadTenantMigrations(),
  enclaveVersion: '0.1.0-test',
  lockTimeoutMs: 5000,
  keepPreviousHours: 24,
  tmpDir: job.tmpDir,
};
const by = { actor: { type: 'admin' as const, id: 'kill-test' } };

const afterStep = async (step: string) => {
  if (step !== job.stopAt) return;
  process.stdout.write(`STEP ${step}\n`);
  setInterval(() => {}, 60_000);
  await new Promise<never>(() => {});
};

if (job.mode === 'restore') {
  await restoreTenant(
    ctx,
    () => storage.open(job.location as string),
    { tenantId: job.tenantId },
    {
      by,
      hooks: { afterStep },
    },
  );
} else {
  await backupTenant(ctx, job.tenantId, { by, kind: 'manual', hooks: { afterStep } });
}
process.stdout.write('DONE\n');
await pool.end();
