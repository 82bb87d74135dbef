import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { startEmbeddedPostgres } from '../../kernel/embedded-postgres.ts';

// Only root runs PostgreSQL as another user (`postgres`); as any other user the
// server runs as that user and this situation cannot arise (CI runs as root).
const asRoot = process.getuid?.() === 0;

test('as root, a DATA_DIR the postgres user cannot reach is refused with a clear message and nothing is created', {
  skip: !asRoot && 'only applies when running as root',
}, async () => {
  const parent = path.join(os.tmpdir(), `enclave-private-${process.pid}`);
  mkdirSync(parent, { mode: 0o700 });
  try {
    await assert.rejects(
      startEmbeddedPostgres(path.join(parent, 'data'), 54999),
      /runs as the "postgres" user, which cannot enter .*enclave-private-.*; put the checkout and DATA_DIR/,
    );
    assert.deepEqual(readdirSync(parent), []);
  } finally {
    rmSync(parent, { recursive: true, force: true });
  }
});
