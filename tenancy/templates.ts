// Tenant migration templates: migrations/tenant/NNNN_name.sql with {{schema}}
// and {{role}} placeholders, rendered with quoted, generated identifiers only.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkTenantName, ident } from '../kernel/identifiers.ts';

export interface TenantMigration {
  version: number;
  name: string; // e.g. "0002_tasks"
  template: string;
  checksum: string;
}

export const DEFAULT_TENANT_MIGRATIONS_DIR = fileURLToPath(new URL('../migrations/tenant/', import.meta.url));

const FILE = /^(\d{4})_([a-z0-9_]+)\.sql$/;
const PLACEHOLDER = /\{\{\s*([a-zA-Z_]+)\s*\}\}/g;
const KNOWN = new Set(['schema', 'role']);

/** Loads and checks every template: versions contiguous from 1, only known placeholders. */
export function loadTenantMigrations(dir: string = DEFAULT_TENANT_MIGRATIONS_DIR): TenantMigration[] {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.sql'))
    .sort();
  const migrations = files.map((file, i) => {
    const match = FILE.exec(file);
    if (!match) throw new Error(`tenant migration ${file}: name must look like 0001_create_notes.sql`);
    const version = Number(match[1]);
    if (version !== i + 1)
      throw new Error(
        `tenant migration ${file}: expected version ${i + 1}; versions must be 1, 2, 3... with no gap`,
      );
    const template = readFileSync(path.join(dir, file), 'utf8');
    for (const [, key] of template.matchAll(PLACEHOLDER)) {
      if (!KNOWN.has(key ?? '')) throw new Error(`tenant migration ${file}: unknown placeholder {{${key}}}`);
    }
    return {
      version,
      name: file.slice(0, -4),
      template,
      checksum: createHash('sha256').update(template).digest('hex'),
    };
  });
  return migrations;
}

export function latestVersion(migrations: readonly TenantMigration[]): number {
  return migrations.at(-1)?.version ?? 0;
}

/** The SQL of one migration for one tenant. */
export function renderMigration(m: TenantMigration, names: { schema: string; role: string }): string {
  const values: Record<string, string> = {
    schema: ident(checkTenantName(names.schema)),
    role: ident(checkTenantName(names.role)),
  };
  return m.template.replace(PLACEHOLDER, (_, key: string) => values[key] as string);
}
