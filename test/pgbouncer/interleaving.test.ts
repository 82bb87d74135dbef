// The request path behind PgBouncer in transaction mode: many application
// connections share 2 server connections, so consecutive transactions of one
// app connection land on different server connections and each server
// connection serves every tenant in turn. Enclave is safe there only if a
// unit of work binds everything it needs inside its own transaction and leaves
// nothing at session level; this file proves both on the real unit of work.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { PermissionDeniedError } from '../../kernel/errors.ts';
import { ident } from '../../kernel/identifiers.ts';
import { createOrm, type Orm } from '../../tenancy/orm.ts';
import { provisionTenant } from '../../tenancy/provision.ts';
import { loadTenantMigrations } from '../../tenancy/templates.ts';
import type { TenantRow } from '../../tenancy/tenant-sql.ts';
import { TenantContext, type UnitOfWork } from '../../tenancy/unit-of-work.ts';
import { NoteSchema } from '../../tenancy/workspace-entities.ts';
import { createScratchDatabase, type ScratchDatabase } from '../helpers/database.ts';
import { type PgBouncer, startPgBouncer } from '../helpers/pgbouncer.ts';

const TENANTS = 50;
const UNITS = 10_000;
const SERVER_CONNECTIONS = 2;
const APP_CONNECTIONS = 20;

/** How unit of work i fails, if it does: every 7th, alternately in the handler and in SQL. */
function failure(i: number): 'none' | 'throws' | 'division' | 'trespass' {
  if (i % 7 !== 3) return 'none';
  return (['throws', 'division', 'trespass'] as const)[Math.floor(i / 7) % 3] as 'throws';
}

interface Seen {
  role: string;
  path: string;
  timeout: string;
  owner: string;
  notes: number;
  pid: number;
}

/** The session as a fresh login sees it; after the run every server connection must look like this. */
const SESSION =
  "SELECT pg_backend_pid() AS pid, current_user AS cu, session_user AS su, current_setting('role') AS role, current_setting('search_path') AS path, current_setting('statement_timeout') AS st, current_setting('idle_in_transaction_session_timeout') AS idle";

