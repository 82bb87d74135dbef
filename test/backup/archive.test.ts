// The tenant backup archive, format 1 (docs/BACKUP.md): written by
// archive-writer, read back by archive-reader, and refused by it for every
// kind of damage, each with its own reason. No database: the tables are
// synthetic COPY text.
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, type KeyObject, randomBytes, sign } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable, type Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { zstdDecompressSync } from 'node:zlib';
import { generateIdentity, identityToRecipient } from 'age-encryption';
import { canonicalBytes } from '../../audit/verifier/canonical.ts';
import { formatTime } from '../../audit/verifier/entry.ts';
import { pinnedKeyId, publicKeyPem } from '../../audit/verifier/keys.ts';
import {
  AGE_MAGIC,
  ARCHIVE_EXTENSION,
  type ArchiveManifest,
  archiveFileName,
  MANIFEST_ENTRY,
  type SignedArchiveManifest,
} from '../../backup/archive-format.ts';
import {
  type ArchiveSource,
  ageIdentitiesFromText,
  archiveKeysFromPem,
  checkArchive,
  type OpenOptions,
  readParts,
} from '../../backup/archive-reader.ts';
import {
  type ManifestSigner,
  spoolTables,
  type TableSource,
  type WrittenArchive,
  writeArchive,
} from '../../backup/archive-writer.ts';
import { type ArchiveRefusal, ArchiveRefusedError } from '../../backup/backup-errors.ts';
import { DirectoryStorage } from '../../backup/storage.ts';
import { bodies, entry, rebuiltFrom, resigned, signedOf, tarEntries, tarOf } from './fixture.ts';

// --- keys, tables, archives ---------------------------------------------------------------

interface TestKey {
  keyId: string;
  publicKey: KeyObject;
  signer: ManifestSigner;
}

function newKey(): TestKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const keyId = pinnedKeyId(publicKey);
  return { keyId, publicKey, signer: { keyId, sign: (bytes) => sign(null, bytes, privateKey) } };
}

const key = newKey();
const otherKey = newKey();
const keys = new Map([[key.keyId, key.publicKey]]);
const identity = await generateIdentity();
const recipient = await identityToRecipient(identity);

/** COPY text of `rows` rows: escaped tabs, newlines and backslashes, non-ASCII text, and random hex. */
function copyText(rows: number, seed: string): Buffer {
  const lines: string[] = [];
  for (let i = 1; i <= rows; i++)
    lines.push(
      `${i}\t${seed} ${i}: a\\ttab, a\\nnewline, a \\\\ backslash, ünïcødé 漢字 🙂\t${randomBytes(24).toString('hex')}\t\\N\n`,
    );
  return Buffer.from(lines.join(''), 'utf8');
}

const TABLES = {
  notes: copyText(40_000, 'note'), // ~5 MB
  empty: Buffer.alloc(0),
  odd: Buffer.from('1\t\\\\\\t\\n\\r\t\\N\n2\t\t""\n3\t€ \\\\N is not null\t\\\\\n', 'utf8'),
};

/** A table whose copyTo writes its text in uneven chunks, with backpressure. */
function source(name: string, text: Buffer): TableSource {
  return {
    name,
    columns: ['id', 'body', 'extra'],
    async copyTo(sink: Writable) {
      for (let at = 0; at < text.length; ) {
        const n = 1 + ((at * 7919) % 100_000);
        if (!sink.write(text.subarray(at, at + n))) await once(sink, 'drain');
        at += n;
      }
    },
  };
}

function manifestBase(): Omit<ArchiveManifest, 'tables' | 'keyId' | 'format' | 'compression'> {
  return {
    enclaveVersion: '0.1.0',
    origin: 'enclave:test',
    tenant: { id: 'abc123def456', name: 'Acme' },
    schemaVersion: 4,
    templates: [{ version: 1, name: '0001_notes', checksum: 'a'.repeat(64) }],
    createdAt: formatTime(new Date('2026-12-02T07:00:00Z')),
    sequences: [{ name: 'notes_id_seq', lastValue: '40000', isCalled: true }],
    drift: { checked: true, differences: [] },
  };
}

