// Restore of one tenant from an archive (docs/BACKUP.md), in place or as a new
// tenant (a clone), and verify-by-restore.
//
// The templates name their own schema inside function bodies ({{schema}}), so
// a schema built under a scratch name and renamed afterwards would call the
// wrong schema's functions. An in-place restore therefore runs, in ONE
// transaction under the tenant's lock and a lock_timeout: set the live schema
// aside (rename, revoke the tenant role's access), create the schema again
// under its real name from templates 1..V, load every table with COPY (user
// triggers off, plain indexes and foreign keys built after the rows), set the
// sequences, apply templates V+1..latest, drain the set-aside tables (ACCESS EXCLUSIVE), record
// the version, the set-aside schema and the audit event, and COMMIT. Readers
// keep the old schema until the commit and see the restored one at their next
// statement; any failure or kill rolls all of it back.
import { createHash, type KeyObject } from 'node:crypto';
import { type Readable, Transform, Writable } from 'node:stream';
import { type AuditBy, type AuditEventOf, record } from '../kernel/audit-inbox.ts';
import { type Client, run, transaction } from '../kernel/db.ts';
import { InvalidInputError } from '../kernel/errors.ts';
import {
  asideSchemaName,
  checkTenantName,
  ident,
  isTenantId,
  newTenantId,
  tenantNames,
} from '../kernel/identifiers.ts';
import { tenantLock } from '../kernel/locks.ts';
import { migrateTenantInTransaction } from '../tenancy/migrate-tenant.ts';
import { checkDisplayName, provisionTenantInTransaction } from '../tenancy/provision.ts';
import { latestVersion, renderMigration, type TenantMigration } from '../tenancy/templates.ts';
import { MigrationError } from '../tenancy/tenancy-errors.ts';
import * as tsql from '../tenancy/tenant-sql.ts';
import type { ArchiveManifest } from './archive-format.ts';
import { checkArchive, readParts } from './archive-reader.ts';
import { type BackupContext, type BackupRecord, backupTenant } from './backup.ts';
import { recordAside } from './catalog.ts';
import { recordReappliedMigration } from './catalog-sql.ts';
import { RestoreRefusedError } from './restore-errors.ts';
import {
  addConstraint,
  copySettings,
  copyTableIn,
  copyTableOut,
  discoverDeferrable,
  discoverTables,
  dropConstraint,
  dropIndex,
  lockTables,
  setLockTimeout,
  setSequence,
  setUserTriggers,
  type TableInfo,
  truncateTables,
} from './table-copy.ts';

export { RestoreRefusedError };

export interface RestoreContext extends BackupContext {
  /** Published audit keys (current and retired) by keyId: an archive signed by any other key is refused. */
  keys: Map<string, KeyObject>;
  /** age identities, for an encrypted archive. */
  identities?: string[];
  /** RESTORE_KEEP_PREVIOUS_HOURS: how long the set-aside schema is kept. */
  keepPreviousHours: number;
}

export type OpenArchive = () => Readable | Promise<Readable>;

export type RestoreTarget = { tenantId: string } | { asNew: string };

export interface RestoreProgress {
  step: string;
  table?: string;
  rows?: number;
}

export interface RestoreOptions {
  by: AuditBy;
  onProgress?: (p: RestoreProgress) => void;
  /**
   * Test seam, called after each step: 'checked', 'safety-backup', then inside
   * the transaction 'locked', 'set-aside' (in place) or 'provisioned' (clone),
   * 'templates', 'table:<name>', 'loaded', 'migrated', 'drained' (in place),
   * 'recorded'; then 'committed' after the COMMIT.
   */
  hooks?: { afterStep?: (step: string) => void | Promise<void> };
}

export interface RestoreResult {
  tenantId: string;
  /** The archive's schema version. */
  fromVersion: number;
  /** The version the tenant is at after the restore (the latest installed). */
  toVersion: number;
  rows: number;
  safetyBackup: BackupRecord | null;
  asideSchema: string | null;
}

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

const restoreEvent = (
  tenantId: string,
  outcome: 'success' | 'failure',
  details: Record<string, unknown>,
  code?: string,
): AuditEventOf => ({
  tenantId,
  action: 'tenant.restore',
  resource: { type: 'tenant', id: tenantId },
  outcome,
  ...(code ? { code } : {}),
  details,
});

