-- What an account's owner is told at their next sign-in (there is no email).
--
-- failed_attempts: password and code checks on the account that failed or
-- were refused by the lockout since the last successful sign-in. One failure
-- every 15 minutes keeps an account locked for good; the owner should at
-- least hear of it. Read and reset to 0 by the next sign-in.
ALTER TABLE control.users ADD COLUMN failed_attempts integer NOT NULL DEFAULT 0;

-- Security changes to the account (two-step sign-in on or off, new recovery
-- codes), with where they came from. Written in the change's transaction;
-- shown once, at the next sign-in, then deleted (the audit trail keeps the
-- change itself).
CREATE TABLE control.account_notices (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  user_id    uuid NOT NULL REFERENCES control.users (id) ON DELETE CASCADE,
  kind       text NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_.]{1,63}$'),
  ip         text,
  user_agent text,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX account_notices_user_idx ON control.account_notices (user_id);
