// A sealer in its own process, for test/audit/concurrent-sealing.test.ts to
// SIGKILL at any moment: seals small batches in a tight loop, forever.
// Usage: node test/audit/sealing-loop.ts DATABASE_URL KEY_FILE
import { seal } from '../../audit/sealer.ts';
import { openSigner } from '../../audit/signing.ts';
import { createPool } from '../../kernel/db.ts';

const [url, keyFile] = process.argv.slice(2);
if (!url || !keyFile) throw new Error('usage: sealing-loop.ts DATABASE_URL KEY_FILE');
const pool = createPool(url, 1, 'enclave-test-sealer');
const signer = await openSigner(keyFile, { create: false });
process.stdout.write('ready\n');
for (;;) {
  const result = await seal(pool, signer, { batchSize: 7 });
  if (result.sealed > 0) process.stdout.write(`sealed ${result.sealed}\n`);
  else await new Promise((r) => setTimeout(r, 5));
}