/** `open`, with the SHA-256 and size of every byte read through it (the whole file, once a reader has read it all). */
function hashingOpen(open: OpenArchive) {
  let hash = createHash('sha256');
  let bytes = 0;
  return {
    open: async (): Promise<Readable> => {
      hash = createHash('sha256');
      bytes = 0;
      const source = await open();
      const tap = new Transform({
        transform(chunk: Buffer, _enc, done) {
          hash.update(chunk);
          bytes += chunk.length;
          done(null, chunk);
        },
      });
      source.on('error', (err) => tap.destroy(err));
      tap.on('close', () => source.destroy());
      return source.pipe(tap);
    },
    digest: () => ({ sha256: hash.copy().digest('hex'), bytes }),
  };
}

/** Refuses an archive whose structure this installation would not rebuild the same way. */
export function checkTemplates(migrations: readonly TenantMigration[], manifest: ArchiveManifest): void {
  const latest = latestVersion(migrations);
  const v = manifest.schemaVersion;
  if (!Number.isInteger(v) || v < 1 || v > latest)
    throw new RestoreRefusedError(
      'future-schema',
      `the archive is at schema version ${v} but the installed templates only go to ${latest}: upgrade Enclave first`,
    );
  for (let version = 1; version <= v; version++) {
    const installed = migrations[version - 1] as TenantMigration;
    const archived = manifest.templates.find((t) => t.version === version);
    if (!archived || archived.name !== installed.name || archived.checksum !== installed.checksum)
      throw new RestoreRefusedError(
        'template-mismatch',
        `template ${installed.name} differs from the one the archive was made with${archived ? ` (${archived.name})` : ''}: the structure it would rebuild is not the one its data came from`,
      );
  }
  if (manifest.templates.length !== v)
    throw new RestoreRefusedError(
      'template-mismatch',
      `the archive lists ${manifest.templates.length} templates for schema version ${v}`,
    );
  const extra = manifest.drift.differences.find((d) => d.kind === 'table' && d.problem === 'unexpected');
  if (extra)
    throw new RestoreRefusedError(
      'unknown-table',
      `the archive holds table ${extra.object}, which no template makes (drift at backup time): a restore cannot rebuild it`,
    );
}

/** The tenant an in-place restore may replace, or a refusal. */
function checkTarget(tenant: tsql.TenantRow | undefined, tenantId: string): tsql.TenantRow {
  if (!tenant) throw new RestoreRefusedError('tenant-missing', `no tenant ${tenantId}`);
  if (!tsql.LIVE_STATES.includes(tenant.state))
    throw new RestoreRefusedError(
      'tenant-deleted',
      `tenant ${tenantId} is ${tenant.state}: restore it as a new tenant (--as-new) instead`,
    );
  if (tenant.legal_hold)
    throw new RestoreRefusedError(
      'legal-hold',
      `tenant ${tenantId} is under legal hold: its data cannot be replaced until the hold is lifted`,
    );
  return tenant;
}

/**
 * Loads every part of the archive into `schema` (built from templates 1..V in
 * this transaction, so its tables are ours): seeded rows emptied, user
 * triggers off and plain indexes and foreign keys dropped while loading (then
 * made again, identical: foreign keys checked over all rows at once), the
 * sequences set. Returns the rows loaded per table.
 */
