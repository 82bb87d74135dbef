// Exports sealed chains as a bundle, format v2 (docs/AUDIT-FORMAT.md, "Export
// bundle"): per chain, its latest checkpoint (at or before --to) and the
// entries up to that checkpoint's size, from seq 1 or, when --from or
// retention says to start later, from just after a signed checkpoint (the
// anchor), so that the start of a partial chain is proven, not claimed. The
// registry chain always starts at seq 1, so a full bundle holds every chain
// it names. The manifest is signed with the audit signing key.
//
// Everything is read in one REPEATABLE READ snapshot, entries through a
// server-side cursor in batches, so millions of entries never sit in memory
// and a seal running meanwhile is simply not seen. The snapshot ends once the
// files are spooled (bundle.ts), before the .tar.gz goes out to a slow reader.
// Every export is itself audited (`audit.export`), also when it fails.
import { createHash } from 'node:crypto';
import type { Writable } from 'node:stream';
import { type AuditActor, type AuditContext, record } from '../kernel/audit-inbox.ts';
import { type Client, type Pool, run, transaction } from '../kernel/db.ts';
import { InvalidInputError } from '../kernel/errors.ts';
import { ident } from '../kernel/identifiers.ts';
import { type BundleChain, type ManifestSigner, type SpooledBundle, spoolBundle } from './bundle.ts';
import * as sql from './export-sql.ts';
import { readOrigin } from './sealer.ts';
import { publicKeys } from './signing.ts';
import { type ChainStart, type SignedCheckpoint, ZERO_HASH } from './verifier/bundle-format.ts';
import { parseCanonical } from './verifier/canonical.ts';
import type { Checkpoint } from './verifier/entry.ts';
import { formatTime, REGISTRY_CHAIN, tenantChain } from './verifier/entry.ts';

export interface ExportOptions {
  /** Only this tenant's chain; without it every chain, the platform and registry chains included. */
  tenant?: string | null;
  /** Each chain from its first entry that happened at or after this time. */
  from?: Date | null;
  /** Each chain up to its latest checkpoint signed at or before this time. */
  to?: Date | null;
  /** Who exports, recorded in the `audit.export` event. */
  actor: AuditActor;
  context?: AuditContext;
  tmpDir?: string;
  /** Entries read so far, of `total`. */
  onProgress?: (done: number, total: number) => void;
  /** Rows per FETCH from the cursor. */
  batchSize?: number;
  /** Signs the manifest: the audit signing key, the current published one. */
  signer: ManifestSigner;
}

export interface ExportSummary {
  chains: number;
  entries: number;
  /** SHA-256 of manifest.json: names this bundle (the manifest holds every other file's hash). */
  manifestSha256: string;
}

export class AuditExportError extends Error {
  override name = 'AuditExportError';
}

/** The selection holds nothing signed: no bundle rather than one that proves nothing. */
export class NothingToExportError extends InvalidInputError {
  override name = 'NothingToExportError';
}

const CURSOR = 'audit_export_entries';

/**
 * Writes the bundle to `out` (and ends it). `audit.export` is recorded once the
 * bundle is made and before its first byte leaves (so the event is in the inbox
 * by the time anyone has the bundle); a failure to make it, or a download cut
 * short, is recorded as a failure (`export_failed`, `export_cut_short`).
 */
export async function exportBundle(
  pool: Pool,
  out: Writable,
  options: ExportOptions,
): Promise<ExportSummary> {
  const filter = {
    tenant: options.tenant ?? null,
    from: options.from ? formatTime(options.from) : null,
    to: options.to ? formatTime(options.to) : null,
  };
  const audit = (summary: ExportSummary | null, code: string | null) =>
    record(
      pool,
      { actor: options.actor, context: options.context },
      {
        tenantId: filter.tenant,
        action: 'audit.export',
        resource: { type: 'audit_bundle', id: summary?.manifestSha256 ?? null },
        outcome: code ? 'failure' : 'success',
        code,
        details: { filter, ...(summary ? { chains: summary.chains, entries: summary.entries } : {}) },
      },
    );
  let spooled: SpooledBundle;
  try {
    spooled = await transaction(pool, (client) => spoolFromDatabase(client, options, filter), {
      isolation: 'repeatable read',
      readOnly: true,
    });
  } catch (err) {
    await audit(null, 'export_failed');
    throw err;
  }
  try {
    const summary: ExportSummary = {
      chains: spooled.manifest.chains.length,
      entries: spooled.entries,
      manifestSha256: createHash('sha256').update(spooled.manifestBytes).digest('hex'),
    };
    await audit(summary, null);
    try {
      await spooled.writeTo(out);
    } catch (err) {
      await audit(summary, 'export_cut_short');
      throw err;
    }
    return summary;
  } finally {
    await spooled.dispose();
  }
}

