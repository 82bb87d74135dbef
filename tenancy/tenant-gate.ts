// A fair share of the database for each tenant: at most `max` units of work of
// one tenant run at once in this process; more wait their turn, in order, for
// up to `waitMs`, then are refused with TenantBusyError (429). Without it one
// tenant's burst (exports, searches, big writes) can hold every pooled
// connection and both cores while the other tenants queue behind it.
//
// Entries exist only while a tenant has work running or waiting, so the map is
// bounded by the work in flight, not by the size of the fleet.
import { TenantBusyError } from './tenancy-errors.ts';

interface Turns {
  running: number;
  waiting: Array<{ go: () => void; timer: NodeJS.Timeout }>;
}

export class TenantGate {
  readonly #max: number;
  readonly #waitMs: number;
  readonly #tenants = new Map<string, Turns>();

  /** `max` 0: no limit. */
  constructor(max: number, waitMs: number) {
    if (!(Number.isInteger(max) && max >= 0)) throw new RangeError('max must be a whole number >= 0');
    if (!(Number.isInteger(waitMs) && waitMs >= 0))
      throw new RangeError('waitMs must be a whole number >= 0');
    this.#max = max;
    this.#waitMs = waitMs;
  }

  /** Runs fn in one of the tenant's turns. */
  async through<T>(tenantId: string, fn: () => Promise<T>): Promise<T> {
    if (this.#max === 0) return fn();
    await this.#enter(tenantId);
    try {
      return await fn();
    } finally {
      this.#leave(tenantId);
    }
  }

  /** Units of work of this tenant running now (for tests and metrics). */
  running(tenantId: string): number {
    return this.#tenants.get(tenantId)?.running ?? 0;
  }

  #enter(tenantId: string): Promise<void> {
    let turns = this.#tenants.get(tenantId);
    if (!turns) {
      turns = { running: 0, waiting: [] };
      this.#tenants.set(tenantId, turns);
    }
    if (turns.running < this.#max) {
      turns.running++;
      return Promise.resolve();
    }
    const queue = turns;
    return new Promise((resolve, reject) => {
      const entry = {
        go: () => {
          clearTimeout(entry.timer);
          resolve();
        },
        timer: setTimeout(() => {
          queue.waiting.splice(queue.waiting.indexOf(entry), 1);
          this.#forgetIfIdle(tenantId, queue);
          reject(new TenantBusyError(tenantId, this.#max));
        }, this.#waitMs),
      };
      queue.waiting.push(entry);
    });
  }

  #leave(tenantId: string): void {
    const turns = this.#tenants.get(tenantId);
    if (!turns) return;
    const next = turns.waiting.shift();
    // The turn passes straight to the next in line: running stays the same.
    if (next) {
      next.go();
      return;
    }
    turns.running--;
    this.#forgetIfIdle(tenantId, turns);
  }

  #forgetIfIdle(tenantId: string, turns: Turns): void {
    if (turns.running === 0 && turns.waiting.length === 0) this.#tenants.delete(tenantId);
  }
}
