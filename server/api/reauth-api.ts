// POST /api/v1/admin/reauth { password, totp? }: the admin confirms their
// password (and MFA code when enrolled) before destructive actions
// (server/auth/recent-auth.ts). 204 on success; a wrong one is a 401 that
// counts toward the account's lockout.
import { type Request, type Response, Router } from 'express';
import { z } from 'zod';
import { requireRole, requireSessionLogin } from '../auth/guards.ts';
import { confirmRecentAuth } from '../auth/recent-auth.ts';
import type { RouteDeps } from '../http/route-deps.ts';
import { parse } from '../workspace/validation.ts';

export const ReauthBody = z.strictObject({
  password: z.string().min(1).max(256),
  totp: z.string().max(64).optional(),
});

export function reauthApiRoutes(deps: RouteDeps): Router {
  return Router().post(
    '/api/v1/admin/reauth',
    requireSessionLogin,
    requireRole('admin'),
    deps.attempts.guard,
    (req, res) => reauth(deps, req, res),
  );
}

async function reauth(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  const body = parse(ReauthBody, req.body);
  await confirmRecentAuth(deps, req, res, body);
  res.status(204).end();
}
