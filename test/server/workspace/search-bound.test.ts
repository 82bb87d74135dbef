// Search with a bound (issue 14): only the N most recently edited matches are
// ranked; the answer says when there were more (API `cutShort`, a line on the
// search page). Within the candidates the order is still by rank, ties by id
// (descending), and the cursor pages through that one ranking.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ident } from '../../../kernel/identifiers.ts';
import type { KeysetSort } from '../../../server/workspace/pagination.ts';
import * as sql from '../../../server/workspace/workspace-sql.ts';
import { type SignedIn, signUp, startTestServer, type TestServer } from '../../helpers/server.ts';

const RANK_SORT: KeysetSort = { name: 'rank', column: 'rank', type: 'number', direction: 'desc' };

describe('search ranks a bounded set of candidates', () => {
  let t: TestServer;
  let who: SignedIn;
  let schema: string;

  before(async () => {
    t = await startTestServer();
    who = await signUp(t.url);
    const { rows } = await t.db.pool.query('SELECT schema_name FROM control.tenants WHERE id = $1', [
      who.user.tenantId,
    ]);
    schema = rows[0].schema_name;
  });
  after(async () => {
    await t.stop();
  });

  /** Notes written straight into the schema; `minutesAgo` sets updated_at. Returns the ids in order. */
  const insert = async (notes: Array<{ title: string; body: string; minutesAgo: number }>) => {
    const { rows } = await t.db.pool.query<{ id: string }>(
      `INSERT INTO ${ident(schema)}.notes (title, body, updated_at)
       SELECT title, body, now() - make_interval(mins => m)
         FROM unnest($1::text[], $2::text[], $3::int[]) WITH ORDINALITY AS x(title, body, m, k)
        ORDER BY k RETURNING id`,
      [notes.map((n) => n.title), notes.map((n) => n.body), notes.map((n) => n.minutesAgo)],
    );
    return rows.map((r) => Number(r.id));
  };

  /** The statement's rows, run as the tenant would (search_path = the schema), in a rolled-back transaction. */
  const run = async (options: Parameters<typeof sql.searchNotes>[0]) => {
    const client = await t.db.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query("SELECT set_config('search_path', $1, true)", [ident(schema)]);
      const stmt = sql.searchNotes(options);
      return (await client.query<sql.SearchStatementRow>(stmt.text, stmt.values)).rows;
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  };

  test('over the bound: only the most recently edited matches, still ranked by rank then id; cut_short', async () => {
    // Six matches; the two best (title hits) are the oldest, so a bound of 4 leaves them out.
    const [oldTitle1, oldTitle2, body1, body2, bodyMany, body3] = await insert([
      { title: 'quokka one', body: 'x', minutesAgo: 60 },
      { title: 'quokka two', body: 'x', minutesAgo: 50 },
      { title: 'b1', body: 'a quokka', minutesAgo: 40 },
      { title: 'b2', body: 'a quokka', minutesAgo: 30 },
      { title: 'b3', body: 'quokka quokka quokka quokka', minutesAgo: 20 },
      { title: 'b4', body: 'a quokka', minutesAgo: 10 },
    ]);
    const bounded = await run({ q: 'quokka', sort: RANK_SORT, limit: 10, candidates: 4 });
    assert.deepEqual(
      bounded.map((r) => Number(r.id)),
      [bodyMany, body3, body2, body1],
      'the 4 most recent, best first; equal ranks by id descending',
    );
    assert.ok(bounded.every((r) => r.cut_short === true));

    const whole = await run({ q: 'quokka', sort: RANK_SORT, limit: 10, candidates: 6 });
    assert.deepEqual(
      whole.map((r) => Number(r.id)),
      [oldTitle2, oldTitle1, bodyMany, body3, body2, body1],
      'exactly as many matches as the bound: all ranked, title hits first, not cut short',
    );
    assert.ok(whole.every((r) => r.cut_short === false));
  });

  test('the cursor pages through the same bounded ranking, one row a page, none repeated or skipped', async () => {
    const onePage = await run({ q: 'quokka', sort: RANK_SORT, limit: 10, candidates: 5 });
    const seen: number[] = [];
    let cursor: { key: string; id: number } | undefined;
    for (let pages = 0; pages < 10; pages++) {
      const rows = await run({ q: 'quokka', sort: RANK_SORT, limit: 1, candidates: 5, cursor });
      if (rows[0]?.id === null || rows.length === 0) {
        assert.equal(rows[0]?.cut_short, true, 'an empty page still says it was cut short');
        break;
      }
      const row = rows[0] as sql.SearchRow;
      seen.push(Number(row.id));
      cursor = { key: row.sort_key, id: Number(row.id) };
    }
    assert.deepEqual(
      seen,
      onePage.map((r) => Number(r.id)),
    );
    assert.equal(seen.length, 5);
  });

  test('no match: one row of NULLs with the flag, and the API answers no results, not cut short', async () => {
    const rows = await run({ q: 'nowhere', sort: RANK_SORT, limit: 10 });
    assert.equal(rows.length, 1);
    assert.equal(rows[0]?.id, null);
    assert.equal(rows[0]?.cut_short, false);
    const res = await who.agent.get('/api/v1/search?q=nowhere').expect(200);
    assert.deepEqual(res.body, { results: [], nextCursor: null, cutShort: false });
  });

  test(`more than ${sql.SEARCH_CANDIDATES} matches: the API says cutShort and the page says so`, async () => {
    const few = await who.agent.get('/api/v1/search?q=quokka').expect(200);
    assert.equal(few.body.cutShort, false);
    const page = await who.agent.get('/workspace/search?q=quokka').expect(200);
    assert.doesNotMatch(page.text, /most recently edited were searched/);

    await insert(
      Array.from({ length: sql.SEARCH_CANDIDATES + 1 }, (_, i) => ({
        title: `many ${i}`,
        body: 'wombat',
        minutesAgo: 100 + i,
      })),
    );
    const res = await who.agent.get('/api/v1/search?q=wombat').expect(200);
    assert.equal(res.body.cutShort, true);
    assert.equal(res.body.results.length, 20);
    assert.ok(res.body.nextCursor);
    const html = await who.agent.get('/workspace/search?q=wombat').expect(200);
    assert.match(html.text, /only the 1,000 most recently edited were searched/);
  });
});
