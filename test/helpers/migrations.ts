// Builds a tenant migrations directory for a test: the shipped templates plus extra ones.
import { cpSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DEFAULT_TENANT_MIGRATIONS_DIR } from '../../tenancy/templates.ts';

export function migrationsDirWith(extra: Record<string, string>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'enclave-migrations-'));
  cpSync(DEFAULT_TENANT_MIGRATIONS_DIR, dir, { recursive: true });
  for (const [file, sql] of Object.entries(extra)) writeFileSync(path.join(dir, file), sql);
  return dir;
}
