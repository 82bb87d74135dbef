-- Tasks, optionally linked to a note of the same workspace (same schema only:
-- no foreign key ever crosses schemas).
CREATE TABLE {{schema}}.tasks (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  title      text NOT NULL CHECK (length(title) BETWEEN 1 AND 500),
  status     text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'doing', 'done')),
  due_date   date,
  note_id    bigint REFERENCES {{schema}}.notes (id) ON DELETE SET NULL,
  version    integer NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tasks_status_idx ON {{schema}}.tasks (status, id);
CREATE INDEX tasks_note_idx ON {{schema}}.tasks (note_id);
GRANT SELECT, INSERT, UPDATE, DELETE ON {{schema}}.tasks TO {{role}};
