// Refusals of a backup or a restore that come from the database side (the
// tenant, the installed templates), not from the archive file itself (those
// are ArchiveRefusedError, backup-errors.ts). Each carries a fixed reason and
// one line a person understands; each happens before anything changes.
import { BackupError } from './backup-errors.ts';

export type RestoreRefusal =
  | 'tenant-missing' // no such tenant
  | 'tenant-deleted' // the tenant is deleted (or still being provisioned)
  | 'legal-hold' // an in-place restore of a tenant under legal hold
  | 'other-tenant' // an in-place restore of another tenant's archive
  | 'future-schema' // the archive's schema version is beyond the installed templates
  | 'template-mismatch' // a template 1..V differs from the installed one
  | 'unknown-table' // the archive has a table the templates at its version do not make (drift)
  | 'bad-name'; // a clone's display name is refused

export class RestoreRefusedError extends BackupError {
  override name = 'RestoreRefusedError';
  readonly reason: RestoreRefusal;
  constructor(reason: RestoreRefusal, message: string) {
    super(message);
    this.reason = reason;
  }
}

export type BackupRefusal = 'tenant-missing' | 'tenant-deleted' | 'future-schema' | 'schema-missing';

/** A backup refused before it started: no catalog row, no archive. */
export class BackupRefusedError extends BackupError {
  override name = 'BackupRefusedError';
  readonly reason: BackupRefusal;
  constructor(reason: BackupRefusal, message: string) {
    super(message);
    this.reason = reason;
  }
}
