// `enclave backup ...`: per-tenant backups (docs/BACKUP.md). create, list,
// verify, restore, prune. Every module that loads pg is imported inside an
// action, and `backup verify FILE --key PUB` loads none at all: it checks the
// archive with the public key alone, on any machine (test/cli/backup.test.ts).
//
// Exit codes: 0 ok, 1 failed or refused (one line `enclave: ...`), 2 bad usage
// (nothing was changed), 78 bad configuration.
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import cliProgress from 'cli-progress';
import { type Command, InvalidArgumentError, Option } from 'commander';
import type { ArchiveManifest } from '../backup/archive-format.ts';
import type { BackupRecord } from '../backup/catalog.ts';
import type { Backups } from '../backup/context.ts';
import type { CliContext } from './connect.ts';
import { notice, printJson, printTable } from './output.ts';
import { UsageError } from './usage-error.ts';

const TENANT_ID = /^[a-z0-9]{12}$/;
const DEFAULT_CONCURRENCY = 4;

function concurrency(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > 64)
    throw new InvalidArgumentError('must be a whole number from 1 to 64');
  return n;
}

const json = () => new Option('--json', 'print machine-readable JSON');

export function registerBackupCommands(program: Command): Command {
  const backup = program
    .command('backup')
    .description('per-tenant backups: create, list, verify, restore, prune (docs/BACKUP.md)');
  backup
    .command('create')
    .description(
      "back up tenants, one archive each, while they keep serving (one snapshot of each tenant's tables)",
    )
    .argument('[tenant...]', 'tenant ids')
    .option('--all', 'every tenant that has a schema')
    .option('--concurrency <n>', `tenants backed up at once (default ${DEFAULT_CONCURRENCY})`, concurrency)
    .option('--out <dir>', 'write the archives to this directory instead of BACKUP_DIR')
    .addOption(json())
    .action(async (tenants: string[], opts) => {
      process.exitCode = await createCommand(tenants, opts);
    });
  backup
    .command('list')
    .description('list backups (every attempt: succeeded, failed, running), newest first')
    .argument('[tenant]', "only this tenant's")
    .addOption(json())
    .action(async (tenant: string | undefined, opts) => {
      process.exitCode = await listCommand(tenant, opts);
    });
  backup
    .command('verify')
    .description(
      'check an archive: signature, manifest and every checksum (with --key: offline, no database needed)',
    )
    .argument('<file>', 'the archive (.enclave-backup)')
    .option(
      '--key <file>',
      'trusted public keys, PEM (`enclave audit public-key --all`); default: the published ones',
    )
    .option(
      '--identity <file>',
      'age identity file for an encrypted archive (default: BACKUP_AGE_IDENTITY_FILE)',
    )
    .option('--restore', 'also load it into a scratch schema and compare every table (needs the database)')
    .addOption(json())
    .action(async (file: string, opts) => {
      process.exitCode = await verifyCommand(file, opts);
    });
  backup
    .command('restore')
    .description(
      'restore a tenant from an archive, in place (a safety backup first; the old schema kept aside) or as a new tenant',
    )
    .argument('<file>', 'the archive (.enclave-backup)')
    .option('--tenant <id>', "the tenant to restore in place (default: the archive's own)")
    .option('--as-new <name>', 'restore as a new tenant (a clone) with this display name')
    .option('--yes', 'do not ask for confirmation')
    .addOption(json())
    .action(async (file: string, opts) => {
      process.exitCode = await restoreCommand(file, opts);
    });
  backup
    .command('prune')
    .description(
      'delete backups beyond BACKUP_KEEP_COUNT or older than BACKUP_KEEP_DAYS (never the last good one, never under legal hold)',
    )
    .option('--dry-run', 'show what would be deleted; change nothing')
    .addOption(json())
    .action(async (opts) => {
      process.exitCode = await pruneCommand(opts);
    });
  return backup;
}

// --- shared ------------------------------------------------------------------

function checkTenantId(id: string): string {
  if (!TENANT_ID.test(id))
    throw new UsageError(
      `"${id}" is not a tenant id (12 characters, a-z and 0-9; see \`enclave tenants list\`)`,
    );
  return id;
}

