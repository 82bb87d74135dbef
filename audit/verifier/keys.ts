// Ed25519 public keys, offline: key ids, raw <-> PEM, signature checks and the
// auditor's pinned key file. Key id: the first 16 hex digits of SHA-256 of the
// raw 32-byte public key (docs/AUDIT-FORMAT.md). The private key, its file and
// the published keys in the database live on the database side
// (audit/signing.ts).
import { createHash, createPublicKey, type KeyObject, verify } from 'node:crypto';
import { PinnedKeyError } from './verification-error.ts';

export class SigningKeyError extends Error {
  override name = 'SigningKeyError';
}

export function rawPublicKey(key: KeyObject): Buffer {
  const jwk = (key.type === 'private' ? createPublicKey(key) : key).export({ format: 'jwk' });
  if (jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string') throw new SigningKeyError('not an Ed25519 key');
  return Buffer.from(jwk.x, 'base64url');
}

export function keyIdOf(rawPublic: Uint8Array): string {
  return createHash('sha256').update(rawPublic).digest('hex').slice(0, 16);
}

/** keyId of a pinned public key (a TypeError, not a SigningKeyError, if it is not Ed25519). */
export function pinnedKeyId(key: KeyObject): string {
  const { x } = key.export({ format: 'jwk' });
  if (key.asymmetricKeyType !== 'ed25519' || !x) throw new TypeError('not an Ed25519 public key');
  return keyIdOf(Buffer.from(x, 'base64url'));
}

/** SPKI PEM of a raw 32-byte Ed25519 public key: what `audit public-key` prints and `verify --key` reads. */
export function publicKeyPem(rawPublic: Uint8Array): string {
  return createPublicKey({
    key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(rawPublic).toString('base64url') },
    format: 'jwk',
  })
    .export({ format: 'pem', type: 'spki' })
    .toString();
}

/** Ed25519 verification with a raw or PEM public key. */
export function verifySignature(publicKey: Uint8Array | string, bytes: Uint8Array, signature: Uint8Array) {
  const key =
    typeof publicKey === 'string' ? createPublicKey(publicKey) : createPublicKey(publicKeyPem(publicKey));
  return verify(null, bytes, key, signature);
}

/** Every Ed25519 public key in a PEM text (one or more `PUBLIC KEY` blocks: old keys stay pinned after a rotation). */
export function readPinnedKeys(pem: string): KeyObject[] {
  const blocks = pem.match(/-----BEGIN PUBLIC KEY-----[\s\S]+?-----END PUBLIC KEY-----/g) ?? [];
  if (blocks.length === 0)
    throw new PinnedKeyError('the key file holds no PEM public key ("BEGIN PUBLIC KEY")');
  return blocks.map((block) => {
    let key: KeyObject;
    try {
      key = createPublicKey(block);
    } catch (err) {
      throw new PinnedKeyError('the key file holds an unreadable public key', { cause: err });
    }
    if (key.asymmetricKeyType !== 'ed25519')
      throw new PinnedKeyError(`the pinned key is ${key.asymmetricKeyType}, not Ed25519`);
    return key;
  });
}
