// The soak's load and its report (bench/soak.ts runs it; test/bench/soak.test.ts
// runs a short one). Each session keeps `inFlight` requests going, closed
// loop, with a random pause of 0 to 2 x `thinkMs` after each answer. A
// request's kind is drawn from the mix:
//   list    GET /api/v1/notes (the first page)
//   create  POST /api/v1/notes (a unique first line, then a few hundred words)
//   read    GET /api/v1/notes/:id of one of the session's notes: it must show
//           the last acknowledged write
//   edit    PATCH /api/v1/notes/:id, a new body based on the version the last
//           answer about the note gave
//   delete  DELETE /api/v1/notes/:id?version=N
// A session works on the notes it created itself, one request at a time per
// note (read, edit and delete take a note nobody of the session is using, or
// become a create when there is none). The acknowledged writes go to the
// ledger (bench/soak-check.ts), which is read back after the load.
import { randomBytes } from 'node:crypto';
import type { CheckResult, NoteState, TrackedNote } from './soak-check.ts';
import { checkWrites, describe } from './soak-check.ts';
import { type Answer, NetworkError, type SoakSession, send } from './soak-client.ts';
import { noteContent } from './workspace-content.ts';

export type Kind = 'list' | 'create' | 'read' | 'edit' | 'delete';
export const KINDS: readonly Kind[] = ['list', 'create', 'read', 'edit', 'delete'];
export const DEFAULT_MIX = 'list:35,create:15,read:25,edit:20,delete:5';

/** "list:35,create:15,..." -> cumulative shares in KINDS order; kinds left out get 0. */
export function parseMix(text: string): number[] {
  const weights = new Map<string, number>();
  for (const part of text.split(',')) {
    const [kind, weight] = part.split(':').map((s) => s.trim());
    const w = Number(weight);
    if (!KINDS.includes(kind as Kind) || !Number.isFinite(w) || w < 0)
      throw new Error(`--mix: kind:weight pairs of ${KINDS.join(', ')}, e.g. ${DEFAULT_MIX}`);
    weights.set(kind as string, w);
  }
  const total = [...weights.values()].reduce((a, b) => a + b, 0);
  if (total <= 0) throw new Error('--mix: the weights add up to 0');
  let sum = 0;
  return KINDS.map((k) => {
    sum += weights.get(k) ?? 0;
    return sum / total;
  });
}

export interface SoakOptions {
  base: string;
  sessions: readonly SoakSession[];
  durationS: number;
  /** Requests each session keeps in flight. */
  inFlight: number;
  /** Mean pause after each answer, ms (drawn from 0 to twice this). */
  thinkMs: number;
  mix: string;
  checkConcurrency: number;
  /** Seconds between progress lines (0: none). */
  progressS: number;
  log: (line: string) => void;
  /** Aborted: the load stops early; the check still runs. */
  stopLoad?: AbortSignal;
  /** Aborted: the check stops too (the notes not read back count as unchecked). */
  stopAll?: AbortSignal;
}

export interface Percentiles {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** Nearest-rank percentiles, ms. */
export function percentiles(samples: readonly number[]): Percentiles {
  const sorted = Float64Array.from(samples).sort();
  const at = (p: number) => sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0;
  const r = (n: number) => Number(n.toFixed(2));
  return { count: sorted.length, p50: r(at(50)), p90: r(at(90)), p99: r(at(99)), max: r(at(100)) };
}

export interface Mismatch {
  session: number;
  id: number;
  expected: string;
  found: string;
}

export interface SoakResult {
  sessions: number;
  /** Seconds from the first request to the last answer of the load. */
  loadSeconds: number;
  requests: number;
  ok: number;
  /** Answers by status ("200", "429", ...), and by "kind status". */
  byStatus: Record<string, number>;
  byKindStatus: Record<string, number>;
  /** Requests without an answer, by error code. */
  network: Record<string, number>;
  serverErrors: number;
  tooMany: number;
  /** Answers no request of this load should get (4xx other than 429: a 404 or 409 about a note it wrote). */
  unexpected: number;
  firstErrors: string[];
  writes: { creates: number; edits: number; deletes: number; unsure: number };
  /** Reads (and write answers) that did not show what the session last wrote. */
  mismatches: { count: number; first: Mismatch[] };
  latency: Record<Kind, Percentiles>;
  throughput: { total: number; byKind: Record<Kind, number> };
  check: CheckResult;
  /** Every note written, for checkWrites again. */
  notes: TrackedNote[];
}

const FIRST_FEW = 10;

class SessionNotes {
  /** Notes the load may still read, edit or delete (not deleted, no unsure write). */
  readonly active: TrackedNote[] = [];
  created = 0;

