// Lists sort by the real column, not by the text the list also selects under
// the same name (`to_char(updated_at ...) AS updated_at`): in ORDER BY a bare
// name means the output column first. Sorting by that millisecond text while
// the cursor compares microseconds skipped rows at page edges, and no index
// could serve the sort (docs/BENCHMARKS.md, "Workspace").
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ident } from '../../../kernel/identifiers.ts';
import { NOTE_SORT_SPECS } from '../../../server/workspace/notes.ts';
import { TASK_SORT_SPECS } from '../../../server/workspace/tasks.ts';
import * as sql from '../../../server/workspace/workspace-sql.ts';
import { type SignedIn, signUp, startTestServer, type TestServer } from '../../helpers/server.ts';

describe('workspace lists sort by the column, to the microsecond', () => {
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

  const create = async (kind: 'notes' | 'tasks', title: string): Promise<number> =>
    (await who.agent.post(`/api/v1/${kind}`).set('X-CSRF-Token', who.csrf).send({ title }).expect(201)).body[
      kind === 'notes' ? 'note' : 'task'
    ].id;

  /** Every id of a list, one per page, following the cursors. */
  const pageThrough = async (route: string): Promise<number[]> => {
    const seen: number[] = [];
    let cursor: string | null = null;
    for (let pages = 0; pages < 20; pages++) {
      const url: string = `${route}&limit=1${cursor ? `&cursor=${cursor}` : ''}`;
      const body = (await who.agent.get(url).expect(200)).body as {
        notes?: Array<{ id: number }>;
        tasks?: Array<{ id: number }>;
        nextCursor: string | null;
      };
      seen.push(...(body.notes ?? body.tasks ?? []).map((r) => r.id));
      cursor = body.nextCursor;
      if (!cursor) break;
    }
    return seen;
  };

  test('rows within one millisecond come in microsecond order, one per page, none skipped', async () => {
    for (const kind of ['notes', 'tasks'] as const) {
      const ids = [];
      for (const title of ['first', 'second', 'third']) ids.push(await create(kind, title));
      // Same millisecond; the later the id, the earlier the microsecond (the order ids alone would reverse).
      const at = [
        '2026-01-01 00:00:00.000900+00',
        '2026-01-01 00:00:00.000500+00',
        '2026-01-01 00:00:00.000100+00',
      ];
      for (const [i, id] of ids.entries()) {
        await t.db.pool.query(
          `UPDATE ${ident(schema)}.${kind} SET updated_at = $1, created_at = $1 WHERE id = $2`,
          [at[i], id],
        );
      }
      const [a, b, c] = ids as [number, number, number];
      assert.deepEqual(
        await pageThrough(`/api/v1/${kind}?sort=updated_desc`),
        [a, b, c],
        `${kind} updated_desc`,
      );
      assert.deepEqual(
        await pageThrough(`/api/v1/${kind}?sort=created_asc`),
        [c, b, a],
        `${kind} created_asc`,
      );
      await t.db.pool.query(`DELETE FROM ${ident(schema)}.${kind} WHERE id = ANY($1)`, [ids]);
    }
  });

  test('the default note list can be read in index order, with no sort step', async () => {
    const stmt = sql.listNotes({ sort: NOTE_SORT_SPECS.updated_desc, limit: 51 });
    const text = stmt.text;
    const client = await t.db.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query("SELECT set_config('search_path', $1, true)", [ident(schema)]);
      // A few rows would be read in one page anyway: make the planner show whether the index can serve the order.
      await client.query('SET LOCAL enable_seqscan = off');
      const { rows } = await client.query(`EXPLAIN ${text}`, stmt.values);
      const plan = rows.map((r) => r['QUERY PLAN']).join('\n');
      assert.match(plan, /Index Scan using notes_updated_idx/, plan);
      assert.doesNotMatch(plan, /\bSort\b/, plan);
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
    // Tasks have no (updated_at, id) index; their statement is checked for the qualified sort only.
    const tasks = sql.listTasks({ sort: TASK_SORT_SPECS.updated_desc, limit: 51 });
    assert.match(tasks.text, /ORDER BY tasks\.updated_at DESC, tasks\.id DESC/);
  });
});
