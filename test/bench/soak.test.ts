// The soak's lost-write check (bench/soak.ts), on a real server with the real
// PostgreSQL and Redis: a short soak loses no acknowledged write, and the
// checker does report the writes the database lost behind the server's back.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { checkWrites, judge, type TrackedNote } from '../../bench/soak-check.ts';
import { closeSessions, openSessions, type SoakSession } from '../../bench/soak-client.ts';
import { DEFAULT_MIX, runSoak, type SoakResult, verdict } from '../../bench/soak-load.ts';
import { ident } from '../../kernel/identifiers.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

describe('soak (bench/soak.ts) against a test server', () => {
  let t: TestServer;
  let sessions: SoakSession[] = [];
  let result: SoakResult;

  before(async () => {
    t = await startTestServer();
    sessions = await openSessions({ base: t.url, count: 10, concurrency: 4, log: () => {} });
    result = await runSoak({
      base: t.url,
      sessions,
      durationS: 5,
      inFlight: 2,
      thinkMs: 10,
      mix: DEFAULT_MIX,
      checkConcurrency: 8,
      progressS: 0,
      log: () => {},
    });
  });

  after(async () => {
    await closeSessions(t.url, sessions);
    await t.stop();
  });

  test('10 sessions × 5 s, two requests in flight each: no acknowledged write lost, no 5xx, no missing answer, no 409, writes of every kind verified', () => {
    const { check } = result;
    assert.deepEqual(check.lost, []);
    assert.deepEqual(check.unchecked, []);
    assert.equal(result.serverErrors, 0, result.firstErrors.join('\n'));
    assert.deepEqual(result.network, {});
    assert.equal(result.unexpected, 0, result.firstErrors.join('\n'));
    assert.equal(result.byStatus['409'], undefined, 'two requests of a session never race on one note');
    assert.equal(result.mismatches.count, 0, JSON.stringify(result.mismatches.first));
    assert.ok(
      result.writes.creates > 0 && result.writes.edits > 0 && result.writes.deletes > 0,
      JSON.stringify(result.writes),
    );
    assert.equal(check.notes, result.notes.length);
    assert.equal(check.verified, result.writes.creates + result.writes.edits + result.writes.deletes);
    assert.ok(check.verified > 0);
    assert.deepEqual(verdict(result, { failOn429: false }), []);
  });

  test('the checker reports exactly the notes changed in the database: one deleted, one with another body, one deleted note back', async () => {
    const live = result.notes.filter((n) => n.acked !== 'deleted' && n.unsure.length === 0);
    const removed = live.find((n) => n.writes >= 2) ?? live[0];
    const altered = live.find((n) => n !== removed);
    const revived = result.notes.find((n) => n.acked === 'deleted');
    assert.ok(removed && altered && revived, 'the soak left a live, an edited and a deleted note');
    const schemaOf = async (n: TrackedNote) => {
      const { rows } = await t.db.pool.query<{ schema_name: string }>(
        'SELECT schema_name FROM control.tenants WHERE id = $1',
        [n.session.tenantId],
      );
      return ident(rows[0]?.schema_name as string);
    };
    await t.db.pool.query(`DELETE FROM ${await schemaOf(removed)}.notes WHERE id = $1`, [removed.id]);
    await t.db.pool.query(
      `UPDATE ${await schemaOf(altered)}.notes SET body = body || ' (changed)' WHERE id = $1`,
      [altered.id],
    );
    await t.db.pool.query(
      `INSERT INTO ${await schemaOf(revived)}.notes (id, title, body) OVERRIDING SYSTEM VALUE VALUES ($1, 'back', 'back')`,
      [revived.id],
    );

    const check = await checkWrites(t.url, result.notes, { concurrency: 8 });

    const key = (session: number, id: number) => `${session}/${id}`;
    assert.deepEqual(
      new Map(check.lost.map((l) => [key(l.session, l.id), { expected: l.expected, found: l.found }])),
      new Map([
        [
          key(removed.session.index, removed.id),
          {
            expected: `version ${(removed.acked as { version: number }).version}, ${bodyOf(removed)}`,
            found: 'not found (404)',
          },
        ],
        [
          key(altered.session.index, altered.id),
          {
            expected: `version ${(altered.acked as { version: number }).version}, ${bodyOf(altered)}`,
            found: `version ${(altered.acked as { version: number }).version}, ${bodyOf(altered, ' (changed)')}`,
          },
        ],
        [
          key(revived.session.index, revived.id),
          { expected: 'deleted', found: 'version 1, body "back" (4 chars)' },
        ],
      ]),
    );
    assert.equal(check.notes, result.notes.length);
    assert.deepEqual(check.unchecked, []);
    assert.ok(verdict({ ...result, check }, { failOn429: false }).includes('3 lost write(s)'));
  });

  test('--accounts: the people one run registered are written to the file, and the next run signs them in', async () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'enclave-soak-')), 'accounts.json');
    const first = await openSessions({
      base: t.url,
      count: 2,
      accountsFile: file,
      concurrency: 2,
      log: () => {},
    });
    const saved = JSON.parse(readFileSync(file, 'utf8')) as { email: string; password: string }[];
    assert.deepEqual(
      saved,
      first.map(({ email, password }) => ({ email, password })),
    );
    const again = await openSessions({
      base: t.url,
      count: 2,
      accountsFile: file,
      concurrency: 2,
      log: () => {},
    });
    try {
      assert.deepEqual(
        again.map((s) => [s.email, s.tenantId]),
        first.map((s) => [s.email, s.tenantId]),
      );
      assert.notEqual(again[0]?.cookie, first[0]?.cookie);
      await assert.rejects(
        openSessions({ base: t.url, count: 3, accountsFile: file, concurrency: 1, log: () => {} }),
        /has 2 accounts; --sessions asks for 3/,
      );
    } finally {
      await closeSessions(t.url, [...first, ...again]);
      rmSync(path.dirname(file), { recursive: true, force: true });
    }
  });

  test('429s fail the run only when asked to (--fail-on-429)', () => {
    const limited = { ...result, tooMany: 3 };
    assert.deepEqual(verdict(limited, { failOn429: false }), []);
    assert.deepEqual(verdict(limited, { failOn429: true }), ['3 × 429 (--fail-on-429)']);
  });
});

