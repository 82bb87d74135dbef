// First-admin setup through the one-time link printed in the log at start.
import { Router } from 'express';
import type { Pool } from '../../kernel/db.ts';
import type { Logger } from '../../kernel/logger.ts';
import { completeSetup, issueSetupToken } from '../accounts/admin-setup.ts';
import { whoOf } from '../request-audit.ts';
import { render } from '../views.ts';
import type { RouteDeps } from './deps.ts';
import { field, formProblem } from './page-forms.ts';

export function setupRoutes(deps: RouteDeps): Router {
  const router = Router();
  router.post('/api/v1/setup/admin', async (req, res) => {
    const { token, email, password, displayName } = (req.body ?? {}) as Record<string, unknown>;
    const admin = await completeSetup(deps.pool, token, { email, password, displayName }, whoOf(req, null));
    deps.log.info('first admin created', { userId: admin.id });
    res.status(201).json({ user: { id: admin.id, email: admin.email, role: admin.role } });
  });

  // The page the logged link opens; the token travels in a hidden field.
  router.get('/setup/admin', (req, res) => {
    const token = typeof req.query.token === 'string' ? req.query.token.slice(0, 100) : '';
    render(res, 'setup-admin', { title: 'Create the first admin', token, values: {} });
  });

  router.post('/setup/admin', async (req, res) => {
    const token = field(req, 'token');
    const values = { email: field(req, 'email'), displayName: field(req, 'displayName') };
    try {
      const admin = await completeSetup(
        deps.pool,
        token,
        { ...values, password: req.body?.password },
        whoOf(req, null),
      );
      deps.log.info('first admin created', { userId: admin.id });
    } catch (err) {
      const problem = formProblem(res, err);
      const data = { title: 'Create the first admin', token, values, error: problem.message };
      return render(res, 'setup-admin', data, problem.status);
    }
    res.redirect(303, '/login?notice=admin-created');
  });
  return router;
}

/** Logs a one-time setup link when no admin exists (the only secret we ever log, and it dies on use). */
export async function announceSetup(pool: Pool, baseUrl: string, log: Logger): Promise<void> {
  const token = await issueSetupToken(pool);
  if (!token) return;
  log.warn(
    `No admin account exists yet. Create one within an hour at ${baseUrl}/setup/admin?token=${token} ` +
      '(or run `npx enclave users create-admin`).',
    { setupLink: true },
  );
}
