// Who runs an `enclave` command, as the audit trail records it: actor type
// `system` (the operating system account is not an Enclave account, so it is
// not an `admin` with an id we could check) with id `cli:<OS user>`, the same
// form `enclave audit export` uses.
import os from 'node:os';
import type { AuditBy } from '../kernel/audit-inbox.ts';

export function cliBy(): AuditBy {
  return { actor: { type: 'system', id: `cli:${osUser()}` } };
}

function osUser(): string {
  try {
    return os.userInfo().username;
  } catch {
    // No passwd entry (a container running as an arbitrary uid).
    return `uid-${process.getuid?.() ?? 'unknown'}`;
  }
}
