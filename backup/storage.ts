// Where archives live. DirectoryStorage: files in BACKUP_DIR (0700), each
// archive 0600, written under a hidden temporary name, fsynced, linked into
// place and the directory fsynced: a crash never leaves a file under an
// archive's name that is not complete, and an archive is never overwritten.
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { chmod, link, mkdir, open as openFile, readdir, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { ARCHIVE_EXTENSION } from './archive-format.ts';
import { BackupError } from './backup-errors.ts';

export interface StoredArchive {
  name: string;
  location: string;
  bytes: number;
  modifiedAt: Date;
}

export interface BackupStorage {
  /** Writes `name` under a temporary name, fsyncs it (and the directory), then renames: nothing is visible under `name` until complete. */
  put(name: string, write: (out: Writable) => Promise<void>): Promise<{ location: string; bytes: number }>;
  open(location: string): Promise<Readable>;
  remove(location: string): Promise<void>;
  /** Leftover temporary files from a crash, removed (called at start and by prune). */
  sweep(): Promise<number>;
  /** The complete archives (`*.enclave-backup`), oldest first; never a temporary file. */
  list(): Promise<StoredArchive[]>;
}

export interface DirectoryStorageOptions {
  /**
   * sweep() removes a temporary file only once it has not been written to for
   * this long (default 15 minutes): another process may be writing it.
   */
  staleAfterMs?: number;
}

const TEMP_NAME = /^\..+\.[0-9a-f]{16}\.partial$/;
const DEFAULT_STALE_AFTER_MS = 15 * 60_000;

export class DirectoryStorage implements BackupStorage {
  readonly dir: string;
  private readonly staleAfterMs: number;
  /** Temporary files this instance is writing: never swept. */
  private readonly writing = new Set<string>();
  private ready: Promise<void> | undefined;

  constructor(dir: string, options: DirectoryStorageOptions = {}) {
    this.dir = path.resolve(dir);
    this.staleAfterMs = options.staleAfterMs ?? DEFAULT_STALE_AFTER_MS;
  }

  async put(name: string, write: (out: Writable) => Promise<void>) {
    checkName(name);
    await this.ensureDir();
    const temp = `.${name}.${randomBytes(8).toString('hex')}.partial`;
    const tempPath = path.join(this.dir, temp);
    const location = path.join(this.dir, name);
    this.writing.add(temp);
    try {
      // flush: the file is fsynced before it is closed.
      const out = createWriteStream(tempPath, { flags: 'wx', mode: 0o600, flush: true });
      const closed = once(out, 'close');
      closed.catch(() => {});
      try {
        await once(out, 'open');
        await chmod(tempPath, 0o600); // whatever the umask
        await write(out);
        if (!out.writableEnded) out.end();
        await closed;
        if (out.errored) throw out.errored;
      } catch (err) {
        out.destroy();
        await closed.catch(() => {});
        throw err;
      }
      const { size } = await stat(tempPath);
      await placeNoClobber(tempPath, location);
      await syncDir(this.dir);
      return { location, bytes: size };
    } finally {
      await unlink(tempPath).catch(() => {});
      this.writing.delete(temp);
    }
  }

  async open(location: string): Promise<Readable> {
    const file = this.resolve(location);
    const handle = await openFile(file, 'r');
    return handle.createReadStream();
  }

  async remove(location: string): Promise<void> {
    await unlink(this.resolve(location)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }

  async sweep(): Promise<number> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw err;
    }
    let removed = 0;
    const now = Date.now();
    for (const name of names) {
      if (!TEMP_NAME.test(name) || this.writing.has(name)) continue;
      const file = path.join(this.dir, name);
      const st = await stat(file).catch(() => null);
      if (!st?.isFile() || now - st.mtimeMs < this.staleAfterMs) continue;
      await unlink(file).then(
        () => removed++,
        () => {},
      );
    }
    return removed;
  }

  async list(): Promise<StoredArchive[]> {
    let entries: string[];
    try {
      entries = await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const out: StoredArchive[] = [];
    for (const name of entries) {
      if (name.startsWith('.') || !name.endsWith(ARCHIVE_EXTENSION)) continue;
      const location = path.join(this.dir, name);
      const st = await stat(location).catch(() => null);
      if (st?.isFile()) out.push({ name, location, bytes: st.size, modifiedAt: st.mtime });
    }
    return out.sort((a, b) => a.modifiedAt.getTime() - b.modifiedAt.getTime() || (a.name < b.name ? -1 : 1));
  }

  /** A location of this storage (its absolute path, or a bare name) as a path inside the directory. */
  private resolve(location: string): string {
    const name =
      path.isAbsolute(location) && path.dirname(location) === this.dir ? path.basename(location) : location;
    checkName(name);
    return path.join(this.dir, name);
  }

  private ensureDir(): Promise<void> {
    this.ready ??= mkdir(this.dir, { recursive: true, mode: 0o700 }).then(
      () => {},
      (err: unknown) => {
        this.ready = undefined;
        throw err;
      },
    );
    return this.ready;
  }
}

/** One plain file name: no directory part, no `..`, not hidden (the temporary names are). */
function checkName(name: string): void {
  if (
    name.length === 0 ||
    name.length > 200 ||
    name.includes('/') ||
    name.includes('\\') ||
    name.includes('..') ||
    name.includes('\0') ||
    name.startsWith('.')
  )
    throw new BackupError(
      `${JSON.stringify(name)} is not a backup file name here (one plain name: no "/", no "..", not hidden)`,
    );
}

/** Moves `from` to `to`, refusing to replace an existing `to`. */
async function placeNoClobber(from: string, to: string): Promise<void> {
  try {
    await link(from, to);
    return;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new BackupError(`${to} already exists: a backup is never overwritten`);
    // A file system without hard links: check, then rename (the name has a random tail anyway).
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'ENOSYS' && code !== 'EOPNOTSUPP') throw err;
  }
  const exists = await stat(to).then(
    () => true,
    () => false,
  );
  if (exists) throw new BackupError(`${to} already exists: a backup is never overwritten`);
  await rename(from, to);
}

async function syncDir(dir: string): Promise<void> {
  const handle = await openFile(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