let dir: string;
let storage: DirectoryStorage;

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'enclave-archive-test-'));
  storage = new DirectoryStorage(path.join(dir, 'backups'));
});
after(() => rm(dir, { recursive: true, force: true }));

async function writeTestArchive(options: { recipients?: string[] } = {}): Promise<WrittenArchive> {
  const spooled = await spoolTables(
    Object.entries(TABLES).map(([name, text]) => source(name, text)),
    { tmpDir: dir },
  );
  try {
    return await writeArchive(
      storage,
      archiveFileName('abc123def456', new Date()),
      spooled,
      manifestBase(),
      key.signer,
      options,
    );
  } finally {
    await spooled.dispose();
  }
}

let plain: WrittenArchive;
let plainBytes: Buffer;
let encrypted: WrittenArchive;

before(async () => {
  plain = await writeTestArchive();
  plainBytes = await readFile(plain.location);
  encrypted = await writeTestArchive({ recipients: [recipient] });
});

const options: OpenOptions = { keys };
const fromBuffer = (bytes: Buffer) => () => Readable.from([bytes]);

let written = 0;
/** `bytes` as a file of its own (the reader streams it from disk like a real archive). */
async function asFile(bytes: Buffer): Promise<() => Readable> {
  const file = path.join(dir, `tampered-${++written}${ARCHIVE_EXTENSION}`);
  await writeFile(file, bytes);
  return () => createReadStream(file, { highWaterMark: 7919 });
}

async function refused(
  open: ArchiveSource,
  reason: ArchiveRefusal,
  opts: OpenOptions = options,
): Promise<ArchiveRefusedError> {
  let caught: unknown;
  try {
    await checkArchive(open, opts);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof ArchiveRefusedError, `expected a refusal (${reason}), got ${String(caught)}`);
  assert.equal(caught.reason, reason, caught.message);
  assert.doesNotMatch(caught.message, /\n/, 'one line');
  return caught;
}

/** Every part's exact COPY text, through readParts. */
async function readAll(open: ArchiveSource, manifest: ArchiveManifest, opts: OpenOptions = options) {
  const out = new Map<string, Buffer>();
  for await (const { table, rows } of readParts(open, manifest, opts)) {
    const chunks: Buffer[] = [];
    for await (const chunk of rows) chunks.push(chunk as Buffer);
    out.set(table.name, Buffer.concat(chunks));
  }
  return out;
}

// --- the tar, as a test sees it (fixture.ts) ---------------------------------------------------

/** The plain archive with its manifest.json replaced (and any entries changed by `edit`). */
function rebuilt(
  signed: SignedArchiveManifest,
  edit: (parts: Array<{ name: string; body: Buffer }>) => Array<{ name: string; body: Buffer }> = (p) => p,
) {
  return rebuiltFrom(plainBytes, signed, edit);
}

function flipped(bytes: Buffer, at: number): Buffer {
  const copy = Buffer.from(bytes);
  copy[at] = (copy[at] as number) ^ 0x01;
  return copy;
}

// --- round trip -----------------------------------------------------------------------------

