// DirectoryStorage: an archive appears under its name only once it is
// complete and on disk, never replaces another, and a crash leaves nothing
// that looks like an archive; names stay inside BACKUP_DIR; modes 0700/0600.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { BackupError } from '../../backup/backup-errors.ts';
import { DirectoryStorage } from '../../backup/storage.ts';

let root: string;
let n = 0;
/** A fresh storage in a directory that does not exist yet. */
const fresh = () => {
  const dir = path.join(root, `backups-${++n}`, 'nested');
  return { dir, storage: new DirectoryStorage(dir) };
};

before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'enclave-storage-test-'));
});
after(() => rm(root, { recursive: true, force: true }));

async function write(out: Writable, text: string): Promise<void> {
  await new Promise<void>((resolve, reject) =>
    out.end(text, (err?: Error | null) => (err ? reject(err) : resolve())),
  );
}

const mode = async (p: string) => (await stat(p)).mode & 0o777;
const TEMP = /^\..+\.[0-9a-f]{16}\.partial$/;

describe('DirectoryStorage', () => {
  test('put writes aside: nothing is under the name until the write is complete', async () => {
    const { dir, storage } = fresh();
    const name = 'abc-20261202T070000Z-000000.enclave-backup';
    let seenDuring: string[] = [];
    const { location, bytes } = await storage.put(name, async (out) => {
      out.write('half of it');
      await new Promise((resolve) => setTimeout(resolve, 10));
      seenDuring = await readdir(dir);
      assert.equal(existsSync(path.join(dir, name)), false, 'not visible while being written');
      await write(out, ', and the rest');
    });
    assert.equal(seenDuring.length, 1);
    assert.match(seenDuring[0] as string, TEMP);
    assert.equal(location, path.join(dir, name));
    assert.equal(bytes, 'half of it, and the rest'.length);
    assert.equal(await readFile(location, 'utf8'), 'half of it, and the rest');
    assert.deepEqual(await readdir(dir), [name], 'the temporary file is gone');
  });

  test('a write that throws leaves no file under the name, and no temporary file', async () => {
    const { dir, storage } = fresh();
    await assert.rejects(
      storage.put('x.enclave-backup', async (out) => {
        out.write('partial');
        throw new Error('disk on fire');
      }),
      /disk on fire/,
    );
    assert.deepEqual(await readdir(dir), []);
    assert.equal(await storage.sweep(), 0);
    assert.deepEqual(await storage.list(), []);
  });

  test("a crashed writer's temporary file is never listed as an archive, and sweep removes it once stale", async () => {
    const { dir, storage } = fresh();
    await storage.put('done.enclave-backup', (out) => write(out, 'complete'));
    const crashed = path.join(dir, '.crashed.enclave-backup.0123456789abcdef.partial');
    const live = path.join(dir, '.live.enclave-backup.fedcba9876543210.partial');
    await writeFile(crashed, 'half');
    await writeFile(live, 'being written by another process');
    const old = new Date(Date.now() - 60 * 60_000);
    await utimes(crashed, old, old);
    assert.deepEqual(
      (await storage.list()).map((a) => a.name),
      ['done.enclave-backup'],
    );
    assert.equal(await storage.sweep(), 1);
    assert.deepEqual((await readdir(dir)).sort(), [
      '.live.enclave-backup.fedcba9876543210.partial',
      'done.enclave-backup',
    ]);
    // With no grace period, the other one goes too.
    assert.equal(await new DirectoryStorage(dir, { staleAfterMs: 0 }).sweep(), 1);
    assert.deepEqual(await readdir(dir), ['done.enclave-backup']);
  });

  test('sweep never removes a temporary file this storage is writing', async () => {
    const { dir } = fresh();
    const storage = new DirectoryStorage(dir, { staleAfterMs: 0 });
    await storage.put('a.enclave-backup', async (out) => {
      out.write('x');
      assert.equal(await storage.sweep(), 0);
      await write(out, 'y');
    });
    assert.equal(await readFile(path.join(dir, 'a.enclave-backup'), 'utf8'), 'xy');
  });

  test('an archive is never overwritten', async () => {
    const { storage } = fresh();
    const { location } = await storage.put('a.enclave-backup', (out) => write(out, 'first'));
    await assert.rejects(
      storage.put('a.enclave-backup', (out) => write(out, 'second')),
      (err: unknown) => err instanceof BackupError && /already exists/.test(err.message),
    );
    assert.equal(await readFile(location, 'utf8'), 'first');
  });

  test('names with "/" or "..", hidden names and empty names are refused by put, open and remove', async () => {
    const { dir, storage } = fresh();
    const outside = path.join(root, 'outside.enclave-backup');
    await writeFile(outside, 'not yours');
    for (const name of [
      '../outside.enclave-backup',
      'a/b.enclave-backup',
      '..',
      'x..y',
      '.hidden',
      '',
      '/etc/passwd',
    ]) {
      await assert.rejects(
        storage.put(name, (out) => write(out, 'x')),
        BackupError,
        name,
      );
      await assert.rejects(storage.open(name), BackupError, name);
      await assert.rejects(storage.remove(name), BackupError, name);
    }
    await assert.rejects(storage.open(outside), BackupError);
    await assert.rejects(storage.remove(outside), BackupError);
    assert.equal(await readFile(outside, 'utf8'), 'not yours');
    assert.deepEqual(existsSync(dir) ? await readdir(dir) : [], []);
  });

  test('the directory is made 0700 and archives are 0600, whatever the umask', async () => {
    const { dir, storage } = fresh();
    const umask = process.umask(0);
    try {
      const { location } = await storage.put('m.enclave-backup', (out) => write(out, 'x'));
      assert.equal((await mode(dir)).toString(8), '700');
      assert.equal((await mode(location)).toString(8), '600');
    } finally {
      process.umask(umask);
    }
  });

  test('open reads an archive back by location or by name; remove deletes it, and a second remove is fine', async () => {
    const { storage } = fresh();
    const { location } = await storage.put('r.enclave-backup', (out) => write(out, 'content'));
    for (const where of [location, 'r.enclave-backup']) {
      const chunks: Buffer[] = [];
      for await (const chunk of await storage.open(where)) chunks.push(chunk as Buffer);
      assert.equal(Buffer.concat(chunks).toString(), 'content');
    }
    await assert.rejects(storage.open('missing.enclave-backup'), /ENOENT/);
    await storage.remove(location);
    await storage.remove(location);
    assert.deepEqual(await storage.list(), []);
  });

  test('list gives the complete archives, oldest first, with their sizes', async () => {
    const { dir, storage } = fresh();
    await storage.put('b.enclave-backup', (out) => write(out, 'bb'));
    await storage.put('a.enclave-backup', (out) => write(out, 'a'));
    await storage.put('notes.txt', (out) => write(out, 'not an archive'));
    const older = new Date(Date.now() - 60_000);
    await utimes(path.join(dir, 'b.enclave-backup'), older, older);
    assert.deepEqual(
      (await storage.list()).map((a) => [a.name, a.bytes]),
      [
        ['b.enclave-backup', 2],
        ['a.enclave-backup', 1],
      ],
    );
  });
});
