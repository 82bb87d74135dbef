// The open-loop load generator of bench/open-loop.bench.ts, run in a child
// process of its own (never in the server's). It offers a FIXED rate: request
// i of a run is scheduled at start + i / rate, whatever happened to the
// requests before it, and its latency is measured from that SCHEDULED time to
// the end of its answer (the coordinated-omission-free figure, as wrk2's
// corrected mode). A request that leaves late, because this process's timer
// fired late or because all of its session's connections were busy, counts
// that wait. Its service time, from the moment it got a connection to the end
// of the answer, is recorded beside it (what a closed-loop tool would report).
//
// The mixed workload, each request for one of the sessions in turn (round
// robin), its kind drawn with a seeded random number:
//   60% GET /api/v1/notes            the first page of the session's notes (50)
//   20% POST /api/v1/notes           a new note (title, a Markdown body of a few hundred words, tags)
//   10% GET /api/v1/notes/:id        one of the session's notes
//   10% PATCH /api/v1/notes/:id      a new body, based on the version the last answer about that note carried
// Each session has its own keep-alive agent (at most `socketsPerSession`
// connections, as a browser keeps a few), from its own loopback address.
import http from 'node:http';
import { noteContent } from './workspace-content.ts';

export type Kind = 'list' | 'create' | 'read' | 'edit';
export const KINDS: readonly Kind[] = ['list', 'create', 'read', 'edit'];
/** Cumulative shares of the kinds above: 60%, 20%, 10%, 10%. */
const CUMULATIVE_SHARE = [0.6, 0.8, 0.9, 1];

export interface SessionSpec {
  cookie: string;
  csrf: string;
  /** The loopback address this session's connections come from (it registered from it). */
  localAddress: string;
  /** Its notes (all at version 1 when handed over). */
  noteIds: number[];
}

export type ClientRequest =
  | { type: 'sessions'; base: string; sessions: SessionSpec[]; socketsPerSession: number; seed: number }
  | { type: 'run'; rate: number; durationS: number };

export interface Percentiles {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

export interface OpenLoopResult {
  rate: number;
  durationS: number;
  /** Requests scheduled (rate x duration). */
  scheduled: number;
  /** Answers of any status; the rest were network errors. */
  answered: number;
  ok: number;
  /** Non-2xx answers by "kind status". */
  statuses: Record<string, number>;
  errors: number;
  firstError?: string;
  /** Edits refused as stale (409): two edits of the same note in flight at once. */
  conflicts: number;
  /** Requests that got their connection more than 1 ms after their scheduled time. */
  sentLate: number;
  /** The largest delay between scheduled time and getting a connection, in ms. */
  maxSendDelayMs: number;
  /** Answers per second over the time from the first scheduled send to the last answer. */
  achievedRate: number;
  /** Seconds from the end of the schedule until the last answer arrived. */
  drainS: number;
  /** Most requests in flight (sent or waiting for a connection) at once. */
  maxInFlight: number;
  /** In ms, every request: from its scheduled time (corrected) and from getting its connection (service). */
  corrected: Percentiles;
  service: Percentiles;
  byKind: Record<Kind, { corrected: Percentiles; service: Percentiles }>;
}

export type ClientReply = { type: 'result'; id: number; result?: OpenLoopResult; error?: string };

/** mulberry32: seeded, so two runs draw the same sequence of kinds and notes. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Session extends SessionSpec {
  agent: http.Agent;
  versions: Map<number, number>;
}

let base = '';
let sessions: Session[] = [];
let rng: () => number = random(1);
let nextSession = 0;
let edits = 0;

interface Answer {
  status: number;
  text: string;
  /** performance.now() when the request got its connection. */
  sentAt: number;
}