describe('a written archive', () => {
  test('reads back: checkArchive returns the manifest and readParts gives the exact COPY text of every table', async () => {
    const manifest = await checkArchive(() => storage.open(plain.location), options);
    assert.deepEqual(manifest, plain.manifest);
    assert.equal(manifest.format, 1);
    assert.equal(manifest.keyId, key.keyId);
    assert.equal(manifest.compression, 'zstd');
    assert.deepEqual(
      manifest.tables.map((t) => [t.name, t.part, t.rows]),
      [
        ['notes', 'data/1-notes.copy.zst', 40_000],
        ['empty', 'data/2-empty.copy.zst', 0],
        ['odd', 'data/3-odd.copy.zst', 3],
      ],
    );
    for (const t of manifest.tables) {
      const text = TABLES[t.name as keyof typeof TABLES];
      assert.equal(t.contentSha256, createHash('sha256').update(text).digest('hex'));
      assert.deepEqual(t.columns, ['id', 'body', 'extra']);
    }
    assert.ok(TABLES.notes.length > 4_000_000, 'multi-MB');
    const back = await readAll(() => storage.open(plain.location), manifest);
    assert.deepEqual([...back.keys()], ['notes', 'empty', 'odd']);
    for (const [name, text] of Object.entries(TABLES)) assert.ok(back.get(name)?.equals(text), name);
  });

  test('is a plain tar: manifest.json (one canonical line, signed), then the zstd parts in manifest order', async () => {
    const entries = tarEntries(plainBytes);
    assert.deepEqual(
      entries.map((e) => e.name),
      [MANIFEST_ENTRY, 'data/1-notes.copy.zst', 'data/2-empty.copy.zst', 'data/3-odd.copy.zst'],
    );
    const m = entry(plainBytes, MANIFEST_ENTRY);
    const text = plainBytes.subarray(m.data, m.data + m.size);
    const signed = signedOf(plainBytes);
    assert.ok(text.equals(Buffer.concat([canonicalBytes(signed), Buffer.from('\n')])));
    assert.equal(
      signed.manifestSha256,
      createHash('sha256').update(canonicalBytes(signed.manifest)).digest('hex'),
    );
    const notes = entry(plainBytes, 'data/1-notes.copy.zst');
    const part = plainBytes.subarray(notes.data, notes.data + notes.size);
    assert.equal(createHash('sha256').update(part).digest('hex'), signed.manifest.tables[0]?.sha256);
    assert.ok(zstdDecompressSync(part).equals(TABLES.notes));
    // The archive's own size and hash, as recorded in control.backups.
    assert.equal(plain.bytes, plainBytes.length);
    assert.equal(plain.sha256, createHash('sha256').update(plainBytes).digest('hex'));
    assert.ok(plain.location.endsWith(ARCHIVE_EXTENSION));
  });

  test('encrypted to an age recipient: the file starts with the age header and reads back with the identity', async () => {
    const bytes = await readFile(encrypted.location);
    assert.ok(bytes.subarray(0, AGE_MAGIC.length).equals(Buffer.from(AGE_MAGIC)));
    assert.ok(!bytes.includes(Buffer.from(MANIFEST_ENTRY)), 'the tar is not readable without the identity');
    assert.equal(encrypted.sha256, createHash('sha256').update(bytes).digest('hex'));
    const identityFile = `# created: 2026-12-02T07:00:00Z\n# public key: ${recipient}\n${identity}\n`;
    const opts = { keys, identities: ageIdentitiesFromText(identityFile) };
    assert.deepEqual(opts.identities, [identity]);
    const manifest = await checkArchive(() => storage.open(encrypted.location), opts);
    assert.deepEqual(manifest.tables, plain.manifest.tables);
    const back = await readAll(() => storage.open(encrypted.location), manifest, opts);
    for (const [name, text] of Object.entries(TABLES)) assert.ok(back.get(name)?.equals(text), name);
  });

  test('with no tables at all: just the manifest, read back', async () => {
    const spooled = await spoolTables([], { tmpDir: dir });
    const w = await writeArchive(
      storage,
      archiveFileName('abc123def456', new Date()),
      spooled,
      manifestBase(),
      key.signer,
    );
    await spooled.dispose();
    const manifest = await checkArchive(() => storage.open(w.location), options);
    assert.deepEqual(manifest.tables, []);
    assert.equal((await readAll(() => storage.open(w.location), manifest)).size, 0);
  });

  test('a reader that stops midway leaves nothing running', async () => {
    for await (const { rows } of readParts(() => storage.open(encrypted.location), plain.manifest, {
      keys,
      identities: [identity],
    })) {
      for await (const _ of rows) break;
      break;
    }
  });

  test('readParts skips a part left unread and still checks the rest', async () => {
    const seen: string[] = [];
    for await (const { table, rows } of readParts(fromBuffer(plainBytes), plain.manifest, options)) {
      if (table.name === 'notes') continue;
      const chunks: Buffer[] = [];
      for await (const chunk of rows) chunks.push(chunk as Buffer);
      assert.ok(Buffer.concat(chunks).equals(TABLES[table.name as keyof typeof TABLES]));
      seen.push(table.name);
    }
    assert.deepEqual(seen, ['empty', 'odd']);
  });

  test('archiveKeysFromPem pins a public key file by key id', async () => {
    const pinned = archiveKeysFromPem(
      publicKeyPem(Buffer.from(key.publicKey.export({ format: 'jwk' }).x as string, 'base64url')),
    );
    assert.deepEqual([...pinned.keys()], [key.keyId]);
    await checkArchive(fromBuffer(plainBytes), { keys: pinned });
  });

  test('archiveFileName is <tenant id>-<UTC time>-<random>.enclave-backup', () => {
    const at = new Date('2026-12-02T07:00:05.123Z');
    const a = archiveFileName('abc123def456', at);
    assert.match(a, /^abc123def456-20261202T070005Z-[0-9a-f]{6}\.enclave-backup$/);
    assert.notEqual(a, archiveFileName('abc123def456', at));
  });

  test('the spool is left in tmpDir until disposed, and removed by dispose', async () => {
    const spooled = await spoolTables([source('odd', TABLES.odd)], { tmpDir: dir });
    const before = (await readdir(dir)).filter((n) => n.startsWith('enclave-backup-'));
    assert.equal(before.length, 1);
    await spooled.dispose();
    assert.deepEqual(
      (await readdir(dir)).filter((n) => n.startsWith('enclave-backup-')),
      [],
    );
  });

  test('a table whose copy fails leaves no spool behind', async () => {
    const failing: TableSource = {
      name: 'bad',
      columns: ['id'],
      async copyTo(sink) {
        sink.write('1\n');
        throw new Error('connection lost');
      },
    };
    await assert.rejects(
      spoolTables([source('odd', TABLES.odd), failing], { tmpDir: dir }),
      /connection lost/,
    );
    assert.deepEqual(
      (await readdir(dir)).filter((n) => n.startsWith('enclave-backup-')),
      [],
    );
  });
});

