-- The control plane: everything the platform knows about its tenants.
-- Tenant workspaces live in their own schemas; nothing here is readable by a tenant role.
CREATE SCHEMA IF NOT EXISTS control;
REVOKE ALL ON SCHEMA control FROM PUBLIC;

-- Tenant roles get nothing outside their own schema: not even USAGE on public.
REVOKE ALL ON SCHEMA public FROM PUBLIC;

CREATE TABLE control.tenants (
  id             text PRIMARY KEY CHECK (id ~ '^[a-z0-9]{12}$'),
  display_name   text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 200),
  schema_name    text NOT NULL UNIQUE CHECK (schema_name ~ '^t_[a-z0-9]{12}$'),
  role_name      text NOT NULL UNIQUE CHECK (role_name ~ '^t_[a-z0-9]{12}$'),
  state          text NOT NULL DEFAULT 'provisioning'
                 CHECK (state IN ('provisioning', 'active', 'suspended', 'archived', 'deleted')),
  schema_version integer NOT NULL DEFAULT 0 CHECK (schema_version >= 0),
  created_at     timestamptz NOT NULL DEFAULT now(),
  last_active_at timestamptz,
  legal_hold     boolean NOT NULL DEFAULT false,
  deleted_at     timestamptz
);

-- Fleet rollouts look for tenants behind the latest version; this keeps a
-- run with nothing to apply to one index probe.
CREATE INDEX tenants_pending_idx ON control.tenants (schema_version) WHERE state IN ('active', 'suspended', 'archived');

-- One row per attempt. An applied migration is recorded once per tenant: the
-- partial unique index makes a duplicate impossible, also across crashed reruns.
CREATE TABLE control.tenant_migrations (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id   text NOT NULL REFERENCES control.tenants (id),
  migration   text NOT NULL,
  version     integer NOT NULL,
  checksum    text NOT NULL,
  applied_at  timestamptz NOT NULL DEFAULT now(),
  duration_ms double precision NOT NULL,
  outcome     text NOT NULL CHECK (outcome IN ('applied', 'failed')),
  error       text
);
CREATE UNIQUE INDEX tenant_migrations_applied_once ON control.tenant_migrations (tenant_id, version) WHERE outcome = 'applied';
CREATE INDEX tenant_migrations_tenant_idx ON control.tenant_migrations (tenant_id, applied_at);