  /** One at random that no request is about; undefined if none (after a few tries). */
  pickIdle(): TrackedNote | undefined {
    for (let tries = 0; tries < 4 && this.active.length > 0; tries++) {
      const note = this.active[Math.floor(Math.random() * this.active.length)] as TrackedNote;
      if (!note.busy) return note;
    }
    return this.active.find((n) => !n.busy);
  }

  retire(note: TrackedNote): void {
    const i = this.active.indexOf(note);
    if (i >= 0) {
      this.active[i] = this.active[this.active.length - 1] as TrackedNote;
      this.active.pop();
    }
  }
}

/** Runs the load for `durationS` (or until `stopLoad`), then reads back every acknowledged write. */
export async function runSoak(o: SoakOptions): Promise<SoakResult> {
  const cumulative = parseMix(o.mix);
  const run = randomBytes(3).toString('hex');
  const notes: TrackedNote[] = [];
  const perSession = o.sessions.map(() => new SessionNotes());
  const samples = Object.fromEntries(KINDS.map((k) => [k, [] as number[]])) as Record<Kind, number[]>;
  const r: Omit<SoakResult, 'check' | 'notes' | 'latency' | 'throughput' | 'loadSeconds'> = {
    sessions: o.sessions.length,
    requests: 0,
    ok: 0,
    byStatus: {},
    byKindStatus: {},
    network: {},
    serverErrors: 0,
    tooMany: 0,
    unexpected: 0,
    firstErrors: [],
    writes: { creates: 0, edits: 0, deletes: 0, unsure: 0 },
    mismatches: { count: 0, first: [] },
  };
  let writeSeq = 0;
  const mismatch = (m: Mismatch) => {
    r.mismatches.count++;
    if (r.mismatches.first.length < FIRST_FEW) r.mismatches.first.push(m);
  };

  const stop = new AbortController();
  const onStop = () => stop.abort();
  if (o.stopLoad?.aborted) onStop();
  o.stopLoad?.addEventListener('abort', onStop, { once: true });
  const deadline = setTimeout(onStop, o.durationS * 1000);
  /** A pause that ends early when the load stops. */
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      if (stop.signal.aborted) return resolve();
      const done = () => {
        clearTimeout(timer);
        stop.signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      stop.signal.addEventListener('abort', done, { once: true });
    });

  const text = (session: SoakSession, noteSeq: number) => {
    const content = noteContent(1 + Math.floor(Math.random() * 100_000));
    // A first line of its own: each acknowledged body is unique, so an older one is told apart.
    const marker = `soak ${run} s${session.index} n${noteSeq} w${++writeSeq}`;
    return { title: content.title, body: `${marker}\n\n${content.body}`, tags: content.tags };
  };

  /** A note's state from a 2xx answer; a mismatch if it is not what was sent. */
  const acknowledged = (
    session: SoakSession,
    answer: Answer,
    sent: { title: string; body: string },
  ): NoteState & { id: number } => {
    const { note } = JSON.parse(answer.text) as { note: NoteState & { id: number } };
    if (note.body !== sent.body || note.title !== sent.title)
      mismatch({
        session: session.index,
        id: Number(note.id),
        expected: `the text sent ("${sent.body.split('\n', 1)[0]}")`,
        found: describe(note),
      });
    return { id: Number(note.id), title: note.title, body: note.body, version: note.version };
  };

