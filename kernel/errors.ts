// Errors every layer shares: bad input, and database errors translated once by
// SQLSTATE. They carry no HTTP status: server/http-errors.ts chooses it.

/** The base of every typed error Enclave throws on purpose. */
export class EnclaveError extends Error {
  override name = 'EnclaveError';
}

/** Input a person can fix: the message says how. */
export class InvalidInputError extends EnclaveError {
  override name = 'InvalidInputError';
}

/** A PostgreSQL error, with its SQLSTATE. */
export class DatabaseError extends EnclaveError {
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
  if (err instanceof EnclaveError || !(err instanceof Error)) return err;
  const code = (err as { code?: unknown }).code;
  if (typeof code !== 'string' || !/^[0-9A-Z]{5}$/.test(code)) return err;
  if (code === '42501') return new PermissionDeniedError(err.message, code, err);
  if (code === '57014' || code === '25P03') return new QueryTimeoutError(err.message, code, err);
  return new DatabaseError(err.message, code, err);
}
