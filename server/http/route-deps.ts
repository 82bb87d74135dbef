// What the HTTP routes are handed: built once per server in server/web.ts.
import type { ManifestSigner } from '../../audit/bundle.ts';
import type { Backups } from '../../backup/context.ts';
import type { Config } from '../../kernel/config.ts';
import type { Pool } from '../../kernel/db.ts';
import type { Logger } from '../../kernel/logger.ts';
import type { TenantMigration } from '../../tenancy/templates.ts';
import type { TenantContext } from '../../tenancy/unit-of-work.ts';
import type { CredentialAttempts } from '../abuse/attempts.ts';
import type { createPassport } from '../auth/passport.ts';
import type { ExportLimits } from '../export/spool-budget.ts';
import type { SearchRate } from '../load/search-rate.ts';
import type { TenantSlots } from '../load/tenant-slots.ts';
import type { SessionRegistry } from '../sessions/registry.ts';
import type { ThreatDetector } from '../threats/detector.ts';

export interface RouteDeps {
  /** The server's settings (the lifecycle's days and SUPPORT_CONTACT, job schedules). */
  config: Config;
  pool: Pool;
  log: Logger;
  tenants: TenantContext;
  registry: SessionRegistry;
  passport: ReturnType<typeof createPassport>;
  migrations: readonly TenantMigration[];
  /** Keys the hash of an unknown email in a failed sign-in's audit event (derived from the session secret). */
  auditKey: Buffer;
  /** Storage each workspace may use, in bytes (TENANT_QUOTA_MB); 0: no limit. */
  tenantQuotaBytes: number;
  /** Password and code checks after sign-in, counted with sign-ins by the account lockout and per IP. */
  attempts: CredentialAttempts;
  /** Exports and searches one workspace may run at once (TENANT_MAX_EXPORTS, TENANT_MAX_SEARCHES). */
  slots: TenantSlots;
  /** Searches one workspace may start (TENANT_SEARCHES_PER_MINUTE): after sign-in and the query check, before the slot. */
  searchRate: SearchRate;
  /** The export's disk budget, spool directory, deadline and statement budget (EXPORT_*). */
  exports: ExportLimits;
  /** Signs the manifest of an audit export (the audit signing key). */
  auditSigner: ManifestSigner;
  /** Per-tenant backups: storage (BACKUP_DIR), signer, keys and settings (backup/context.ts). */
  backups: Backups;
  /** The scheduled jobs (jobs/registry.ts) with their schedules from the configuration. */
  jobs: ReadonlyArray<{ name: string; title: string; schedule: string | null; perTenant: boolean }>;
  /** Raises threat flags from failed sign-ins and privileged sign-ins (server/threats/, THREAT_*). */
  threats: ThreatDetector;
}