/** An archive file that exists and is a file, or a usage error. */
async function archiveFile(file: string): Promise<string> {
  const st = await stat(file).catch((err: NodeJS.ErrnoException) => {
    throw new UsageError(`cannot read ${file}: ${err.code ?? err.message}`);
  });
  if (!st.isFile()) throw new UsageError(`${file} is not a file`);
  return file;
}

function bar(opts: { json?: boolean }, format: string) {
  return process.stderr.isTTY && !opts.json
    ? new cliProgress.SingleBar({ stream: process.stderr, format }, cliProgress.Presets.shades_classic)
    : undefined;
}

const fileSource = (file: string) => async (): Promise<Readable> => {
  const { createReadStream } = await import('node:fs');
  return createReadStream(file);
};

async function backupsOf(ctx: CliContext, dir?: string): Promise<Backups> {
  const { loadSigner } = await import('../audit/signing.ts');
  const { createBackups } = await import('../backup/context.ts');
  const signer = await loadSigner(ctx.config, ctx.pool);
  return createBackups(ctx.config, ctx.pool, {
    signer,
    migrations: ctx.migrations,
    ...(dir ? { dir } : {}),
  });
}

/** The public shape of a backup in CLI output (stable for scripts). */
export function backupView(b: BackupRecord) {
  return {
    id: b.id,
    tenant: b.tenantId,
    kind: b.kind,
    outcome: b.outcome,
    started_at: b.startedAt,
    duration_ms: b.durationMs,
    version: b.schemaVersion,
    rows: b.rows,
    bytes: b.bytes,
    sha256: b.sha256,
    encrypted: b.encrypted,
    key_id: b.keyId,
    drift: b.drift,
    created_by: b.createdBy,
    location: b.location,
    error: b.error,
  };
}

const LIST_COLUMNS = [
  'id',
  'tenant',
  'kind',
  'outcome',
  'started_at',
  'version',
  'rows',
  'bytes',
  'location',
];

function driftWarning(b: BackupRecord): void {
  if (b.drift)
    notice(
      `warning: tenant ${b.tenantId} differs from its templates in ${b.drift} place(s): a restore rebuilds it as the templates say (see \`enclave tenants drift --tenant ${b.tenantId}\`)`,
    );
}

// --- create ------------------------------------------------------------------