// --- refusals ---------------------------------------------------------------------------------

describe('checkArchive refuses', () => {
  test('a flipped byte in a part: part-mismatch', async () => {
    const notes = entry(plainBytes, 'data/1-notes.copy.zst');
    const e = await refused(
      await asFile(flipped(plainBytes, notes.data + Math.floor(notes.size / 2))),
      'part-mismatch',
    );
    assert.equal(e.entry, 'data/1-notes.copy.zst');
    const odd = entry(plainBytes, 'data/3-odd.copy.zst');
    await refused(fromBuffer(flipped(plainBytes, odd.data + odd.size - 1)), 'part-mismatch');
  });

  test('a part replaced by other valid zstd data of the same size: part-mismatch', async () => {
    const odd = entry(plainBytes, 'data/3-odd.copy.zst');
    const spooled = await spoolTables(
      [source('odd', Buffer.from(TABLES.odd.toString().replace('not null', 'not nul1')))],
      { tmpDir: dir },
    );
    const other = await readFile(spooled.files[0] as string);
    await spooled.dispose();
    assert.equal(other.length, odd.size);
    const bad = Buffer.from(plainBytes);
    other.copy(bad, odd.data);
    const e = await refused(fromBuffer(bad), 'part-mismatch');
    assert.match(e.message, /SHA-256/);
  });

  test("a signed manifest whose row count or COPY text hash is not the part's: part-mismatch", async () => {
    const odd = plain.manifest.tables[2] as ArchiveManifest['tables'][0];
    for (const wrong of [{ rows: odd.rows + 1 }, { contentSha256: 'b'.repeat(64) }]) {
      const tables = plain.manifest.tables.map((t) => (t.name === 'odd' ? { ...t, ...wrong } : t));
      const e = await refused(
        fromBuffer(await rebuilt(resigned({ ...plain.manifest, tables }, key))),
        'part-mismatch',
      );
      assert.match(e.message, /COPY text/);
    }
  });

  test('a flipped byte in the manifest: manifest-checksum', async () => {
    const at = plainBytes.indexOf('"name":"Acme"');
    assert.ok(at > 0 && at < 2048);
    await refused(await asFile(flipped(plainBytes, at + '"name":"Acm'.length)), 'manifest-checksum'); // Acme -> Acmd
  });

  test('a flipped byte in the signature: bad-signature', async () => {
    const signed = signedOf(plainBytes);
    const sig = Buffer.from(signed.signature, 'base64');
    sig[10] = (sig[10] as number) ^ 0x01;
    const bad = Buffer.from(plainBytes);
    const at = bad.indexOf(signed.signature);
    bad.write(sig.toString('base64'), at, 'latin1');
    assert.equal(bad.length, plainBytes.length);
    await refused(await asFile(bad), 'bad-signature');
  });

  test('a file cut short, wherever it is cut: truncated', async () => {
    const notes = entry(plainBytes, 'data/1-notes.copy.zst');
    const odd = entry(plainBytes, 'data/3-odd.copy.zst');
    const ends = [
      0, // nothing at all
      1,
      100, // inside the first header
      512, // after the first header
      600, // inside manifest.json
      notes.header, // between entries
      notes.header + 300,
      notes.data + 100_000, // inside a part
      odd.data + odd.size, // after the last part, before its padding
      plainBytes.length - 1024, // before the end marker
      plainBytes.length - 512, // inside the end marker
      plainBytes.length - 1,
    ];
    for (const end of ends) {
      const e = await refused(fromBuffer(plainBytes.subarray(0, end)), 'truncated');
      assert.match(e.message, /cut short/);
    }
  });

  test('an unknown future format, signed by the trusted key: unsupported-format', async () => {
    const future = { ...plain.manifest, format: 2 } as unknown as ArchiveManifest;
    const e = await refused(await asFile(await rebuilt(resigned(future, key))), 'unsupported-format');
    assert.match(e.message, /format 2/);
    // The same manifest back at format 1 is accepted: only the format was wrong.
    await checkArchive(fromBuffer(await rebuilt(resigned(plain.manifest, key))), options);
  });

  test('a manifest signed by a key this installation does not trust: unknown-key', async () => {
    const theirs = { ...plain.manifest, keyId: otherKey.keyId };
    const e = await refused(fromBuffer(await rebuilt(resigned(theirs, otherKey))), 'unknown-key');
    assert.match(e.message, new RegExp(otherKey.keyId));
  });

  test("a manifest signed by another key under the trusted key's id: bad-signature", async () => {
    await refused(fromBuffer(await rebuilt(resigned(plain.manifest, otherKey))), 'bad-signature');
  });

  test('a wrong manifestSha256 (the signature itself valid): manifest-checksum', async () => {
    const signed = resigned(plain.manifest, key);
    signed.manifestSha256 = createHash('sha256').update('something else').digest('hex');
    await refused(fromBuffer(await rebuilt(signed)), 'manifest-checksum');
  });

  test('a manifest that is not its canonical form: manifest-invalid', async () => {
    const signed = resigned(plain.manifest, key);
    const pretty = Buffer.from(`${JSON.stringify(signed, null, 1)}\n`);
    const parts = bodies(plainBytes).filter((e) => e.name !== MANIFEST_ENTRY);
    await refused(
      fromBuffer(await tarOf([{ name: MANIFEST_ENTRY, body: pretty }, ...parts])),
      'manifest-invalid',
    );
    const noNewline = canonicalBytes(signed);
    await refused(
      fromBuffer(await tarOf([{ name: MANIFEST_ENTRY, body: noNewline }, ...parts])),
      'manifest-invalid',
    );
  });

  test('a manifest with a field of the wrong type, even signed: manifest-invalid', async () => {
    const broken = { ...plain.manifest, tables: [{ ...plain.manifest.tables[0], rows: '40000' }] };
    await refused(
      fromBuffer(await rebuilt(resigned(broken as unknown as ArchiveManifest, key))),
      'manifest-invalid',
    );
  });

  test('an extra tar entry, at the end or between parts: unexpected-entry', async () => {
    const extra = { name: 'data/4-extra.copy.zst', body: Buffer.from('x') };
    const signed = signedOf(plainBytes);
    await refused(fromBuffer(await rebuilt(signed, (p) => [...p, extra])), 'unexpected-entry');
    await refused(
      fromBuffer(await rebuilt(signed, (p) => [p[0] as (typeof p)[0], extra, ...p.slice(1)])),
      'unexpected-entry',
    );
    await refused(fromBuffer(Buffer.concat([plainBytes, Buffer.from('trailing bytes')])), 'unexpected-entry');
  });

  test('a missing part: part-missing', async () => {
    const signed = signedOf(plainBytes);
    const e = await refused(
      fromBuffer(await rebuilt(signed, (p) => p.filter((x) => x.name !== 'data/2-empty.copy.zst'))),
      'part-missing',
    );
    assert.equal(e.entry, 'data/2-empty.copy.zst');
    await refused(fromBuffer(await rebuilt(signed, (p) => p.slice(0, 2))), 'part-missing');
  });

  test('an encrypted archive without an identity: encrypted-no-identity', async () => {
    await refused(() => createReadStream(encrypted.location), 'encrypted-no-identity');
  });

  test('an encrypted archive with the wrong identity: wrong-identity', async () => {
    const stranger = await generateIdentity();
    await refused(() => createReadStream(encrypted.location), 'wrong-identity', {
      keys,
      identities: [stranger],
    });
  });

  test('an encrypted archive with a flipped byte, or cut short: unreadable (age cannot authenticate it)', async () => {
    const bytes = await readFile(encrypted.location);
    const opts = { keys, identities: [identity] };
    await refused(fromBuffer(flipped(bytes, bytes.length - 1000)), 'unreadable', opts);
    await refused(fromBuffer(bytes.subarray(0, bytes.length - 70_000)), 'unreadable', opts);
  });

  test('an encrypted archive signed by an untrusted key: unknown-key, the rest of the file left unread', async () => {
    await refused(() => createReadStream(encrypted.location), 'unknown-key', {
      keys: new Map([[otherKey.keyId, otherKey.publicKey]]),
      identities: [identity],
    });
  });

  test('a file that is not an archive: not-an-archive', async () => {
    await refused(fromBuffer(randomBytes(4096)), 'not-an-archive');
    await refused(
      fromBuffer(await tarOf([{ name: 'hello.txt', body: Buffer.from('hi') }])),
      'not-an-archive',
    );
  });

  test('a file that cannot be opened: unreadable', async () => {
    await refused(() => createReadStream(path.join(dir, 'no-such-file')), 'unreadable');
    await refused(() => {
      throw new Error('EACCES');
    }, 'unreadable');
  });
});

