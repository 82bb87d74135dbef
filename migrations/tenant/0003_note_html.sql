-- A note's body rendered to HTML once, when it is written (server/workspace/
-- markdown.ts), so that reading a note never runs the Markdown renderer.
-- NULL for notes written before this column existed: the first read of such a
-- note renders it and stores the result (SQL cannot render Markdown).
ALTER TABLE {{schema}}.notes ADD COLUMN html text;
