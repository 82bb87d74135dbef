// One JSON object per line on stdout, so any log shipper can read it without a
// parser of ours. Secrets are scrubbed here, in the one place every line passes
// through, rather than trusted to each caller: a connection string inside an
// error message is still caught.
import { Writable } from 'node:stream';
import winston from 'winston';
import type { Config } from './config.ts';

export type Logger = winston.Logger;
export type LogLevel = Config['LOG_LEVEL'];

export interface LoggerOptions {
  level: LogLevel;
  /** Where lines go; stdout unless a test wants to read them. */
  stream?: Writable;
}

const SECRET_KEY = /password|passwd|secret|token|authorization|cookie|api[-_]?key/i;
// scheme://user:password@ -> scheme://user:***@
const URL_PASSWORD = /\b([a-z][a-z0-9+.-]*:\/\/[^\s:/@]*):([^\s/@]+)@/gi;
const MAX_DEPTH = 6;

// Defence in depth: an API token that slips into a message is still masked.
const API_TOKEN = /\benc_[A-Za-z0-9_-]{20,}/g;

export function redactString(text: string): string {
  return text.replace(URL_PASSWORD, '$1:***@').replace(API_TOKEN, 'enc_***');
}

/** A copy of value with URL passwords masked and secret-named fields replaced. */
export function redact(value: unknown, depth = 0, seen = new WeakSet<object>()): unknown {
  if (typeof value === 'string') return redactString(value);
  if (value instanceof Error) return redact(serializeError(value), depth, seen);
  if (typeof value !== 'object' || value === null) return value;
  if (depth >= MAX_DEPTH || seen.has(value)) return '[…]';
  seen.add(value);
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1, seen));
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    out[key] = SECRET_KEY.test(key) ? '[redacted]' : redact(v, depth + 1, seen);
  }
  return out;
}

/** Errors are not JSON-serialisable as they are (message and stack are not enumerable). */
export function serializeError(err: Error): Record<string, unknown> {
  const out: Record<string, unknown> = { name: err.name, message: err.message };
  const code = (err as { code?: unknown }).code;
  if (code !== undefined) out.code = code;
  if (err.stack) out.stack = err.stack;
  if (err.cause !== undefined) out.cause = err.cause instanceof Error ? serializeError(err.cause) : err.cause;
  if (err instanceof AggregateError)
    out.errors = err.errors.map((e) => (e instanceof Error ? serializeError(e) : e));
  return out;
}

// winston keeps its own bookkeeping under Symbol keys; only the string keys are ours to rewrite.
const scrub = winston.format((info) => {
  for (const key of Object.keys(info)) {
    if (key === 'level') continue;
    info[key] = SECRET_KEY.test(key) ? '[redacted]' : redact(info[key]);
  }
  return info;
});

export function createLogger(options: LoggerOptions): Logger {
  return winston.createLogger({
    level: options.level,
    format: winston.format.combine(scrub(), winston.format.timestamp(), winston.format.json()),
    transports: [new winston.transports.Stream({ stream: options.stream ?? stdoutLines() })],
  });
}

/**
 * stdout, with the lines of a few milliseconds written together: at
 * LOG_LEVEL=info a busy server logs a line per request, and one write(2) per
 * line was most of a line's cost (docs/BENCHMARKS.md, "HTTP stack"). Lines
 * keep their order; they reach stdout at the latest `delayMs` later (20 by
 * default), at once when 16 KiB are pending, and when the process exits
 * (process.exit, an uncaught exception). What a SIGKILL interrupts in those
 * milliseconds is lost. Writing to stdout is synchronous for files, pipes and
 * terminals on Linux.
 */
const BATCH_CHARS = 16 * 1024;

export class LineBatcher extends Writable {
  readonly #out: (text: string) => void;
  #pending = '';
  #scheduled = false;
  readonly #flushSoon = () => this.flush();

  readonly #delayMs: number;

  constructor(out: (text: string) => void, delayMs = 20) {
    super({ decodeStrings: false });
    this.#out = out;
    this.#delayMs = delayMs;
  }

  override _write(chunk: string | Buffer, _encoding: BufferEncoding, callback: (err?: Error) => void): void {
    this.#pending += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
    if (this.#pending.length >= BATCH_CHARS) this.flush();
    else if (!this.#scheduled) {
      this.#scheduled = true;
      setTimeout(this.#flushSoon, this.#delayMs).unref();
    }
    callback();
  }

  override _final(callback: (err?: Error) => void): void {
    this.flush();
    callback();
  }

  /** Writes what is pending now. */
  flush(): void {
    this.#scheduled = false;
    if (this.#pending === '') return;
    const text = this.#pending;
    this.#pending = '';
    this.#out(text);
  }
}

let stdoutBatcher: LineBatcher | undefined;

/** One batcher for stdout per process, flushed on exit. */
function stdoutLines(): LineBatcher {
  if (!stdoutBatcher) {
    const batcher = new LineBatcher((text) => process.stdout.write(text));
    process.on('exit', () => batcher.flush());
    stdoutBatcher = batcher;
  }
  return stdoutBatcher;
}
