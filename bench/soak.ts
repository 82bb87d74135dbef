// Soak with a lost-write check (`npm run soak`): `--sessions` signed-in people
// doing mixed reads and writes for `--duration` seconds, then every write the
// server acknowledged is read back (bench/soak-load.ts, bench/soak-check.ts).
//
//   node bench/soak.ts --url http://127.0.0.1:3000 [options]   a running server
//   node bench/soak.ts --start [options]                       a server of its own, on a scratch database
// Options (also BENCH_<NAME>): --sessions 200 --duration 600 --in-flight 2 --think-ms 2000
//   --mix list:35,create:15,read:25,edit:20,delete:5 --accounts FILE --register-concurrency 4
//   --check-concurrency 16 --progress 5 --fail-on-429 --log-level info --pool-size ''
// --accounts FILE: a JSON array of { email, password }; signed in if the file
// exists, else the people registered are written to it (for the next run, or
// for a remote server, where sign-ups are limited to 5 a minute per address).
// With --start: BENCH_DATABASE_URL (an admin URL that may create databases and
// roles; default postgres://postgres@127.0.0.1:5432/postgres) and
// BENCH_REDIS_URL (default redis://127.0.0.1:6379); the server runs in a child
// process at production settings, its database is dropped at the end.
//
// Exit code: 0 when nothing was lost, no answer was a 5xx or missing, and no
// other unexpected answer came (429s only with --fail-on-429); 1 otherwise, or
// when the run could not be set up. Ctrl-C once ends the load early (the check
// still runs); twice stops the check too.
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createBenchDatabase, type ScratchDatabase } from '../test/helpers/database.ts';
import { type Child, serveEnclave, startProductionServer } from './children.ts';
import { saveResults } from './results.ts';
import { benchUrls, cleanUp, optionReader } from './run.ts';
import { closeSessions, openSessions, type SoakSession } from './soak-client.ts';
import { DEFAULT_MIX, parseMix, percentiles, report, runSoak, verdict } from './soak-load.ts';

const THIS_FILE = fileURLToPath(import.meta.url);
const log = (line: string) => process.stderr.write(`${line}\n`);
process.stderr.on('error', () => {});
process.stdout.on('error', () => {});

const OPTIONS = {
  url: '',
  sessions: '200',
  duration: '600',
  'in-flight': '2',
  'think-ms': '2000',
  mix: DEFAULT_MIX,
  accounts: '',
  'register-concurrency': '4',
  'check-concurrency': '16',
  progress: '5',
  'log-level': 'info',
  'pool-size': '',
};
type OptionName = keyof typeof OPTIONS;

function readOptions(
  values: Partial<Record<OptionName, string>>,
  flags: { start: boolean; failOn429: boolean },
) {
  const { raw, int } = optionReader(OPTIONS, values);
  const url = raw('url');
  if (flags.start === (url !== '')) throw new Error('give either --url http://HOST:PORT or --start');
  const mix = raw('mix');
  parseMix(mix);
  return {
    ...benchUrls(),
    ...flags,
    url,
    sessions: int('sessions', 1),
    durationS: int('duration', 1),
    inFlight: int('in-flight', 1),
    thinkMs: int('think-ms', 0),
    mix,
    accounts: raw('accounts') || undefined,
    registerConcurrency: int('register-concurrency', 1),
    checkConcurrency: int('check-concurrency', 1),
    progressS: int('progress', 0),
    logLevel: raw('log-level'),
    poolSize: raw('pool-size') === '' ? undefined : int('pool-size', 1),
  };
}

async function main(
  values: Partial<Record<OptionName, string>>,
  flags: { start: boolean; failOn429: boolean },
) {
  const opts = readOptions(values, flags);
  const startedAt = new Date();
  const loadAverageAtStart = os.loadavg();
  const stopLoad = new AbortController();
  const stopAll = new AbortController();
  const children: Child[] = [];
  process.on('SIGINT', () => {
    if (!stopLoad.signal.aborted) {
      log('interrupted: ending the load, then checking the writes (Ctrl-C again to stop the check)');
      stopLoad.abort();
    } else {
      log('interrupted again: stopping the check, then cleaning up');
      stopAll.abort(new Error('interrupted'));
    }
  });

  let scratch: ScratchDatabase | undefined;
  let dataDir = '';
  let base = opts.url;
  let sessions: SoakSession[] = [];
  try {
    if (opts.start) {
      scratch = await createBenchDatabase(opts.adminUrl, { poolSize: 2, migrate: true, log });
      dataDir = mkdtempSync(path.join(os.tmpdir(), 'enclave-soak-'));
      const server = await startProductionServer(THIS_FILE, children, {
        logLevel: opts.logLevel,
        databaseUrl: scratch.url,
        redisUrl: opts.redisUrl,
        dataDir,
        poolSize: opts.poolSize,
      });
      base = server.url;
      log(`scratch database ${scratch.name}; server ${base} (LOG_LEVEL=${opts.logLevel})`);
    }
    log(
      `${opts.sessions} sessions at ${base}: ${opts.accounts ? `accounts in ${opts.accounts}` : 'registering'}`,
    );
    sessions = await openSessions({
      base,
      count: opts.sessions,
      accountsFile: opts.accounts,
      concurrency: opts.registerConcurrency,
      log,
      signal: stopAll.signal,
    });
    log(
      `load: ${opts.durationS} s, ${opts.inFlight} in flight per session, ${opts.thinkMs} ms mean pause, mix ${opts.mix}`,
    );
    const result = await runSoak({
      base,
      sessions,
      durationS: opts.durationS,
      inFlight: opts.inFlight,
      thinkMs: opts.thinkMs,
      mix: opts.mix,
      checkConcurrency: opts.checkConcurrency,
      progressS: opts.progressS,
      log,
      stopLoad: stopLoad.signal,
      stopAll: stopAll.signal,
    });
    process.stdout.write(report(result, { failOn429: opts.failOn429 }));
    const failed = verdict(result, { failOn429: opts.failOn429 });
    const { notes: _notes, check, ...counts } = result;
    const { adminUrl: _a, redisUrl: _r, ...options } = opts;
    const saved = saveResults('soak', startedAt.toISOString(), {
      startedAt: startedAt.toISOString(),
      machine: {
        cpus: os.availableParallelism(),
        cpuModel: os.cpus()[0]?.model,
        node: process.version,
        loadAverageAtStart,
        loadAverageAtEnd: os.loadavg(),
      },
      options: { ...options, url: opts.start ? '(--start)' : opts.url },
      passed: failed.length === 0,
      failures: failed,
      ...counts,
      check: { ...check, latencies: percentiles(check.latencies) },
    });
    log(`results written to ${saved}`);
    process.exitCode = failed.length ? 1 : 0;
  } finally {
    if (base) await closeSessions(base, sessions);
    if (scratch) await cleanUp(children, scratch, dataDir);
  }
}

const { values } = parseArgs({
  options: {
    child: { type: 'string' },
    start: { type: 'boolean', default: false },
    'fail-on-429': { type: 'boolean', default: false },
    ...Object.fromEntries(Object.keys(OPTIONS).map((k) => [k, { type: 'string' as const }])),
  },
});
if (values.child === 'enclave') await serveEnclave();
else
  await main(values as Partial<Record<OptionName, string>>, {
    start: values.start === true,
    failOn429: values['fail-on-429'] === true || process.env.BENCH_FAIL_ON_429 === '1',
  }).catch((err) => {
    console.error(err);
    process.exitCode = 1;
  });
