// Applies migrations/control/*.sql once, in order, in one transaction under an
// advisory lock, so that instances starting together neither race nor repeat.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Pool, transaction } from '../kernel/db.ts';
import { controlLock } from '../kernel/locks.ts';

const CONTROL_DIR = fileURLToPath(new URL('../migrations/control/', import.meta.url));

export interface ControlMigrationResult {
  applied: string[];
}

export async function migrateControlPlane(
  pool: Pool,
  dir: string = CONTROL_DIR,
): Promise<ControlMigrationResult> {
  const files = readdirSync(dir)
    .filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f))
    .sort();
  return transaction(pool, async (client) => {
    await client.query(controlLock());
    await client.query('CREATE SCHEMA IF NOT EXISTS control');
    await client.query(`CREATE TABLE IF NOT EXISTS control.control_migrations (
      name text PRIMARY KEY, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    const done = await client.query<{ name: string }>('SELECT name FROM control.control_migrations');
    const applied = new Set(done.rows.map((r) => r.name));
    const result: string[] = [];
    for (const file of files) {
      const name = file.slice(0, -4);
      if (applied.has(name)) continue;
      const sql = readFileSync(path.join(dir, file), 'utf8');
      await client.query(sql);
      await client.query('INSERT INTO control.control_migrations (name, checksum) VALUES ($1, $2)', [
        name,
        createHash('sha256').update(sql).digest('hex'),
      ]);
      result.push(name);
    }
    return { applied: result };
  });
}
