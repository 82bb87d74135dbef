// Step two of an export: manifest.json and the dumped files as one .tar.gz,
// written to a stream (the HTTP response) with backpressure all the way:
// file -> tar entry -> gzip -> socket. A slow reader slows the file reads; a
// reader that goes away stops them. Memory stays at a few stream buffers.
import { once } from 'node:events';
import { createReadStream } from 'node:fs';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import tar from 'tar-stream';

export type ArchiveEntry = { name: string; body: Buffer } | { name: string; file: string; size: number };

/** Resolves when the whole archive has been handed to `out`; rejects (and stops reading) if `out` fails. */
export async function writeTarGz(
  out: Writable,
  entries: readonly ArchiveEntry[],
  mtime: Date,
): Promise<void> {
  const pack = tar.pack();
  const stop = new AbortController();
  const sent = pipeline(pack, createGzip(), out).catch((err: unknown) => {
    stop.abort(err);
    throw err;
  });
  const produced = (async () => {
    for (const e of entries) {
      if ('body' in e) {
        await addEntry(
          pack,
          { name: e.name, size: e.body.length, mode: 0o644, mtime },
          stop.signal,
          async (entry) => {
            if (!entry.write(e.body)) await once(entry, 'drain', { signal: stop.signal });
          },
        );
      } else {
        await addEntry(
          pack,
          { name: e.name, size: e.size, mode: 0o644, mtime },
          stop.signal,
          async (entry) => {
            // Leaving the loop early (abort, error) destroys the read stream.
            for await (const chunk of createReadStream(e.file, { signal: stop.signal })) {
              if (!entry.write(chunk)) await once(entry, 'drain', { signal: stop.signal });
            }
          },
        );
      }
    }
    pack.finalize();
  })();
  // Either failure ends both: a broken socket aborts the reads, a failed read destroys the pipeline.
  await Promise.all([
    sent,
    produced.catch((err: unknown) => {
      pack.destroy(err instanceof Error ? err : new Error(String(err)));
      throw err;
    }),
  ]);
}

async function addEntry(
  pack: tar.Pack,
  header: Partial<tar.Header> & Pick<tar.Header, 'name'>,
  signal: AbortSignal,
  write: (entry: ReturnType<tar.Pack['entry']>) => Promise<void>,
): Promise<void> {
  signal.throwIfAborted();
  // The entry's callback fires once tar-stream has taken the whole entry (and checked its size).
  const { promise: taken, resolve, reject } = Promise.withResolvers<void>();
  const entry = pack.entry(header, (err) => (err ? reject(err) : resolve()));
  // When the pack is torn down (the client hung up) the entry emits 'error' too; that failure
  // already reaches us through the pipeline and the abort signal, so here it only must not crash.
  entry.on('error', () => {});
  // Likewise `taken` may fail while `write` is still under way; it is awaited below when it matters.
  taken.catch(() => {});
  await write(entry);
  entry.end(null); // streamx's typings want an argument; null writes nothing
  await untilAborted(taken, signal);
}

/** `promise`, or the abort reason as soon as `signal` aborts. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  signal.throwIfAborted();
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
