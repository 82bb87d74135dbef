import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { publishSigningKey, type Signer } from '../../audit/signing.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';
import { assertChainValid, chains, event, insertEvent, sealAll, tempSigner } from './chain-helpers.ts';

let db: TestDatabase;
let signer: Signer;
const TENANTS = ['cccccccccc01', 'cccccccccc02', 'cccccccccc03', null];
const WRITERS = 50;
const EVENTS_EACH = 12;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function startSealer(): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['test/audit/sealing-loop.ts', db.url, signer.file], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.stdout?.once('data', () => resolve(child));
    child.stdout?.resume();
  });
}

/** One writer: its events, each in its own transaction; every third transaction rolls back. */
async function writer(w: number): Promise<{ committed: string[]; rolledBack: string[] }> {
  const committed: string[] = [];
  const rolledBack: string[] = [];
  for (let i = 0; i < EVENTS_EACH; i++) {
    const marker = `w${w}-e${i}`;
    const tenant = TENANTS[(w + i) % TENANTS.length] ?? null;
    const client = await db.pool.connect();
    try {
      await client.query('BEGIN');
      await insertEvent(client, event(tenant, 'note.update', { marker }));
      await sleep(Math.random() * 15); // hold the transaction open a little, so commits interleave
      if (i % 3 === 2) {
        await client.query('ROLLBACK');
        rolledBack.push(marker);
      } else {
        await client.query('COMMIT');
        committed.push(marker);
      }
    } finally {
      client.release();
    }
  }
  return { committed, rolledBack };
}

describe('sealing under load', () => {
  before(async () => {
    db = await createTestDatabase(WRITERS + 4);
    signer = await tempSigner();
    await publishSigningKey(db.pool, signer);
  });
  after(async () => {
    await db.drop();
  });

  test('50 concurrent writers while the sealer is killed and restarted: no fork, no gap, every committed event sealed exactly once', async () => {
    const writing = Promise.all(Array.from({ length: WRITERS }, (_, w) => writer(w)));
    let done = false;
    writing.finally(() => {
      done = true;
    });
    let kills = 0;
    while (!done || kills < 4) {
      const child = await startSealer();
      await sleep(80 + Math.random() * 250);
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
      kills += 1;
    }
    const results = await writing;
    const { rows: byChildren } = await db.pool.query(
      "SELECT count(*)::int AS n FROM control.audit_log WHERE chain <> 'registry'",
    );
    assert.ok(byChildren[0].n > 0, 'the killed sealers sealed nothing: the test proved nothing');
    await sealAll(db.pool, signer, 60_000);

    const committed = results.flatMap((r) => r.committed);
    const rolledBack = new Set(results.flatMap((r) => r.rolledBack));
    const seen = new Map<string, number>();
    for (const chain of await chains(db.pool)) {
      const { rows } = await db.pool.query(
        'SELECT count(*)::int AS n, count(DISTINCT seq)::int AS d, max(seq)::int AS top FROM control.audit_log WHERE chain = $1',
        [chain],
      );
      assert.equal(rows[0].n, rows[0].d, `${chain}: two rows for one seq (a fork)`);
      assert.equal(rows[0].n, rows[0].top, `${chain}: a gap`);
      const entries = await assertChainValid(db.pool, chain);
      if (chain === 'registry') continue;
      for (const e of entries) {
        const marker = (e.details as { marker: string }).marker;
        seen.set(marker, (seen.get(marker) ?? 0) + 1);
      }
    }
    assert.ok(kills >= 4);
    assert.equal(committed.length, WRITERS * EVENTS_EACH - rolledBack.size);
    for (const marker of committed)
      assert.equal(seen.get(marker), 1, `${marker} sealed ${seen.get(marker) ?? 0} times`);
    for (const marker of rolledBack) assert.ok(!seen.has(marker), `rolled-back ${marker} was sealed`);
    assert.equal(seen.size, committed.length);
    const { rows } = await db.pool.query('SELECT count(*)::int AS n FROM control.audit_inbox');
    assert.equal(rows[0].n, 0);
  });
});