async function spoolFromDatabase(
  client: Client,
  options: ExportOptions,
  filter: { tenant: string | null; from: string | null; to: string | null },
): Promise<SpooledBundle> {
  const origin = await readOrigin(client);
  const names = filter.tenant
    ? [tenantChain(filter.tenant)]
    : (await run<{ chain: string }>(client, sql.selectChains())).rows.map((r) => r.chain);
  const plans: BundleChain[] = [];
  let total = 0;
  for (const chain of names) {
    const plan = await planChain(client, chain, options, filter.to);
    if (!plan) continue; // no checkpoint (at or before --to): nothing sealed to show yet
    total += plan.range.lastSeq - plan.range.firstSeq + 1;
    plans.push(plan);
  }
  const before = filter.to ? ` signed at or before ${filter.to}` : '';
  if (filter.tenant && plans.length === 0)
    throw new NothingToExportError(`tenant ${filter.tenant} has no audit checkpoint${before}`);
  if (!filter.tenant && !plans.some((p) => p.range.chain === REGISTRY_CHAIN))
    throw new NothingToExportError(`nothing has been sealed${before}`);
  let done = 0;
  const batchSize = options.batchSize ?? 2000;
  const chains = plans.map((p) => ({
    ...p,
    entries: (async function* () {
      for await (const entry of readEntries(client, p.range, batchSize)) {
        done++;
        yield entry;
      }
      options.onProgress?.(done, total);
    })(),
  }));
  return spoolBundle(
    {
      origin,
      kind: filter.tenant ? 'tenant' : 'full',
      signer: options.signer,
      filter,
      keys: {
        keys: (await publicKeys(client)).map((k) => ({
          keyId: k.keyId,
          publicKey: k.pem,
          createdAt: k.createdAt.toISOString(),
          retiredAt: k.retiredAt?.toISOString() ?? null,
        })),
      },
      chains,
    },
    {
      ...(options.tmpDir ? { tmpDir: options.tmpDir } : {}),
      ...(options.onProgress ? { onProgress: () => options.onProgress?.(done, total) } : {}),
    },
  );
}

/**
 * The range, anchor and end checkpoint of one chain; undefined when it has no
 * checkpoint (at or before `to`). A range that does not start at seq 1 starts
 * right after a signed checkpoint, widened back to one if `from` falls
 * between two. A chain with no entry in range is still planned (an empty
 * range anchored at its end checkpoint), and the registry chain always starts
 * at genesis.
 */
async function planChain(
  client: Client,
  chain: string,
  options: ExportOptions,
  to: string | null,
): Promise<BundleChain | undefined> {
  const end = await checkpointOf(client, sql.selectLatestCheckpoint(chain, to));
  if (!end) return undefined;
  const size = end.checkpoint.size;
  const firstSeqOf = async (statement: { text: string; values: unknown[] }) => {
    const seq = (await run<{ seq: number | null }>(client, statement)).rows[0]?.seq;
    return seq == null ? size + 1 : Math.min(Number(seq), size + 1);
  };
  // The registry is never cut by --from (nor pruned, retention.ts): a full bundle
  // holds it from genesis, so it names every chain and the verifier can tell
  // that none was left out, quiet ones (no entry since --from) included.
  const wanted =
    options.from && chain !== REGISTRY_CHAIN
      ? await firstSeqOf(sql.selectFirstSeqFrom(chain, size, options.from))
      : 1;
  const kept = await firstSeqOf(sql.selectFirstKeptSeq(chain)); // retention pruned seq 1..kept-1
  const first = Math.max(wanted, kept);
  if (first === 1)
    return {
      range: rangeOf(chain, 1, size, ZERO_HASH, 'genesis'),
      anchor: null,
      checkpoint: end,
      entries: [],
    };
  let anchor = await checkpointOf(client, sql.selectCheckpointAtOrBelow(chain, first - 1));
  let start: ChainStart = kept > wanted ? 'retention' : 'from';
  if (!anchor || anchor.checkpoint.size < kept - 1) {
    // Pruned before format v2, between two checkpoints: start at the next one.
    anchor = await checkpointOf(client, sql.selectCheckpointAtOrAbove(chain, kept - 1));
    start = 'retention';
  }
  if (!anchor)
    throw new AuditExportError(`chain ${chain} has no checkpoint to anchor seq ${first}: the log is damaged`);
  const firstSeq = anchor.checkpoint.size + 1;
  const prevHash = Buffer.from(anchor.checkpoint.head, 'hex');
  return { range: rangeOf(chain, firstSeq, size, prevHash, start), anchor, checkpoint: end, entries: [] };
}

function rangeOf(chain: string, firstSeq: number, lastSeq: number, prevHash: Buffer, start: ChainStart) {
  return { chain, firstSeq, lastSeq, prevHash: prevHash.toString('hex'), start };
}

async function checkpointOf(
  client: Client,
  statement: { text: string; values: unknown[] },
): Promise<SignedCheckpoint | undefined> {
  const row = (await run<sql.CheckpointRow>(client, statement)).rows[0];
  if (!row) return undefined;
  return {
    checkpoint: parseCanonical(row.checkpoint) as Checkpoint,
    signature: row.signature.toString('base64'),
  };
}

/**
 * One chain's entries through a server-side cursor, `batchSize` rows per
 * FETCH. A missing row or payload inside the range is written as it is found
 * (a gap), so that the verifier, not the exporter, reports the damage; a
 * pruned payload inside the range cannot be written at all and fails the export.
 */
async function* readEntries(
  client: Client,
  range: BundleChain['range'],
  batchSize: number,
): AsyncGenerator<Buffer> {
  if (range.lastSeq < range.firstSeq) return;
  const cursor = ident(CURSOR);
  await run(client, sql.declareEntryCursor(cursor, range.chain, range.firstSeq, range.lastSeq));
  try {
    for (;;) {
      const { rows } = await run<{ seq: number; entry: Buffer | null }>(
        client,
        sql.fetchCursor(cursor, batchSize),
      );
      for (const row of rows) {
        if (row.entry === null)
          throw new AuditExportError(
            `entry ${row.seq} of chain ${range.chain} has no payload (pruned) inside the exported range`,
          );
        yield row.entry;
      }
      if (rows.length < batchSize) break;
    }
  } finally {
    // After a failure the transaction is aborted and rolls back, which closes the cursor anyway.
    await run(client, sql.closeCursor(cursor)).catch(() => {});
  }
}
