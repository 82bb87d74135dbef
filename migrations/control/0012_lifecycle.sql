-- The inactive-tenant lifecycle (docs/LIFECYCLE.md): a persistent state
-- machine, one row per tenant that is in it, and the log of every step taken.
--
--   flagged      no activity for INACTIVE_AFTER_DAYS; its people see a notice at sign-in
--   suspended    suspended by the lifecycle (suspend_reason 'inactive'); none of its data is served
--   final_backup the final backup has started (final_backup_id NULL until it is recorded): a run
--                that finds this stage takes a new backup, it never trusts an unrecorded one
--   backed_up    the final backup is recorded (final_backup_id), not yet verified
--   verified     the final backup was restored into scratch and every table matched
--   dropped      schema and role dropped, tenant marked deleted, in one transaction;
--                final_backup_id points at the backup that is all that is left
--
-- A sign-in or a resume deletes the row: the lifecycle starts again from fresh activity.
CREATE TABLE control.tenant_lifecycle (
  tenant_id               text PRIMARY KEY REFERENCES control.tenants (id),
  stage                   text NOT NULL
                          CHECK (stage IN ('flagged', 'suspended', 'final_backup', 'backed_up', 'verified', 'dropped')),
  inactive_since          timestamptz NOT NULL,
  flagged_at              timestamptz NOT NULL,
  suspended_at            timestamptz,
  suspend_reason          text CHECK (suspend_reason IN ('inactive')),
  final_backup_started_at timestamptz,
  final_backup_attempts   integer NOT NULL DEFAULT 0 CHECK (final_backup_attempts >= 0),
  final_backup_id         uuid REFERENCES control.backups (id),
  verified_at             timestamptz,
  dropped_at              timestamptz,
  updated_at              timestamptz NOT NULL DEFAULT now(),
  CHECK (stage = 'flagged' OR (suspended_at IS NOT NULL AND suspend_reason IS NOT NULL)),
  CHECK (stage NOT IN ('backed_up', 'verified', 'dropped') OR final_backup_id IS NOT NULL),
  CHECK (stage NOT IN ('verified', 'dropped') OR verified_at IS NOT NULL),
  CHECK ((stage = 'dropped') = (dropped_at IS NOT NULL))
);
CREATE INDEX tenant_lifecycle_stage_idx ON control.tenant_lifecycle (stage);

-- Every step taken (or started, or failed), with the run's clock ("as_of") and the wall clock.
CREATE TABLE control.tenant_lifecycle_steps (
  id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id text NOT NULL REFERENCES control.tenants (id),
  step      text NOT NULL CHECK (step IN ('flag', 'reset', 'suspend', 'final_backup', 'verify', 'drop')),
  outcome   text NOT NULL CHECK (outcome IN ('started', 'done', 'failed')),
  as_of     timestamptz NOT NULL,
  at        timestamptz NOT NULL DEFAULT clock_timestamp(),
  details   jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX tenant_lifecycle_steps_tenant_idx ON control.tenant_lifecycle_steps (tenant_id, id);

-- The final backup a dropped tenant leaves behind: its own kind, which retention never deletes.
ALTER TABLE control.backups DROP CONSTRAINT backups_kind_check;
ALTER TABLE control.backups
  ADD CONSTRAINT backups_kind_check CHECK (kind IN ('manual', 'safety', 'scheduled', 'final'));
