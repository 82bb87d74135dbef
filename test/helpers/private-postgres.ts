// A PostgreSQL cluster of a test's own, to stop and start under load without
// touching the machine's shared one: initdb into a temporary directory, one
// free port, trust authentication, sockets in that directory. As root,
// initdb and postgres refuse to run: they run as the `postgres` OS user then,
// and the directory is given to it.
//
// fsync is off: the faults tested here stop PostgreSQL (fast or immediate) or
// kill the application, never the machine, so what PostgreSQL wrote reaches
// the OS page cache and WAL replay after an immediate stop finds it there.
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from './private-redis.ts';

export interface PrivatePostgres {
  port: number;
  /** Superuser URL of its `postgres` database (an admin URL for createScratchDatabase). */
  url: string;
  running(): boolean;
  /** `pg_ctl stop`: `fast` ends sessions (57P01) and checkpoints; `immediate` is as close to a crash as it gets. */
  stop(mode?: 'fast' | 'immediate'): Promise<void>;
  /** Starts it again on the same port and data directory; resolves once it accepts connections. */
  start(): Promise<void>;
  /** Stops it (immediate) and removes its directory. */
  destroy(): Promise<void>;
}

/** The newest installed server's bin directory (Debian: /usr/lib/postgresql/<major>/bin), else pg_config's. */
export function postgresBinDir(): string {
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const majors = readdirSync(root)
      .filter((d) => /^\d+$/.test(d) && existsSync(path.join(root, d, 'bin', 'initdb')))
      .sort((a, b) => Number(b) - Number(a));
    if (majors[0]) return path.join(root, majors[0], 'bin');
  }
  const found = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' });
  const dir = found.status === 0 ? found.stdout.trim() : '';
  if (dir && existsSync(path.join(dir, 'initdb'))) return dir;
  throw new Error(
    'no PostgreSQL server binaries (initdb, pg_ctl) found: these tests need them (apt-get install postgresql)',
  );
}

function asRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** The command, run as the postgres OS user when we are root. */
function command(bin: string, args: string[]): [string, string[]] {
  return asRoot() ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];
}

// Asynchronous on purpose: a server under test may run in this same process and must keep serving.
function run(bin: string, args: string[], what: string): Promise<void> {
  const [file, argv] = command(bin, args);
  return new Promise((resolve, reject) => {
    execFile(file, argv, { timeout: 60_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${what} failed: ${stderr || stdout || err.message}`));
      else resolve();
    });
  });
}

export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const bin = postgresBinDir();
  const dir = mkdtempSync(path.join(tmpdir(), 'enclave-faults-pg-'));
  if (asRoot()) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(dir, uid, gid);
  }
  const data = path.join(dir, 'data');
  const logFile = path.join(dir, 'postgres.log');
  const port = await freePort();
  await run(
    path.join(bin, 'initdb'),
    ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync'],
    'initdb',
  );
  const options = [
    `-p ${port}`,
    `-k ${dir}`,
    '-c listen_addresses=127.0.0.1',
    '-c fsync=off',
    '-c full_page_writes=off',
    '-c shared_buffers=32MB',
    '-c max_connections=100',
  ].join(' ');
  const pgCtl = path.join(bin, 'pg_ctl');
  let up = false;
  const start = async () => {
    await run(pgCtl, ['-D', data, '-l', logFile, '-w', '-t', '60', '-o', options, 'start'], 'pg_ctl start');
    up = true;
  };
  const stop = async (mode: 'fast' | 'immediate' = 'fast') => {
    await run(pgCtl, ['-D', data, '-m', mode, '-w', '-t', '60', 'stop'], `pg_ctl stop -m ${mode}`);
    up = false;
  };
  try {
    await start();
  } catch (err) {
    const log = existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(-2000) : '';
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`${(err as Error).message}\n${log}`);
  }
  // A test process that ends without destroy() (a failed before(), an uncaught error) must not leave a cluster running.
  const onExit = () => {
    if (!up) return;
    const [file, argv] = command(pgCtl, ['-D', data, '-m', 'immediate', '-w', 'stop']);
    try {
      execFileSync(file, argv, { stdio: 'ignore', timeout: 30_000 });
    } catch {}
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', onExit);
  return {
    port,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    running: () => up,
    stop,
    start,
    destroy: async () => {
      process.off('exit', onExit);
      try {
        if (up) await stop('immediate');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