/** How the checker describes a note's body: its first line and its length. */
function bodyOf(n: TrackedNote, suffix = ''): string {
  const body = (n.acked as { body: string }).body + suffix;
  return `body "${body.split('\n', 1)[0]}" (${body.length} chars)`;
}

describe('judge: what a read-back of one note says', () => {
  const session = { index: 0 } as SoakSession;
  const note = (acked: TrackedNote['acked'], unsure: TrackedNote['unsure'] = []): TrackedNote => ({
    session,
    id: 7,
    acked,
    writes: 2,
    unsure,
    busy: false,
  });
  const ok = (n: { title: string; body: string; version: number }) => ({
    status: 200,
    text: JSON.stringify({ note: { id: 7, ...n } }),
  });
  const v2 = { title: 'T', body: 'soak w2', version: 2 };

  test('the last acknowledged version with its title and body is found; an older one is lost', () => {
    assert.equal(judge(note(v2), ok(v2)), undefined);
    assert.equal(
      judge(note(v2), ok({ ...v2, body: 'soak w1', version: 1 })),
      'version 1, body "soak w1" (7 chars)',
    );
    assert.equal(judge(note(v2), { status: 404, text: '' }), 'not found (404)');
  });

  test('a write without a definite answer may have happened: its text at a later version, or its delete, passes', () => {
    const unsureEdit = note(v2, [{ title: 'T', body: 'soak w3' }]);
    assert.equal(judge(unsureEdit, ok({ title: 'T', body: 'soak w3', version: 3 })), undefined);
    assert.equal(judge(unsureEdit, ok(v2)), undefined);
    assert.equal(
      judge(unsureEdit, ok({ title: 'T', body: 'soak w3', version: 2 })),
      'version 2, body "soak w3" (7 chars)',
    );
    assert.equal(judge(unsureEdit, { status: 404, text: '' }), 'not found (404)');
    assert.equal(judge(note(v2, ['deleted']), { status: 404, text: '' }), undefined);
  });

  test('a note whose delete was acknowledged must be gone', () => {
    assert.equal(judge(note('deleted'), { status: 404, text: '' }), undefined);
    assert.equal(judge(note('deleted'), ok(v2)), 'version 2, body "soak w2" (7 chars)');
  });
});