async function loadArchive(
  client: Client,
  ctx: RestoreContext,
  open: OpenArchive,
  manifest: ArchiveManifest,
  schema: string,
  report: (p: RestoreProgress) => Promise<void>,
): Promise<Map<string, number>> {
  const tables = await discoverTables(client, schema);
  const byName = new Map(tables.map((t) => [t.name, t]));
  for (const t of manifest.tables) {
    const built = byName.get(t.name);
    if (!built)
      throw new RestoreRefusedError(
        'unknown-table',
        `the archive holds table ${t.name}, which the templates at version ${manifest.schemaVersion} do not make`,
      );
    const missing = t.columns.find((c) => !built.columns.includes(c));
    if (missing)
      throw new RestoreRefusedError(
        'unknown-table',
        `the archive holds column ${t.name}.${missing}, which the templates at version ${manifest.schemaVersion} do not make`,
      );
  }
  const names = tables.map((t) => t.name);
  const truncate = truncateTables(schema, names);
  if (truncate) await client.query(truncate);
  for (const t of tables) await client.query(setUserTriggers(schema, t.name, false));
  // Plain indexes and foreign keys are built again once the rows are in (see
  // DeferredObjects), from their definitions in this very schema, which the
  // templates made a moment ago: the result is what the templates make.
  // pg_get_indexdef qualifies names outside the search_path: with pg_catalog
  // only, every definition names its schema (this one) explicitly.
  await client.query("SELECT set_config('search_path', 'pg_catalog', true)");
  const deferred = await discoverDeferrable(client, schema);
  for (const k of deferred.foreignKeys) await client.query(dropConstraint(schema, k.table, k.name));
  for (const i of deferred.indexes) await client.query(dropIndex(schema, i.name));
  const loaded = new Map<string, number>();
  for await (const part of readParts(open, manifest, readerOptions(ctx))) {
    const n = await copyTableIn(client, schema, part.table.name, part.table.columns, part.rows);
    if (n !== part.table.rows)
      throw new Error(`table ${part.table.name}: loaded ${n} rows, the archive says ${part.table.rows}`);
    loaded.set(part.table.name, n);
    await report({ step: `table:${part.table.name}`, table: part.table.name, rows: n });
  }
  for (const i of deferred.indexes) await client.query(i.definition);
  for (const k of deferred.foreignKeys)
    await client.query(addConstraint(schema, k.table, k.name, k.definition));
  await client.query(tsql.setSearchPath(schema));
  for (const t of tables) await client.query(setUserTriggers(schema, t.name, true));
  for (const s of manifest.sequences) await client.query(setSequence(schema, s));
  return loaded;
}

const readerOptions = (ctx: RestoreContext) => ({
  keys: ctx.keys,
  ...(ctx.identities ? { identities: ctx.identities } : {}),
});

/** Runs templates first..last (by version) on `names`, as the tenant's own migrations do. */
async function applyTemplates(
  client: Client,
  migrations: readonly TenantMigration[],
  names: { schema: string; role: string },
  from: number,
  to: number,
  onApplied?: (m: TenantMigration, ms: number) => Promise<void>,
) {
  await client.query(tsql.setSearchPath(names.schema));
  for (const m of migrations.filter((m) => m.version >= from && m.version <= to)) {
    const started = performance.now();
    try {
      await client.query(renderMigration(m, names));
    } catch (err) {
      throw new MigrationError(m.name, err);
    }
    await onApplied?.(m, performance.now() - started);
  }
}

export async function restoreTenant(
  ctx: RestoreContext,
  open: OpenArchive,
  target: RestoreTarget,
  options: RestoreOptions,
): Promise<RestoreResult> {
  const report = async (p: RestoreProgress) => {
    options.onProgress?.(p);
    await options.hooks?.afterStep?.(p.step);
  };
  const inPlace = 'tenantId' in target;
  const archive = hashingOpen(open);
  let manifest: ArchiveManifest | undefined;
  let chain: string | null = inPlace && isTenantId(target.tenantId) ? target.tenantId : null;
  const fail = async (err: unknown, code: string) => {
    if (chain)
      await record(
        ctx.pool,
        options.by,
        restoreEvent(
          chain,
          'failure',
          {
            ...(inPlace ? {} : { asNew: true }),
            ...(manifest ? { source: manifest.tenant.id, archiveVersion: manifest.schemaVersion } : {}),
            error: message(err),
          },
          code,
        ),
      ).catch(() => {});
  };

  // 1. Refusals, before anything changes.
  let displayName = '';
  try {
    // The tenant first (cheap), then the whole archive.
    if (inPlace) {
      const tenant = isTenantId(target.tenantId)
        ? (await run<tsql.TenantRow>(ctx.pool, tsql.selectTenant(target.tenantId))).rows[0]
        : undefined;
      checkTarget(tenant, target.tenantId);
    }
    const m = await checkArchive(archive.open, readerOptions(ctx));
    manifest = m;
    if (!inPlace && isTenantId(m.tenant.id)) chain = m.tenant.id;
    checkTemplates(ctx.migrations, m);
    if (inPlace) {
      if (m.tenant.id !== target.tenantId)
        throw new RestoreRefusedError(
          'other-tenant',
          `the archive is of tenant ${m.tenant.id}, not ${target.tenantId}: restore it as a new tenant (--as-new) instead`,
        );
    } else {
      try {
        displayName = checkDisplayName(target.asNew);
      } catch (err) {
        if (err instanceof InvalidInputError) throw new RestoreRefusedError('bad-name', err.message);
        throw err;
      }
    }
  } catch (err) {
    await fail(err, 'restore_refused');
    throw err;
  }
  const checked = manifest as ArchiveManifest;
  const { sha256 } = archive.digest();
  await report({ step: 'checked' });

  // 2. The safety backup of the current state (its own snapshot, before the restore's transaction).
  let safetyBackup: BackupRecord | null = null;
  if (inPlace) {
    try {
      safetyBackup = await backupTenant(ctx, target.tenantId, { by: options.by, kind: 'safety' });
    } catch (err) {
      await fail(err, 'restore_failed');
      throw err;
    }
    await report({ step: 'safety-backup' });
  }

  // 3. One transaction: all of it, or nothing.
  let result: Omit<RestoreResult, 'safetyBackup'>;
  try {
    result = await transaction(ctx.pool, (client) =>
      inPlace
        ? restoreInPlace(
            client,
            ctx,
            archive.open,
            checked,
            target.tenantId,
            sha256,
            safetyBackup,
            options,
            report,
          )
        : restoreAsNew(client, ctx, archive.open, checked, displayName, sha256, options, report),
    );
  } catch (err) {
    await fail(err, err instanceof RestoreRefusedError ? 'restore_refused' : 'restore_failed');
    throw err;
  }
  await report({ step: 'committed' });
  return { ...result, safetyBackup };
}

