// The application killed with SIGKILL mid-load (writes and registrations in
// flight) and started again: every acknowledged write is there, every other
// one is whole or absent, no tenant is half-made, the audit inbox seals into
// valid chains, and sessions (in Redis) survive the restart.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { loadSigner } from '../../audit/signing.ts';
import { ident } from '../../kernel/identifiers.ts';
import { detectDrift } from '../../tenancy/drift.ts';
import { loadTenantMigrations } from '../../tenancy/templates.ts';
import { assertChainValid, chains, sealAll } from '../audit/chain-helpers.ts';
import {
  bodyFor,
  type ChildServer,
  checkNotes,
  type Outcome,
  Person,
  type Stage,
  signUpMany,
  sleep,
  startChild,
  startLoad,
  startStage,
  tally,
  until,
} from './harness.ts';

describe('the app killed with SIGKILL under load', () => {
  let stage: Stage;
  let app: ChildServer | undefined;

  before(async () => {
    stage = await startStage();
  });
  after(async () => {
    if (app && app.child.exitCode === null && app.child.signalCode === null) {
      app.child.kill('SIGTERM');
      await app.exited;
    }
    await stage?.close();
  });

  test('after a restart every acknowledged write and registration is whole, nothing is half-written or half-made, the audit chains verify, and sessions survive', async () => {
    app = await startChild(stage);
    const url = app.url;
    const people = await signUpMany(url, 16);
    const load = startLoad(people, { pauseMs: 20 });
    // Registrations in flight too: each provisions a tenant (role, schema, tables) in one transaction.
    const registrants: Person[] = [];
    const registrations: Outcome[] = [];
    let registering = true;
    const registerLoop = async () => {
      while (registering) {
        const p = new Person(url);
        registrants.push(p);
        const o = await p.register();
        registrations.push(o);
        if (o.status !== 201) await sleep(200);
      }
    };
    const registerLoops = [registerLoop(), registerLoop()];
    // Killed once there is something to lose (on a busy machine that can take a while).
    await until('writes and a registration to be acknowledged', 60_000, async () => {
      const acked = [...load.acknowledged.values()].reduce((n, list) => n + list.length, 0);
      return acked >= 20 && registrations.some((o) => o.status === 201);
    });
    await sleep(300);

    app.child.kill('SIGKILL');
    const killed = await app.exited;
    assert.equal(killed.signal, 'SIGKILL');
    registering = false;
    await Promise.all(registerLoops);
    await load.stop();
    // PostgreSQL sees the dead process's connections go and rolls back what they held.
    await until('the killed server’s sessions to end', 15_000, async () => {
      const { rows } = await stage.db.pool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name <> 'enclave'`,
      );
      return rows[0]?.n === 0;
    });

    app = await startChild(stage);
    for (const p of [...people, ...registrants]) (p as { url: string }).url = app.url;

    const outcomes = load.outcomes;
    assert.deepEqual(
      outcomes.filter((o) => o.failure === 'timeout'),
      [],
      'no request hung',
    );
    const { acknowledged, stored } = await checkNotes(stage.db, load);
    assert.ok(acknowledged > 0, 'the load wrote something before the kill');

    // Registrations: acknowledged ones are whole people with whole workspaces; the others whole or absent.
    const acked = registrants.filter((p) => p.tenantId);
    assert.ok(acked.length > 0, 'some registrations were acknowledged before the kill');
    const { rows: tenants } = await stage.db.pool.query<{ id: string; state: string; schema_name: string }>(
      'SELECT id, state, schema_name FROM control.tenants',
    );
    for (const t of tenants) assert.equal(t.state, 'active', `tenant ${t.id} left ${t.state}`);
    const ids = new Set(tenants.map((t) => t.id));
    for (const p of [...people, ...acked])
      assert.ok(ids.has(p.tenantId), `${p.email}'s workspace is missing`);
    const { rows: users } = await stage.db.pool.query<{ email: string; tenant_id: string }>(
      "SELECT email, tenant_id FROM control.users WHERE role = 'user'",
    );
    assert.equal(users.length, tenants.length, 'one person per workspace, no workspace without its person');
    const { rows: schemas } = await stage.db.pool.query<{ nspname: string }>(
      "SELECT nspname FROM pg_namespace WHERE nspname LIKE 't\\_%'",
    );
    assert.deepEqual(schemas.map((s) => s.nspname).sort(), tenants.map((t) => t.schema_name).sort());
    const { rows: roles } = await stage.db.pool.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM pg_roles WHERE rolname LIKE 't\\_%'",
    );
    assert.equal(roles[0]?.n, tenants.length, 'no tenant role without its tenant');
    const drift = await detectDrift(stage.db.pool, loadTenantMigrations());
    assert.deepEqual(
      drift.filter((d) => d.differences.length > 0),
      [],
      'every workspace has the shape of its schema version',
    );

    // The audit inbox (written in the same transactions) seals into chains that verify.
    const signer = await loadSigner({ DATA_DIR: stage.env.DATA_DIR as string }, stage.db.pool);
    const sealed = await sealAll(stage.db.pool, signer);
    for (const chain of await chains(stage.db.pool)) await assertChainValid(stage.db.pool, chain);

    // Sessions live in Redis, which did not stop: people are still signed in, and can write.
    for (const p of people.slice(0, 4)) {
      const me = await p.call('GET', '/api/v1/me');
      assert.equal(me.outcome.status, 200, JSON.stringify(me.outcome));
      const title = 'after the kill';
      const w = await p.call('POST', '/api/v1/notes', { title, body: bodyFor(title) });
      assert.equal(w.outcome.status, 201, JSON.stringify(w.outcome));
    }
    const unacked = [...load.unacknowledged.values()].flat();
    const unackedStored = (
      await Promise.all(
        people.map(async (p) => {
          const { rows } = await stage.db.pool.query<{ title: string }>(
            `SELECT title FROM ${ident(`t_${p.tenantId}`)}.notes WHERE title = ANY($1)`,
            [load.unacknowledged.get(p) ?? []],
          );
          return rows.length;
        }),
      )
    ).reduce((a, b) => a + b, 0);
    console.log(
      JSON.stringify({
        acknowledged,
        stored,
        unacknowledgedWrites: unacked.length,
        unacknowledgedButStored: unackedStored,
        registrations: tally(registrations),
        tenants: tenants.length,
        sealed,
        load: tally(outcomes),
      }),
    );
  });
});
