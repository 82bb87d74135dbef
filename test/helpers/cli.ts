// The enclave CLI as a child process, the way an operator runs it: from the
// repository root, with the environment the test gives and stdin closed unless
// the test types something.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  /** Added to (and overriding) the environment of the test process. */
  env?: Record<string, string>;
  /** What is typed on stdin (nothing by default). */
  input?: string;
}

/** Runs `node bin/enclave.js ...args` and waits for it. */
export function enclave(args: string[], options: CliOptions = {}): CliResult {
  const result = spawnSync(process.execPath, ['bin/enclave.js', ...args], {
    cwd: ROOT,
    env: { ...process.env, ...options.env },
    encoding: 'utf8',
    input: options.input ?? '',
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/**
 * The CLI with a base environment read at each call (a test's database URL is
 * known only once its `before` has run); `options.env` adds to it.
 */
export function enclaveWith(base: () => Record<string, string>) {
  return (args: string[], options: CliOptions = {}): CliResult =>
    enclave(args, { ...options, env: { ...base(), ...options.env } });
}

/** The one line of `text` (a CLI's answer or error), failing when there are more. */
export function oneLine(text: string): string {
  const lines = text.trimEnd().split('\n');
  assert.equal(lines.length, 1, `expected one line, got:\n${text}`);
  return lines[0] as string;
}
