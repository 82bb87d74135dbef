// The disk space exports may hold at once in this process. An export spools
// each table to a file before sending it (workspace-dump.ts says why), and
// keeps each file until it has been sent: a client that reads slowly holds
// its files for as long as it reads. Without a bound, a few slow downloads of
// large workspaces could fill the disk. So every byte spooled is counted
// against one budget (EXPORT_SPOOL_BUDGET_MB), and given back as soon as its
// file is deleted: a new export is refused while the budget is spent, and an
// export that would overdraw it stops, removes its files and is answered 503.
import { ServerBusyError } from '../app-errors.ts';

/** How long a refused client is asked to wait: slow downloads free their space over minutes, not seconds. */
export const BUSY_RETRY_AFTER_SECONDS = 30;

const busy = () =>
  new ServerBusyError(
    'The server is busy preparing other exports just now, so this one was not started or was stopped. Please try again in a minute.',
    BUSY_RETRY_AFTER_SECONDS,
  );

export class SpoolBudget {
  readonly limitBytes: number;
  #used = 0;

  constructor(limitBytes: number) {
    if (!(Number.isSafeInteger(limitBytes) && limitBytes > 0))
      throw new RangeError('the spool budget must be a whole number of bytes > 0');
    this.limitBytes = limitBytes;
  }

  /** Bytes held by every export of this process now. */
  get usedBytes(): number {
    return this.#used;
  }

  /** An account for one export; ServerBusyError when nothing is left for it to start with. */
  open(): SpoolAccount {
    if (this.#used >= this.limitBytes) throw busy();
    return new SpoolAccount(this);
  }

  /** @internal the account's side: false (nothing taken) when `bytes` would overdraw the budget. */
  tryTake(bytes: number): boolean {
    if (this.#used + bytes > this.limitBytes) return false;
    this.#used += bytes;
    return true;
  }

  /** @internal */
  giveBack(bytes: number): void {
    this.#used = Math.max(0, this.#used - bytes);
  }
}

/** What one export holds of the budget; close() gives back whatever is left, whatever happened. */
export class SpoolAccount {
  readonly #budget: SpoolBudget;
  #held = 0;

  constructor(budget: SpoolBudget) {
    this.#budget = budget;
  }

  /** Before writing `bytes` to a spool file; throws ServerBusyError when the budget would be overdrawn. */
  take(bytes: number): void {
    if (!this.#budget.tryTake(bytes)) throw busy();
    this.#held += bytes;
  }

  /** After a spool file of `bytes` was deleted. */
  giveBack(bytes: number): void {
    const n = Math.min(bytes, this.#held);
    this.#held -= n;
    this.#budget.giveBack(n);
  }

  close(): void {
    this.giveBack(this.#held);
  }
}

/** Everything an export route needs to know besides the workspace (server/web.ts builds it from the config). */
export interface ExportLimits {
  spool: SpoolBudget;
  /** Where the private spool directories are made (EXPORT_SPOOL_DIR, default the system temp dir). */
  dir: string;
  /** A download still running after this long is cut off (EXPORT_DEADLINE_SECONDS). */
  deadlineMs: number;
  /** statement_timeout of the export's transaction (EXPORT_STATEMENT_TIMEOUT_MS). */
  statementTimeoutMs: number;
}
