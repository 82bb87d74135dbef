// "Sign out everywhere": every other session of the person and every API
// token they made, in one transaction. A token is a login that does not
// expire by itself; if it stayed, someone who once had a session (a stolen
// cookie, a shared computer) could keep a script's way in after the owner
// thought they had thrown everyone out. The owner re-creates the tokens they need.
import type { AuditBy } from '../../kernel/audit-inbox.ts';
import { type Pool, transaction } from '../../kernel/db.ts';
import { revokeAllTokensInTransaction } from '../accounts/api-tokens.ts';
import type { SessionRegistry } from './registry.ts';

export const SIGNED_OUT_EVERYWHERE = 'signed out everywhere';

export interface SignedOutEverywhere {
  /** Other sessions ended (the current one is kept). */
  sessionsEnded: number;
  tokensEnded: number;
}

export function signOutEverywhere(
  pool: Pool,
  registry: SessionRegistry,
  userId: string,
  keepSessionId: string | null,
  by: AuditBy,
): Promise<SignedOutEverywhere> {
  return transaction(pool, async (client) => {
    const sessionsEnded = await registry.revokeAllOfUserInTransaction(
      client,
      userId,
      keepSessionId,
      SIGNED_OUT_EVERYWHERE,
      by,
    );
    const tokensEnded = await revokeAllTokensInTransaction(client, userId, SIGNED_OUT_EVERYWHERE, by);
    return { sessionsEnded, tokensEnded };
  });
}