export async function createCommand(
  tenants: string[],
  opts: { all?: boolean; concurrency?: number; out?: string; json?: boolean },
): Promise<number> {
  if (opts.all && tenants.length) throw new UsageError('give tenant ids or --all, not both');
  if (!opts.all && tenants.length === 0) throw new UsageError('give the tenant ids to back up, or --all');
  const ids = [...new Set(tenants.map(checkTenantId))];
  if (opts.out !== undefined) {
    const st = await stat(opts.out).catch(() => null);
    if (st && !st.isDirectory()) throw new UsageError(`--out ${opts.out} is not a directory`);
  }
  const n = opts.concurrency ?? DEFAULT_CONCURRENCY;
  const { connect } = await import('./connect.ts');
  const { run } = await import('../kernel/db.ts');
  const tsql = await import('../tenancy/tenant-sql.ts');
  const { backupTenant, driftOfTenants } = await import('../backup/backup.ts');
  const { cliBy } = await import('./audit-by.ts');
  const ctx = await connect(2 * n + 1);
  const progress = bar(opts, 'Backing up {bar} {value}/{total} tenants | {failed} failed | {rows} rows');
  try {
    let targets: string[];
    if (opts.all) {
      targets = (await run<{ id: string; state: string }>(ctx.pool, tsql.listTenants(false))).rows
        .filter((t) => (tsql.LIVE_STATES as readonly string[]).includes(t.state))
        .map((t) => t.id);
    } else {
      const found = new Set(
        (await run<{ id: string }>(ctx.pool, tsql.selectExisting(ids))).rows.map((r) => r.id),
      );
      const missing = ids.filter((id) => !found.has(id));
      if (missing.length)
        throw new UsageError(`no such tenant: ${missing.join(', ')} (see \`enclave tenants list\`)`);
      targets = ids;
    }
    const backups = await backupsOf(ctx, opts.out);
    const drifts = await driftInBatches(ctx, targets, driftOfTenants, opts);
    const by = cliBy();
    const done: BackupRecord[] = [];
    const failed: Array<{ tenant: string; error: string }> = [];
    let rows = 0;
    progress?.start(targets.length, 0, { failed: 0, rows: 0 });
    const queue = [...targets];
    const worker = async () => {
      for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
        try {
          const record = await backupTenant(backups.backupContext(), id, {
            by,
            kind: 'manual',
            ...(drifts.has(id) ? { drift: drifts.get(id) } : {}),
            onProgress: (p) => progress?.update({ rows: rows + p.rows }),
          });
          rows += record.rows ?? 0;
          done.push(record);
        } catch (err) {
          failed.push({ tenant: id, error: (err as Error).message });
        }
        progress?.increment(1, { failed: failed.length, rows });
      }
    };
    await Promise.all(Array.from({ length: Math.min(n, Math.max(1, targets.length)) }, worker));
    progress?.stop();
    done.sort((a, b) => (a.tenantId < b.tenantId ? -1 : 1));
    if (opts.json) printJson({ backups: done.map(backupView), failed });
    else {
      printTable(
        done.map(backupView),
        ['tenant', 'id', 'version', 'rows', 'bytes', 'duration_ms', 'location'],
        opts.all ? 'No tenants to back up.' : '',
      );
      for (const f of failed) notice(`enclave: tenant ${f.tenant}: ${f.error}`);
      if (targets.length > 1 || failed.length)
        process.stdout.write(`${done.length} backed up, ${failed.length} failed.\n`);
    }
    for (const b of done) driftWarning(b);
    return failed.length ? 1 : 0;
  } finally {
    progress?.stop();
    await ctx.close();
  }
}

/** Tenants whose drift is checked in one pass (one catalog read for the batch, not one per tenant). */
const DRIFT_BATCH = 500;

/**
 * The drift findings of several tenants, checked DRIFT_BATCH at a time before
 * their backups start (as the scheduled backup does). One tenant is left to
 * its backup, which checks it in its own snapshot.
 */
async function driftInBatches(
  ctx: CliContext,
  targets: readonly string[],
  driftOfTenants: typeof import('../backup/backup.ts').driftOfTenants,
  opts: { json?: boolean },
): Promise<Map<string, ArchiveManifest['drift']>> {
  const out = new Map<string, ArchiveManifest['drift']>();
  if (targets.length < 2) return out;
  const progress = bar(opts, 'Checking drift {bar} {value}/{total} tenants');
  progress?.start(targets.length, 0);
  for (let i = 0; i < targets.length; i += DRIFT_BATCH) {
    const batch = targets.slice(i, i + DRIFT_BATCH);
    for (const [id, drift] of await driftOfTenants(ctx.pool, ctx.migrations, batch)) out.set(id, drift);
    progress?.increment(batch.length);
  }
  progress?.stop();
  return out;
}

// --- list --------------------------------------------------------------------

export async function listCommand(tenant: string | undefined, opts: { json?: boolean }): Promise<number> {
  if (tenant !== undefined) checkTenantId(tenant);
  const { connect } = await import('./connect.ts');
  const { run } = await import('../kernel/db.ts');
  const tsql = await import('../tenancy/tenant-sql.ts');
  const { listBackups } = await import('../backup/catalog.ts');
  const ctx = await connect(1);
  try {
    if (tenant && (await run(ctx.pool, tsql.selectTenant(tenant))).rowCount === 0)
      throw new UsageError(`no such tenant: ${tenant} (see \`enclave tenants list\`)`);
    const backups = (await listBackups(ctx.pool, tenant)).map(backupView);
    if (opts.json) printJson(backups);
    else printTable(backups, LIST_COLUMNS, 'No backups yet: make one with `enclave backup create TENANT`.');
    return 0;
  } finally {
    await ctx.close();
  }
}

// --- verify ------------------------------------------------------------------

