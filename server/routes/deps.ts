// What the HTTP routes are handed: built once in server/lifecycle.ts.
import type { Pool } from '../../tenancy/db.ts';
import type { TenantMigration } from '../../tenancy/templates.ts';
import type { TenantContext } from '../../tenancy/unit-of-work.ts';
import type { createPassport } from '../auth/passport.ts';
import type { Logger } from '../logger.ts';
import type { SessionRegistry } from '../sessions/registry.ts';

export interface RouteDeps {
  pool: Pool;
  log: Logger;
  tenants: TenantContext;
  registry: SessionRegistry;
  passport: ReturnType<typeof createPassport>;
  migrations: readonly TenantMigration[];
  /** Keys the hash of an unknown email in a failed sign-in's audit event (derived from the session secret). */
  auditKey: Buffer;
}
