-- The sealed audit trail (docs/AUDIT-FORMAT.md): hash chains, signed
-- checkpoints, the public keys that sign them and this installation's origin.
-- Only the sealer (audit/sealer.ts) appends here; nothing is ever rewritten.

-- The one installation id, made once: entries and checkpoints carry it, so a
-- bundle from another installation does not verify against our key.
CREATE TABLE control.audit_origin (
  singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  origin     text NOT NULL CHECK (origin ~ '^enclave:[0-9a-f]{32}$'),
  created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO control.audit_origin (origin) VALUES ('enclave:' || replace(gen_random_uuid()::text, '-', ''));

-- Public keys only: the private key stays in a file (DATA_DIR or
-- AUDIT_SIGNING_KEY_FILE). Rotation retires a key but keeps it published, so
-- every old checkpoint stays verifiable. At most one key is current.
CREATE TABLE control.audit_keys (
  key_id     text PRIMARY KEY CHECK (key_id ~ '^[0-9a-f]{16}$'),
  public_key bytea NOT NULL UNIQUE CHECK (octet_length(public_key) = 32), -- raw Ed25519
  created_at timestamptz NOT NULL DEFAULT now(),
  retired_at timestamptz
);
CREATE UNIQUE INDEX audit_keys_one_current ON control.audit_keys ((true)) WHERE retired_at IS NULL;

-- One row per entry of a chain: `t_<tenant id>`, `platform` or `registry`.
-- `entry` is the exact canonical bytes that were hashed; retention may set it
-- to NULL (and nothing else) for old entries, keeping `hash` so the chain
-- still verifies. `occurred_at` is the entry's `at` (registry: checkpoint time),
-- kept as a column for retention and time filters, also after pruning.
CREATE TABLE control.audit_log (
  chain       text NOT NULL CHECK (chain ~ '^(t_[a-z0-9]{12}|platform|registry)$'),
  seq         bigint NOT NULL CHECK (seq >= 1),
  entry       bytea,
  hash        bytea NOT NULL CHECK (octet_length(hash) = 32),
  occurred_at timestamptz NOT NULL,
  sealed_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
  inbox_id    bigint, -- the inbox row it came from (NULL for registry entries)
  PRIMARY KEY (chain, seq)
);
CREATE INDEX audit_log_occurred_idx ON control.audit_log (chain, occurred_at);

-- After each seal, one signed checkpoint per chain that grew. `checkpoint` is
-- the canonical bytes that were signed; `head` is hash_size (duplicated as a
-- column so exports can find "the latest checkpoint at or before T" by index).
CREATE TABLE control.audit_checkpoints (
  chain      text NOT NULL CHECK (chain ~ '^(t_[a-z0-9]{12}|platform|registry)$'),
  size       bigint NOT NULL CHECK (size >= 1),
  head       bytea NOT NULL CHECK (octet_length(head) = 32),
  checkpoint bytea NOT NULL,
  signature  bytea NOT NULL CHECK (octet_length(signature) = 64),
  key_id     text NOT NULL REFERENCES control.audit_keys (key_id),
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (chain, size)
);
CREATE INDEX audit_checkpoints_time_idx ON control.audit_checkpoints (chain, created_at);

-- Append-only, enforced by PostgreSQL. The application's role owns these
-- tables, and an owner keeps UPDATE/DELETE/TRUNCATE whatever is revoked, so
-- the REVOKE below only covers every other role: the triggers are the real
-- guard. (An owner could still drop a trigger; that needs DDL, never reachable
-- from request code, and the signed checkpoints and the registry chain make
-- any rewrite visible to the offline verifier anyway.)
--
-- The one exception is retention (audit/retention.ts): inside a transaction
-- that set `enclave.audit_retention` to 'on' (set_config(..., true), so it
-- ends with the transaction), an UPDATE may set `entry` to NULL on a tenant or
-- platform entry, changing nothing else, unless the tenant is under legal hold.
CREATE FUNCTION control.audit_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  -- Nested IFs: statement-level (TRUNCATE) calls have no OLD/NEW row to look at.
  IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'audit_log'
     AND current_setting('enclave.audit_retention', true) = 'on' THEN
    IF NEW.entry IS NULL AND to_jsonb(NEW) - 'entry' = to_jsonb(OLD) - 'entry'
       AND OLD.chain <> 'registry' THEN
      IF OLD.chain LIKE 't\_%' AND EXISTS (
        SELECT 1 FROM control.tenants t WHERE t.id = substr(OLD.chain, 3) AND t.legal_hold
      ) THEN
        RAISE EXCEPTION 'audit entry %/% is under legal hold: its payload is kept', OLD.chain, OLD.seq
          USING ERRCODE = 'insufficient_privilege';
      END IF;
      RETURN NEW;
    END IF;
  END IF;
  RAISE EXCEPTION 'control.% is append-only: % refused', TG_TABLE_NAME, TG_OP
    USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_log_append_only
  BEFORE UPDATE OR DELETE ON control.audit_log
  FOR EACH ROW EXECUTE FUNCTION control.audit_refuse_change();
CREATE TRIGGER audit_log_no_truncate
  BEFORE TRUNCATE ON control.audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION control.audit_refuse_change();
CREATE TRIGGER audit_checkpoints_append_only
  BEFORE UPDATE OR DELETE ON control.audit_checkpoints
  FOR EACH ROW EXECUTE FUNCTION control.audit_refuse_change();
CREATE TRIGGER audit_checkpoints_no_truncate
  BEFORE TRUNCATE ON control.audit_checkpoints
  FOR EACH STATEMENT EXECUTE FUNCTION control.audit_refuse_change();

-- A published key is never removed and only ever retired (once).
CREATE FUNCTION control.audit_keys_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' THEN
    IF OLD.retired_at IS NULL AND NEW.retired_at IS NOT NULL
       AND to_jsonb(NEW) - 'retired_at' = to_jsonb(OLD) - 'retired_at' THEN
      RETURN NEW;
    END IF;
  END IF;
  RAISE EXCEPTION 'control.audit_keys: only retiring a current key is allowed (% refused)', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_keys_guard
  BEFORE UPDATE OR DELETE ON control.audit_keys
  FOR EACH ROW EXECUTE FUNCTION control.audit_keys_guard();
CREATE TRIGGER audit_keys_no_truncate
  BEFORE TRUNCATE ON control.audit_keys
  FOR EACH STATEMENT EXECUTE FUNCTION control.audit_keys_guard();
CREATE TRIGGER audit_origin_append_only
  BEFORE UPDATE OR DELETE ON control.audit_origin
  FOR EACH ROW EXECUTE FUNCTION control.audit_refuse_change();
CREATE TRIGGER audit_origin_no_truncate
  BEFORE TRUNCATE ON control.audit_origin
  FOR EACH STATEMENT EXECUTE FUNCTION control.audit_refuse_change();

REVOKE UPDATE, DELETE, TRUNCATE ON control.audit_log, control.audit_checkpoints,
  control.audit_keys, control.audit_origin FROM PUBLIC;
