#!/usr/bin/env node
import { main } from '../cli/program.ts';

// A closed pipe (`enclave tenants list | head`) is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});

process.exitCode = await main(process.argv.slice(2));
