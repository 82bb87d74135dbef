// Typed errors of the tenancy service. HTTP status codes are chosen from these
// in one place (server/http-errors.ts); database errors are translated in kernel/errors.ts.
import { EnclaveError } from '../kernel/errors.ts';

export class TenancyError extends EnclaveError {
  override name = 'TenancyError';
}

export class TenantNotFoundError extends TenancyError {
  override name = 'TenantNotFoundError';
  readonly tenantId: string;
  constructor(tenantId: string) {
    super(`no tenant with id ${JSON.stringify(tenantId)}`);
    this.tenantId = tenantId;
  }
}

/** The tenant exists but is not active: suspended, archived, deleted or still provisioning. */
export class TenantUnavailableError extends TenancyError {
  override name = 'TenantUnavailableError';
  readonly tenantId: string;
  readonly state: string;
  constructor(tenantId: string, state: string) {
    super(`tenant ${tenantId} is ${state}`);
    this.tenantId = tenantId;
    this.state = state;
  }
}

export class TenantSuspendedError extends TenantUnavailableError {
  override name = 'TenantSuspendedError';
}

export class LegalHoldError extends TenancyError {
  override name = 'LegalHoldError';
  readonly tenantId: string;
  constructor(tenantId: string) {
    super(`tenant ${tenantId} is under legal hold; lift the hold before dropping it`);
    this.tenantId = tenantId;
  }
}

export class MigrationError extends TenancyError {
  override name = 'MigrationError';
  readonly migration: string;
  constructor(migration: string, cause: unknown) {
    super(`migration ${migration} failed: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
    });
    this.migration = migration;
  }
}

export function stateError(tenantId: string, state: string): TenantUnavailableError {
  return state === 'suspended'
    ? new TenantSuspendedError(tenantId, state)
    : new TenantUnavailableError(tenantId, state);
}

/** The tenant already has its share of units of work running, and no turn came free in time. */
export class TenantBusyError extends TenancyError {
  override name = 'TenantBusyError';
  readonly tenantId: string;
  readonly retryAfterSeconds = 1;
  constructor(tenantId: string, max: number) {
    super(`tenant ${tenantId} already has ${max} units of work running`);
    this.tenantId = tenantId;
  }
}
