-- People managed from the admin console (docs/ADMIN.md, "People").
--
-- deactivated_at: a deactivated account cannot sign in, and none of its
-- sessions or API tokens work (they are ended when it is deactivated, and the
-- per-request lookups refuse the account as well). NULL: active. Who did it
-- and why are kept next to it for the console; the audit trail keeps the
-- whole history (user.deactivate, user.reactivate).
ALTER TABLE control.users
  ADD COLUMN deactivated_at      timestamptz,
  ADD COLUMN deactivated_by      uuid,
  ADD COLUMN deactivation_reason text CHECK (length(deactivation_reason) <= 500);

-- Finding people: the search pages through users by (email_normalized, id);
-- an email prefix uses this index (LIKE 'abc%' needs a pattern opclass under
-- a non-C collation), and the last-admin rule reads the active admins.
CREATE INDEX users_email_pattern_idx ON control.users (email_normalized text_pattern_ops);
CREATE INDEX users_role_idx ON control.users (role, email_normalized) WHERE role <> 'user';
CREATE INDEX users_deactivated_idx ON control.users (email_normalized) WHERE deactivated_at IS NOT NULL;

-- A person's recent sign-ins: the registry rows of one user, newest first.
CREATE INDEX user_sessions_user_created_idx ON control.user_sessions (user_id, created_at DESC);
