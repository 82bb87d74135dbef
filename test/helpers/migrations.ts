// Builds a tenant migrations directory for a test: the shipped templates plus
// extra ones, named by what they do only. The helper numbers them right after
// the last shipped migration, so a new shipped migration never collides with a
// test's extra one (versions must be contiguous: 1, 2, 3...).
import { cpSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  DEFAULT_TENANT_MIGRATIONS_DIR,
  latestVersion,
  loadTenantMigrations,
} from '../../tenancy/templates.ts';

export interface ExtraMigrations {
  /** The shipped templates plus the extra ones. */
  dir: string;
  /** The last shipped version: the extras are shipped + 1, shipped + 2... in the order given. */
  shipped: number;
  /** Each extra's migration name as the ledger records it, e.g. { archive_flag: '0005_archive_flag' }. */
  names: Record<string, string>;
  /** Each extra's version, e.g. { archive_flag: 5 }. */
  versions: Record<string, number>;
  /** The highest version in `dir` (the last extra's). */
  latest: number;
}

/** `extra` maps a short name (`archive_flag`: a-z, 0-9, _) to its SQL template, in the order to apply them. */
export function migrationsDirWith(extra: Record<string, string>): ExtraMigrations {
  const dir = mkdtempSync(path.join(tmpdir(), 'enclave-migrations-'));
  cpSync(DEFAULT_TENANT_MIGRATIONS_DIR, dir, { recursive: true });
  const shipped = latestVersion(loadTenantMigrations(dir));
  const names: Record<string, string> = {};
  const versions: Record<string, number> = {};
  let version = shipped;
  for (const [name, sql] of Object.entries(extra)) {
    if (!/^[a-z0-9_]+$/.test(name)) {
      throw new Error(`extra migration "${name}": name it with a-z, 0-9 and _ only; the number is added`);
    }
    version += 1;
    const full = `${String(version).padStart(4, '0')}_${name}`;
    writeFileSync(path.join(dir, `${full}.sql`), sql);
    names[name] = full;
    versions[name] = version;
  }
  return { dir, shipped, names, versions, latest: version };
}
