// The floor for bench/http-stack.bench.ts: a bare Express 5 app with one pg
// pool, serving one tenant's note list with the very SQL Enclave's unit of work
// sends for GET /api/v1/notes. No security headers, no request id or log, no
// session, no passport, no registry, no role switch: it connects as the
// superuser it is given, with the tenant schema as the connection's search_path.
//
//   GET /notes     the query alone (one round trip)
//   GET /notes-tx  the same query inside Enclave's transaction shape, still
//                  without any framework: BEGIN; set_config(role, search_path);
//                  the query; COMMIT (four round trips on one connection)
//
// Configured by environment (the bench passes it): BARE_DATABASE_URL,
// BARE_SCHEMA, BARE_ROLE (the tenant's names), BARE_POOL_SIZE (default 10,
// Enclave's DB_POOL_SIZE). Listens on 127.0.0.1, on a free port; the URL goes
// to the parent over IPC (or to stdout when run by hand).
import type { AddressInfo } from 'node:net';
import express from 'express';
import pg from 'pg';
import { checkTenantName, ident } from '../kernel/identifiers.ts';
import { NOTE_SORT_SPECS } from '../server/workspace/notes.ts';
import { noteSummary } from '../server/workspace/views.ts';
import { listNotes as listNotesSql, type NoteSummaryRow } from '../server/workspace/workspace-sql.ts';

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

const schema = checkTenantName(required('BARE_SCHEMA'));
const role = checkTenantName(required('BARE_ROLE'));
const pool = new pg.Pool({
  connectionString: required('BARE_DATABASE_URL'),
  max: Number(process.env.BARE_POOL_SIZE ?? 10),
  application_name: 'bench-bare',
  options: `-c search_path=${ident(schema)}`,
});
pool.on('error', () => {});

// The exact statement Enclave's list route sends (built by the same function);
// search_path is fixed per connection instead of
// per transaction, and rows are mapped by the same view function.
const list = listNotesSql({ sort: NOTE_SORT_SPECS.updated_desc, limit: 51 });
// Text and values are passed separately: pg mutates a config object it is given (it sets its callback).
const LIST = { text: list.text, values: list.values };
// The unit of work's first statement, values inlined (both names passed checkTenantName).
const BIND = `SELECT set_config('role', ${pg.escapeLiteral(role)}, true), set_config('search_path', ${pg.escapeLiteral(ident(schema))}, true)`;

const view = (rows: NoteSummaryRow[]) =>
  rows.slice(0, 50).map((r) => noteSummary({ ...r, id: Number(r.id) }));

const app = express();

app.get('/notes', async (_req, res) => {
  const { rows } = await pool.query<NoteSummaryRow>(LIST.text, LIST.values);
  res.json({ notes: view(rows) });
});

app.get('/notes-tx', async (_req, res) => {
  const client = await pool.connect();
  let failed: Error | undefined;
  try {
    await client.query('BEGIN');
    await client.query(BIND);
    const { rows } = await client.query<NoteSummaryRow>(LIST.text, LIST.values);
    await client.query('COMMIT');
    res.json({ notes: view(rows) });
  } catch (err) {
    failed = err as Error;
    throw err;
  } finally {
    client.release(failed);
  }
});

const server = app.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  if (process.send) process.send({ type: 'ready', url });
  else process.stdout.write(`${url}\n`);
});

let stopping = false;
function stop(): void {
  if (stopping) return;
  stopping = true;
  server.close(() => {
    pool.end().finally(() => process.exit(0));
  });
  server.closeAllConnections();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.on('disconnect', stop);