function summary(m: ArchiveManifest) {
  return {
    tenant: m.tenant,
    schemaVersion: m.schemaVersion,
    createdAt: m.createdAt,
    enclaveVersion: m.enclaveVersion,
    origin: m.origin,
    keyId: m.keyId,
    tables: m.tables.map((t) => ({ name: t.name, rows: t.rows })),
    rows: m.tables.reduce((n, t) => n + t.rows, 0),
    drift: m.drift,
  };
}

function manifestLine(m: ArchiveManifest): string {
  const rows = m.tables.reduce((n, t) => n + t.rows, 0);
  return `tenant ${m.tenant.id} (${m.tenant.name}), schema version ${m.schemaVersion}, ${m.tables.length} tables, ${rows} rows, made ${m.createdAt}, signed by key ${m.keyId}`;
}

function manifestDriftWarning(m: ArchiveManifest): void {
  if (!m.drift.checked) notice('warning: the drift check could not run when this backup was made');
  else if (m.drift.differences.length)
    notice(
      `warning: at backup time, tenant ${m.tenant.id} differed from its templates in ${m.drift.differences.length} place(s): ${m.drift.differences
        .slice(0, 3)
        .map((d) => `${d.kind} ${d.object} ${d.problem}`)
        .join('; ')}`,
    );
}

