// The lost-write check of the soak (bench/soak.ts). Every write the server
// acknowledged (a 2xx naming the note, its version and body) is kept here, per
// note; at the end each note is read back through the API with its session:
// the last acknowledged version must be there with exactly that title and
// body, and a note whose delete was acknowledged must be gone.
//
// Requests of one session about one note go one at a time (the load marks the
// note busy), so the acknowledged order is the order of the answers and no two
// of them race. A write that got no answer, or a 5xx, may or may not have
// happened: the note is then left out of the load and may also be in that
// state at the end.
import { type SoakSession, send } from './soak-client.ts';

export interface NoteState {
  title: string;
  body: string;
  version: number;
}

/** A write whose outcome is unknown: an edit to this title and body, or a delete. */
export type Unsure = { title: string; body: string } | 'deleted';

export interface TrackedNote {
  session: SoakSession;
  id: number;
  /** What the last acknowledged write left. */
  acked: NoteState | 'deleted';
  /** Acknowledged writes of the note, its create included. */
  writes: number;
  /** Writes without a definite answer (the note takes no more writes after one). */
  unsure: Unsure[];
  /** A request about it is in flight. */
  busy: boolean;
}

export interface LostWrite {
  session: number;
  id: number;
  expected: string;
  found: string;
}

export interface CheckResult {
  /** Notes read back. */
  notes: number;
  /** Acknowledged writes of the notes read back whose last state was found. */
  verified: number;
  lost: LostWrite[];
  /** Notes that could not be read back (5xx, 429 or no answer, three times; or the check was stopped). */
  unchecked: { session: number; id: number; reason: string }[];
  /** Time of each read-back, ms. */
  latencies: number[];
  seconds: number;
}

/** The first line of a body: the load writes a unique marker there. */
const firstLine = (body: string) => body.split('\n', 1)[0]?.slice(0, 80) ?? '';

export function describe(state: NoteState | 'deleted'): string {
  return state === 'deleted'
    ? 'deleted'
    : `version ${state.version}, body "${firstLine(state.body)}" (${state.body.length} chars)`;
}

/**
 * What an answer to GET /api/v1/notes/:id says of the note: undefined when it
 * shows the last acknowledged write (or one of the unsure ones), else what was
 * found instead. Other answers than 200 and 404 are for the caller.
 */
export function judge(note: TrackedNote, answer: { status: number; text: string }): string | undefined {
  const mayBeGone = note.acked === 'deleted' || note.unsure.includes('deleted');
  if (answer.status === 404) return mayBeGone ? undefined : 'not found (404)';
  const found = (JSON.parse(answer.text) as { note: NoteState }).note;
  const { acked } = note;
  if (acked !== 'deleted') {
    if (found.version === acked.version && found.body === acked.body && found.title === acked.title)
      return undefined;
    // An unsure edit that did happen: a later version with its text.
    const unsure = note.unsure.some(
      (u) =>
        u !== 'deleted' && found.version > acked.version && u.body === found.body && u.title === found.title,
    );
    if (unsure) return undefined;
  }
  return describe(found);
}

const RETRIES = 3;

/**
 * Reads back every note in `notes` through the API (`concurrency` at a time)
 * and reports each whose last acknowledged write is not what the server has.
 */
export async function checkWrites(
  base: string,
  notes: readonly TrackedNote[],
  options: { concurrency?: number; signal?: AbortSignal } = {},
): Promise<CheckResult> {
  const started = performance.now();
  const result: CheckResult = { notes: 0, verified: 0, lost: [], unchecked: [], latencies: [], seconds: 0 };
  let next = 0;
  const checkOne = async (note: TrackedNote) => {
    let reason = '';
    for (let attempt = 1; attempt <= RETRIES; attempt++) {
      const t0 = performance.now();
      try {
        const answer = await send(base, note.session, 'GET', `/api/v1/notes/${note.id}`);
        result.latencies.push(performance.now() - t0);
        if (answer.status === 200 || answer.status === 404) {
          result.notes++;
          const found = judge(note, answer);
          if (found === undefined) result.verified += note.writes;
          else
            result.lost.push({
              session: note.session.index,
              id: note.id,
              expected: describe(note.acked),
              found,
            });
          return;
        }
        reason = `${answer.status}: ${answer.text.slice(0, 200)}`;
        // Anything but 429 and 5xx will not change on a retry.
        if (answer.status !== 429 && answer.status < 500) break;
      } catch (err) {
        reason = String(err);
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
    result.unchecked.push({ session: note.session.index, id: note.id, reason });
  };
  const worker = async () => {
    while (next < notes.length && !options.signal?.aborted) await checkOne(notes[next++] as TrackedNote);
  };
  await Promise.all(Array.from({ length: options.concurrency ?? 16 }, worker));
  for (const note of notes.slice(next))
    result.unchecked.push({ session: note.session.index, id: note.id, reason: 'the check was stopped' });
  result.lost.sort((a, b) => a.session - b.session || a.id - b.id);
  result.seconds = Number(((performance.now() - started) / 1000).toFixed(1));
  return result;
}