describe('readParts', () => {
  test('a file changed after checkArchive: the part stream errors with changed instead of ending', async () => {
    const manifest = await checkArchive(fromBuffer(plainBytes), options);
    const notes = entry(plainBytes, 'data/1-notes.copy.zst');
    const now = flipped(plainBytes, notes.data + notes.size - 10);
    const parts = readParts(fromBuffer(now), manifest, options);
    const first = await parts.next();
    assert.ok(!first.done);
    let ended = false;
    first.value.rows.on('end', () => {
      ended = true;
    });
    const e = await (async () => {
      try {
        for await (const _ of first.value.rows);
      } catch (err) {
        return err;
      }
    })();
    assert.ok(e instanceof ArchiveRefusedError, String(e));
    assert.equal(e.reason, 'changed');
    assert.equal(ended, false);
    // A reader that carries on regardless gets the same refusal from the next step.
    await assert.rejects(
      parts.next(),
      (err: unknown) => err instanceof ArchiveRefusedError && err.reason === 'changed',
    );
  });

  test('a file whose manifest changed after checkArchive: changed', async () => {
    const other = await rebuilt(resigned({ ...plain.manifest, origin: 'enclave:elsewhere' }, key));
    await assert.rejects(
      readAll(fromBuffer(other), plain.manifest),
      (err: unknown) => err instanceof ArchiveRefusedError && err.reason === 'changed',
    );
  });

  test('a file cut short after checkArchive: changed', async () => {
    await assert.rejects(
      readAll(fromBuffer(plainBytes.subarray(0, plainBytes.length - 512)), plain.manifest),
      (err: unknown) => err instanceof ArchiveRefusedError && err.reason === 'changed',
    );
  });
});
