-- Restore checks (docs/BACKUP.md, "Scheduled backups and restore checks"): one
-- row per check of a backup by a restore into scratch (the restore-check job).
-- A check outlives the backup it checked (prune deletes old backups: the row
-- keeps its result with backup_id NULL), so the history of failed checks stays.
CREATE TABLE control.restore_checks (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  backup_id   uuid REFERENCES control.backups (id) ON DELETE SET NULL,
  tenant_id   text NOT NULL REFERENCES control.tenants (id),
  checked_at  timestamptz NOT NULL DEFAULT now(),
  outcome     text NOT NULL CHECK (outcome IN ('ok', 'failed')),
  tables      integer CHECK (tables >= 0),
  rows        bigint CHECK (rows >= 0),
  error       text,
  duration_ms double precision NOT NULL CHECK (duration_ms >= 0),
  CHECK ((outcome = 'failed') = (error IS NOT NULL))
);
CREATE INDEX restore_checks_backup_idx ON control.restore_checks (backup_id, checked_at DESC);
CREATE INDEX restore_checks_tenant_idx ON control.restore_checks (tenant_id, checked_at DESC);
CREATE INDEX restore_checks_failed_idx ON control.restore_checks (checked_at DESC) WHERE outcome = 'failed';
