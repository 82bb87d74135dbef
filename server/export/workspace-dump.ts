// Step one of an export: every table of the workspace, read through a
// server-side cursor in the caller's unit of work (one transaction, so with
// REPEATABLE READ one snapshot for all tables), written as JSON Lines to a
// temporary file while its SHA-256, row count and byte size are computed.
//
// Why temporary files rather than straight into the HTTP response: a tar entry
// must state its size before its bytes, and the manifest (which we put first,
// so a reader can check each file as it streams past) needs every hash. Files
// also let the transaction end, and its pooled connection and snapshot go back,
// as fast as the database can read, however slowly the client downloads.
// Memory stays at one batch of rows whatever the workspace's size. Disk is
// bounded by the caller: `take` is told of every chunk before it is written
// and may refuse it by throwing (spool-budget.ts), which stops the dump.
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import path from 'node:path';
import type { UnitOfWork } from '../../tenancy/unit-of-work.ts';
import * as sql from './workspace-export-sql.ts';

/** The version of the archive's layout: manifest.json first, then one `<table>.jsonl` per table. */
export const EXPORT_FORMAT = 'enclave-workspace-export';
export const EXPORT_FORMAT_VERSION = 1;

/**
 * Rows per FETCH. A note's body may be 100,000 characters, so a batch is at
 * most a few tens of MB in the worst case and a few hundred kB in the usual one.
 */
export const DEFAULT_BATCH_SIZE = 250;

export interface DumpedFile {
  name: string;
  table: string;
  columns: string[];
  rows: number;
  bytes: number;
  sha256: string;
  /** Where the file is on this server (not part of the manifest). */
  path: string;
}

export interface Dump {
  /** The transaction's start time, i.e. the moment the snapshot shows. */
  exportedAt: Date;
  files: DumpedFile[];
}

const TABLE_NAME = /^[a-z_][a-z0-9_]{0,62}$/;
const NEWLINE = Buffer.from('\n');

/** Dumps every readable table of the tenant schema into `dir` (which must exist and be private). */
export async function dumpWorkspace(
  uow: UnitOfWork,
  dir: string,
  options: { batchSize?: number; signal?: AbortSignal; take?: (bytes: number) => void } = {},
): Promise<Dump> {
  const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
  const [now] = await uow.query<{ at: Date }>(sql.transactionTime());
  const schema = uow.tenant.schema;
  const tables = await uow.query<sql.ExportTable>(sql.exportTables(schema));
  const files: DumpedFile[] = [];
  for (const t of tables) {
    // Names come from our own migrations; a file name is still checked before it is made from one.
    if (!TABLE_NAME.test(t.table))
      throw new Error(`refusing to export a table named ${JSON.stringify(t.table)}`);
    options.signal?.throwIfAborted();
    files.push(await dumpTable(uow, schema, t, path.join(dir, `${t.table}.jsonl`), batchSize, options));
  }
  return { exportedAt: new Date(now?.at ?? Date.now()), files };
}

async function dumpTable(
  uow: UnitOfWork,
  schema: string,
  t: sql.ExportTable,
  file: string,
  batchSize: number,
  { signal, take }: { signal?: AbortSignal; take?: (bytes: number) => void },
): Promise<DumpedFile> {
  const hash = createHash('sha256');
  let rows = 0;
  let bytes = 0;
  // 'wx': never follow or reuse a file that is already there; 0600: the data is someone's own.
  const handle = await open(file, 'wx', 0o600);
  try {
    await uow.query(sql.declareCursor(schema, t));
    for (;;) {
      const batch = await uow.query<{ line: string }>(sql.fetchRows(batchSize));
      if (batch.length > 0) {
        // One small buffer per row, joined outside the JS heap: no batch-sized string is ever built.
        const parts: Buffer[] = [];
        for (const row of batch) parts.push(Buffer.from(row.line, 'utf8'), NEWLINE);
        const chunk = Buffer.concat(parts);
        take?.(chunk.length);
        hash.update(chunk);
        await handle.write(chunk);
        rows += batch.length;
        bytes += chunk.length;
      }
      if (batch.length < batchSize) break;
      // A client that went away stops the work between batches.
      signal?.throwIfAborted();
    }
    await uow.query(sql.closeCursor());
  } finally {
    await handle.close();
  }
  return {
    name: path.basename(file),
    table: t.table,
    columns: t.columns,
    rows,
    bytes,
    sha256: hash.digest('hex'),
    path: file,
  };
}

export interface Manifest {
  format: typeof EXPORT_FORMAT;
  formatVersion: number;
  tenantId: string;
  exportedAt: string;
  schemaVersion: number;
  /** How the tables were read: one snapshot for all of them. */
  consistency: 'snapshot';
  files: Array<Omit<DumpedFile, 'path'>>;
}

export function manifestOf(dump: Dump, tenantId: string, schemaVersion: number): Manifest {
  return {
    format: EXPORT_FORMAT,
    formatVersion: EXPORT_FORMAT_VERSION,
    tenantId,
    exportedAt: dump.exportedAt.toISOString(),
    schemaVersion,
    consistency: 'snapshot',
    files: dump.files.map(({ path: _path, ...file }) => file),
  };
}
