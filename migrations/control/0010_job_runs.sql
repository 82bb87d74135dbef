-- The job-run history: one row per run of a scheduled job (and per tenant of
-- a fan-out), kept JOB_HISTORY_DAYS. pg-boss deletes its own jobs after a
-- week; ops need to see a failed backup from last month.
CREATE TABLE control.job_runs (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  job         text NOT NULL CHECK (job ~ '^[a-z][a-z0-9-]{0,62}$'),
  job_id      text,
  tenant_id   text,
  trigger     text NOT NULL CHECK (trigger IN ('schedule', 'manual', 'fanout')),
  instance    text NOT NULL,
  started_at  timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  outcome     text NOT NULL DEFAULT 'running' CHECK (outcome IN ('running', 'succeeded', 'failed', 'interrupted')),
  counts      jsonb NOT NULL DEFAULT '{}'::jsonb,
  error       text
);
CREATE INDEX job_runs_job_idx ON control.job_runs (job, started_at DESC);
CREATE INDEX job_runs_failed_idx ON control.job_runs (started_at DESC) WHERE outcome = 'failed';
CREATE INDEX job_runs_running_idx ON control.job_runs (started_at) WHERE outcome = 'running';
