// A private PgBouncer (Debian's /usr/sbin/pgbouncer) in transaction mode for a
// test: its own temporary directory, ini and auth file, a free port on
// 127.0.0.1, no Unix socket, and no server_reset_query (transaction mode's
// default: the point is that Enclave leaves no session state to reset).
// Never the system service on 6432 that Debian's package may start.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';

export const PGBOUNCER_BIN = process.env.PGBOUNCER_BIN ?? '/usr/sbin/pgbouncer';

export class PgBouncerError extends Error {
  override name = 'PgBouncerError';
}

export interface PgBouncerOptions {
  /** Where the servers are (default: TEST_DATABASE_URL's host and port). */
  serverUrl?: string;
  /** Server connections per database/user pair (default 2). */
  poolSize?: number;
  /** Client connections the bouncer accepts (default 1000). */
  maxClientConn?: number;
  /** Login names the bouncer lets in (default: the server URL's user). */
  users?: string[];
}

export interface PgBouncer {
  host: string;
  port: number;
  /** "host:port", the value of TEST_VIA_PGBOUNCER. */
  address: string;
  /** The same URL (user, database, parameters) through the bouncer. */
  via(directUrl: string): string;
  /** A client on the bouncer's admin console (SHOW POOLS, SHOW SERVERS): simple queries only. */
  admin(): Promise<pg.Client>;
  /** What the bouncer wrote to stdout and stderr so far. */
  output(): string;
  stop(): Promise<void>;
}

/** `directUrl` with its host and port replaced by the bouncer's ("host:port"). */
export function urlVia(address: string, directUrl: string): string {
  const url = new URL(directUrl);
  url.host = address;
  return url.toString();
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** An unprivileged user to run as when this process is root (pgbouncer refuses to run as root). */
function unprivileged(): string | undefined {
  if (process.getuid?.() !== 0) return undefined;
  for (const name of ['postgres', 'nobody']) {
    try {
      execFileSync('id', ['-u', name], { stdio: 'ignore' });
      return name;
    } catch {}
  }
  throw new PgBouncerError('running as root and no unprivileged user (postgres, nobody) to run pgbouncer as');
}

const quoted = (s: string) => `"${s.replaceAll('"', '""')}"`;

export async function startPgBouncer(options: PgBouncerOptions = {}): Promise<PgBouncer> {
  if (!existsSync(PGBOUNCER_BIN))
    throw new PgBouncerError('pgbouncer is not installed (apt-get install -y pgbouncer)');
  const serverUrlText = options.serverUrl ?? process.env.TEST_DATABASE_URL;
  if (!serverUrlText) throw new PgBouncerError('no server URL: set TEST_DATABASE_URL or pass serverUrl');
  const server = new URL(serverUrlText);
  const users = options.users ?? [decodeURIComponent(server.username || 'postgres')];
  const port = await freePort();
  const runAs = unprivileged();
  const dir = mkdtempSync(path.join(tmpdir(), 'enclave-pgbouncer-'));
  const ini = path.join(dir, 'pgbouncer.ini');
  const auth = path.join(dir, 'userlist.txt');
  // auth_type trust still looks the name up in auth_file.
  writeFileSync(auth, `${users.map((u) => `${quoted(u)} ""`).join('\n')}\n`);
  writeFileSync(
    ini,
    [
      '[databases]',
      // Any database name (the per-test scratch databases) goes to the same server.
      `* = host=${server.hostname.replace(/^\[|\]$/g, '')} port=${server.port || '5432'}`,
      '',
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'pool_mode = transaction',
      `default_pool_size = ${options.poolSize ?? 2}`,
      'min_pool_size = 0',
      'reserve_pool_size = 0',
      `max_client_conn = ${options.maxClientConn ?? 1000}`,
      'auth_type = trust',
      `auth_file = ${auth}`,
      `admin_users = ${users.join(', ')}`,
      'log_connections = 0',
      'log_disconnections = 0',
      '',
    ].join('\n'),
  );
  if (runAs) {
    // The unprivileged user reads the ini and auth file; it writes nothing here (logs go to stderr).
    chmodSync(dir, 0o755);
    chmodSync(ini, 0o644);
    chmodSync(auth, 0o644);
  }
  const args = [...(runAs ? ['-u', runAs] : []), ini];
  const child: ChildProcess = spawn(PGBOUNCER_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (d) => {
    output += d;
  });
  child.stderr?.on('data', (d) => {
    output += d;
  });
  let exited: number | null | undefined;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      exited = code ?? (signal ? -1 : null);
      resolve();
    }),
  );
  const cleanup = () => rmSync(dir, { recursive: true, force: true });

  const host = '127.0.0.1';
  const address = `${host}:${port}`;
  // Ready when it accepts a connection and hands a query to a server.
  const probeUrl = urlVia(address, serverUrlText);
  let lastError: unknown;
  for (const deadline = Date.now() + 10_000; ; ) {
    if (exited !== undefined) {
      cleanup();
      throw new PgBouncerError(`pgbouncer exited (${exited}) at start:\n${output}`);
    }
    const client = new pg.Client({ connectionString: probeUrl, connectionTimeoutMillis: 1000 });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.query('SELECT 1');
      await client.end();
      break;
    } catch (err) {
      lastError = err;
      await client.end().catch(() => {});
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      await exit;
      cleanup();
      throw new PgBouncerError(
        `pgbouncer did not accept connections on ${address}: ${(lastError as Error)?.message}\n${output}`,
      );
    }
    await sleep(50);
  }

  return {
    host,
    port,
    address,
    via: (directUrl) => urlVia(address, directUrl),
    admin: async () => {
      const url = new URL(probeUrl);
      url.pathname = '/pgbouncer';
      const client = new pg.Client({ connectionString: url.toString() });
      client.on('error', () => {});
      await client.connect();
      return client;
    },
    output: () => output,
    stop: async () => {
      if (exited === undefined) {
        // SIGINT: safe shutdown (waits for clients to finish); SIGTERM after a while, then SIGKILL.
        child.kill('SIGINT');
        const done = await Promise.race([exit.then(() => true), sleep(3000).then(() => false)]);
        if (!done) {
          child.kill('SIGTERM');
          const gone = await Promise.race([exit.then(() => true), sleep(3000).then(() => false)]);
          if (!gone) {
            child.kill('SIGKILL');
            await exit;
          }
        }
      }
      cleanup();
    },
  };
}
