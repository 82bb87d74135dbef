// A longer fuzzing run than the suite's: `npm run fuzz -- --runs 200 --seed 7`
// (or FUZZ_RUNS / FUZZ_SEED). Runs test/fuzz/api-fuzz.test.ts with those numbers,
// against TEST_DATABASE_URL or the embedded PostgreSQL, like `npm test`.
// `--verbose` lists the answers per operation, caller and status.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: process.env.FUZZ_RUNS ?? '100' },
    seed: { type: 'string', default: process.env.FUZZ_SEED ?? String(Date.now() % 1_000_000) },
    verbose: { type: 'boolean', default: false },
  },
});
for (const [name, value] of [
  ['runs', values.runs],
  ['seed', values.seed],
] as const) {
  if (!/^\d{1,9}$/.test(value)) {
    console.error(`--${name} must be a whole number, not ${JSON.stringify(value)}`);
    process.exit(2);
  }
}
// The seed is printed first: a failure found with a random one can be run again.
console.log(`fuzzing with --seed ${values.seed} --runs ${values.runs}`);
const child = spawn(
  process.execPath,
  ['--test', '--test-global-setup=test/global-setup.ts', 'test/fuzz/api-fuzz.test.ts'],
  {
    cwd: fileURLToPath(new URL('../../', import.meta.url)),
    env: {
      ...process.env,
      FUZZ_RUNS: values.runs,
      FUZZ_SEED: values.seed,
      ...(values.verbose ? { FUZZ_VERBOSE: '1' } : {}),
    },
    stdio: 'inherit',
  },
);
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
