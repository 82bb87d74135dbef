-- Accounts: people, their sessions, API tokens and MFA recovery codes.
-- Secrets are stored only as hashes (argon2id for passwords, SHA-256 for
-- high-entropy random tokens); TOTP secrets are the one exception, since the
-- server must compute codes from them.

CREATE TABLE control.users (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  email            text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
  email_normalized text NOT NULL UNIQUE,
  display_name     text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 200),
  password_hash    text NOT NULL,
  role             text NOT NULL CHECK (role IN ('user', 'auditor', 'admin')),
  -- A 'user' owns exactly one workspace; auditors and admins never own one.
  tenant_id        text REFERENCES control.tenants (id),
  mfa_secret       text,
  mfa_enabled_at   timestamptz,
  mfa_required     boolean NOT NULL DEFAULT false,
  created_at       timestamptz NOT NULL DEFAULT now(),
  password_changed_at timestamptz NOT NULL DEFAULT now(),
  CHECK ((role = 'user') = (tenant_id IS NOT NULL))
);
CREATE UNIQUE INDEX users_tenant_idx ON control.users (tenant_id) WHERE tenant_id IS NOT NULL;

-- The session registry: one row per login. The session data itself lives in
-- the session store (Redis); this row is what "list my sessions", "log out
-- everywhere" and the per-request revocation check read. A revoked row stops
-- its session on the next request, even if an in-flight request saves the
-- session data again afterwards.
CREATE TABLE control.user_sessions (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id      uuid NOT NULL REFERENCES control.users (id) ON DELETE CASCADE,
  tenant_id    text REFERENCES control.tenants (id),
  ip           text,
  user_agent   text,
  created_at   timestamptz NOT NULL DEFAULT now(),
  last_seen_at timestamptz NOT NULL DEFAULT now(),
  revoked_at   timestamptz,
  revoked_reason text
);
CREATE INDEX user_sessions_user_idx ON control.user_sessions (user_id) WHERE revoked_at IS NULL;
CREATE INDEX user_sessions_tenant_idx ON control.user_sessions (tenant_id) WHERE revoked_at IS NULL;

CREATE TABLE control.api_tokens (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id      uuid NOT NULL REFERENCES control.users (id) ON DELETE CASCADE,
  name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
  token_hash   bytea NOT NULL UNIQUE,
  scope        text NOT NULL CHECK (scope IN ('read', 'write')),
  created_at   timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz,
  revoked_at   timestamptz
);
CREATE INDEX api_tokens_user_idx ON control.api_tokens (user_id);

CREATE TABLE control.recovery_codes (
  id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  user_id   uuid NOT NULL REFERENCES control.users (id) ON DELETE CASCADE,
  code_hash bytea NOT NULL,
  used_at   timestamptz
);
CREATE INDEX recovery_codes_user_idx ON control.recovery_codes (user_id) WHERE used_at IS NULL;

-- One-time links that let the first admin be created without a default password.
CREATE TABLE control.admin_setup_tokens (
  token_hash bytea PRIMARY KEY,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  used_at    timestamptz
);

-- Session store used when no REDIS_URL is configured (connect-pg-simple's shape).
CREATE TABLE control.http_sessions (
  sid    varchar NOT NULL PRIMARY KEY,
  sess   json NOT NULL,
  expire timestamp(6) NOT NULL
);
CREATE INDEX http_sessions_expire_idx ON control.http_sessions (expire);
