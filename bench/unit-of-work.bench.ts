// Where a workspace read spends its time inside the unit of work: an empty
// unit of work, MikroORM `em.find` of 50 notes, the same rows through
// `uow.query`, and the bare pool query. Run: `node bench/unit-of-work.bench.ts`
// (BENCH_DATABASE_URL: an admin URL; default the local postgres).
import { ident } from '../kernel/identifiers.ts';
import { createOrm } from '../tenancy/orm.ts';
import { provisionTenant } from '../tenancy/provision.ts';
import { loadTenantMigrations } from '../tenancy/templates.ts';
import { TenantContext } from '../tenancy/unit-of-work.ts';
import { NoteSchema } from '../tenancy/workspace-entities.ts';
import { createBenchDatabase } from '../test/helpers/database.ts';

const ADMIN = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const ITERATIONS = Number(process.env.BENCH_ITERATIONS ?? 1000);
const LIST =
  'SELECT id, title, body, tags, version, created_at, updated_at FROM notes ORDER BY updated_at DESC, id DESC LIMIT 50';

async function measure(name: string, fn: () => Promise<unknown>) {
  for (let i = 0; i < 200; i++) await fn();
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  for (let i = 0; i < ITERATIONS; i++) await fn();
  const cpu = process.cpuUsage(c0);
  const wall = (performance.now() - t0) / ITERATIONS;
  const cpuMs = (cpu.user + cpu.system) / 1000 / ITERATIONS;
  return { name, wallMs: Number(wall.toFixed(3)), nodeCpuMs: Number(cpuMs.toFixed(3)) };
}

const scratch = await createBenchDatabase(ADMIN, {
  poolSize: 4,
  migrate: true,
  log: (line) => console.error(line),
});
const { pool } = scratch;
try {
  const t = await provisionTenant(pool, { displayName: 'bench' }, loadTenantMigrations());
  await pool.query(
    `INSERT INTO ${ident(t.schema_name)}.notes (title, body, tags)
     SELECT 'note ' || g, repeat('body ', 50), '{a,b}' FROM generate_series(1, 50) g`,
  );
  const { orm } = await createOrm(scratch.url, 4);
  const ctx = new TenantContext(orm, pool, { cacheMs: 2000 });
  const rows = [];
  // Interleaved twice so that noise hits every variant.
  for (let round = 0; round < 2; round++) {
    rows.push(await measure('empty unit of work', () => ctx.run(t.id, async () => 1)));
    rows.push(
      await measure('unit of work + em.find(50 notes)', () =>
        ctx.run(t.id, (u) =>
          u.em.find(
            NoteSchema,
            {},
            { orderBy: { updatedAt: 'desc', id: 'desc' }, limit: 50, disableIdentityMap: true },
          ),
        ),
      ),
    );
    rows.push(await measure('unit of work + uow.query(50 notes)', () => ctx.run(t.id, (u) => u.query(LIST))));
    rows.push(
      await measure('bare pool.query(50 notes)', () =>
        pool.query(LIST.replace('FROM notes', `FROM ${ident(t.schema_name)}.notes`)),
      ),
    );
  }
  console.log(`| variant | wall ms/op | Node CPU ms/op |\n| --- | ---: | ---: |`);
  for (const r of rows) console.log(`| ${r.name} | ${r.wallMs} | ${r.nodeCpuMs} |`);
  await orm.close();
} finally {
  await scratch.drop();
}
