// The page the one-time setup link opens (announceSetup in accounts/admin-setup.ts);
// the token travels in a hidden field. The JSON form is api/setup-api.ts.
import { type Request, type Response, Router } from 'express';
import { completeSetup } from '../accounts/admin-setup.ts';
import { render } from '../http/render.ts';
import { whoOf } from '../http/request-audit.ts';
import type { RouteDeps } from '../http/route-deps.ts';
import { field, formProblem } from './page-forms.ts';

const TITLE = 'Create the first admin';

export function setupPages(deps: RouteDeps): Router {
  return Router()
    .get('/setup/admin', showSetupForm)
    .post('/setup/admin', (req, res) => submitSetupForm(deps, req, res));
}

function showSetupForm(req: Request, res: Response): void {
  const token = typeof req.query.token === 'string' ? req.query.token.slice(0, 100) : '';
  render(res, 'setup-admin', { title: TITLE, token, values: {} });
}

async function submitSetupForm(deps: RouteDeps, req: Request, res: Response): Promise<void> {
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
    return render(
      res,
      'setup-admin',
      { title: TITLE, token, values, error: problem.message },
      problem.status,
    );
  }
  res.redirect(303, '/login?notice=admin-created');
}
