// How long `enclave` takes to start and print a command's help: the offline
// `audit verify` beside a database command (`tenants list`), each spawned
// --runs times, interleaved so that a busy moment hits all alike. Wall time
// of the whole process (Node start, module loading, help text, exit) and the
// CPU time it used (steadier on a busy machine); medians and ratios are
// printed. No database is touched.
//
// Command modules load in their actions (cli/program.ts), so `tenants list
// --help` no longer pays for pg either; the third case preloads cli/tenants.ts
// (what `tenants list` imports before it connects) to show what a database
// command costs to start, and what `audit verify` is spared.
//
//   node bench/cli-start.bench.ts [--runs 20]
// Results: bench/results/cli-start-<time>.json.
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { saveResults } from './results.ts';

const { values } = parseArgs({
  options: { runs: { type: 'string', default: process.env.BENCH_RUNS ?? '20' } },
});
const runs = Number(values.runs);
const bin = fileURLToPath(new URL('../bin/enclave.js', import.meta.url));

const tenantsModule = new URL('../cli/tenants.ts', import.meta.url).href;
/** Node's arguments for each case. */
const cases = {
  'audit verify --help': [bin, 'audit', 'verify', '--help'],
  'tenants list --help': [bin, 'tenants', 'list', '--help'],
  'tenants list --help, module preloaded': ['--import', tenantsModule, bin, 'tenants', 'list', '--help'],
} as const;
type Name = keyof typeof cases;

/** Prints the process's own CPU time (user + system, ms) to stderr as it exits. */
const CPU_PROBE =
  "data:text/javascript,process.on('exit',()=>{const u=process.cpuUsage();process.stderr.write('\\ncpu-ms '+(u.user+u.system)/1000+'\\n')})";

/** One run: wall time seen from here, and the CPU time the child used (less disturbed by a busy machine). */
function once(args: readonly string[]): { wall: number; cpu: number } {
  const start = process.hrtime.bigint();
  const r = spawnSync(process.execPath, ['--import', CPU_PROBE, ...args], { encoding: 'utf8' });
  const wall = Number(process.hrtime.bigint() - start) / 1e6;
  if (r.status !== 0) throw new Error(`node ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  const cpu = Number(/cpu-ms ([\d.]+)/.exec(r.stderr)?.[1]);
  return { wall, cpu };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};

const names = Object.keys(cases) as Name[];
const runsOf = Object.fromEntries(names.map((n) => [n, [] as { wall: number; cpu: number }[]])) as Record<
  Name,
  { wall: number; cpu: number }[]
>;
for (const n of names) once(cases[n]); // warm-up: file system cache
for (let i = 0; i < runs; i++) {
  const order = i % 2 === 0 ? names : [...names].reverse();
  for (const n of order) runsOf[n].push(once(cases[n]));
}

const startedAt = new Date().toISOString();
const medians = Object.fromEntries(
  names.map((n) => [
    n,
    { wall: median(runsOf[n].map((r) => r.wall)), cpu: median(runsOf[n].map((r) => r.cpu)) },
  ]),
) as Record<Name, { wall: number; cpu: number }>;
const ratioOf = (a: Name, b: Name) => ({
  wall: medians[a].wall / medians[b].wall,
  cpu: medians[a].cpu / medians[b].cpu,
});
const ratio = ratioOf('audit verify --help', 'tenants list --help');
const ratioLoaded = ratioOf('audit verify --help', 'tenants list --help, module preloaded');
console.log(`node ${process.version}, ${os.cpus().length} CPUs, ${runs} runs each, interleaved; medians`);
for (const n of names)
  console.log(
    `  enclave ${n.padEnd(38)} wall ${medians[n].wall.toFixed(1).padStart(7)} ms   cpu ${medians[n].cpu.toFixed(1).padStart(7)} ms`,
  );
const show = (r: { wall: number; cpu: number }) => `wall ${r.wall.toFixed(2)}, cpu ${r.cpu.toFixed(2)}`;
console.log(`  ratio audit verify / tenants list:                   ${show(ratio)}`);
console.log(`  ratio audit verify / tenants list with its module:   ${show(ratioLoaded)}`);
const file = saveResults('cli-start', startedAt, {
  startedAt,
  node: process.version,
  runs,
  medians,
  ratio,
  ratioLoaded,
  runsOf,
});
console.log(`results: ${file}`);
