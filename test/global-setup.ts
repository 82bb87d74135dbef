// Runs once before all test files. Tests use TEST_DATABASE_URL (an admin URL on
// a real PostgreSQL that may create databases and roles); without it, they
// start the embedded PostgreSQL in .data/test so that `npm test` works on a
// fresh machine. Either way the database is real; nothing is mocked.
import path from 'node:path';
import { type EmbeddedDatabase, startEmbeddedPostgres } from '../server/embedded-postgres.ts';

let embedded: EmbeddedDatabase | undefined;

export async function globalSetup() {
  if (process.env.TEST_DATABASE_URL) return;
  const port = Number(process.env.TEST_EMBEDDED_PG_PORT ?? 54339);
  embedded = await startEmbeddedPostgres(path.resolve('.data/test'), port);
  process.env.TEST_DATABASE_URL = embedded.url;
}

export async function globalTeardown() {
  await embedded?.stop();
}
