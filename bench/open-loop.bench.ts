// Open-loop benchmark (issue 14): 200 signed-in sessions offering a FIXED
// 250 requests/s of a mixed workload to a real Enclave server, with the
// latency measured from each request's scheduled send time (free of
// coordinated omission) beside its service time. Aim: p99 <= 25 ms.
//
//   node bench/open-loop.bench.ts [--sessions 200] [--notes 50] [--rate 250[,100,...]] [--duration 30]
//     [--warmup 10] [--rounds 3] [--sockets-per-session 4] [--register-concurrency 4]
//     [--log-level info] [--pool-size ''] [--seed 14]
// Every option can also be set as BENCH_<NAME>. BENCH_DATABASE_URL: an admin
// URL that may create databases and roles (default
// postgres://postgres@127.0.0.1:5432/postgres); BENCH_REDIS_URL (default
// redis://127.0.0.1:6379).
//
// Steps: a scratch database (test/helpers/database.ts, dropped at the end with
// every tenant role, also on failure or Ctrl-C); an Enclave server in a child
// process, configured from its environment like `npm start` at the default
// settings (LOG_LEVEL info, the default pool, every limit at its production
// default); `--sessions` people registered through POST /api/v1/auth/register
// (each provisions its own workspace), `--register-concurrency` at a time.
// Sign-ups are limited to 5 a minute per client address, and that limit is
// kept: each person signs up from an address of its own on the loopback
// network (127.0.X.Y, X drawn per run; Linux routes all of 127/8 to lo), at
// most 4 per address, and keeps using it. Then `--notes` notes are written
// straight into each workspace's schema (bench/workspace-content.ts), VACUUM
// ANALYZE, and every session's list is checked through the API. The load
// generator (bench/open-loop-client.ts) runs in a child process of its own:
// a warm-up of `--warmup` s at the rate, then `--rounds` rounds of
// `--duration` s, each with the CPU the server, its PostgreSQL backends and
// the generator spent. Several rates (`--rate 50,100,250`) run in each round,
// in turn (forward in odd rounds, backward in even ones), the warm-up at the
// first. Results: bench/results/open-loop-<time>.json and
// docs/BENCHMARKS.md.
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ident } from '../kernel/identifiers.ts';
import { createBenchDatabase, type ScratchDatabase } from '../test/helpers/database.ts';
import { api, signOut } from './api-client.ts';
import { Child, startProductionServer } from './children.ts';
import { cpuBetween, snapshot } from './cpu.ts';
import {
  type ClientReply,
  type ClientRequest,
  KINDS,
  type OpenLoopResult,
  type SessionSpec,
  serveOpenLoop,
} from './open-loop-client.ts';
import { saveResults } from './results.ts';
import { beginRun, benchUrls, cleanUp, machine, optionReader, runBench } from './run.ts';
import { noteContent } from './workspace-content.ts';

const THIS_FILE = fileURLToPath(import.meta.url);
const log = (line: string) => process.stderr.write(`${line}\n`);
process.stderr.on('error', () => {});
process.stdout.on('error', () => {});
const round = (n: number, digits = 2) => Number(n.toFixed(digits));

const OPTIONS = {
  sessions: '200',
  notes: '50',
  rate: '250',
  duration: '30',
  warmup: '10',
  rounds: '3',
  'sockets-per-session': '4',
  'register-concurrency': '4',
  'log-level': 'info',
  /** The server's DB_POOL_SIZE; empty: its default. */
  'pool-size': '',
  seed: '14',
};
type OptionName = keyof typeof OPTIONS;