  /** One request; what it did to the ledger. The answer's status, or the NetworkError thrown. */
  const issue = async (session: SoakSession, mine: SessionNotes, wanted: Kind): Promise<[Kind, Answer]> => {
    let kind = wanted;
    let note: TrackedNote | undefined;
    if (kind === 'read' || kind === 'edit' || kind === 'delete') {
      note = mine.pickIdle();
      if (!note) kind = 'create';
    }
    if (kind === 'list') return [kind, await send(o.base, session, 'GET', '/api/v1/notes')];
    if (kind === 'create') {
      const sent = text(session, ++mine.created);
      const answer = await send(o.base, session, 'POST', '/api/v1/notes', sent);
      if (answer.status === 201) {
        const { id, ...state } = acknowledged(session, answer, sent);
        const tracked: TrackedNote = { session, id, acked: state, writes: 1, unsure: [], busy: false };
        notes.push(tracked);
        mine.active.push(tracked);
        r.writes.creates++;
      }
      // A create without an answer may have made a note nobody knows the id of: nothing to check.
      return [kind, answer];
    }
    const n = note as TrackedNote;
    const acked = n.acked as NoteState;
    n.busy = true;
    const route = `/api/v1/notes/${n.id}`;
    let sent: { title: string; body: string } | undefined;
    try {
      if (kind === 'read') {
        const answer = await send(o.base, session, 'GET', route);
        if (answer.status === 200 || answer.status === 404) {
          const found = judgeRead(n, answer);
          if (found) mismatch({ session: session.index, id: n.id, expected: describe(acked), found });
        }
        return [kind, answer];
      }
      if (kind === 'edit') {
        const next = text(session, 0);
        sent = { title: acked.title, body: next.body };
        const answer = await send(o.base, session, 'PATCH', route, {
          version: acked.version,
          body: sent.body,
        });
        if (answer.status === 200) {
          const { id: _id, ...state } = acknowledged(session, answer, sent);
          n.acked = state;
          n.writes++;
          r.writes.edits++;
        } else if (answer.status >= 500) unsure(n, mine, sent);
        return [kind, answer];
      }
      const answer = await send(o.base, session, 'DELETE', `${route}?version=${acked.version}`);
      if (answer.status === 204) {
        n.acked = 'deleted';
        n.writes++;
        r.writes.deletes++;
        mine.retire(n);
      } else if (answer.status >= 500) unsure(n, mine, 'deleted');
      return [kind, answer];
    } catch (err) {
      if (kind === 'edit' && sent) unsure(n, mine, sent);
      if (kind === 'delete') unsure(n, mine, 'deleted');
      throw err;
    } finally {
      n.busy = false;
    }
  };
  const unsure = (n: TrackedNote, mine: SessionNotes, u: TrackedNote['unsure'][number]) => {
    n.unsure.push(u);
    r.writes.unsure++;
    mine.retire(n);
  };
  /** A read must show exactly the last acknowledged write (nothing else writes the session's notes). */
  const judgeRead = (n: TrackedNote, answer: Answer): string | undefined => {
    if (answer.status === 404) return 'not found (404)';
    const found = (JSON.parse(answer.text) as { note: NoteState }).note;
    const acked = n.acked as NoteState;
    return found.version === acked.version && found.body === acked.body && found.title === acked.title
      ? undefined
      : describe(found);
  };

  const count = (key: string, map: Record<string, number>) => {
    map[key] = (map[key] ?? 0) + 1;
  };
  const firstError = (line: string) => {
    if (r.firstErrors.length < FIRST_FEW) r.firstErrors.push(line);
  };

  const worker = async (session: SoakSession, mine: SessionNotes) => {
    // Spread the first requests over the first pause, so the sessions do not all start at once.
    await pause(Math.random() * 2 * o.thinkMs);
    while (!stop.signal.aborted) {
      const u = Math.random();
      const wanted = KINDS[cumulative.findIndex((c) => u < c)] ?? 'list';
      const t0 = performance.now();
      r.requests++;
      let retryAfterS = 0;
      try {
        const [kind, answer] = await issue(session, mine, wanted);
        samples[kind].push(performance.now() - t0);
        count(String(answer.status), r.byStatus);
        count(`${kind} ${answer.status}`, r.byKindStatus);
        if (answer.status >= 200 && answer.status < 300) r.ok++;
        else {
          if (answer.status === 429) {
            r.tooMany++;
            retryAfterS = Math.min(Number(answer.headers['retry-after']) || 1, 5);
          } else if (answer.status >= 500) r.serverErrors++;
          else r.unexpected++;
          if (answer.status !== 429)
            firstError(`${kind} ${answer.status}: ${answer.text.slice(0, 200).replaceAll('\n', ' ')}`);
        }
      } catch (err) {
        if (err instanceof NetworkError) {
          count(err.kind, r.network);
          firstError(`${wanted}: ${err.kind} ${err.message}`);
        } else {
          // An answer this load could not read (a 2xx that is not the JSON the API describes).
          r.unexpected++;
          firstError(`${wanted}: ${String(err)}`);
        }
      }
      await pause(retryAfterS * 1000 + Math.random() * 2 * o.thinkMs);
    }
  };

