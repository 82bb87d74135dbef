-- The admin console's tenants table (server/admin/tenant-directory-sql.ts) at
-- 10,000 tenants and many backups each (bench/admin-tenants.bench.ts):
--
-- Each tenant's latest GOOD backup is one probe of this index (LATERAL …
-- ORDER BY finished_at DESC LIMIT 1), whatever number of failed, running or
-- older backups it has; backups_tenant_idx is by started_at and holds every
-- outcome, so the same lookup would walk past failed attempts.
CREATE INDEX backups_tenant_good_idx ON control.backups (tenant_id, finished_at DESC) WHERE outcome = 'succeeded';

-- The table's default order (by name, then id): the first page is the first
-- 51 entries of this index, not a sort of every tenant.
CREATE INDEX tenants_name_idx ON control.tenants (display_name, id);