async function restoreInPlace(
  client: Client,
  ctx: RestoreContext,
  open: OpenArchive,
  manifest: ArchiveManifest,
  tenantId: string,
  sha256: string,
  safetyBackup: BackupRecord | null,
  options: RestoreOptions,
  report: (p: RestoreProgress) => Promise<void>,
): Promise<Omit<RestoreResult, 'safetyBackup'>> {
  await client.query(setLockTimeout(ctx.lockTimeoutMs));
  await client.query(copySettings);
  await client.query(tenantLock(tenantId));
  const tenant = checkTarget(
    (await client.query<tsql.TenantRow>(tsql.selectTenantForUpdate(tenantId))).rows[0],
    tenantId,
  );
  await report({ step: 'locked' });

  const names = { schema: checkTenantName(tenant.schema_name), role: checkTenantName(tenant.role_name) };
  const aside = asideSchemaName(names.schema);
  await client.query(`ALTER SCHEMA ${ident(names.schema)} RENAME TO ${ident(aside)}`);
  await client.query(`REVOKE ALL ON SCHEMA ${ident(aside)} FROM ${ident(names.role)}`);
  await report({ step: 'set-aside' });

  await client.query(tsql.createSchema(names.schema));
  await client.query(tsql.grantSchemaUsage(names.schema, names.role));
  await applyTemplates(client, ctx.migrations, names, 1, manifest.schemaVersion);
  await report({ step: 'templates' });

  const loaded = await loadArchive(client, ctx, open, manifest, names.schema, report);
  await report({ step: 'loaded' });

  const latest = latestVersion(ctx.migrations);
  await applyTemplates(client, ctx.migrations, names, manifest.schemaVersion + 1, latest, async (m, ms) => {
    await run(client, recordReappliedMigration(tenantId, m, ms));
  });
  await report({ step: 'migrated' });

  // Requests still inside the set-aside tables finish first (or the lock_timeout rolls us back).
  await drainAside(client, aside, ctx.lockTimeoutMs);
  await report({ step: 'drained' });

  await client.query(tsql.setVersion(tenantId, latest));
  await recordAside(client, aside, tenantId, ctx.keepPreviousHours);
  const rows = [...loaded.values()].reduce((a, b) => a + b, 0);
  await record(
    client,
    options.by,
    restoreEvent(tenantId, 'success', {
      from: manifest.schemaVersion,
      to: latest,
      previousVersion: tenant.schema_version,
      sha256,
      createdAt: manifest.createdAt,
      rows,
      asideSchema: aside,
      safetyBackupId: safetyBackup?.id ?? null,
    }),
  );
  await report({ step: 'recorded' });
  return { tenantId, fromVersion: manifest.schemaVersion, toVersion: latest, rows, asideSchema: aside };
}

/**
 * ACCESS EXCLUSIVE on every set-aside table: requests still reading or writing
 * them finish first, new ones wait for the COMMIT and then find the restored
 * schema. Taken within `lockTimeoutMs` in all; a deadlock with a request that
 * holds one table and wants another (we hold some, wait for the rest) is
 * broken by giving back what this attempt got and trying again.
 */
