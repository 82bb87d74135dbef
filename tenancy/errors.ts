// Typed errors of the tenancy service. HTTP status codes are chosen from these
// in one place (server/http-errors.ts); database errors are translated once here.

export class TenancyError extends Error {
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

export class InvalidInputError extends TenancyError {
  override name = 'InvalidInputError';
}

/** A PostgreSQL error surfaced through the tenancy service, with its SQLSTATE. */
export class DatabaseError extends TenancyError {
  override name = 'DatabaseError';
  readonly code: string | undefined;
  constructor(message: string, code: string | undefined, cause: unknown) {
    super(message, { cause });
    this.code = code;
  }
}

export class PermissionDeniedError extends DatabaseError {
  override name = 'PermissionDeniedError';
}

/**
 * PostgreSQL stopped the work: a statement ran past statement_timeout (or was
 * cancelled, SQLSTATE 57014), or the transaction sat idle past
 * idle_in_transaction_session_timeout (25P03). The transaction is rolled back.
 */
export class QueryTimeoutError extends DatabaseError {
  override name = 'QueryTimeoutError';
}

/** Translates a driver error by SQLSTATE; anything not a database error passes through. */
export function translateDbError(err: unknown): unknown {
  if (err instanceof TenancyError || !(err instanceof Error)) return err;
  const code = (err as { code?: unknown }).code;
  if (typeof code !== 'string' || !/^[0-9A-Z]{5}$/.test(code)) return err;
  if (code === '42501') return new PermissionDeniedError(err.message, code, err);
  if (code === '57014' || code === '25P03') return new QueryTimeoutError(err.message, code, err);
  return new DatabaseError(err.message, code, err);
}

export function stateError(tenantId: string, state: string): TenantUnavailableError {
  return state === 'suspended'
    ? new TenantSuspendedError(tenantId, state)
    : new TenantUnavailableError(tenantId, state);
}
