// An in-place restore (the admin API's POST …/backups/:id/restore) on a real
// server while the workspace's owner keeps working over HTTP: the owner's
// requests never fail during the restore (docs/BACKUP.md: readers keep the old
// schema until the commit, writes meanwhile land in the schema that is set
// aside, the swap waits for requests still inside the tenant's tables), and the
// owner's first request after it sees the restored data.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type request from 'supertest';
import { ident } from '../../kernel/identifiers.ts';
import { tenantLock } from '../../kernel/locks.ts';
import {
  type SignedIn,
  signInPrivileged,
  signUp,
  startTestServer,
  type TestServer,
} from '../helpers/server.ts';

const BULK = 4000;
const LOOPS = 3;

interface Sent {
  loop: number;
  kind: 'list' | 'marked' | 'create' | 'read';
  start: number;
  end: number;
  status: number;
  body: {
    notes?: Array<{ id: number; title: string }>;
    note?: { id: number; title: string };
    error?: { message?: string };
  };
  /** For a read: the create it reads back. */
  of?: Sent & { title: string };
}

describe('an in-place restore over HTTP while the owner keeps working', () => {
  let t: TestServer;
  let dataDir: string;
  let admin: SignedIn;
  let owner: SignedIn;
  let tenant: string;
  let schema: string;

  const post = (who: SignedIn, url: string) => who.agent.post(url).set('X-CSRF-Token', who.csrf);

  before(async () => {
    dataDir = mkdtempSync(path.join(tmpdir(), 'enclave-restore-http-'));
    t = await startTestServer({ DATA_DIR: dataDir });
    admin = await signInPrivileged(t, 'admin');
    await post(admin, '/api/v1/admin/reauth').send({ password: admin.password }).expect(204);
    owner = await signUp(t.url);
    tenant = owner.user.tenantId as string;
    schema = (await t.db.pool.query('SELECT schema_name FROM control.tenants WHERE id = $1', [tenant]))
      .rows[0].schema_name;
  });
  after(async () => {
    await t.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('no request of the signed-in owner fails while the restore runs, and the first one after it sees the restored data', async (tc) => {
    const before = (
      await post(owner, '/api/v1/notes')
        .send({ title: 'before the backup', tags: ['marker'] })
        .expect(201)
    ).body.note as { id: number };
    // A few thousand rows, so that the restore (safety backup, load, index builds) takes a while.
    const s = ident(schema);
    await t.db.pool.query(
      `INSERT INTO ${s}.notes (title, body, tags)
       SELECT 'bulk ' || i, repeat('words in the body of note ' || i || '. ', 8), ARRAY['bulk', 't' || (i % 50)]
         FROM generate_series(1, $1::int) i`,
      [BULK],
    );
    await t.db.pool.query(
      `INSERT INTO ${s}.tasks (title, status, note_id)
       SELECT 'task ' || i, (ARRAY['open', 'doing', 'done'])[1 + i % 3], (SELECT min(id) FROM ${s}.notes) + i % ${BULK}
         FROM generate_series(1, $1::int) i`,
      [BULK],
    );
    const backup = (await post(admin, `/api/v1/admin/tenants/${tenant}/backups`).send({}).expect(201)).body
      .backup as { id: string; rows: number };
    assert.ok(backup.rows > 2 * BULK, `${backup.rows} rows in the backup`);
    await post(owner, '/api/v1/notes')
      .send({ title: 'after the backup', tags: ['marker'] })
      .expect(201);

    // The owner's loops: the workspace list, the marked notes (2 before the restore, 1 after),
    // and a note made and read back.
    const sent: Sent[] = [];
    let stop = false;
    const send = async (
      loop: number,
      kind: Sent['kind'],
      req: () => request.Test,
      of?: Sent['of'],
    ): Promise<Sent> => {
      const start = performance.now();
      const res = await req();
      const r: Sent = {
        loop,
        kind,
        start,
        end: performance.now(),
        status: res.status,
        body: res.body,
        ...(of ? { of } : {}),
      };
      sent.push(r);
      return r;
    };
    const loop = async (n: number) => {
      for (let i = 0; !stop; i++) {
        await send(n, 'list', () => owner.agent.get('/api/v1/notes'));
        await send(n, 'marked', () => owner.agent.get('/api/v1/notes?tag=marker&limit=100'));
        const title = `loop ${n} note ${i}`;
        const created = await send(n, 'create', () =>
          post(owner, '/api/v1/notes').send({ title, body: 'made during the restore', tags: ['loop'] }),
        );
        const id = created.body.note?.id;
        if (id !== undefined)
          await send(n, 'read', () => owner.agent.get(`/api/v1/notes/${id}`), { ...created, title });
      }
    };

    // The restore's transaction, seen from outside: intervals in which the tenant's lock was held
    // (after the safety backup, whose session lock is released before its row says succeeded).
    const held: Array<{ from: number; to: number }> = [];
    let safetySeen = false;
    let watching = true;
    const watch = async () => {
      while (watching) {
        const from = performance.now();
        if (!safetySeen) {
          const { rows } = await t.db.pool.query(
            "SELECT count(*)::int AS n FROM control.backups WHERE tenant_id = $1 AND kind = 'safety' AND outcome = 'succeeded'",
            [tenant],
          );
          safetySeen = rows[0].n > 0;
        } else {
          const { rows } = await t.db.pool.query(
            `SELECT count(*)::int AS n FROM pg_locks
              WHERE locktype = 'advisory' AND granted AND classid = $1::bigint::oid
                AND objid = ((hashtext($2)::bigint + 4294967296) % 4294967296)::oid AND objsubid = 2`,
            // The tenant lock (kernel/locks.ts) the restore's transaction holds from its start to its COMMIT.
            tenantLock(tenant).values,
          );
          if (rows[0].n > 0) held.push({ from, to: performance.now() });
        }
        await sleep(5);
      }
    };

    /** Waits until each loop has made a note that started after `from`. */
    const eachLoopCreated = async (from: number) => {
      for (let waited = 0; ; waited += 10) {
        const loopsDone = new Set(
          sent.filter((r) => r.kind === 'create' && r.start > from).map((r) => r.loop),
        );
        if (loopsDone.size === LOOPS) return;
        assert.ok(waited < 30_000, 'the loops made no progress');
        await sleep(10);
      }
    };
    const loops = Array.from({ length: LOOPS }, (_, n) => loop(n));
    await eachLoopCreated(0); // the loops run before the restore starts, too
    const watcher = watch();
    const restoreStart = performance.now();
    const restored = await post(admin, `/api/v1/admin/tenants/${tenant}/backups/${backup.id}/restore`).send({
      confirm: tenant,
    });
    const restoreEnd = performance.now();
    watching = false;
    await watcher;
    await eachLoopCreated(restoreEnd); // and after it
    stop = true;
    await Promise.all(loops);
    assert.equal(restored.status, 200, JSON.stringify(restored.body));
    assert.equal(restored.body.restore.tenantId, tenant);
    assert.equal(restored.body.restore.fromBackup, backup.id);
    assert.equal(restored.body.restore.rows, backup.rows);

    // Requests did overlap the restore, and its transaction.
    const during = sent.filter((r) => r.start < restoreEnd && r.end > restoreStart);
    assert.ok(
      during.length >= 10,
      `${during.length} requests overlapped the restore (${restoreEnd - restoreStart} ms)`,
    );
    assert.ok(held.length > 0, 'the restore transaction was seen holding the tenant lock');
    const inTransaction = sent.filter((r) => held.some((h) => r.start < h.from && r.end > h.to));
    assert.ok(
      inTransaction.length >= 3,
      `${inTransaction.length} requests were in flight inside the restore's transaction`,
    );

    tc.diagnostic(
      `restore ${Math.round(restoreEnd - restoreStart)} ms; ${sent.length} requests, ${during.length} during it, ${inTransaction.length} inside its transaction (seen open ${held.length} times)`,
    );

    // No request failed: every list and create answered 200/201, every read-back 200 with its
    // note, except a note written before the swap (into the schema set aside) and read after it.
    const commitAfter = held[0]?.from as number; // the COMMIT came after the transaction was seen open
    const unexpected = sent.filter((r) => {
      if (r.kind === 'create') return r.status !== 201;
      if (r.kind !== 'read') return r.status !== 200;
      if (r.status === 200 && r.body.note?.title === r.of?.title) return false;
      const straddles = (r.of as Sent).start < restoreEnd && r.end > commitAfter;
      return !(straddles && (r.status === 404 || r.status === 200));
    });
    assert.deepEqual(
      unexpected.map((r) => ({ kind: r.kind, status: r.status, error: r.body.error?.message })),
      [],
    );
    assert.ok(sent.every((r) => r.status < 500));

    // Each marked list is either the data before the restore (both notes) or the restored (the
    // note made before the backup only); any request that started after the restore answered
    // sees the restored data, any that ended before the transaction the old.
    const titles = (r: Sent) => (r.body.notes ?? []).map((x) => x.title).sort();
    const OLD = ['after the backup', 'before the backup'];
    const RESTORED = ['before the backup'];
    const marked = sent.filter((r) => r.kind === 'marked');
    for (const r of marked)
      assert.ok(
        [OLD, RESTORED].some((x) => JSON.stringify(x) === JSON.stringify(titles(r))),
        JSON.stringify(titles(r)),
      );
    const afterRestore = marked.filter((r) => r.start > restoreEnd);
    assert.ok(afterRestore.length > 0);
    for (const r of afterRestore) assert.deepEqual(titles(r), RESTORED);
    for (const r of marked.filter((x) => x.end < commitAfter)) assert.deepEqual(titles(r), OLD);
    assert.ok(
      marked.filter((r) => r.end < commitAfter && r.start > restoreStart).length > 0,
      'old data served during the restore',
    );

    // The owner's next request: the note made before the backup is there, the one after is not.
    assert.equal(
      (await owner.agent.get(`/api/v1/notes/${before.id}`).expect(200)).body.note.title,
      'before the backup',
    );
    const now = (await owner.agent.get('/api/v1/notes?tag=marker').expect(200)).body
      .notes as Sent['body']['notes'];
    assert.deepEqual(
      now?.map((n) => n.title),
      RESTORED,
    );
    const bulk = (
      await t.db.pool.query(`SELECT count(*)::int AS n FROM ${s}.notes WHERE title LIKE 'bulk %'`)
    ).rows[0].n;
    assert.equal(bulk, BULK);

    // Writes made while the restore ran went to the schema set aside; those after it, to the restored one.
    const live = new Set(
      (
        await t.db.pool.query<{ title: string }>(`SELECT title FROM ${s}.notes WHERE 'loop' = ANY(tags)`)
      ).rows.map((r) => r.title),
    );
    const creates = sent.filter((r) => r.kind === 'create' && r.status === 201);
    const lost = creates.filter((r) => r.end < commitAfter);
    const kept = creates.filter((r) => r.start > restoreEnd);
    assert.ok(lost.length > 0 && kept.length > 0);
    const aside = new Set(
      (
        await t.db.pool.query<{ title: string }>(
          `SELECT title FROM ${ident(restored.body.restore.asideSchema)}.notes WHERE 'loop' = ANY(tags)`,
        )
      ).rows.map((r) => r.title),
    );
    for (const r of lost) {
      assert.ok(
        !live.has(r.body.note?.title as string),
        `${r.body.note?.title} is not in the restored schema`,
      );
      assert.ok(aside.has(r.body.note?.title as string), `${r.body.note?.title} is in the schema set aside`);
    }
    for (const r of kept)
      assert.ok(live.has(r.body.note?.title as string), `${r.body.note?.title} is in the restored schema`);
  });
});
