// A .tar.gz of spooled files (used by the workspace export and the audit bundle),
// written to a stream (the HTTP response) with backpressure all the way:
// file -> tar entry -> gzip -> socket. A slow reader slows the file reads; a
// reader that goes away stops them. Memory stays at a few stream buffers.
// writeTar is the same without gzip, through any transforms (the tenant backup:
// its parts are zstd already; optionally age-encrypted, and hashed).
import { once } from 'node:events';
import { createReadStream } from 'node:fs';
import type { Duplex, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import tar from 'tar-stream';

export type ArchiveFile = { name: string; file: string; size: number };
export type ArchiveEntry = { name: string; body: Buffer } | ArchiveFile;

export interface ArchiveOptions {
  /** Streams the tar passes through, in order, before `out` (writeTarGz puts gzip first). */
  through?: readonly Duplex[];
  /**
   * Called once a file's entry has been read to its end (its bytes are in the
   * archive stream, no longer needed on disk): the export deletes its spool
   * file here, so a slow download holds one table's file, not all of them.
   */
  onFileSent?: (entry: ArchiveFile) => Promise<void> | void;
}

/** Resolves when the whole archive has been handed to `out`; either side failing stops both. */
export async function writeTarGz(
  out: Writable,
  entries: readonly ArchiveEntry[],
  mtime: Date,
  options: ArchiveOptions = {},
): Promise<void> {
  return writeTar(out, entries, mtime, { ...options, through: [createGzip(), ...(options.through ?? [])] });
}

/** A plain tar through `options.through` into `out`; resolves when `out` has it all. */
export async function writeTar(
  out: Writable,
  entries: readonly ArchiveEntry[],
  mtime: Date,
  options: ArchiveOptions = {},
): Promise<void> {
  const pack = tar.pack();
  const stop = new AbortController();
  // tar-stream's pack is a streamx stream, which Node's pipeline takes but its typings do not know.
  const source = pack as unknown as NodeJS.ReadableStream;
  const sent = pipeline([source, ...(options.through ?? []), out]).catch((err: unknown) => {
    stop.abort(err);
    throw err;
  });
  const produced = (async () => {
    for (const e of entries) {
      stop.signal.throwIfAborted();
      // The entry's callback fires once tar-stream has taken the whole entry (and checked its size).
      const { promise: taken, resolve, reject } = Promise.withResolvers<void>();
      const header = { name: e.name, size: 'body' in e ? e.body.length : e.size, mode: 0o644, mtime };
      const entry = pack.entry(header, (err) => (err ? reject(err) : resolve()));
      entry.on('error', reject); // destroyed along with the pack when `out` fails
      taken.catch(() => {}); // awaited below, unless the write loop fails first
      // Leaving the loop early (abort, error) destroys the read stream.
      const chunks = 'body' in e ? [e.body] : createReadStream(e.file, { signal: stop.signal });
      for await (const chunk of chunks) {
        if (!entry.write(chunk as Buffer)) await once(entry, 'drain', { signal: stop.signal });
      }
      entry.end(null); // streamx's typings want an argument; null writes nothing
      await untilAborted(taken, stop.signal);
      if (!('body' in e)) await options.onFileSent?.(e);
    }
    pack.finalize();
  })();
  // A broken socket aborts the reads; a failed read destroys the pipeline.
  await Promise.all([
    sent,
    produced.catch((err: unknown) => {
      pack.destroy(err instanceof Error ? err : new Error(String(err)));
      throw err;
    }),
  ]);
}

/** `promise`, or the abort reason as soon as `signal` aborts (no listener left behind either way). */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  signal.throwIfAborted();
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