function send(session: Session, method: string, route: string, body?: string): Promise<Answer> {
  const headers: Record<string, string> = { cookie: session.cookie };
  if (method !== 'GET') headers['x-csrf-token'] = session.csrf;
  if (body !== undefined) {
    headers['content-type'] = 'application/json';
    headers['content-length'] = String(Buffer.byteLength(body));
  }
  return new Promise((resolve, reject) => {
    let sentAt = 0;
    const req = http.request(
      new URL(route, base),
      { agent: session.agent, method, headers, localAddress: session.localAddress, timeout: 30_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), sentAt }),
        );
        res.on('error', reject);
      },
    );
    req.once('socket', () => {
      sentAt = performance.now();
    });
    req.on('timeout', () => req.destroy(new Error('timeout after 30 s')));
    req.on('error', reject);
    req.end(body);
  });
}

function pickKind(): Kind {
  const u = rng();
  return KINDS[CUMULATIVE_SHARE.findIndex((c) => u < c)] ?? 'list';
}

function pickNote(session: Session): number {
  return session.noteIds[Math.floor(rng() * session.noteIds.length)] as number;
}

/** One request of `kind` for `session`; keeps the note ids and versions its answer tells. */
async function issue(session: Session, kind: Kind): Promise<Answer> {
  switch (kind) {
    case 'list':
      return send(session, 'GET', '/api/v1/notes');
    case 'read':
      return send(session, 'GET', `/api/v1/notes/${pickNote(session)}`);
    case 'create': {
      const n = noteContent(1 + Math.floor(rng() * 100_000));
      const answer = await send(
        session,
        'POST',
        '/api/v1/notes',
        JSON.stringify({ title: n.title, body: n.body, tags: n.tags }),
      );
      if (answer.status === 201) {
        const { note } = JSON.parse(answer.text) as { note: { id: number; version: number } };
        session.noteIds.push(note.id);
        session.versions.set(note.id, note.version);
      }
      return answer;
    }
    case 'edit': {
      const id = pickNote(session);
      const version = session.versions.get(id) ?? 1;
      const body = `${noteContent(id).body}\n\nEdited (${++edits}).`;
      const answer = await send(session, 'PATCH', `/api/v1/notes/${id}`, JSON.stringify({ version, body }));
      if (answer.status === 200) {
        const { note } = JSON.parse(answer.text) as { note: { version: number } };
        session.versions.set(id, Math.max(note.version, session.versions.get(id) ?? 1));
      } else if (answer.status === 409) {
        const { error } = JSON.parse(answer.text) as { error: { details: { current: { version: number } } } };
        session.versions.set(id, error.details.current.version);
      }
      return answer;
    }
  }
}

/** Nearest-rank percentiles of the samples (sorted here). */
function percentiles(samples: number[]): Percentiles {
  const sorted = Float64Array.from(samples).sort();
  const at = (p: number) => sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0;
  const r = (n: number) => Number(n.toFixed(2));
  return {
    count: sorted.length,
    p50: r(at(50)),
    p90: r(at(90)),
    p99: r(at(99)),
    p999: r(at(99.9)),
    max: r(sorted[sorted.length - 1] ?? 0),
    mean: r(sorted.reduce((a, b) => a + b, 0) / Math.max(1, sorted.length)),
  };
}

