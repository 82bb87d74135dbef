// The start-up shared by the HTTP benchmarks (bench/http-stack.bench.ts,
// bench/noisy-neighbour.bench.ts, bench/workspace.bench.ts): options from the
// command line or BENCH_<NAME>, Ctrl-C, the machine's facts, the clean-up, and
// the entry that runs either a child (`--child enclave|load`) or the benchmark.
import { rmSync } from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import type { ScratchDatabase } from '../test/helpers/database.ts';
import { type Child, serveEnclave } from './children.ts';

const round = (n: number, digits = 2) => Number(n.toFixed(digits));

/**
 * An option's text: `--name`, else BENCH_NAME (dashes as underscores), else its
 * default; `int` also checks that it is a whole number of at least `min`.
 */
export function optionReader<Name extends string>(
  defaults: Record<Name, string>,
  values: Partial<Record<Name, string>>,
) {
  const raw = (name: Name): string =>
    values[name] ?? process.env[`BENCH_${name.toUpperCase().replaceAll('-', '_')}`] ?? defaults[name];
  const int = (name: Name, min: number): number => {
    const n = Number(raw(name));
    if (!Number.isInteger(n) || n < min)
      throw new Error(`--${name} must be an integer >= ${min}, got ${raw(name)}`);
    return n;
  };
  return { raw, int };
}

/** The admin database URL (BENCH_DATABASE_URL) and the Redis URL (BENCH_REDIS_URL). */
export function benchUrls() {
  return {
    adminUrl: process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
    redisUrl: process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379',
  };
}

/**
 * On Ctrl-C: says so, aborts the returned signal and stops the children that
 * `toStop` names then (main's `finally` cleans up the rest).
 */
export function onInterrupt(
  log: (line: string) => void,
  what: string,
  toStop: () => Iterable<Child | undefined>,
): AbortSignal {
  const stop = new AbortController();
  process.once('SIGINT', () => {
    log(`interrupted: stopping the current ${what}, then cleaning up`);
    stop.abort(new Error('interrupted'));
    for (const child of toStop()) void child?.stop();
  });
  return stop.signal;
}

/** The load average now, as the results record it. */
const loadAverage = () => os.loadavg().map((n) => round(n));

/**
 * The start of a run: Ctrl-C handled (see onInterrupt; `stopped` is its
 * signal), the time and the load average at the start.
 */
export function beginRun(
  log: (line: string) => void,
  what: string,
  toStop: () => Iterable<Child | undefined>,
) {
  const stopped = onInterrupt(log, what, toStop);
  return { stopped, startedAt: new Date(), loadAverageAtStart: loadAverage() };
}

/** The machine a run was on: `facts` (PostgreSQL's version, ...) among the fixed ones. */
export async function machine(
  scratch: ScratchDatabase,
  loadAverageAtStart: number[],
  facts: Record<string, unknown> = {},
) {
  const postgres = (await scratch.pool.query<{ v: string }>('SELECT version() AS v')).rows[0]?.v;
  return {
    cpus: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model,
    memoryGiB: round(os.totalmem() / 2 ** 30, 1),
    node: process.version,
    postgres,
    ...facts,
    loadAverageAtStart,
    loadAverageAtEnd: loadAverage(),
  };
}

/** Stops the children (the last started first), drops the scratch database, removes the data folder. */
export async function cleanUp(children: Child[], scratch: ScratchDatabase, dataDir: string): Promise<void> {
  for (const child of children.reverse()) await child.stop().catch(() => {});
  await scratch.drop();
  rmSync(dataDir, { recursive: true, force: true });
}

/**
 * The entry of a benchmark file: `--child enclave` serves Enclave, `--child
 * load` the load generator; otherwise `main` runs with the options given.
 */
export async function runBench<Name extends string>(
  options: Record<Name, string>,
  serveLoad: () => void,
  main: (values: Partial<Record<Name, string>>) => Promise<void>,
): Promise<void> {
  const { values } = parseArgs({
    options: {
      child: { type: 'string' },
      ...Object.fromEntries(Object.keys(options).map((k) => [k, { type: 'string' as const }])),
    },
  });
  if (values.child === 'enclave') await serveEnclave();
  else if (values.child === 'load') serveLoad();
  else
    await main(values as Partial<Record<Name, string>>).catch((err) => {
      console.error(err);
      process.exitCode = 1;
    });
}