async function drainAside(client: Client, aside: string, lockTimeoutMs: number): Promise<void> {
  const drain = lockTables(
    aside,
    (await discoverTables(client, aside)).map((t) => t.name),
    'ACCESS EXCLUSIVE',
  );
  if (!drain) return;
  const deadline = performance.now() + lockTimeoutMs;
  for (;;) {
    await client.query('SAVEPOINT drain');
    try {
      await client.query(setLockTimeout(Math.max(1, deadline - performance.now())));
      await client.query(drain);
      await client.query('RELEASE SAVEPOINT drain');
      await client.query(setLockTimeout(lockTimeoutMs));
      return;
    } catch (err) {
      if ((err as { code?: string }).code !== '40P01' || performance.now() >= deadline) throw err;
      await client.query('ROLLBACK TO SAVEPOINT drain');
      await new Promise((resolve) => setTimeout(resolve, 10 + Math.random() * 40));
    }
  }
}

async function restoreAsNew(
  client: Client,
  ctx: RestoreContext,
  open: OpenArchive,
  manifest: ArchiveManifest,
  displayName: string,
  sha256: string,
  options: RestoreOptions,
  report: (p: RestoreProgress) => Promise<void>,
): Promise<Omit<RestoreResult, 'safetyBackup'>> {
  await client.query(setLockTimeout(ctx.lockTimeoutMs));
  await client.query(copySettings);
  // Provisioned at the archive's version (templates 1..V), active, audited: all in this transaction.
  const atVersion = ctx.migrations.filter((m) => m.version <= manifest.schemaVersion);
  const tenant = await provisionTenantInTransaction(client, { displayName }, atVersion, { by: options.by });
  await report({ step: 'provisioned' });
  await report({ step: 'templates' });
  const loaded = await loadArchive(client, ctx, open, manifest, checkTenantName(tenant.schema_name), report);
  await report({ step: 'loaded' });
  const migrated = await migrateTenantInTransaction(client, tenant.id, ctx.migrations);
  await report({ step: 'migrated' });
  const rows = [...loaded.values()].reduce((a, b) => a + b, 0);
  await record(
    client,
    options.by,
    restoreEvent(tenant.id, 'success', {
      asNew: true,
      source: manifest.tenant.id,
      from: manifest.schemaVersion,
      to: migrated.to,
      sha256,
      createdAt: manifest.createdAt,
      rows,
    }),
  );
  await report({ step: 'recorded' });
  return {
    tenantId: tenant.id,
    fromVersion: manifest.schemaVersion,
    toVersion: migrated.to,
    rows,
    asideSchema: null,
  };
}

export interface VerifyResult {
  manifest: ArchiveManifest;
  tables: Array<{ name: string; rows: number; expectedRows: number; ok: boolean }>;
}

/**
 * Loads the archive into a scratch role and schema built from templates 1..V,
 * in a transaction that always rolls back, then reads each table back out
 * with COPY and compares its row count and content SHA-256 with the manifest.
 */
export async function verifyArchiveByRestore(ctx: RestoreContext, open: OpenArchive): Promise<VerifyResult> {
  const manifest = await checkArchive(open, readerOptions(ctx));
  checkTemplates(ctx.migrations, manifest);
  return transaction(
    ctx.pool,
    async (client) => {
      await client.query(copySettings);
      const names = tenantNames(newTenantId());
      await client.query(tsql.createRole(names.role));
      await client.query(tsql.createSchema(names.schema));
      await client.query(tsql.grantSchemaUsage(names.schema, names.role));
      await applyTemplates(client, ctx.migrations, names, 1, manifest.schemaVersion);
      await loadArchive(client, ctx, open, manifest, names.schema, async () => {});
      const catalog = new Map((await discoverTables(client, names.schema)).map((t) => [t.name, t]));
      const tables: VerifyResult['tables'] = [];
      for (const t of manifest.tables) {
        const built = catalog.get(t.name) as TableInfo;
        const hash = createHash('sha256');
        const sink = new Writable({
          write(chunk: Buffer, _enc, done) {
            hash.update(chunk);
            done();
          },
        });
        const rows = await copyTableOut(
          client,
          names.schema,
          { name: t.name, columns: t.columns, primaryKey: built.primaryKey },
          sink,
        );
        tables.push({
          name: t.name,
          rows,
          expectedRows: t.rows,
          ok: rows === t.rows && hash.digest('hex') === t.contentSha256,
        });
      }
      return { manifest, tables };
    },
    { rollback: true },
  );
}