export async function runOpenLoop(rate: number, durationS: number): Promise<OpenLoopResult> {
  if (sessions.length === 0) throw new Error('no sessions: send a "sessions" message first');
  const interval = 1000 / rate;
  const total = Math.round(rate * durationS);
  const corrected: number[] = [];
  const service: number[] = [];
  const byKind = Object.fromEntries(
    KINDS.map((k) => [k, { corrected: [] as number[], service: [] as number[] }]),
  ) as Record<Kind, { corrected: number[]; service: number[] }>;
  const statuses: Record<string, number> = {};
  let answered = 0;
  let ok = 0;
  let errors = 0;
  let conflicts = 0;
  let sentLate = 0;
  let maxSendDelayMs = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  let lastAnswerAt = 0;
  let firstError: string | undefined;
  let done = 0;
  let finish: () => void = () => {};
  const finished = new Promise<void>((resolve) => {
    finish = resolve;
  });

  const fire = (scheduled: number) => {
    const session = sessions[nextSession++ % sessions.length] as Session;
    const kind = pickKind();
    inFlight++;
    if (inFlight > maxInFlight) maxInFlight = inFlight;
    issue(session, kind)
      .then(
        (answer) => {
          const end = performance.now();
          lastAnswerAt = end;
          const delay = answer.sentAt - scheduled;
          if (delay > 1) sentLate++;
          if (delay > maxSendDelayMs) maxSendDelayMs = delay;
          corrected.push(end - scheduled);
          service.push(end - answer.sentAt);
          byKind[kind].corrected.push(end - scheduled);
          byKind[kind].service.push(end - answer.sentAt);
          answered++;
          if (answer.status >= 200 && answer.status < 300) ok++;
          else {
            const key = `${kind} ${answer.status}`;
            statuses[key] = (statuses[key] ?? 0) + 1;
            if (answer.status === 409) conflicts++;
            firstError ??= `${kind} ${answer.status}: ${answer.text.slice(0, 300)}`;
          }
        },
        (err: unknown) => {
          lastAnswerAt = performance.now();
          errors++;
          firstError ??= `${kind}: ${String(err)}`;
        },
      )
      .finally(() => {
        inFlight--;
        if (++done === total) finish();
      });
  };

  const start = performance.now() + 5;
  let i = 0;
  // Every request whose time has come is sent at once; the wait to the next is at most 1 ms.
  const tick = () => {
    const now = performance.now();
    while (i < total && start + i * interval <= now) fire(start + i++ * interval);
    if (i < total) setTimeout(tick, Math.max(0, Math.min(1, start + i * interval - now)));
  };
  setTimeout(tick, 5);
  await finished;

  const r3 = (n: number) => Number(n.toFixed(3));
  const scheduleEnd = start + total * interval;
  return {
    rate,
    durationS,
    scheduled: total,
    answered,
    ok,
    statuses,
    errors,
    ...(firstError ? { firstError } : {}),
    conflicts,
    sentLate,
    maxSendDelayMs: r3(maxSendDelayMs),
    achievedRate: r3(answered / ((Math.max(lastAnswerAt, scheduleEnd) - start) / 1000)),
    drainS: r3(Math.max(0, lastAnswerAt - scheduleEnd) / 1000),
    maxInFlight,
    corrected: percentiles(corrected),
    service: percentiles(service),
    byKind: Object.fromEntries(
      KINDS.map((k) => [
        k,
        { corrected: percentiles(byKind[k].corrected), service: percentiles(byKind[k].service) },
      ]),
    ) as OpenLoopResult['byKind'],
  };
}

/** The body of the `--child load` process: takes the sessions, then runs one rate at a time over IPC. */
export function serveOpenLoop(): void {
  process.on('message', (msg: ClientRequest & { id: number }) => {
    if (msg.type === 'sessions') {
      base = msg.base;
      rng = random(msg.seed);
      for (const s of sessions) s.agent.destroy();
      sessions = msg.sessions.map((s) => ({
        ...s,
        noteIds: [...s.noteIds],
        agent: new http.Agent({ keepAlive: true, maxSockets: msg.socketsPerSession }),
        versions: new Map(),
      }));
      process.send?.({ type: 'result', id: msg.id } satisfies ClientReply);
      return;
    }
    if (msg.type !== 'run') return;
    runOpenLoop(msg.rate, msg.durationS).then(
      (result) => process.send?.({ type: 'result', id: msg.id, result } satisfies ClientReply),
      (err: unknown) =>
        process.send?.({ type: 'result', id: msg.id, error: String(err) } satisfies ClientReply),
    );
  });
  process.once('disconnect', () => process.exit(0));
  process.send?.({ type: 'ready', url: '' });
}
