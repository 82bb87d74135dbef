// A logger whose lines the test can read back, parsed.
import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../kernel/logger.ts';

export interface CapturedLog {
  log: Logger;
  /** Every line written so far, parsed from JSON. */
  lines(): Array<Record<string, unknown>>;
  /** The raw text written so far. */
  text(): string;
}

export function captureLog(level: 'error' | 'warn' | 'info' | 'debug' = 'debug'): CapturedLog {
  let text = '';
  const stream = new Writable({
    write(chunk, _encoding, done) {
      text += String(chunk);
      done();
    },
  });
  return {
    log: createLogger({ level, stream }),
    lines: () =>
      text
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    text: () => text,
  };
}

/** The request log line is written on 'close', a tick after supertest has its answer. */
export async function settle(): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 20));
}
