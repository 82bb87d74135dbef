// MikroORM for workspace entities. Its pg pool is also the pool the tenancy
// service uses for raw SQL, so a process holds one pool, not two.
import { MikroORM } from '@mikro-orm/postgresql';
import type { Pool } from './db.ts';
import { WORKSPACE_ENTITIES } from './workspace-entities.ts';

export type Orm = MikroORM;

export async function createOrm(
  connectionString: string,
  poolSize: number,
): Promise<{ orm: Orm; pool: Pool }> {
  const orm = await MikroORM.init({
    clientUrl: connectionString,
    entities: WORKSPACE_ENTITIES,
    pool: { min: 0, max: poolSize },
    // Tenant data is only ever reached through a fork bound to one schema.
    allowGlobalContext: false,
    debug: false,
  });
  const pool = (await orm.em.getConnection().getNativeClient()) as Pool;
  pool.on('error', () => {});
  return { orm, pool };
}
