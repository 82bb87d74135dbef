// A small closed-loop HTTP load generator for bench/workspace.bench.ts, run in
// a child process of its own. Why not autocannon: the PATCH of a note must
// carry the version the previous PATCH returned (or be refused with 409), and
// at one connection a request takes a few milliseconds, which autocannon's
// whole-millisecond latencies would blur. Each of `connections` workers sends
// a request, reads the whole answer, and only then sends the next (no
// pipelining, no correction for coordinated omission); latency is measured
// from just before the request is written to the end of the answer, with
// performance.now().
import http from 'node:http';
import { noteContent } from './workspace-content.ts';

export type LoadPlan =
  | { kind: 'get'; path: string }
  /** PATCH /api/v1/notes/:id on the notes k = 1..count, whose ids are firstId + k - 1, one after the other. */
  | { kind: 'patch'; firstId: number; count: number }
  /** The same JSON body POSTed to `path` every time (bench/noisy-neighbour.bench.ts: big writes). */
  | { kind: 'post'; path: string; body: string };

export interface LoadRequest {
  type: 'load';
  base: string;
  connections: number;
  durationS: number;
  headers: Record<string, string>;
  plan: LoadPlan;
}

export interface LoadResult {
  durationS: number;
  requests: number;
  ok: number;
  /** Answers other than 2xx, by status. */
  statuses: Record<string, number>;
  errors: number;
  /** PATCHes refused as stale (409); the version then comes from the answer's details. */
  conflicts: number;
  bytes: number;
  /** In ms. */
  latency: { mean: number; min: number; p50: number; p90: number; p99: number; max: number };
  firstError?: string;
}

export interface LoadReply {
  type: 'result';
  id: number;
  result?: LoadResult;
  error?: string;
}

// PATCH state lives for the whole benchmark: every note starts at version 1
// (bulk-inserted), each PATCH moves on to the next note, and the version each
// answer carries is the one the next edit of that note is based on.
const versions = new Map<number, number>();
let nextNote = 0;
let edits = 0;

interface Answer {
  status: number;
  bytes: number;
  text: string;
}

function send(
  agent: http.Agent,
  url: URL,
  method: string,
  headers: Record<string, string>,
  body: string | undefined,
  keepText: boolean,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { agent, method, headers, timeout: 30_000 }, (res) => {
      let bytes = 0;
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        if (keepText) chunks.push(chunk);
      });
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          bytes,
          text: keepText ? Buffer.concat(chunks).toString('utf8') : '',
        }),
      );
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout after 30 s')));
    req.on('error', reject);
    req.end(body);
  });
}

/** One request of the plan; returns its answer after noting what a PATCH needs for the next one. */
async function once(agent: http.Agent, load: LoadRequest): Promise<Answer> {
  const { plan } = load;
  if (plan.kind === 'get') {
    return send(agent, new URL(plan.path, load.base), 'GET', load.headers, undefined, false);
  }
  if (plan.kind === 'post') {
    const headers = {
      ...load.headers,
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(plan.body)),
    };
    return send(agent, new URL(plan.path, load.base), 'POST', headers, plan.body, false);
  }
  const k = (nextNote++ % plan.count) + 1;
  const id = plan.firstId + k - 1;
  const version = versions.get(id) ?? 1;
  // The note's own body plus a line, so the searches keep finding the notes they found.
  const body = JSON.stringify({ version, body: `${noteContent(k).body}\n\nEdited (${++edits}).` });
  const answer = await send(
    agent,
    new URL(`/api/v1/notes/${id}`, load.base),
    'PATCH',
    {
      ...load.headers,
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(body)),
    },
    body,
    true,
  );
  if (answer.status === 200) {
    versions.set(id, (JSON.parse(answer.text) as { note: { version: number } }).note.version);
  } else if (answer.status === 409) {
    const { error } = JSON.parse(answer.text) as { error: { details: { current: { version: number } } } };
    versions.set(id, error.details.current.version);
  }
  return answer;
}

/** Nearest-rank percentile of sorted samples. */
function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0;
}

export async function runLoad(load: LoadRequest): Promise<LoadResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: load.connections });
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  let errors = 0;
  let conflicts = 0;
  let bytes = 0;
  let ok = 0;
  let firstError: string | undefined;
  const started = performance.now();
  const deadline = started + load.durationS * 1000;
  const worker = async () => {
    while (performance.now() < deadline) {
      const t0 = performance.now();
      try {
        const answer = await once(agent, load);
        latencies.push(performance.now() - t0);
        bytes += answer.bytes;
        if (answer.status >= 200 && answer.status < 300) ok++;
        else {
          statuses[answer.status] = (statuses[answer.status] ?? 0) + 1;
          if (answer.status === 409) conflicts++;
          firstError ??= `${answer.status}: ${answer.text.slice(0, 300)}`;
        }
      } catch (err) {
        errors++;
        firstError ??= String(err);
      }
    }
  };
  await Promise.all(Array.from({ length: load.connections }, worker));
  const durationS = (performance.now() - started) / 1000;
  agent.destroy();
  const sorted = Float64Array.from(latencies).sort();
  const r3 = (n: number) => Number(n.toFixed(3));
  return {
    durationS: r3(durationS),
    requests: latencies.length,
    ok,
    statuses,
    errors,
    conflicts,
    bytes,
    latency: {
      mean: r3(latencies.reduce((a, b) => a + b, 0) / Math.max(1, latencies.length)),
      min: r3(sorted[0] ?? 0),
      p50: r3(percentile(sorted, 50)),
      p90: r3(percentile(sorted, 90)),
      p99: r3(percentile(sorted, 99)),
      max: r3(sorted[sorted.length - 1] ?? 0),
    },
    ...(firstError ? { firstError } : {}),
  };
}

/** The body of a `--child load` process: runs one load at a time, on request over IPC. */
export function serveLoad(): void {
  process.on('message', (msg: LoadRequest & { id: number }) => {
    if (msg.type !== 'load') return;
    runLoad(msg).then(
      (result) => process.send?.({ type: 'result', id: msg.id, result } satisfies LoadReply),
      (err: unknown) =>
        process.send?.({ type: 'result', id: msg.id, error: String(err) } satisfies LoadReply),
    );
  });
  process.once('disconnect', () => process.exit(0));
  process.send?.({ type: 'ready', url: '' });
}
