// Runs once before all test files. Tests use TEST_DATABASE_URL (an admin URL on
// a real PostgreSQL that may create databases and roles); without it, they
// start the embedded PostgreSQL so that `npm test` works on a fresh machine.
// Its data lives in the system's temporary directory: when tests run as root,
// PostgreSQL runs as the `postgres` user, which may not be able to enter the
// checkout (a home directory is often private). Either way the database is
// real; nothing is mocked.
import os from 'node:os';
import path from 'node:path';
import { type EmbeddedDatabase, startEmbeddedPostgres } from '../kernel/embedded-postgres.ts';

let embedded: EmbeddedDatabase | undefined;

export async function globalSetup() {
  if (process.env.TEST_DATABASE_URL) return;
  const port = Number(process.env.TEST_EMBEDDED_PG_PORT ?? 54339);
  const dir = process.env.TEST_EMBEDDED_PG_DIR ?? path.join(os.tmpdir(), `enclave-test-postgres-${port}`);
  embedded = await startEmbeddedPostgres(dir, port);
  process.env.TEST_DATABASE_URL = embedded.url;
}

export async function globalTeardown() {
  await embedded?.stop();
}
