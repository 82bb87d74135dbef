// `npm start`: configuration, then startServer, then wait for a signal. This
// module owns the process: exit codes and signal handling live here only.
import { type Config, ConfigError, loadConfig } from '../kernel/config.ts';
import { createLogger, type Logger } from '../kernel/logger.ts';

const EX_CONFIG = 78; // sysexits.h: configuration error
const STOP_SIGNALS = ['SIGINT', 'SIGTERM'] as const;

function configOrExit(): Config {
  try {
    return loadConfig();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`enclave: configuration error: ${err.message}\n`);
    process.exit(EX_CONFIG);
  }
}

let exiting = false;
/** Exits once the logger has written what it holds; the first caller decides the code. */
function exit(log: Logger, code: number): void {
  if (exiting) return;
  exiting = true;
  // Ref'd on purpose: an empty event loop must not end the process with some other code first.
  setTimeout(() => process.exit(code), 1000);
  log.on('finish', () => process.exit(code));
  log.end();
}

const config = configOrExit();
const log = createLogger({ level: config.LOG_LEVEL });
// Loaded only now, so that a configuration error is reported before MikroORM and friends load.
const { StartupError, startServer } = await import('./start.ts');

const started = startServer(config, { log });
started.catch((err: unknown) => {
  const reason = err instanceof Error ? err.message : String(err);
  log.error(`enclave: cannot start: ${reason}`, err instanceof StartupError ? {} : { error: err });
  exit(log, 1);
});

let stopping = false;
function onSignal(signal: NodeJS.Signals): void {
  if (exiting) return;
  if (stopping) {
    log.warn('second signal: exiting without a clean stop', { signal });
    exit(log, 1);
    return;
  }
  stopping = true;
  log.info('stopping', { signal });
  // If start fails instead, the handler above reports it and exits.
  started.then(
    (server) =>
      server.stop().then(
        () => {
          log.info('stopped');
          exit(log, 0);
        },
        (err: unknown) => {
          log.error('stop failed', { error: err });
          exit(log, 1);
        },
      ),
    () => {},
  );
}
for (const signal of STOP_SIGNALS) process.on(signal, onSignal);