async function readText(file: string, option: string): Promise<string> {
  const { readFile } = await import('node:fs/promises');
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new UsageError(
      `${option} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
}

export async function verifyCommand(
  file: string,
  opts: { key?: string; identity?: string; restore?: boolean; json?: boolean },
): Promise<number> {
  await archiveFile(file);
  const reader = await import('../backup/archive-reader.ts');
  let pinned: Map<string, import('node:crypto').KeyObject> | undefined;
  if (opts.key) {
    const pem = await readText(opts.key, '--key');
    try {
      pinned = reader.archiveKeysFromPem(pem);
    } catch (err) {
      throw new UsageError(`--key ${opts.key}: ${(err as Error).message}`);
    }
  }
  const identityFile = opts.identity ?? (process.env.BACKUP_AGE_IDENTITY_FILE || undefined);
  let identities: string[] | undefined;
  if (identityFile) {
    const text = await readText(identityFile, opts.identity ? '--identity' : 'BACKUP_AGE_IDENTITY_FILE');
    identities = reader.ageIdentitiesFromText(text);
    if (identities.length === 0)
      throw new UsageError(`${identityFile} holds no age identity (AGE-SECRET-KEY-… lines)`);
  }
  const refused = async (err: unknown): Promise<never> => {
    const { ArchiveRefusedError } = await import('../backup/backup-errors.ts');
    if (opts.json && err instanceof Error)
      printJson({
        ok: false,
        file,
        reason: err instanceof ArchiveRefusedError ? err.reason : 'failed',
        message: err.message,
      });
    throw err;
  };

  // Offline: the public key alone, no database, no configuration.
  if (pinned && !opts.restore) {
    const { size } = await stat(file);
    const progress = bar(opts, 'Verifying {bar} {percentage}% | {table} | ETA {eta}s');
    progress?.start(size, 0, { table: 'manifest' });
    const source = async (): Promise<Readable> => {
      const { createReadStream } = await import('node:fs');
      const input = createReadStream(file);
      if (!progress) return input;
      // Counted on the way through (a 'data' listener would start the flow before the reader is there).
      const { Transform } = await import('node:stream');
      let read = 0;
      const counted = new Transform({
        transform(chunk: Buffer, _enc, done) {
          read += chunk.length;
          progress.update(read);
          done(null, chunk);
        },
      });
      input.on('error', (err) => counted.destroy(err));
      counted.on('close', () => input.destroy());
      return input.pipe(counted);
    };
    let manifest: ArchiveManifest;
    try {
      manifest = await reader.checkArchive(source, {
        keys: pinned,
        ...(identities ? { identities } : {}),
        onProgress: (p) => progress?.update({ table: p.table }),
      });
    } catch (err) {
      progress?.stop();
      return refused(err);
    }
    progress?.stop();
    if (opts.json) printJson({ ok: true, file, ...summary(manifest) });
    else process.stdout.write(`OK: ${manifestLine(manifest)}\n`);
    manifestDriftWarning(manifest);
    return 0;
  }

  const { connect } = await import('./connect.ts');
  const ctx = await connect(3);
  try {
    const { createBackups, publishedKeys } = await import('../backup/context.ts');
    const keys = pinned ?? (await publishedKeys(ctx.pool));
    if (!opts.restore) {
      let manifest: ArchiveManifest;
      try {
        manifest = await reader.checkArchive(fileSource(file), {
          keys,
          ...(identities ? { identities } : {}),
        });
      } catch (err) {
        return await refused(err);
      }
      if (opts.json) printJson({ ok: true, file, ...summary(manifest) });
      else process.stdout.write(`OK: ${manifestLine(manifest)}\n`);
      manifestDriftWarning(manifest);
      return 0;
    }
    // --restore: the signing key is not used (nothing is written), but the context wants one.
    const backups = createBackups(ctx.config, ctx.pool, {
      signer: { keyId: 'verify', sign: () => Buffer.alloc(0) },
      migrations: ctx.migrations,
    });
    const rctx = await backups.restoreContext();
    rctx.keys = keys;
    if (identities) rctx.identities = identities;
    const { verifyArchiveByRestore } = await import('../backup/restore.ts');
    const { record } = await import('../kernel/audit-inbox.ts');
    const { cliBy } = await import('./audit-by.ts');
    // Like the admin API's verify: loading a tenant's data is written to its chain.
    const audited = (tenantId: string, ok: boolean, details: Record<string, unknown>) =>
      record(ctx.pool, cliBy(), {
        tenantId,
        action: 'tenant.backup.verify',
        resource: { type: 'tenant', id: tenantId },
        outcome: ok ? 'success' : 'failure',
        details: { file: path.basename(file), restore: true, ...details },
      });
    if (process.stderr.isTTY && !opts.json)
      notice('Loading the archive into a scratch schema and reading every table back...');
    let result: Awaited<ReturnType<typeof verifyArchiveByRestore>>;
    try {
      result = await verifyArchiveByRestore(rctx, fileSource(file));
    } catch (err) {
      return await refused(err);
    }
    const ok = result.tables.every((t) => t.ok);
    await audited(result.manifest.tenant.id, ok, {
      mismatched: result.tables.filter((t) => !t.ok).map((t) => t.name),
    });
    if (opts.json) printJson({ ok, file, ...summary(result.manifest), restored: result.tables });
    else {
      printTable(
        result.tables.map((t) => ({
          table: t.name,
          rows: t.rows,
          expected: t.expectedRows,
          ok: t.ok ? 'ok' : 'MISMATCH',
        })),
        ['table', 'rows', 'expected', 'ok'],
        '',
      );
      process.stdout.write(
        ok
          ? `OK: ${manifestLine(result.manifest)}; every table reloads with its rows and checksum\n`
          : `FAIL: ${result.tables.filter((t) => !t.ok).length} table(s) did not reload as the manifest says\n`,
      );
    }
    manifestDriftWarning(result.manifest);
    if (!ok && !opts.json) notice('enclave: the archive did not reload as its manifest says');
    return ok ? 0 : 1;
  } finally {
    await ctx.close();
  }
}

// --- restore -----------------------------------------------------------------

export async function restoreCommand(
  file: string,
  opts: { tenant?: string; asNew?: string; yes?: boolean; json?: boolean },
): Promise<number> {
  if (opts.tenant !== undefined && opts.asNew !== undefined)
    throw new UsageError('give --tenant or --as-new, not both');
  if (opts.tenant !== undefined) checkTenantId(opts.tenant);
  let displayName: string | undefined;
  if (opts.asNew !== undefined) {
    const { checkDisplayName } = await import('../tenancy/provision.ts');
    displayName = checkDisplayName(opts.asNew); // InvalidInputError: exit 2
  }
  if (!opts.yes && !process.stdin.isTTY)
    throw new UsageError('a restore replaces data: pass --yes to confirm (no terminal to ask on)');
  await archiveFile(file);
  const { connect } = await import('./connect.ts');
  const { run } = await import('../kernel/db.ts');
  const tsql = await import('../tenancy/tenant-sql.ts');
  const { checkArchive } = await import('../backup/archive-reader.ts');
  const { restoreTenant } = await import('../backup/restore.ts');
  const { cliBy } = await import('./audit-by.ts');
  const ctx = await connect(4);
  let progress: ReturnType<typeof bar>;
  try {
    if (opts.tenant && (await run(ctx.pool, tsql.selectTenant(opts.tenant))).rowCount === 0)
      throw new UsageError(`no such tenant: ${opts.tenant} (see \`enclave tenants list\`)`);
    const backups = await backupsOf(ctx);
    const rctx = await backups.restoreContext();
    // The whole archive checked first: a refusal changes nothing and asks nothing.
    const manifest = await checkArchive(fileSource(file), {
      keys: rctx.keys,
      ...(rctx.identities ? { identities: rctx.identities } : {}),
    });
    const target =
      displayName !== undefined ? { asNew: displayName } : { tenantId: opts.tenant ?? manifest.tenant.id };
    if (!opts.yes) {
      await describePlan(ctx, manifest, target);
      const { createInterface } = await import('node:readline/promises');
      const rl = createInterface({ input: process.stdin, output: process.stderr });
      const expected = 'tenantId' in target ? target.tenantId : manifest.tenant.id;
      const answer = await rl.question(`Type the tenant id (${expected}) to confirm: `);
      rl.close();
      if (answer.trim() !== expected) throw new UsageError('not confirmed; nothing was restored');
    }
    const total = manifest.tables.reduce((n, t) => n + t.rows, 0);
    progress = bar(opts, 'Restoring {bar} {value}/{total} rows | {step}');
    progress?.start(total, 0, { step: 'checking the archive' });
    let loaded = 0;
    const result = await restoreTenant(rctx, fileSource(file), target, {
      by: cliBy(),
      onProgress: (p) => {
        if (p.rows !== undefined) loaded += p.rows;
        progress?.update(loaded, { step: p.table ? `table ${p.table}` : p.step });
      },
    });
    progress?.stop();
    if (opts.json)
      printJson({
        tenantId: result.tenantId,
        fromVersion: result.fromVersion,
        toVersion: result.toVersion,
        rows: result.rows,
        asideSchema: result.asideSchema,
        keepPreviousHours: result.asideSchema ? rctx.keepPreviousHours : null,
        safetyBackup: result.safetyBackup ? backupView(result.safetyBackup) : null,
        source: { tenant: manifest.tenant, createdAt: manifest.createdAt },
      });
    else {
      const what =
        'asNew' in target
          ? `Restored tenant ${manifest.tenant.id}'s archive as new tenant ${result.tenantId} (${target.asNew})`
          : `Restored tenant ${result.tenantId} from its archive of ${manifest.createdAt}`;
      process.stdout.write(
        `${what}: schema version ${result.fromVersion}${result.toVersion !== result.fromVersion ? ` migrated to ${result.toVersion}` : ''}, ${result.rows} rows.\n`,
      );
      if (result.safetyBackup)
        process.stdout.write(
          `Safety backup of the state before: ${result.safetyBackup.id} (${result.safetyBackup.location}).\n`,
        );
      if (result.asideSchema)
        process.stdout.write(
          `The previous schema is kept aside as ${result.asideSchema} for ${rctx.keepPreviousHours} h (dropped by \`enclave backup prune\` after that).\n`,
        );
    }
    manifestDriftWarning(manifest);
    return 0;
  } finally {
    progress?.stop();
    await ctx.close();
  }
}