describe('behind PgBouncer in transaction mode (2 server connections)', () => {
  let bouncer: PgBouncer;
  let db: ScratchDatabase;
  let orm: Orm;
  let appPool: pg.Pool;
  let ctx: TenantContext;
  const tenants: TenantRow[] = [];
  const serverPidsSeen = new Set<number>();

  before(async () => {
    bouncer = await startPgBouncer({ poolSize: SERVER_CONNECTIONS });
    // Created, migrated and provisioned directly; the request path goes through the bouncer.
    db = await createScratchDatabase({ poolSize: 4, viaPgBouncer: bouncer.address });
    const migrations = loadTenantMigrations();
    for (let k = 0; k < TENANTS; k++) {
      const t = await provisionTenant(db.pool, { displayName: `Tenant ${k}` }, migrations);
      tenants.push(t);
      // k + 1 notes, one naming its owner: another tenant's rows would show.
      await db.pool.query(
        `INSERT INTO ${ident(t.schema_name)}.notes (title)
         SELECT 'owner:' || $1 UNION ALL SELECT 'n' || g FROM generate_series(1, $2::int) AS g`,
        [t.id, k],
      );
    }
    const created = await createOrm(db.url, APP_CONNECTIONS);
    orm = created.orm;
    appPool = created.pool;
    ctx = new TenantContext(orm, created.pool, {
      cacheMs: 0, // every unit of work also resolves its tenant through the bouncer
      turnWaitMs: 600_000,
    });
  });
  after(async () => {
    await orm?.close();
    await db?.drop();
    await bouncer?.stop();
  });

  async function unitOfWork(i: number): Promise<Seen> {
    const t = tenants[i % TENANTS] as TenantRow;
    const other = tenants[(i + 1) % TENANTS] as TenantRow;
    const how = failure(i);
    const body = async (uow: UnitOfWork, orm: boolean): Promise<Seen> => {
      const [s] = await uow.query<Omit<Seen, 'notes'>>(
        "SELECT current_user AS role, current_setting('search_path') AS path, current_setting('statement_timeout') AS timeout, (SELECT string_agg(title, ',') FROM notes WHERE title LIKE 'owner:%') AS owner, pg_backend_pid() AS pid",
      );
      // Unqualified, through search_path; the ORM path counts through MikroORM.
      const notes = orm
        ? await uow.em.count(NoteSchema)
        : Number((await uow.query<{ n: number }>('SELECT count(*)::int AS n FROM notes'))[0]?.n);
      if (how !== 'none') await uow.query("INSERT INTO notes (title) VALUES ('must roll back')");
      if (how === 'throws') throw new Error(`boom ${i}`);
      if (how === 'division') await uow.query('SELECT 1 / 0');
      if (how === 'trespass') await uow.query(`SELECT * FROM ${ident(other.schema_name)}.notes`);
      return { ...(s as Omit<Seen, 'notes'>), notes };
    };
    // Both paths of the unit of work: MikroORM's transaction, and sqlOnly on the pg client.
    return i % 2 === 0
      ? ctx.run(t.id, (uow) => body(uow, true))
      : ctx.run(t.id, (uow) => body(uow, false), { sqlOnly: true });
  }

  test('10,000 interleaved units of work over 50 tenants each see only their own role, search_path and data, also around failures', async () => {
    const started = performance.now();
    const settled = await Promise.allSettled(Array.from({ length: UNITS }, (_, i) => unitOfWork(i)));
    const seconds = (performance.now() - started) / 1000;

    const counts = { none: 0, throws: 0, division: 0, trespass: 0 };
    for (const [i, outcome] of settled.entries()) {
      const k = i % TENANTS;
      const t = tenants[k] as TenantRow;
      const how = failure(i);
      counts[how] += 1;
      if (how === 'none') {
        assert.equal(
          outcome.status,
          'fulfilled',
          `unit of work ${i}: ${(outcome as PromiseRejectedResult).reason}`,
        );
        const seen = (outcome as PromiseFulfilledResult<Seen>).value;
        serverPidsSeen.add(seen.pid);
        assert.deepEqual(
          { role: seen.role, path: seen.path, timeout: seen.timeout, owner: seen.owner, notes: seen.notes },
          {
            role: t.role_name,
            path: `"${t.schema_name}"`,
            timeout: '5s',
            owner: `owner:${t.id}`,
            notes: k + 1,
          },
          `unit of work ${i} (tenant ${k})`,
        );
        continue;
      }
      assert.equal(outcome.status, 'rejected', `unit of work ${i} was made to fail (${how})`);
      const reason = (outcome as PromiseRejectedResult).reason;
      if (how === 'throws') assert.equal(reason?.message, `boom ${i}`);
      if (how === 'division') assert.equal(reason?.code ?? reason?.cause?.code, '22012', String(reason));
      if (how === 'trespass')
        assert.ok(reason instanceof PermissionDeniedError, `unit of work ${i}: ${reason}`);
    }
    // i % 7 === 3 for 1,429 of i < 10,000; they split three ways.
    assert.equal(counts.throws + counts.division + counts.trespass, 1429);
    assert.ok(counts.throws > 400 && counts.division > 400 && counts.trespass > 400, JSON.stringify(counts));
    // Many app connections, at most 2 server connections under them all.
    assert.ok(serverPidsSeen.size <= SERVER_CONNECTIONS, `server connections: ${[...serverPidsSeen]}`);
    assert.ok(appPool.totalCount > SERVER_CONNECTIONS, `app connections: ${appPool.totalCount}`);
    // Every failed unit of work rolled back its write.
    const { rows } = await db.pool.query<{ n: number }>(
      `SELECT (${tenants.map((t) => `(SELECT count(*) FROM ${ident(t.schema_name)}.notes WHERE title = 'must roll back')`).join(' + ')})::int AS n`,
    );
    assert.equal(rows[0]?.n, 0);
    console.log(
      `${UNITS} units of work (${UNITS - 1429} returned, 1429 failed by design) over ${TENANTS} tenants, ` +
        `${appPool.totalCount} app connections on ${serverPidsSeen.size} server connections: ` +
        `${seconds.toFixed(1)} s, ${Math.round(UNITS / seconds)}/s`,
    );
  });

  test('afterwards the server connections are at their login defaults and hold no advisory lock', async () => {
    const admin = await bouncer.admin();
    let servers: number[];
    try {
      const rows = (await admin.query('SHOW SERVERS')).rows as Array<{
        database: string;
        remote_pid: number;
      }>;
      servers = rows.filter((r) => r.database === db.name).map((r) => Number(r.remote_pid));
    } finally {
      await admin.end();
    }
    assert.ok(servers.length >= 1 && servers.length <= SERVER_CONNECTIONS, `server connections: ${servers}`);
    for (const pid of serverPidsSeen)
      assert.ok(servers.includes(pid), `server ${pid} is still the bouncer's`);

    // What a fresh login to this database sees, directly.
    const fresh = new pg.Client({ connectionString: db.directUrl });
    await fresh.connect();
    const defaults = (await fresh.query(SESSION)).rows[0];
    await fresh.end();
    assert.equal(defaults.role, 'none');

    // Through the bouncer, clients that each hold a transaction open until all
    // server connections were seen: every one of them is asked.
    const clients = Array.from(
      { length: SERVER_CONNECTIONS },
      () => new pg.Client({ connectionString: db.url }),
    );
    const found = new Map<number, Record<string, unknown>>();
    try {
      for (const c of clients) await c.connect();
      await Promise.all(
        clients.map(async (c) => {
          await c.query('BEGIN');
          const row = (await c.query(SESSION)).rows[0];
          found.set(Number(row.pid), row);
          // Keep this server connection until the others took theirs.
          for (const deadline = Date.now() + 5000; found.size < servers.length && Date.now() < deadline; )
            await new Promise((r) => setTimeout(r, 10));
          await c.query('COMMIT');
        }),
      );
    } finally {
      for (const c of clients) await c.end().catch(() => {});
    }
    assert.deepEqual([...found.keys()].sort(), [...servers].sort(), 'every server connection answered');
    for (const [pid, row] of found) {
      assert.deepEqual(
        { cu: row.cu, su: row.su, role: row.role, path: row.path, st: row.st, idle: row.idle },
        {
          cu: defaults.cu,
          su: defaults.su,
          role: 'none',
          path: defaults.path,
          st: defaults.st,
          idle: defaults.idle,
        },
        `server connection ${pid}`,
      );
    }
    const locks = await db.pool.query<{ pid: number; objid: number }>(
      "SELECT pid, objid FROM pg_locks WHERE locktype = 'advisory' AND pid = ANY($1)",
      [servers],
    );
    assert.deepEqual(locks.rows, [], 'no advisory lock held by a server connection of the bouncer');
    const states = await db.pool.query<{ state: string }>(
      'SELECT state FROM pg_stat_activity WHERE pid = ANY($1)',
      [servers],
    );
    for (const s of states.rows) assert.equal(s.state, 'idle', 'no transaction left open');
  });
});
