// What a backup or a restore is handed, built from the configuration and a
// pool (the CLI and the server build it the same way): the archive storage
// (BACKUP_DIR), the audit signing key that signs manifests, the published
// audit keys a restore trusts, the age recipients and identities, the lock
// timeout and how long a set-aside schema is kept.
import type { KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { publicKeys } from '../audit/signing.ts';
import { type Config, ConfigError } from '../kernel/config.ts';
import type { Pool } from '../kernel/db.ts';
import type { TenantMigration } from '../tenancy/templates.ts';
import { ageIdentitiesFromText, archiveKeysFromPem } from './archive-reader.ts';
import { checkRecipients } from './archive-writer.ts';
import type { BackupContext } from './backup.ts';
import type { RestoreContext } from './restore.ts';
import { type BackupStorage, DirectoryStorage } from './storage.ts';

export type BackupConfig = Pick<
  Config,
  | 'DATA_DIR'
  | 'BACKUP_DIR'
  | 'BACKUP_LOCK_TIMEOUT_MS'
  | 'BACKUP_KEEP_COUNT'
  | 'BACKUP_KEEP_DAYS'
  | 'BACKUP_AGE_RECIPIENTS'
  | 'BACKUP_AGE_IDENTITY_FILE'
  | 'RESTORE_KEEP_PREVIOUS_HOURS'
>;

/** BACKUP_DIR, or DATA_DIR/backups. */
export function backupDir(config: Pick<Config, 'DATA_DIR' | 'BACKUP_DIR'>): string {
  return config.BACKUP_DIR ?? path.join(config.DATA_DIR, 'backups');
}

let version: string | undefined;
/** Enclave's version, from package.json: it goes into every manifest. */
export function enclaveVersion(): string {
  version ??= String(
    (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: unknown })
      .version ?? '0.0.0',
  );
  return version;
}

/** BACKUP_AGE_RECIPIENTS checked by age itself (the configuration only checks their shape). */
export function checkedRecipients(config: Pick<Config, 'BACKUP_AGE_RECIPIENTS'>): string[] {
  const recipients = [...config.BACKUP_AGE_RECIPIENTS];
  try {
    checkRecipients(recipients);
  } catch (err) {
    throw new ConfigError('BACKUP_AGE_RECIPIENTS', (err as Error).message);
  }
  return recipients;
}

/** The identities of BACKUP_AGE_IDENTITY_FILE (none when unset); an unreadable or empty file is a ConfigError. */
export async function readIdentities(file: string | undefined): Promise<string[]> {
  if (!file) return [];
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError(
      'BACKUP_AGE_IDENTITY_FILE',
      `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  const identities = ageIdentitiesFromText(text);
  if (identities.length === 0 || identities.some((i) => !i.startsWith('AGE-SECRET-KEY-')))
    throw new ConfigError(
      'BACKUP_AGE_IDENTITY_FILE',
      `${file} is not an age identity file (AGE-SECRET-KEY-… lines, as \`age-keygen\` writes)`,
    );
  return identities;
}

/** Every audit key this installation has published (current and retired), by key id: what a restore trusts. */
export async function publishedKeys(pool: Pool): Promise<Map<string, KeyObject>> {
  const keys = new Map<string, KeyObject>();
  for (const k of await publicKeys(pool)) {
    for (const [id, key] of archiveKeysFromPem(k.pem)) keys.set(id, key);
  }
  return keys;
}

/**
 * The storage an archive at `location` is read from or removed through: the
 * configured one for its own files, a directory storage of the file's folder
 * for an archive written elsewhere (`backup create --out DIR`).
 */
export function storageFor(storage: DirectoryStorage, location: string): BackupStorage {
  if (!path.isAbsolute(location) || path.dirname(location) === storage.dir) return storage;
  return new DirectoryStorage(path.dirname(location));
}

export interface Backups {
  /** BACKUP_DIR (or the directory given). */
  storage: DirectoryStorage;
  keepCount: number;
  keepDays: number;
  /** What a backup needs. */
  backupContext(): BackupContext;
  /** What a restore or a verify needs: the published keys and the identities are read now. */
  restoreContext(): Promise<RestoreContext>;
  /** The storage an archive at `location` lives in (see storageFor). */
  storageAt(location: string): BackupStorage;
}

/**
 * Backups from the configuration. `signer` is the audit signing key (the
 * server's own, or `loadSigner` for the CLI); `dir` overrides BACKUP_DIR
 * (`--out`). Throws ConfigError for recipients age does not accept.
 */
export function createBackups(
  config: BackupConfig,
  pool: Pool,
  options: {
    signer: { readonly keyId: string; sign(bytes: Uint8Array): Buffer };
    migrations: readonly TenantMigration[];
    dir?: string;
    tmpDir?: string;
  },
): Backups {
  const recipients = checkedRecipients(config);
  const storage = new DirectoryStorage(options.dir ?? backupDir(config));
  const signer = options.signer;
  const base = (): BackupContext => ({
    pool,
    // The signer's key id is read at each use: a reloaded key (after a rotation) signs as itself.
    signer: { keyId: signer.keyId, sign: (bytes) => signer.sign(bytes) },
    storage,
    migrations: options.migrations,
    enclaveVersion: enclaveVersion(),
    lockTimeoutMs: config.BACKUP_LOCK_TIMEOUT_MS,
    ...(recipients.length ? { recipients } : {}),
    ...(options.tmpDir ? { tmpDir: options.tmpDir } : {}),
  });
  return {
    storage,
    keepCount: config.BACKUP_KEEP_COUNT,
    keepDays: config.BACKUP_KEEP_DAYS,
    backupContext: base,
    restoreContext: async () => {
      const identities = await readIdentities(config.BACKUP_AGE_IDENTITY_FILE);
      return {
        ...base(),
        keys: await publishedKeys(pool),
        ...(identities.length ? { identities } : {}),
        keepPreviousHours: config.RESTORE_KEEP_PREVIOUS_HOURS,
      };
    },
    storageAt: (location) => storageFor(storage, location),
  };
}
