// Who is making a request: the one shape every route sees as `req.user`,
// whether the request came with a session cookie or an API token.
import type { Role } from '../accounts/users-sql.ts';

export interface Principal {
  userId: string;
  email: string;
  displayName: string;
  role: Role;
  /** The user's own workspace; null for auditors and admins. */
  tenantId: string | null;
  via: 'session' | 'token';
  /** Registry id of the session (via 'session'). */
  sessionId?: string;
  /** Id of the API token (via 'token'). */
  tokenId?: string;
  /** Sessions can always write; tokens may be read-only. */
  scope: 'read' | 'write';
  mfaEnabled: boolean;
  mfaRequired: boolean;
}

declare global {
  namespace Express {
    interface User extends Principal {}
  }
}

/** What the session cookie's data holds about the login (small: ids only). */
export interface SerializedLogin {
  s: string; // session registry id
  u: string; // user id
  t: string | null; // tenant id, checked against the user's on every request
}

export function publicUser(p: Principal) {
  return {
    id: p.userId,
    email: p.email,
    displayName: p.displayName,
    role: p.role,
    tenantId: p.tenantId,
    mfaEnabled: p.mfaEnabled,
    via: p.via,
  };
}
