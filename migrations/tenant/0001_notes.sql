-- Notes: the first workspace table. {{schema}} and {{role}} are replaced by the
-- tenant's quoted schema and role; search_path is also the tenant schema.
CREATE TABLE {{schema}}.notes (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  title      text NOT NULL CHECK (length(title) BETWEEN 1 AND 500),
  body       text NOT NULL DEFAULT '',
  tags       text[] NOT NULL DEFAULT '{}',
  version    integer NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  search     tsvector GENERATED ALWAYS AS (
               setweight(to_tsvector('simple', coalesce(title, '')), 'A') ||
               setweight(to_tsvector('simple', coalesce(body, '')), 'B')
             ) STORED
);
CREATE INDEX notes_search_idx ON {{schema}}.notes USING gin (search);
CREATE INDEX notes_tags_idx ON {{schema}}.notes USING gin (tags);
CREATE INDEX notes_updated_idx ON {{schema}}.notes (updated_at DESC, id DESC);
GRANT SELECT, INSERT, UPDATE, DELETE ON {{schema}}.notes TO {{role}};
