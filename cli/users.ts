// `enclave users ...`: the accounts that no web form may create.

import { record } from '../kernel/audit-inbox.ts';
import { run, transaction } from '../kernel/db.ts';
import { createPrivilegedUser } from '../server/accounts/accounts.ts';
import { normalizeEmail } from '../server/accounts/credentials.ts';
import { cliBy } from './audit-by.ts';
import { connect } from './connect.ts';
import { printJson } from './output.ts';
import { readSecret } from './prompt.ts';
import { UsageError } from './usage-error.ts';

export async function createAdminCommand(opts: {
  email: string;
  name: string;
  role: string;
  requireMfa?: boolean;
  json?: boolean;
}): Promise<number> {
  if (opts.role !== 'admin' && opts.role !== 'auditor')
    throw new UsageError('--role must be admin or auditor');
  normalizeEmail(opts.email); // a bad address is a usage error before any prompt
  const password = await readSecret('Password (12 characters or more): ');
  if (process.stdin.isTTY) {
    const again = await readSecret('Same password again: ');
    if (again !== password) throw new UsageError('the two passwords differ; nothing was created');
  }
  const ctx = await connect(1);
  try {
    const user = await createPrivilegedUser(
      ctx.pool,
      {
        email: opts.email,
        password,
        displayName: opts.name,
        role: opts.role,
        mfaRequired: Boolean(opts.requireMfa),
      },
      cliBy(),
    );
    const view = {
      id: user.id,
      email: user.email,
      name: user.display_name,
      role: user.role,
      mfaRequired: user.mfa_required,
    };
    if (opts.json) printJson(view);
    else
      process.stdout.write(
        `Created ${user.role} ${user.email}${user.mfa_required ? ' (must enrol MFA at first sign-in)' : ''}.\n`,
      );
    return 0;
  } finally {
    await ctx.close();
  }
}

export async function requireMfaCommand(email: string, opts: { off?: boolean }): Promise<number> {
  const { normalized } = normalizeEmail(email);
  const ctx = await connect(1);
  try {
    await transaction(ctx.pool, async (client) => {
      const { rows } = await run<{ id: string }>(client, {
        text: "UPDATE control.users SET mfa_required = $2 WHERE email_normalized = $1 AND role IN ('admin', 'auditor') RETURNING id",
        values: [normalized, !opts.off],
      });
      const id = rows[0]?.id;
      if (!id) throw new UsageError(`no admin or auditor with the email ${email}`);
      await record(client, cliBy(), {
        tenantId: null,
        action: opts.off ? 'account.require_mfa.off' : 'account.require_mfa.on',
        resource: { type: 'user', id },
        outcome: 'success',
      });
    });
    process.stdout.write(`${email} ${opts.off ? 'no longer needs' : 'now needs'} MFA to use Enclave.\n`);
    return 0;
  } finally {
    await ctx.close();
  }
}
