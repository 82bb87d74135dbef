// Killing a child process at a named step, the way kill -9 would: the child
// (a test's own script) prints `STEP <name>` as it reaches each step and
// `DONE` at the end; the test SIGKILLs it at `stopAt`, then waits until
// PostgreSQL has seen its connections go (and rolled back what they held).
import { type ChildProcess, spawn } from 'node:child_process';
import type { Pool } from '../../kernel/db.ts';

export interface KillAtOptions {
  /** The child script. */
  script: string;
  cwd: string;
  /** Handed to the child as ENCLAVE_CHILD_JOB (JSON); it must use `applicationName` for its pool. */
  job: Record<string, unknown> & { applicationName: string };
  stopAt: string;
  /** The database whose pg_stat_activity shows the child's sessions. */
  pool: Pool;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function killAtStep(options: KillAtOptions): Promise<void> {
  const { stopAt } = options;
  const child: ChildProcess = spawn(process.execPath, [options.script], {
    cwd: options.cwd,
    env: { ...process.env, ENCLAVE_CHILD_JOB: JSON.stringify(options.job) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr?.on('data', (d) => {
    stderr += d;
  });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (d) => {
      stdout += d;
      if (stdout.includes(`STEP ${stopAt}\n`)) resolve();
      if (stdout.includes('DONE')) reject(new Error(`the child finished without reaching ${stopAt}`));
    });
    child.on('exit', (code) => reject(new Error(`the child exited (${code}) before ${stopAt}: ${stderr}`)));
  });
  child.kill('SIGKILL');
  await exited;
  for (let i = 0; ; i++) {
    const n = (
      await options.pool.query(
        'SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1',
        [options.job.applicationName],
      )
    ).rows[0].n;
    if (n === 0) break;
    if (i > 200) throw new Error(`the killed child's sessions are still there after 10 s`);
    await sleep(50);
  }
}