  const started = performance.now();
  let lastProgress = { at: started, requests: 0 };
  const errors = () => r.serverErrors + r.unexpected + Object.values(r.network).reduce((a, b) => a + b, 0);
  const progress =
    o.progressS > 0
      ? setInterval(() => {
          const now = performance.now();
          const rate = (r.requests - lastProgress.requests) / ((now - lastProgress.at) / 1000);
          lastProgress = { at: now, requests: r.requests };
          o.log(
            `${Math.round((now - started) / 1000)} s  ${r.requests} requests  ${errors()} errors  ${r.tooMany} × 429  ${rate.toFixed(1)} req/s  ${r.writes.creates + r.writes.edits + r.writes.deletes} writes acknowledged`,
          );
        }, o.progressS * 1000)
      : undefined;
  try {
    await Promise.all(
      o.sessions.flatMap((s, i) =>
        Array.from({ length: o.inFlight }, () => worker(s, perSession[i] as SessionNotes)),
      ),
    );
  } finally {
    clearTimeout(deadline);
    clearInterval(progress);
    o.stopLoad?.removeEventListener('abort', onStop);
  }
  const loadSeconds = (performance.now() - started) / 1000;
  const latency = Object.fromEntries(KINDS.map((k) => [k, percentiles(samples[k])])) as Record<
    Kind,
    Percentiles
  >;
  const per = (n: number) => Number((n / loadSeconds).toFixed(1));
  o.log(
    `load done: ${r.requests} requests in ${loadSeconds.toFixed(1)} s; reading back ${notes.length} notes`,
  );
  const check = await checkWrites(o.base, notes, { concurrency: o.checkConcurrency, signal: o.stopAll });
  return {
    ...r,
    loadSeconds: Number(loadSeconds.toFixed(1)),
    latency,
    throughput: {
      total: per(r.requests),
      byKind: Object.fromEntries(KINDS.map((k) => [k, per(samples[k].length)])) as Record<Kind, number>,
    },
    check,
    notes,
  };
}

/** Why the run failed (empty: it passed). 429s count only with `failOn429`. */
export function verdict(result: SoakResult, options: { failOn429: boolean }): string[] {
  const reasons: string[] = [];
  const network = Object.values(result.network).reduce((a, b) => a + b, 0);
  if (result.check.lost.length) reasons.push(`${result.check.lost.length} lost write(s)`);
  if (result.check.unchecked.length)
    reasons.push(`${result.check.unchecked.length} note(s) could not be read back`);
  if (result.mismatches.count)
    reasons.push(`${result.mismatches.count} answer(s) showed other than the last write`);
  if (result.serverErrors) reasons.push(`${result.serverErrors} × 5xx`);
  if (network) reasons.push(`${network} request(s) without an answer`);
  if (result.unexpected) reasons.push(`${result.unexpected} unexpected 4xx`);
  if (options.failOn429 && result.tooMany) reasons.push(`${result.tooMany} × 429 (--fail-on-429)`);
  return reasons;
}

/** The report printed at the end: counts, lost writes, latency and throughput. */
export function report(result: SoakResult, options: { failOn429: boolean }): string {
  const { check } = result;
  const lines = [
    `sessions ${result.sessions}, load ${result.loadSeconds} s: ${result.requests} requests, ${result.throughput.total} req/s`,
    `answers by status: ${
      Object.entries(result.byStatus)
        .sort()
        .map(([s, n]) => `${s} × ${n}`)
        .join(', ') || 'none'
    }`,
    `no answer: ${
      Object.entries(result.network)
        .map(([k, n]) => `${k} × ${n}`)
        .join(', ') || 'none'
    }`,
    `429s: ${result.tooMany} (${options.failOn429 ? 'counted as errors' : 'not counted as errors; --fail-on-429 to count them'})`,
    `writes acknowledged: ${result.writes.creates} creates, ${result.writes.edits} edits, ${result.writes.deletes} deletes; ${result.writes.unsure} without a definite answer`,
    `read back: ${check.notes} notes in ${check.seconds} s, ${check.verified} acknowledged writes verified, ${check.unchecked.length} could not be read`,
    `LOST WRITES: ${check.lost.length}`,
    ...check.lost
      .slice(0, FIRST_FEW)
      .map((l) => `  session ${l.session} note ${l.id}: expected ${l.expected}, found ${l.found}`),
    `answers that did not show the last write: ${result.mismatches.count}`,
    ...result.mismatches.first.map(
      (m) => `  session ${m.session} note ${m.id}: expected ${m.expected}, found ${m.found}`,
    ),
    ...(result.firstErrors.length ? ['first errors:', ...result.firstErrors.map((e) => `  ${e}`)] : []),
    '',
    '| kind | requests | req/s | p50 ms | p90 ms | p99 ms | max ms |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...KINDS.map((k) => {
      const p = result.latency[k];
      return `| ${k} | ${p.count} | ${result.throughput.byKind[k]} | ${p.p50} | ${p.p90} | ${p.p99} | ${p.max} |`;
    }),
    (() => {
      const p = percentiles(check.latencies);
      return `| read-back | ${p.count} | | ${p.p50} | ${p.p90} | ${p.p99} | ${p.max} |`;
    })(),
    '',
  ];
  const reasons = verdict(result, options);
  lines.push(
    reasons.length ? `FAILED: ${reasons.join('; ')}` : 'passed: no lost writes, no 5xx, no network errors',
  );
  return `${lines.join('\n')}\n`;
}
