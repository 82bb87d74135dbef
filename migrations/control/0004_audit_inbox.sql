-- Audit inbox: every change writes its event here in the same transaction as
-- the change (a rolled-back change leaves none; a committed one always has it).
-- Writers only ever INSERT; a sealer (the audit issue) moves rows, per tenant,
-- into the hash chain. `txid` lets the sealer take rows in commit order.
CREATE TABLE control.audit_inbox (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id     text CHECK (tenant_id ~ '^[a-z0-9]{12}$'),
  actor_type    text NOT NULL CHECK (actor_type IN ('user', 'admin', 'auditor', 'token', 'job', 'system', 'anonymous')),
  actor_id      text,
  action        text NOT NULL CHECK (action ~ '^[a-z][a-z0-9_.]{1,63}$'),
  resource_type text,
  resource_id   text,
  outcome       text NOT NULL CHECK (outcome IN ('success', 'failure')),
  outcome_code  text,
  occurred_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
  ip            text,
  user_agent    text,
  request_id    text,
  details       jsonb NOT NULL DEFAULT '{}'::jsonb,
  txid          xid8 NOT NULL DEFAULT pg_current_xact_id()
);
-- No foreign key to tenants: audit history outlives a dropped tenant.
CREATE INDEX audit_inbox_tenant_idx ON control.audit_inbox (tenant_id, id);