function readOptions(values: Partial<Record<OptionName, string>>) {
  const { raw, int } = optionReader(OPTIONS, values);
  return {
    ...benchUrls(),
    sessions: int('sessions', 1),
    notes: int('notes', 1),
    rates: raw('rate')
      .split(',')
      .map((r) => {
        const n = Number(r.trim());
        if (!Number.isInteger(n) || n < 1) throw new Error(`--rate: whole numbers >= 1, e.g. 250 or 50,250`);
        return n;
      }),
    duration: int('duration', 1),
    warmup: int('warmup', 0),
    rounds: int('rounds', 0),
    socketsPerSession: int('sockets-per-session', 1),
    registerConcurrency: int('register-concurrency', 1),
    logLevel: raw('log-level'),
    poolSize: raw('pool-size') === '' ? undefined : int('pool-size', 1),
    seed: int('seed', 0),
  };
}
type Options = ReturnType<typeof readOptions>;

// --- setup ------------------------------------------------------------------

interface Person extends SessionSpec {
  tenantId: string;
  schema: string;
  role: string;
}

/** Sign-ups per loopback address: below the production limit of 5 a minute per address. */
const PER_ADDRESS = 4;

/** POST /api/v1/auth/register from `localAddress`; the session cookie, CSRF token and tenant. */
function registerFrom(
  base: string,
  localAddress: string,
): Promise<{ status: number; text: string; cookie?: string }> {
  const body = JSON.stringify({
    email: `open-loop.${randomBytes(5).toString('hex')}@example.com`,
    password: randomBytes(18).toString('base64url'),
    displayName: 'Open Loop',
  });
  return new Promise((resolve, reject) => {
    const req = http.request(
      new URL('/api/v1/auth/register', base),
      {
        method: 'POST',
        localAddress,
        headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const sid = (res.headers['set-cookie'] ?? []).find((c) => c.startsWith('enclave.sid='));
          resolve({
            status: res.statusCode ?? 0,
            text: Buffer.concat(chunks).toString('utf8'),
            ...(sid ? { cookie: sid.split(';')[0] } : {}),
          });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function registerAll(
  base: string,
  scratch: ScratchDatabase,
  opts: Options,
  signal: AbortSignal,
): Promise<Person[]> {
  const network = `127.0.${randomInt(20, 250)}`;
  const people: Person[] = [];
  let nextAddress = 1;
  let onAddress = 0;
  const address = () => {
    if (onAddress === PER_ADDRESS) {
      nextAddress++;
      onAddress = 0;
    }
    onAddress++;
    if (nextAddress > 254) throw new Error('out of loopback addresses');
    return `${network}.${nextAddress}`;
  };
  let begun = 0;
  let failure: unknown;
  const worker = async () => {
    while (begun < opts.sessions && failure === undefined && !signal.aborted) {
      begun++;
      try {
        let localAddress = address();
        let reg = await registerFrom(base, localAddress);
        // A 429 means the address was used within the minute (a run just before this one): the next one.
        for (let tries = 0; reg.status === 429 && tries < 5; tries++) {
          onAddress = PER_ADDRESS;
          localAddress = address();
          reg = await registerFrom(base, localAddress);
        }
        if (reg.status !== 201 || !reg.cookie)
          throw new Error(`registration answered ${reg.status}: ${reg.text.slice(0, 300)}`);
        const { csrfToken, user } = JSON.parse(reg.text) as { csrfToken: string; user: { tenantId: string } };
        const { rows } = await scratch.pool.query<{ schema_name: string; role_name: string }>(
          'SELECT schema_name, role_name FROM control.tenants WHERE id = $1',
          [user.tenantId],
        );
        const t = rows[0];
        if (!t) throw new Error(`tenant ${user.tenantId} not found`);
        people.push({
          cookie: reg.cookie,
          csrf: csrfToken,
          localAddress,
          noteIds: [],
          tenantId: user.tenantId,
          schema: t.schema_name,
          role: t.role_name,
        });
        if (people.length % 50 === 0) log(`  ${people.length}/${opts.sessions} registered`);
      } catch (err) {
        failure ??= err;
        return;
      }
    }
  };
  await Promise.all(Array.from({ length: opts.registerConcurrency }, worker));
  if (failure !== undefined) throw failure;
  signal.throwIfAborted();
  return people;
}

/** Notes k0+1..k0+count of workspace-content.ts into the person's schema; their ids. */
async function writeNotes(scratch: ScratchDatabase, person: Person, k0: number, count: number) {
  const notes = Array.from({ length: count }, (_, i) => noteContent(k0 + i + 1));
  const now = Date.now();
  const DAY = 86_400_000;
  const created = notes.map((n) => now - n.ageDays * DAY);
  const { rows } = await scratch.pool.query<{ id: number }>(
    `INSERT INTO ${ident(person.schema)}.notes (title, body, tags, created_at, updated_at)
     SELECT title, body, CASE WHEN tags = '' THEN '{}' ELSE string_to_array(tags, ',') END, c, u
       FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[])
            WITH ORDINALITY AS t(title, body, tags, c, u, k)
      ORDER BY k
     RETURNING id`,
    [
      notes.map((n) => n.title),
      notes.map((n) => n.body),
      notes.map((n) => n.tags.join(',')),
      created.map((c) => new Date(c).toISOString()),
      notes.map((n, i) =>
        new Date(Math.min(now, (created[i] as number) + n.editedAfterDays * DAY)).toISOString(),
      ),
    ],
  );
  return rows.map((r) => Number(r.id));
}

// --- the runs ---------------------------------------------------------------

type LoadChild = Child<ClientRequest, ClientReply>;

interface RoundRun {
  round: number;
  result: OpenLoopResult;
  cpuMsPerRequest: { server: number; postgres: number; loadgen: number };
  machineBusyShare: number;
}

async function runAtRate(load: LoadChild, rate: number, durationS: number): Promise<OpenLoopResult> {
  const reply = await load.request({ type: 'run', rate, durationS });
  if (reply.error || !reply.result) throw new Error(`load generator: ${reply.error}`);
  return reply.result;
}

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};

function summarise(runs: readonly RoundRun[]) {
  if (runs.length === 0) throw new Error('no rounds to summarise');
  const med = (f: (r: RoundRun) => number, digits = 2) => round(median(runs.map(f)), digits);
  const p = (which: 'corrected' | 'service') => ({
    p50: med((r) => r.result[which].p50),
    p90: med((r) => r.result[which].p90),
    p99: med((r) => r.result[which].p99),
    max: round(Math.max(...runs.map((r) => r.result[which].max))),
  });
  return {
    offered: runs[0]?.result.rate ?? 0,
    achieved: med((r) => r.result.achievedRate, 1),
    requests: runs.reduce((a, r) => a + r.result.scheduled, 0),
    errors: runs.reduce((a, r) => a + r.result.errors + (r.result.answered - r.result.ok), 0),
    conflicts: runs.reduce((a, r) => a + r.result.conflicts, 0),
    corrected: p('corrected'),
    service: p('service'),
    byKind: Object.fromEntries(
      KINDS.map((k) => [
        k,
        {
          correctedP50: med((r) => r.result.byKind[k].corrected.p50),
          correctedP99: med((r) => r.result.byKind[k].corrected.p99),
          serviceP99: med((r) => r.result.byKind[k].service.p99),
        },
      ]),
    ),
    serverCpuMs: med((r) => r.cpuMsPerRequest.server, 3),
    postgresCpuMs: med((r) => r.cpuMsPerRequest.postgres, 3),
    loadgenCpuMs: med((r) => r.cpuMsPerRequest.loadgen, 3),
    machineBusy: med((r) => r.machineBusyShare, 3),
  };
}

type Summary = ReturnType<typeof summarise>;

function markdown(runs: readonly RoundRun[], summaries: readonly Summary[], aimMs: number): string {
  const line = (r: RoundRun) => {
    const x = r.result;
    const bad = x.errors + x.answered - x.ok;
    return `| ${r.round} | ${x.rate} | ${x.achievedRate} | ${x.scheduled} | ${bad}${x.conflicts ? ` (${x.conflicts} × 409)` : ''} | ${x.corrected.p50} | ${x.corrected.p90} | ${x.corrected.p99} | ${x.corrected.max} | ${x.service.p50} | ${x.service.p90} | ${x.service.p99} | ${x.service.max} | ${x.sentLate} | ${x.maxInFlight} | ${r.cpuMsPerRequest.server} | ${r.cpuMsPerRequest.postgres} | ${r.cpuMsPerRequest.loadgen} | ${Math.round(r.machineBusyShare * 100)}% |`;
  };
  return `${[
    '| round | offered req/s | achieved req/s | requests | errors | corrected p50 | p90 | p99 | max | service p50 | p90 | p99 | max | sent > 1 ms late | most in flight | server CPU ms/req | PostgreSQL CPU ms/req | generator CPU ms/req | machine busy |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...runs.map(line),
    ...summaries.map(
      (s) =>
        `| **median** | ${s.offered} | ${s.achieved} | ${s.requests} | ${s.errors} | ${s.corrected.p50} | ${s.corrected.p90} | **${s.corrected.p99}** | ${s.corrected.max} | ${s.service.p50} | ${s.service.p90} | ${s.service.p99} | ${s.service.max} | | | ${s.serverCpuMs} | ${s.postgresCpuMs} | ${s.loadgenCpuMs} | ${Math.round(s.machineBusy * 100)}% |`,
    ),
    '',
    '| offered req/s | kind (median of rounds, ms) | corrected p50 | corrected p99 | service p99 |',
    '| ---: | --- | ---: | ---: | ---: |',
    ...summaries.flatMap((s) =>
      KINDS.map((k) => {
        const b = s.byKind[k] as { correctedP50: number; correctedP99: number; serviceP99: number };
        return `| ${s.offered} | ${k} | ${b.correctedP50} | ${b.correctedP99} | ${b.serviceP99} |`;
      }),
    ),
    '',
    ...summaries.map(
      (s) =>
        `At ${s.offered} req/s, aim corrected p99 <= ${aimMs} ms: ${s.corrected.p99 <= aimMs ? 'met' : 'MISSED'} (${s.corrected.p99} ms).`,
    ),
  ].join('\n')}\n`;
}

// --- main -------------------------------------------------------------------

async function main(values: Partial<Record<OptionName, string>>): Promise<void> {
  const opts = readOptions(values);
  const children: Child[] = [];
  const { stopped, startedAt, loadAverageAtStart } = beginRun(log, 'step', () => children);
  const scratch = await createBenchDatabase(opts.adminUrl, { poolSize: 6, migrate: true, log });
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'enclave-bench-open-loop-'));
  let people: Person[] = [];
  let serverUrl = '';
  try {
    const server = await startProductionServer(THIS_FILE, children, {
      logLevel: opts.logLevel,
      databaseUrl: scratch.url,
      redisUrl: opts.redisUrl,
      dataDir,
      poolSize: opts.poolSize,
    });
    serverUrl = server.url;
    log(`scratch database ${scratch.name}; server ${server.url} (LOG_LEVEL=${opts.logLevel})`);

    let started = performance.now();
    people = await registerAll(server.url, scratch, opts, stopped);
    const registerSeconds = round((performance.now() - started) / 1000, 1);
    log(`${people.length} people registered in ${registerSeconds} s; writing ${opts.notes} notes each`);
    started = performance.now();
    for (const [i, person] of people.entries()) {
      stopped.throwIfAborted();
      person.noteIds = await writeNotes(scratch, person, i * opts.notes, opts.notes);
    }
    await scratch.pool.query('VACUUM ANALYZE');
    const seedSeconds = round((performance.now() - started) / 1000, 1);
    log(`  ${seedSeconds} s with VACUUM ANALYZE; checking every session's list`);
    for (const person of people) {
      const res = await api(server.url, 'GET', '/api/v1/notes', { cookie: person.cookie });
      const notes = res.status === 200 ? (res.json() as { notes: unknown[] }).notes.length : -1;
      if (notes !== Math.min(50, opts.notes))
        throw new Error(
          `GET /api/v1/notes answered ${res.status} with ${notes} notes: ${res.text.slice(0, 200)}`,
        );
    }

    const load = new Child('load generator', [THIS_FILE, '--child', 'load'], {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
    }) as LoadChild;
    children.push(load);
    await load.ready();
    await load.request({
      type: 'sessions',
      base: server.url,
      sessions: people.map(({ cookie, csrf, localAddress, noteIds }) => ({
        cookie,
        csrf,
        localAddress,
        noteIds,
      })),
      socketsPerSession: opts.socketsPerSession,
      seed: opts.seed,
    });
    const firstRate = opts.rates[0] as number;
    if (opts.warmup > 0) {
      log(`warm-up: ${opts.warmup} s at ${firstRate} req/s`);
      const w = await runAtRate(load, firstRate, opts.warmup);
      log(
        `  corrected p50 ${w.corrected.p50} p99 ${w.corrected.p99} ms, service p99 ${w.service.p99} ms, ${w.errors + w.answered - w.ok} errors`,
      );
    }
    const runs: RoundRun[] = [];
    for (let r = 1; r <= opts.rounds; r++)
      for (const rate of r % 2 === 1 ? opts.rates : [...opts.rates].reverse()) {
        stopped.throwIfAborted();
        const backends = await scratch.pool.query<{ pid: number }>(
          `SELECT pid FROM pg_stat_activity
          WHERE datname = $1 AND backend_type = 'client backend' AND application_name <> 'enclave-bench'`,
          [scratch.name],
        );
        const before = snapshot({
          server: [server.pid],
          postgres: backends.rows.map((b) => b.pid),
          loadgen: [load.pid],
        });
        const result = await runAtRate(load, rate, opts.duration);
        const cpu = cpuBetween(before, snapshot(before.pids));
        const per = (ms: number) => round(ms / Math.max(1, result.answered), 3);
        const run: RoundRun = {
          round: r,
          result,
          cpuMsPerRequest: {
            server: per(cpu.parts.server),
            postgres: per(cpu.parts.postgres),
            loadgen: per(cpu.parts.loadgen),
          },
          machineBusyShare: round(cpu.machineBusyShare, 3),
        };
        runs.push(run);
        log(
          `round ${r}: ${result.achievedRate}/${result.rate} req/s  corrected p50 ${result.corrected.p50} p99 ${result.corrected.p99} max ${result.corrected.max} ms  service p50 ${result.service.p50} p99 ${result.service.p99} ms  errors ${result.errors + result.answered - result.ok}  server ${run.cpuMsPerRequest.server} ms/req  busy ${Math.round(run.machineBusyShare * 100)}%`,
        );
        if (result.firstError) log(`  first error: ${result.firstError}`);
      }
    const summary = opts.rates.map((rate) => summarise(runs.filter((x) => x.result.rate === rate)));
    const { adminUrl: _a, redisUrl: _r, ...options } = opts;
    const results = {
      startedAt: startedAt.toISOString(),
      machine: await machine(scratch, loadAverageAtStart),
      options,
      setup: { registerSeconds, seedSeconds },
      summary,
      runs,
    };
    const saved = saveResults('open-loop', results.startedAt, results);
    process.stdout.write(markdown(runs, summary, 25));
    log(`results written to ${saved}`);
  } finally {
    if (serverUrl) {
      // Signed out, so the sessions do not linger in the shared Redis until they expire.
      for (let i = 0; i < people.length; i += 8)
        await Promise.all(people.slice(i, i + 8).map((p) => signOut(serverUrl, p).catch(() => {})));
    }
    await cleanUp(children, scratch, dataDir);
  }
}

await runBench(OPTIONS, serveOpenLoop, main);
