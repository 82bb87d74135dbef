#!/usr/bin/env node
// The `enclave` CLI's entry. Plain JavaScript on purpose: it turns on Node's
// module compile cache before any TypeScript is loaded, so later runs reuse
// the stripped and compiled modules instead of stripping them again (start-up
// about 0.5 s -> 0.2 s on a 2-core machine; docs/BENCHMARKS.md). The cache
// lives in the checkout's .cache/ (not a shared temporary directory); where
// that is not writable Node runs without it. NODE_COMPILE_CACHE overrides the
// place, NODE_DISABLE_COMPILE_CACHE=1 turns it off.
import module from 'node:module';
import { fileURLToPath } from 'node:url';

if (!process.env.NODE_COMPILE_CACHE && !process.env.NODE_DISABLE_COMPILE_CACHE) {
  module.enableCompileCache?.(fileURLToPath(new URL('../.cache/node-compile/', import.meta.url)));
}

const { main } = await import('../cli/program.ts');

// A closed pipe (`enclave tenants list | head`) is not an error.
process.stdout.on('error', (err) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});

process.exitCode = await main(process.argv.slice(2));
