// Child processes of the HTTP benchmarks (bench/http-stack.bench.ts,
// bench/workspace.bench.ts): every server and every load generator runs in a
// process of its own, so no two of them share an event loop. A child says
// `ready` (with its URL) over IPC, then answers requests by id.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../kernel/config.ts';
import { startServer } from '../server/start.ts';

const REPO = path.dirname(path.dirname(fileURLToPath(import.meta.url)));

export interface Ready {
  type: 'ready';
  url: string;
}

/** A child process that says `ready` with its URL over IPC, then answers requests by id. */
export class Child<Request extends object = object, Reply extends { id: number } = { id: number }> {
  readonly name: string;
  readonly process: ChildProcess;
  url = '';
  stdoutBytes = 0;
  stdoutLines = 0;
  #stderr = '';
  #exited = false;
  // Method syntax (bivariant): a Child<X, SomeReply> can stand where a plain Child is expected.
  #pending = new Map<number, { resolve(r: Reply): void; reject(e: Error): void }>();
  #nextId = 1;
  readonly exited: Promise<void>;

  constructor(name: string, args: string[], env: NodeJS.ProcessEnv) {
    this.name = name;
    this.process = spawn(process.execPath, args, {
      cwd: REPO,
      env,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    // Drained and counted, not kept: this is where the Enclave log lines go (a pipe, as to a log shipper).
    this.process.stdout?.on('data', (chunk: Buffer) => {
      this.stdoutBytes += chunk.length;
      for (const byte of chunk) if (byte === 10) this.stdoutLines++;
    });
    this.process.stderr?.on('data', (chunk: Buffer) => {
      this.#stderr = (this.#stderr + chunk.toString()).slice(-4000);
    });
    this.exited = new Promise((resolve) =>
      this.process.once('exit', (code, signal) => {
        this.#exited = true;
        const err = new Error(
          `${name} exited (${signal ?? code})${this.#stderr ? `:\n${this.#stderr}` : ''}`,
        );
        for (const p of this.#pending.values()) p.reject(err);
        this.#pending.clear();
        resolve();
      }),
    );
    this.process.on('message', (msg: Reply) => {
      const p = this.#pending.get(msg.id);
      if (!p) return;
      this.#pending.delete(msg.id);
      p.resolve(msg);
    });
  }

  get pid(): number {
    return this.process.pid as number;
  }

  ready(timeoutMs = 60_000): Promise<this> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${this.name} did not start in ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.process.on('message', (msg: Ready) => {
        if (msg.type !== 'ready') return;
        clearTimeout(timer);
        this.url = msg.url;
        resolve(this);
      });
      this.exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`${this.name} exited before it was ready:\n${this.#stderr}`));
      });
    });
  }

  request(msg: Request): Promise<Reply> {
    if (this.#exited) return Promise.reject(new Error(`${this.name} is not running`));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.process.send({ ...msg, id });
    });
  }

  async stop(): Promise<void> {
    if (this.#exited) return;
    this.process.kill('SIGTERM');
    const timer = setTimeout(() => this.process.kill('SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(timer);
  }
}

/**
 * The body of a `--child enclave` process: the real server, configured from the
 * environment like `npm start`, on a free port; stops on SIGTERM, SIGINT or
 * when the parent goes away.
 */
export async function serveEnclave(): Promise<void> {
  const config = { ...loadConfig(process.env), PORT: 0 }; // any free port (PORT itself must be 1 to 65535)
  const server = await startServer(config, { shutdownGraceMs: 500 });
  const stop = () => {
    server.stop().finally(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  process.once('disconnect', stop);
  process.send?.({ type: 'ready', url: server.url } satisfies Ready);
}

/**
 * The Node flags `npm start` gives the server (its heap bounds, package.json),
 * so that a benchmark's server runs with the memory settings production runs
 * with. Read from the script itself: one place says what they are.
 */
export function startScriptNodeFlags(): string {
  const pkg = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as {
    scripts: { start: string };
  };
  const words = pkg.scripts.start.split(/\s+/);
  if (words[0] !== 'node') throw new Error(`the start script does not run node: ${pkg.scripts.start}`);
  return words.filter((w) => w.startsWith('--')).join(' ');
}

/**
 * The environment of a `--child enclave` server at production defaults: only the
 * database, Redis, a data directory, a fresh session secret, the log level and
 * the Node flags of `npm start` set.
 */
export function productionServerEnv(options: {
  logLevel: string;
  databaseUrl: string;
  redisUrl: string;
  dataDir: string;
  poolSize?: number | string | undefined;
}): Record<string, string | undefined> {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NODE_ENV: 'production',
    LOG_LEVEL: options.logLevel,
    DATABASE_URL: options.databaseUrl,
    REDIS_URL: options.redisUrl,
    DATA_DIR: options.dataDir,
    SESSION_SECRET: randomBytes(32).toString('hex'),
    NODE_OPTIONS: startScriptNodeFlags(),
    ...(options.poolSize ? { DB_POOL_SIZE: String(options.poolSize) } : {}),
  };
}

/**
 * A `--child enclave` server of `entry` (the benchmark file itself) at
 * production defaults (productionServerEnv), ready. It joins `children` before
 * it is waited for, so the benchmark's clean-up stops it on Ctrl-C or failure.
 */
export async function startProductionServer(
  entry: string,
  children: Child[],
  options: Parameters<typeof productionServerEnv>[0],
): Promise<Child> {
  const server = new Child('enclave', [entry, '--child', 'enclave'], productionServerEnv(options));
  children.push(server);
  return server.ready();
}