/** What a restore will do, on stderr: the archive, the target and its current state. */
async function describePlan(
  ctx: CliContext,
  manifest: ArchiveManifest,
  target: { tenantId: string } | { asNew: string },
): Promise<void> {
  const { run } = await import('../kernel/db.ts');
  const { ident } = await import('../kernel/identifiers.ts');
  const tsql = await import('../tenancy/tenant-sql.ts');
  const { latestVersion } = await import('../tenancy/templates.ts');
  const latest = latestVersion(ctx.migrations);
  const lines = [
    `Archive: ${manifestLine(manifest)}.`,
    `Its rows: ${manifest.tables.map((t) => `${t.name} ${t.rows}`).join(', ') || 'none'}.`,
  ];
  if ('asNew' in target) {
    lines.push(
      `This creates a NEW tenant "${target.asNew}" with these rows, at schema version ${latest}; tenant ${manifest.tenant.id} is not touched.`,
    );
  } else {
    const tenant = (
      await run<import('../tenancy/tenant-sql.ts').TenantRow>(ctx.pool, tsql.selectTenant(target.tenantId))
    ).rows[0];
    if (tenant) {
      const counts: string[] = [];
      if ((tsql.LIVE_STATES as readonly string[]).includes(tenant.state))
        for (const t of manifest.tables) {
          const n = await ctx.pool
            .query<{ n: string }>(
              `SELECT count(*)::text AS n FROM ${ident(tenant.schema_name)}.${ident(t.name)}`,
            )
            .then(
              (r) => r.rows[0]?.n ?? '?',
              () => '?',
            );
          counts.push(`${t.name} ${n}`);
        }
      lines.push(
        `Now: tenant ${tenant.id} (${tenant.display_name}) is ${tenant.state}${tenant.legal_hold ? ', under legal hold' : ''}, at schema version ${tenant.schema_version}${counts.length ? `, with ${counts.join(', ')}` : ''}.`,
        `This REPLACES every row of tenant ${tenant.id} with the archive's (migrated to version ${latest}). A safety backup is taken first; the current schema is kept aside for a while.`,
      );
    }
  }
  notice(lines.join('\n'));
}

