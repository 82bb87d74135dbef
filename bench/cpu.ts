// CPU accounting from /proc for the HTTP benchmarks: how much CPU each part
// (server, PostgreSQL backends, load generator...) spent between two
// snapshots, and how busy the whole machine was. On a small shared machine
// these per-request figures are steadier than requests per second.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const TICK_MS = 1000 / (Number(spawnSync('getconf', ['CLK_TCK']).stdout?.toString().trim()) || 100);

/** utime + stime of a process (all its threads) in ms, or undefined once it is gone. */
export function cpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
  } catch {
    return undefined;
  }
}

/** Busy and total CPU time of the whole machine, in ms (all cores). */
function machineMs(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] as string;
  const t = line.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = t.reduce((a, b) => a + b, 0);
  const idle = (t[3] ?? 0) + (t[4] ?? 0);
  return { busy: (total - idle) * TICK_MS, total: total * TICK_MS };
}

export interface CpuSnapshot<Part extends string> {
  pids: Record<Part, number[]>;
  ms: Map<number, number>;
  machine: { busy: number; total: number };
}

export function snapshot<Part extends string>(pids: Record<Part, number[]>): CpuSnapshot<Part> {
  const ms = new Map<number, number>();
  for (const pid of Object.values<number[]>(pids).flat()) {
    const v = cpuMs(pid);
    if (v !== undefined) ms.set(pid, v);
  }
  return { pids, ms, machine: machineMs() };
}

/** CPU ms spent per part between two snapshots (processes seen in both), plus the machine's busy share. */
export function cpuBetween<Part extends string>(a: CpuSnapshot<Part>, b: CpuSnapshot<Part>) {
  const parts = {} as Record<Part, number>;
  for (const [part, pids] of Object.entries(a.pids) as Array<[Part, number[]]>) {
    let sum = 0;
    for (const pid of pids) {
      const before = a.ms.get(pid);
      const after = b.ms.get(pid);
      if (before !== undefined && after !== undefined) sum += after - before;
    }
    parts[part] = sum;
  }
  const busy = b.machine.busy - a.machine.busy;
  const total = b.machine.total - a.machine.total;
  return { parts, machineBusyMs: busy, machineBusyShare: total > 0 ? busy / total : 0 };
}
