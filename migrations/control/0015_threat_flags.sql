-- Threat flags (docs/ADMIN.md, "Threats"): what the platform saw that an admin
-- should look at. One row per flag; at most one OPEN flag (not acknowledged)
-- per rule and subject: further hits bump its count and last_seen, and a hit
-- after an acknowledgement opens a new flag. The subject names who or what,
-- never a secret: `account:<user id>`, `ip:<address>`, `session:<hash of the
-- session id>`, `tenant:<tenant id>`. Every flag raised or bumped is also a
-- `threat.flag` event in the platform audit chain.
CREATE TABLE control.threat_flags (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  rule            text NOT NULL CHECK (rule ~ '^[a-z][a-z_]{0,62}$'),
  severity        text NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
  subject         text NOT NULL CHECK (length(subject) BETWEEN 1 AND 200),
  first_seen      timestamptz NOT NULL DEFAULT now(),
  last_seen       timestamptz NOT NULL DEFAULT now(),
  count           bigint NOT NULL DEFAULT 1 CHECK (count >= 1),
  details         jsonb NOT NULL DEFAULT '{}'::jsonb,
  acknowledged_at timestamptz,
  -- SET NULL: a deleted admin's acknowledgements stay (the audit trail names who).
  acknowledged_by uuid REFERENCES control.users (id) ON DELETE SET NULL,
  ack_note        text CHECK (length(ack_note) <= 2000),
  CHECK (acknowledged_at IS NOT NULL OR (acknowledged_by IS NULL AND ack_note IS NULL)),
  CHECK (last_seen >= first_seen)
);
-- The one open flag per rule and subject (the upsert's conflict target).
CREATE UNIQUE INDEX threat_flags_open_uq ON control.threat_flags (rule, subject) WHERE acknowledged_at IS NULL;
-- Open flags by severity (the page, /metrics).
CREATE INDEX threat_flags_open_idx ON control.threat_flags (severity, id DESC) WHERE acknowledged_at IS NULL;
-- "A sign-in from an address not seen for this account in 30 days" reads
-- control.user_sessions by user_sessions_user_created_idx (0014).
