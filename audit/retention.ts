// Retention: after AUDIT_RETENTION_DAYS an entry's payload may go, its hash
// never does, so the chain and every checkpoint still verify (an export then
// starts after the pruned prefix, linked by the manifest's prevHash). Tenants
// under legal hold keep everything; the registry chain is never pruned. The
// append-only trigger accepts this one kind of UPDATE only inside a
// transaction that says so (chain-sql.ts allowRetention).
import { type Pool, transaction } from '../kernel/db.ts';
import { auditLock } from '../kernel/locks.ts';
import { allowRetention, prunePayloads } from './chain-sql.ts';

export interface PruneResult {
  pruned: number;
  cutoff: Date;
}

export async function pruneAuditPayloads(
  pool: Pool,
  options: { retentionDays: number; now?: Date },
): Promise<PruneResult> {
  const { retentionDays } = options;
  if (!Number.isSafeInteger(retentionDays) || retentionDays < 1)
    throw new RangeError('retentionDays must be a positive whole number');
  const cutoff = new Date((options.now ?? new Date()).getTime() - retentionDays * 86_400_000);
  return transaction(pool, async (client) => {
    await client.query(auditLock()); // not while a seal appends to the same chains
    await client.query(allowRetention());
    const { rowCount } = await client.query(prunePayloads(cutoff));
    return { pruned: rowCount ?? 0, cutoff };
  });
}
