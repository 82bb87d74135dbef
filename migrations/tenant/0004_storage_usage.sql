-- Storage used by the workspace, kept by triggers in the same transaction as
-- every write to notes and tasks, for the per-tenant quota (TENANT_QUOTA_MB).
--
-- What counts: the bytes of the text stored (title, body, rendered HTML, tags)
-- plus 100 bytes per note or task for what every row costs besides its text.
-- Computed from the values (octet_length), never from how PostgreSQL happens
-- to store them (compression, TOAST), so an insert adds exactly what the
-- delete of the same row takes away and the total cannot drift.
--
-- The quota itself is the application's setting: a write transaction sets
-- `enclave.tenant_quota_bytes` (set_config(..., true)), and a change that
-- grows the total past it is refused with SQLSTATE EQ413. A change that does
-- not grow the total (a delete, a shorter text) is never refused.
--
-- The usage row is updated by every growing or shrinking write, so it is
-- locked until that transaction ends: one tenant's writes that change sizes
-- take turns, and two of them cannot both fit in the same last free bytes.
-- The tenant role has no privilege on the table; the trigger function runs as
-- its owner (SECURITY DEFINER), and storage_used() is the only way to read it.
CREATE TABLE {{schema}}.storage_usage (
  id    bigint PRIMARY KEY CHECK (id = 1),
  bytes bigint NOT NULL CHECK (bytes >= 0)
);

CREATE FUNCTION {{schema}}.note_bytes(title text, body text, html text, tags text[]) RETURNS bigint
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN 100 + octet_length(title) + octet_length(body) + coalesce(octet_length(html), 0)
             + coalesce(octet_length(array_to_string(tags, '')), 0);

CREATE FUNCTION {{schema}}.task_bytes(title text) RETURNS bigint
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN 100 + octet_length(title);

CREATE FUNCTION {{schema}}.count_storage() RETURNS trigger
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  delta bigint := 0;
  used  bigint;
  quota bigint;
BEGIN
  IF TG_TABLE_NAME = 'notes' THEN
    IF TG_OP <> 'INSERT' THEN
      delta := delta - {{schema}}.note_bytes(OLD.title, OLD.body, OLD.html, OLD.tags);
    END IF;
    IF TG_OP <> 'DELETE' THEN
      delta := delta + {{schema}}.note_bytes(NEW.title, NEW.body, NEW.html, NEW.tags);
    END IF;
  ELSE
    IF TG_OP <> 'INSERT' THEN
      delta := delta - {{schema}}.task_bytes(OLD.title);
    END IF;
    IF TG_OP <> 'DELETE' THEN
      delta := delta + {{schema}}.task_bytes(NEW.title);
    END IF;
  END IF;
  IF delta = 0 THEN
    RETURN NULL;
  END IF;
  UPDATE {{schema}}.storage_usage SET bytes = bytes + delta WHERE id = 1;
  IF delta > 0 THEN
    quota := nullif(current_setting('enclave.tenant_quota_bytes', true), '')::bigint;
    used := (SELECT bytes FROM {{schema}}.storage_usage WHERE id = 1);
    IF quota > 0 AND used > quota THEN
      RAISE EXCEPTION 'the workspace storage quota is exceeded'
        USING ERRCODE = 'EQ413',
              DETAIL = json_build_object('usedBytes', used - delta, 'quotaBytes', quota, 'neededBytes', delta)::text;
    END IF;
  END IF;
  RETURN NULL;
END
$$;

CREATE FUNCTION {{schema}}.storage_used() RETURNS bigint
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
  RETURN (SELECT bytes FROM {{schema}}.storage_usage WHERE id = 1);

REVOKE ALL ON FUNCTION {{schema}}.count_storage() FROM PUBLIC;
REVOKE ALL ON FUNCTION {{schema}}.storage_used() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION {{schema}}.storage_used() TO {{role}};

-- The triggers first: CREATE TRIGGER locks each table against writes until
-- this migration commits, so no write can slip between the count and the
-- triggers that keep it.
CREATE TRIGGER notes_count_storage AFTER INSERT OR UPDATE OR DELETE ON {{schema}}.notes
  FOR EACH ROW EXECUTE FUNCTION {{schema}}.count_storage();
CREATE TRIGGER tasks_count_storage AFTER INSERT OR UPDATE OR DELETE ON {{schema}}.tasks
  FOR EACH ROW EXECUTE FUNCTION {{schema}}.count_storage();

INSERT INTO {{schema}}.storage_usage (id, bytes)
SELECT 1,
       (SELECT coalesce(sum({{schema}}.note_bytes(n.title, n.body, n.html, n.tags)), 0) FROM {{schema}}.notes n)
     + (SELECT coalesce(sum({{schema}}.task_bytes(t.title)), 0) FROM {{schema}}.tasks t);
