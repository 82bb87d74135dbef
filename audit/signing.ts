// The Ed25519 key that signs checkpoints. The private key lives in a file
// (DATA_DIR/audit-signing-key.pem, made on first start with mode 0600, or
// AUDIT_SIGNING_KEY_FILE); only public keys reach the database
// (control.audit_keys), where they stay published after rotation so every old
// checkpoint remains verifiable. Key ids, PEM and signature checks are offline
// primitives (verifier/keys.ts).
import { createPrivateKey, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { link, mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { type Client, type Pool, transaction } from '../kernel/db.ts';
import { auditLock } from '../kernel/locks.ts';
import { currentKey, insertKey, listKeys, retireCurrentKey } from './chain-sql.ts';
import { keyIdOf, publicKeyPem, rawPublicKey, SigningKeyError } from './verifier/keys.ts';

export { SigningKeyError };

export const DEFAULT_KEY_FILE_NAME = 'audit-signing-key.pem';

/** This process's key is not the one the control plane says is current. */
export class SigningKeyNotCurrentError extends SigningKeyError {
  override name = 'SigningKeyNotCurrentError';
  readonly keyId: string;
  readonly currentKeyId: string | null;
  constructor(file: string, keyId: string, currentKeyId: string | null) {
    super(
      `the audit signing key in ${file} (id ${keyId}) is not the current published key` +
        `${currentKeyId ? ` (id ${currentKeyId})` : ''}: give every instance the same key ` +
        '(AUDIT_SIGNING_KEY_FILE), restore the key file, or run `enclave audit rotate-key` to replace the current key',
    );
    this.keyId = keyId;
    this.currentKeyId = currentKeyId;
  }
}

export interface Signer {
  readonly file: string;
  readonly keyId: string;
  /** The raw 32-byte Ed25519 public key. */
  readonly publicKey: Buffer;
  sign(bytes: Uint8Array): Buffer;
  /** Re-reads the key file (after a rotation by another process); true if the key changed. */
  reload(): Promise<boolean>;
}

export interface PublishedKey {
  keyId: string;
  publicKey: Buffer;
  pem: string;
  createdAt: Date;
  retiredAt: Date | null;
}

/** Where the private key lives: AUDIT_SIGNING_KEY_FILE, or DATA_DIR/audit-signing-key.pem. */
export function signingKeyFile(config: { DATA_DIR: string; AUDIT_SIGNING_KEY_FILE?: string | undefined }) {
  return config.AUDIT_SIGNING_KEY_FILE ?? path.join(config.DATA_DIR, DEFAULT_KEY_FILE_NAME);
}

/**
 * Opens the signing key in `file`. With `create` (the DATA_DIR default) a
 * missing file is generated; a configured path must exist, so that instances
 * meant to share one key never each invent their own.
 */
export async function openSigner(file: string, options: { create: boolean }): Promise<Signer> {
  let key = await readKey(file, options.create);
  let publicKey = rawPublicKey(key);
  let keyId = keyIdOf(publicKey);
  return {
    file,
    get keyId() {
      return keyId;
    },
    get publicKey() {
      return publicKey;
    },
    sign: (bytes) => sign(null, bytes, key),
    reload: async () => {
      const next = await readKey(file, false);
      const nextPublic = rawPublicKey(next);
      if (nextPublic.equals(publicKey)) return false;
      key = next;
      publicKey = nextPublic;
      keyId = keyIdOf(nextPublic);
      return true;
    },
  };
}

async function readKey(file: string, create: boolean): Promise<KeyObject> {
  let pem: string;
  try {
    pem = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || !create)
      throw new SigningKeyError(`cannot read the audit signing key ${file}: ${(err as Error).message}`, {
        cause: err,
      });
    return generateKeyFile(file);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (err) {
    throw new SigningKeyError(`${file} is not a PEM private key: ${(err as Error).message}`, { cause: err });
  }
  if (key.asymmetricKeyType !== 'ed25519')
    throw new SigningKeyError(`${file} holds a ${key.asymmetricKeyType} key; the audit trail needs Ed25519`);
  return key;
}

/**
 * Writes a new key pair to `file` without ever exposing a half-written file:
 * written aside with mode 0600, then hard-linked into place, which fails if
 * another process got there first (then theirs is used).
 */
async function generateKeyFile(file: string): Promise<KeyObject> {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const { privateKey } = generateKeyPairSync('ed25519');
  const aside = `${file}.${process.pid}.${Date.now()}.tmp`;
  await writeFile(aside, privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600, flag: 'wx' });
  try {
    await link(aside, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return readKey(file, false);
  } finally {
    await unlink(aside).catch(() => {});
  }
  return privateKey;
}

/**
 * Publishes the signer's public key. The first key becomes current; a key
 * that is already published is left as it is; an unknown key while another is
 * current is refused (SigningKeyNotCurrentError): two instances with different
 * keys, or a lost key file, must be settled by a person, not by whichever
 * instance started last.
 */
export async function publishSigningKey(pool: Pool, signer: Signer): Promise<void> {
  await transaction(pool, async (client) => {
    await client.query(auditLock());
    const current = await currentKeyId(client);
    if (current === signer.keyId) return;
    if (current !== null) throw new SigningKeyNotCurrentError(signer.file, signer.keyId, current);
    const known = await client.query(listKeys());
    if (known.rows.some((k) => k.key_id === signer.keyId))
      throw new SigningKeyError(`the audit signing key in ${signer.file} (id ${signer.keyId}) was retired`);
    await client.query(insertKey(signer.keyId, signer.publicKey));
  });
}

export async function currentKeyId(client: Client | Pool): Promise<string | null> {
  const { rows } = await client.query<{ key_id: string }>(currentKey());
  return rows[0]?.key_id ?? null;
}

/** Every published key, newest first. */
export async function publicKeys(pool: Pool | Client): Promise<PublishedKey[]> {
  const { rows } = await pool.query<{
    key_id: string;
    public_key: Buffer;
    created_at: Date;
    retired_at: Date | null;
  }>(listKeys());
  return rows.map((r) => ({
    keyId: r.key_id,
    publicKey: r.public_key,
    pem: publicKeyPem(r.public_key),
    createdAt: r.created_at,
    retiredAt: r.retired_at,
  }));
}

/**
 * Replaces the current key with a new one written to `file`; the old public
 * key stays published (retired) and the old private key file is kept beside
 * it as `<file>.retired-<key id>`. The database change commits only after the
 * new file is in place; other instances pick the new key up from a shared file
 * at their next seal (Signer.reload).
 */
export async function rotateSigningKey(
  pool: Pool,
  file: string,
): Promise<{ retired: string | null; current: string }> {
  const { privateKey } = generateKeyPairSync('ed25519');
  const publicKey = rawPublicKey(privateKey);
  const keyId = keyIdOf(publicKey);
  return transaction(pool, async (client) => {
    await client.query(auditLock());
    const retired = await currentKeyId(client);
    await client.query(retireCurrentKey());
    await client.query(insertKey(keyId, publicKey));
    await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    const fresh = `${file}.${keyId}.tmp`;
    await writeFile(fresh, privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600, flag: 'wx' });
    await link(file, `${file}.retired-${retired ?? 'unpublished'}-${Date.now()}`).catch((err) => {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    });
    await rename(fresh, file);
    return { retired, current: keyId };
  });
}

/** The signer a process uses: its key file opened (the default one made if missing) and published. */
export async function loadSigner(
  config: { DATA_DIR: string; AUDIT_SIGNING_KEY_FILE?: string | undefined },
  pool: Pool,
): Promise<Signer> {
  const signer = await openSigner(signingKeyFile(config), { create: !config.AUDIT_SIGNING_KEY_FILE });
  await publishSigningKey(pool, signer);
  return signer;
}
