// Storage per workspace: how much it uses and the quota a write may not go past
// (TENANT_QUOTA_MB).
//
// The count is kept by the database (tenant migration 0004): triggers on notes
// and tasks add each write's change in size to a one-row table, in the same
// transaction as the write, from the values written (the bytes of title, body,
// rendered HTML and tags, plus 100 bytes per item). The tenant role has no
// privilege on that table; it can only read the total through storage_used().
//
// The quota is checked by the same trigger: a write transaction first sets
// `enclave.tenant_quota_bytes` (withStorageQuota), and a change that grows the
// total past it raises SQLSTATE EQ413, which becomes QuotaExceededError (413)
// and rolls the whole transaction back: nothing of the write stays, not even
// its audit event. Changes that do not grow the total (deletes, shorter text)
// always pass, so a full workspace can always make room. The usage row is
// locked by the first growing or shrinking write of a transaction until it
// ends: one workspace's writes take turns there, so two concurrent writes
// cannot both take the same last free bytes. Nothing deadlocks on it as long
// as a transaction takes its row locks (FOR UPDATE, FOR KEY SHARE) before its
// first write that changes a size, as the services in notes.ts and tasks.ts do.
import type { Statement } from '../../kernel/db.ts';
import type { UnitOfWork } from '../../tenancy/unit-of-work.ts';
import { QuotaExceededError } from '../app-errors.ts';

export const QUOTA_SQLSTATE = 'EQ413';

const setQuota = (bytes: number): Statement => ({
  text: "SELECT set_config('enclave.tenant_quota_bytes', $1, true)",
  values: [String(bytes)],
});
const USED: Statement = { text: 'SELECT storage_used() AS used', values: [] };

export interface StorageUsage {
  usedBytes: number;
  /** null: no quota (TENANT_QUOTA_MB=0). */
  quotaBytes: number | null;
  /** Whole percent of the quota used (null without a quota); may pass 100 (see below). */
  usedPercent: number | null;
  /** "12.3 MB of 100 MB used", or "12.3 MB used" without a quota. */
  summary: string;
}

/** TENANT_QUOTA_MB as bytes (MB are 1,000,000 bytes, as the messages show them). */
export const quotaBytesOf = (megabytes: number): number => megabytes * 1_000_000;

/**
 * `fn` with the workspace quota in force for its writes; a write that would go
 * over it throws QuotaExceededError. A quota of 0 means none.
 */
export function withStorageQuota<T>(
  quotaBytes: number,
  fn: (uow: UnitOfWork) => Promise<T>,
): (uow: UnitOfWork) => Promise<T> {
  if (!(quotaBytes > 0)) return fn;
  return async (uow) => {
    await uow.query(setQuota(quotaBytes));
    try {
      return await fn(uow);
    } catch (err) {
      throw quotaError(err) ?? err;
    }
  };
}

/** The QuotaExceededError for the trigger's EQ413, with the numbers it reported; undefined for anything else. */
export function quotaError(err: unknown): QuotaExceededError | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const { code, detail } = err as { code?: unknown; detail?: unknown };
  if (code !== QUOTA_SQLSTATE) return undefined;
  let usage = { usedBytes: 0, quotaBytes: 0, neededBytes: 0 };
  try {
    const parsed = JSON.parse(String(detail)) as Record<string, unknown>;
    usage = {
      usedBytes: Number(parsed.usedBytes),
      quotaBytes: Number(parsed.quotaBytes),
      neededBytes: Number(parsed.neededBytes),
    };
  } catch {
    // The numbers are for the message only: the refusal stands without them.
  }
  return new QuotaExceededError(quotaMessage(usage), usage);
}

export function quotaMessage(usage: { usedBytes: number; quotaBytes: number; neededBytes: number }): string {
  const used = formatBytes(usage.usedBytes);
  const quota = formatBytes(usage.quotaBytes);
  const needs = usage.neededBytes > 0 ? `, and this change needs ${formatBytes(usage.neededBytes)} more` : '';
  return `Your workspace is full: ${used} of ${quota} used${needs}. Delete notes or tasks to make room.`;
}

/**
 * What the workspace uses now. It can be above the quota: a note written
 * before stored HTML existed gets its HTML on its first read, and a lowered
 * TENANT_QUOTA_MB applies to new writes only.
 */
export async function storageUsage(uow: UnitOfWork, quotaBytes: number): Promise<StorageUsage> {
  const [row] = await uow.query<{ used: string | number | null }>(USED);
  const usedBytes = Number(row?.used ?? 0);
  const quota = quotaBytes > 0 ? quotaBytes : null;
  return {
    usedBytes,
    quotaBytes: quota,
    usedPercent: quota === null ? null : Math.floor((usedBytes * 100) / quota),
    summary:
      quota === null
        ? `${formatBytes(usedBytes)} used`
        : `${formatBytes(usedBytes)} of ${formatBytes(quota)} used`,
  };
}

/** Bytes for people: "950 bytes", "12.3 kB", "99.9 MB", "100 MB", "1.5 GB" (powers of 1,000). */
export function formatBytes(bytes: number): string {
  if (bytes < 1000) return `${bytes} ${bytes === 1 ? 'byte' : 'bytes'}`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let value = bytes / 1000;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  // One decimal, rounded down: "99.99 MB" is "99.9 MB", never a full-looking "100 MB".
  const shown = Math.floor(value * 10) / 10;
  return `${Number.isInteger(shown) ? shown.toFixed(0) : shown.toFixed(1)} ${units[unit]}`;
}
