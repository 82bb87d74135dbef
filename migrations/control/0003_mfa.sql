-- MFA enrolment and replay protection.
-- mfa_pending_secret: a TOTP secret shown to the person but not yet confirmed
-- with a code; it becomes mfa_secret only when a code from it is accepted, so
-- a half-finished enrolment never locks anyone out.
-- mfa_last_step: the last TOTP time step (unix time / 30) accepted for the
-- user; a code is accepted only for a later step, so a code seen once (over a
-- shoulder, in a proxy log) cannot be replayed within its validity window.
ALTER TABLE control.users
  ADD COLUMN mfa_pending_secret text,
  ADD COLUMN mfa_last_step bigint;
