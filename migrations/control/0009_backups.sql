-- Per-tenant backups (docs/BACKUP.md): one row per attempt, written 'running'
-- before the snapshot opens and finished 'succeeded' or 'failed'. A backup
-- killed mid-way leaves its row 'running'; the next backup or prune of any
-- tenant marks it failed once the connection that ran it (backend_pid,
-- backend_start) is gone, or after a day whatever happened.
CREATE TABLE control.backups (
  id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id      text NOT NULL REFERENCES control.tenants (id),
  kind           text NOT NULL CHECK (kind IN ('manual', 'safety', 'scheduled')),
  outcome        text NOT NULL DEFAULT 'running' CHECK (outcome IN ('running', 'succeeded', 'failed')),
  location       text,
  bytes          bigint CHECK (bytes >= 0),
  sha256         text CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  schema_version integer,
  rows           bigint CHECK (rows >= 0),
  started_at     timestamptz NOT NULL DEFAULT now(),
  finished_at    timestamptz,
  duration_ms    double precision,
  created_by     text NOT NULL,
  error          text,
  encrypted      boolean NOT NULL DEFAULT false,
  key_id         text,
  drift          integer,
  backend_pid    integer,
  backend_start  timestamptz,
  CHECK ((outcome = 'running') = (finished_at IS NULL))
);
CREATE INDEX backups_tenant_idx ON control.backups (tenant_id, started_at DESC);
CREATE INDEX backups_running_idx ON control.backups (started_at) WHERE outcome = 'running';

-- A tenant's previous schema, renamed aside by an in-place restore (in the
-- restore's own transaction) and dropped after RESTORE_KEEP_PREVIOUS_HOURS by
-- the next prune; dropping the tenant drops its set-aside schemas too.
CREATE TABLE control.restore_asides (
  schema_name  text PRIMARY KEY CHECK (schema_name ~ '^t_[a-z0-9]{12}_p[0-9]{14}[a-z0-9]{4}$'),
  tenant_id    text NOT NULL REFERENCES control.tenants (id),
  set_aside_at timestamptz NOT NULL DEFAULT now(),
  drop_after   timestamptz NOT NULL,
  dropped_at   timestamptz
);
CREATE INDEX restore_asides_due_idx ON control.restore_asides (drop_after) WHERE dropped_at IS NULL;
