// The floor for bench/http-stack.bench.ts: a bare Express 5 app with one pg
// pool, serving one tenant's note list with the very SQL Enclave's unit of work
// sends for GET /api/v1/notes. No security headers, no request id or log, no
// session, no passport, no registry, no role switch: it connects as the
// superuser it is given and names the tenant schema in the query.
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
import { checkTenantName, ident } from '../tenancy/identifiers.ts';

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
});
pool.on('error', () => {});

// Exactly what MikroORM 7.2 sends for the route's em.find (seen with debug: ['query']). MikroORM
// writes values into the text and sends no parameters, so pg uses the simple query protocol; so do we.
const LIST = `select "n0".* from ${ident(schema)}."notes" as "n0" order by "n0"."updated_at" desc, "n0"."id" desc limit 50`;
// The unit of work's first statement, values inlined the same way (both names passed checkTenantName).
const BIND = `SELECT set_config('role', ${pg.escapeLiteral(role)}, true), set_config('search_path', ${pg.escapeLiteral(ident(schema))}, true)`;

interface NoteRow {
  id: string;
  title: string;
  body: string;
  tags: string[];
  version: number;
  created_at: Date;
  updated_at: Date;
}

// The same JSON as Enclave's noteView, so both answers are the same bytes.
const view = (r: NoteRow) => ({
  id: Number(r.id),
  title: r.title,
  body: r.body,
  tags: r.tags,
  version: r.version,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

const app = express();

app.get('/notes', async (_req, res) => {
  const { rows } = await pool.query<NoteRow>(LIST);
  res.json({ notes: rows.map(view) });
});

app.get('/notes-tx', async (_req, res) => {
  const client = await pool.connect();
  let failed: Error | undefined;
  try {
    await client.query('BEGIN');
    await client.query(BIND);
    const { rows } = await client.query<NoteRow>(LIST);
    await client.query('COMMIT');
    res.json({ notes: rows.map(view) });
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