// --- prune -------------------------------------------------------------------

export async function pruneCommand(opts: { dryRun?: boolean; json?: boolean }): Promise<number> {
  const { connect } = await import('./connect.ts');
  const { backupDir, storageFor } = await import('../backup/context.ts');
  const { DirectoryStorage } = await import('../backup/storage.ts');
  const { pruneBackups } = await import('../backup/retention.ts');
  const { cliBy } = await import('./audit-by.ts');
  const ctx = await connect(2);
  try {
    const storage = new DirectoryStorage(backupDir(ctx.config));
    const result = await pruneBackups(ctx.pool, storage, {
      keepCount: ctx.config.BACKUP_KEEP_COUNT,
      keepDays: ctx.config.BACKUP_KEEP_DAYS,
      dryRun: Boolean(opts.dryRun),
      by: cliBy(),
      storageFor: (location) => storageFor(storage, location),
    });
    if (opts.json) printJson(result);
    else {
      printTable(
        result.deleted.map((d) => ({
          id: d.id,
          tenant: d.tenantId,
          started_at: d.startedAt,
          bytes: d.bytes,
          reason: d.reason,
          location: d.location,
        })),
        ['id', 'tenant', 'started_at', 'bytes', 'reason', 'location'],
        opts.dryRun ? 'Nothing to delete.' : 'Nothing deleted.',
      );
      const bytes = result.deleted.reduce((n, d) => n + (d.bytes ?? 0), 0);
      process.stdout.write(
        `${opts.dryRun ? 'Would delete' : 'Deleted'} ${result.deleted.length} backup(s) (${bytes} bytes), kept ${result.kept}` +
          `${result.held.length ? `; ${result.held.length} tenant(s) under legal hold untouched` : ''}` +
          `${result.droppedAsides.length ? `; ${opts.dryRun ? 'would drop' : 'dropped'} ${result.droppedAsides.length} set-aside schema(s)` : ''}` +
          `${result.sweptTempFiles ? `; removed ${result.sweptTempFiles} leftover temporary file(s)` : ''}.\n`,
      );
      for (const e of result.errors) notice(`enclave: backup ${e.id} of tenant ${e.tenantId}: ${e.error}`);
    }
    return result.errors.length ? 1 : 0;
  } finally {
    await ctx.close();
  }
}
