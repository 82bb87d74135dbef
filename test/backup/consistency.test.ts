import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { backupTenant } from '../../backup/backup.ts';
import { restoreTenant } from '../../backup/restore.ts';
import { ident } from '../../kernel/identifiers.ts';
import { migrateFleet } from '../../tenancy/fleet-migrate.ts';
import { provisionTenant } from '../../tenancy/provision.ts';
import { loadTenantMigrations } from '../../tenancy/templates.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';
import { migrationsDirWith } from '../helpers/migrations.ts';
import { ADMIN, contents, type Fixture, fill, fixture } from './fixture.ts';

const migrations = loadTenantMigrations();

/** A promise and its resolve: a hook waits on it until the test lets it go. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { open, opened };
}

describe('backup: one consistent snapshot while the tenant keeps working', () => {
  let db: TestDatabase;
  let f: Fixture;

  before(async () => {
    db = await createTestDatabase(8);
    f = fixture(db.pool, migrations);
  });
  after(async () => {
    await db.drop();
    f.cleanup();
  });

  test('writes committed by other transactions during the backup are all out of the archive, those before it all in', async () => {
    const t = await provisionTenant(db.pool, { displayName: 'Busy' }, migrations);
    const s = ident(t.schema_name);
    await fill(db.pool, t.schema_name, 10);
    const atSnapshot = await contents(db.pool, t.schema_name);

    // One transaction touching both tables, committed after the backup has
    // copied notes and before it copies tasks (the worst moment without a snapshot).
    const write = async (label: string) => {
      const client = await db.pool.connect();
      try {
        await client.query('BEGIN');
        const note = (await client.query(`INSERT INTO ${s}.notes (title) VALUES ($1) RETURNING id`, [label]))
          .rows[0];
        await client.query(`INSERT INTO ${s}.tasks (title, note_id) VALUES ($1, $2)`, [label, note.id]);
        await client.query(`UPDATE ${s}.notes SET title = $1 WHERE id = (SELECT min(id) FROM ${s}.notes)`, [
          label,
        ]);
        await client.query(`DELETE FROM ${s}.tasks WHERE id = (SELECT min(id) FROM ${s}.tasks)`);
        await client.query('COMMIT');
      } finally {
        client.release();
      }
    };
    const steps: string[] = [];
    const backup = await backupTenant(f.ctx, t.id, {
      by: ADMIN,
      kind: 'manual',
      hooks: {
        afterStep: async (step) => {
          steps.push(step);
          if (step === 'snapshot') await write('during: before any copy');
          if (step === 'table:notes') await write('during: between notes and tasks');
        },
      },
    });
    assert.deepEqual(steps.slice(0, 6), [
      'registered',
      'locked',
      'snapshot',
      'table:notes',
      'table:storage_usage',
      'table:tasks',
    ]);
    const live = await contents(db.pool, t.schema_name);
    assert.ok(
      live.notes.some((r) => r.includes('between notes and tasks')),
      'the writes did commit',
    );

    const clone = await restoreTenant(
      f.ctx,
      () => f.ctx.storage.open(backup.location as string),
      { asNew: 'Busy, as backed up' },
      {
        by: ADMIN,
      },
    );
    const schema = (
      await db.pool.query('SELECT schema_name FROM control.tenants WHERE id = $1', [clone.tenantId])
    ).rows[0].schema_name;
    assert.deepEqual(await contents(db.pool, schema), atSnapshot);
  });

  test('a fleet migration of the tenant started during its backup waits for it, and the tenant’s readers are not blocked', async () => {
    const extra = migrationsDirWith({
      flag: 'ALTER TABLE {{schema}}.notes ADD COLUMN flag boolean NOT NULL DEFAULT false;',
    });
    const withFlag = loadTenantMigrations(extra.dir);
    const t = await provisionTenant(db.pool, { displayName: 'Migrating' }, migrations);
    const s = ident(t.schema_name);
    await fill(db.pool, t.schema_name, 10);

    const paused = gate();
    const resume = gate();
    const backup = backupTenant(f.ctx, t.id, {
      by: ADMIN,
      kind: 'manual',
      hooks: {
        afterStep: async (step) => {
          if (step === 'table:notes') {
            paused.open();
            await resume.opened;
          }
        },
      },
    });
    await paused.opened;
    let fleetDone = false;
    const fleet = migrateFleet(db.pool, withFlag, {
      concurrency: 1,
      tenantIds: [t.id],
      lockTimeoutMs: 30_000,
    }).finally(() => {
      fleetDone = true;
    });
    const reader = await db.pool.connect();
    try {
      await sleep(400);
      assert.equal(fleetDone, false, 'the migration waits for the backup');
      // It waits on the tenant's advisory lock, not in the queue of the notes table's locks.
      const waiting = (
        await db.pool.query(
          `SELECT l.locktype, l.mode FROM pg_locks l WHERE NOT l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
        )
      ).rows;
      assert.deepEqual(waiting, [{ locktype: 'advisory', mode: 'ExclusiveLock' }]);

      // A blocked read is cancelled after a second (and fails the test) instead of hanging it.
      await reader.query("SET statement_timeout = '1s'");
      for (let i = 0; i < 5; i++) {
        const started = performance.now();
        const n = (await reader.query(`SELECT count(*)::int AS n FROM ${s}.notes`)).rows[0].n;
        assert.equal(n, 9);
        await reader.query(`SELECT count(*) FROM ${s}.tasks`);
        const ms = performance.now() - started;
        assert.ok(ms < 500, `a read took ${ms} ms`);
      }
      assert.equal(fleetDone, false);
    } finally {
      reader.release(true);
      resume.open();
    }

    const record = await backup;
    assert.equal(record.outcome, 'succeeded');
    assert.equal(record.schemaVersion, 4);
    const summary = await fleet;
    assert.equal(summary.migrated, 1);
    assert.equal(
      (await db.pool.query('SELECT schema_version FROM control.tenants WHERE id = $1', [t.id])).rows[0]
        .schema_version,
      5,
    );
  });
});
