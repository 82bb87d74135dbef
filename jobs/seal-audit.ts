// The scheduled sealer. The job body (sealAudit) is handed what it needs and
// runs without the scheduler; scheduleSealAudit wires it to pg-boss.
//
// How "every few seconds, one at a time across instances" is kept:
// - every instance sends one throttled job per interval slot
//   (`sendThrottled`, singletonSeconds = the interval): pg-boss's unique
//   index lets one job per slot exist however many instances send, so each
//   slot is sealed once;
// - the seal itself takes the audit advisory lock, without waiting: a job
//   that finds another seal at work skips its turn (that seal loops until the
//   inbox is drained). So at most one seal runs at any moment, anywhere.
// Why not a pg-boss `singleton`/`exclusive` queue: an instance killed mid-job
// leaves its job `active`, and such a queue then runs nothing until pg-boss's
// supervisor expires the job (expireInSeconds + superviseIntervalSeconds,
// a minute or more); the trail would stall. The advisory lock has no such
// leftover: PostgreSQL releases it with the dead connection.
import type { PgBoss } from 'pg-boss';
import { type SealResult, seal } from '../audit/sealer.ts';
import type { Signer } from '../audit/signing.ts';
import type { Pool } from '../kernel/db.ts';
import type { Logger } from '../kernel/logger.ts';

export const SEAL_QUEUE = 'audit-seal';

export interface SealAuditDeps {
  pool: Pool;
  signer: Signer;
  log: Logger;
  clock?: () => Date;
  batchSize?: number;
  /** Most batches one run seals before it yields to the next slot. */
  maxBatches?: number;
}

export interface SealAuditTotals {
  sealed: number;
  checkpoints: number;
  batches: number;
  /** Another seal held the lock: this run did nothing. */
  busy: boolean;
}

/** Seals until the inbox is drained (or maxBatches), one transaction per batch. */
export async function sealAudit(deps: SealAuditDeps): Promise<SealAuditTotals> {
  const totals: SealAuditTotals = { sealed: 0, checkpoints: 0, batches: 0, busy: false };
  const maxBatches = deps.maxBatches ?? 20;
  let result: SealResult;
  do {
    result = await seal(deps.pool, deps.signer, {
      clock: deps.clock,
      batchSize: deps.batchSize,
      wait: false,
    });
    if (result.busy) {
      totals.busy = totals.batches === 0;
      break;
    }
    totals.batches += 1;
    totals.sealed += result.sealed;
    totals.checkpoints += result.checkpoints;
  } while (result.more && totals.batches < maxBatches);
  if (totals.sealed > 0)
    deps.log.debug('audit sealed', {
      sealed: totals.sealed,
      checkpoints: totals.checkpoints,
      batches: totals.batches,
    });
  return totals;
}

/**
 * Registers the worker and starts this instance's ticker. Returns the function
 * that stops the ticker (pg-boss's own stop() stops the worker).
 */
export async function scheduleSealAudit(
  boss: PgBoss,
  deps: SealAuditDeps,
  intervalSeconds: number,
): Promise<() => void> {
  await boss.createQueue(SEAL_QUEUE, {
    retryLimit: 0, // the next slot is the retry
    expireInSeconds: 300,
    deleteAfterSeconds: 3600, // an hour of history is plenty for a job that runs every few seconds
  });
  await boss.work(
    SEAL_QUEUE,
    { pollingIntervalSeconds: Math.max(0.5, Math.min(intervalSeconds, 2)) },
    async () => {
      await sealAudit(deps);
    },
  );
  const tick = () => {
    boss.sendThrottled(SEAL_QUEUE, null, null, intervalSeconds).catch((err: unknown) => {
      deps.log.warn('could not enqueue the audit seal', { error: err });
    });
  };
  tick();
  const timer = setInterval(tick, intervalSeconds * 1000);
  timer.unref();
  return () => clearInterval(timer);
}
