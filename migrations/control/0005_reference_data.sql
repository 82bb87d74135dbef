-- Reference data every tenant reads and none writes: task templates and the
-- tag palette. Its own schema, so that tenant roles can be given USAGE on it
-- without any access to the rest of the control plane; SELECT only.
CREATE SCHEMA reference;
REVOKE ALL ON SCHEMA reference FROM PUBLIC;
GRANT USAGE ON SCHEMA reference TO PUBLIC;

CREATE TABLE reference.tag_palette (
  name  text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9-]{0,30}$'),
  color text NOT NULL CHECK (color ~ '^#[0-9a-f]{6}$'),
  position integer NOT NULL
);

CREATE TABLE reference.task_templates (
  id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  title  text NOT NULL UNIQUE CHECK (length(title) BETWEEN 1 AND 200),
  status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'doing', 'done')),
  due_in_days integer CHECK (due_in_days BETWEEN 0 AND 365)
);

REVOKE ALL ON ALL TABLES IN SCHEMA reference FROM PUBLIC;
GRANT SELECT ON ALL TABLES IN SCHEMA reference TO PUBLIC;

INSERT INTO reference.tag_palette (name, color, position) VALUES
  ('work', '#1d4ed8', 1), ('personal', '#047857', 2), ('urgent', '#b91c1c', 3),
  ('idea', '#7c3aed', 4), ('reading', '#b45309', 5), ('later', '#475569', 6);

INSERT INTO reference.task_templates (title, status, due_in_days) VALUES
  ('Weekly review', 'open', 7),
  ('Follow up on an email', 'open', 2),
  ('Plan the next sprint', 'open', 14),
  ('Read and summarise an article', 'open', NULL);
