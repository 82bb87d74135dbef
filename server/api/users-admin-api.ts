// The admin's People API (docs/ADMIN.md, docs/HTTP-API.md), under
// /api/v1/admin/users: find people, read one with their recent sign-ins and
// refused attempts, and deactivate, reactivate, end their sessions, reset
// their two-step sign-in and change their role (server/admin/people.ts).
// Admins only, from a browser session (API tokens are refused on /admin
// paths). Deactivating, ending sessions, resetting MFA and changing a role
// are destructive: they also need a recent password or MFA check
// (POST /api/v1/admin/reauth), else 403 `reauth_required`. Unknown fields
// and query parameters are a 400; ids that are not ids are a 404.
import { type Request, type Response, Router } from 'express';
import { z } from 'zod';
import {
  type AdminActor,
  changeRoleOfPerson,
  deactivatePerson,
  endSessionsOfPerson,
  MAX_PAGE_SIZE,
  personDetail,
  REASON_MAX,
  reactivatePerson,
  resetMfaOfPerson,
  searchPeople,
} from '../admin/people.ts';
import { requireRole, requireSessionLogin } from '../auth/guards.ts';
import { requireRecentAuth } from '../auth/recent-auth.ts';
import { whoOf } from '../http/request-audit.ts';
import type { RouteDeps } from '../http/route-deps.ts';
import { parse } from '../workspace/validation.ts';

const BASE = '/api/v1/admin/users';

export const SearchQuery = z.strictObject({
  q: z.string().max(254).optional(),
  match: z.enum(['contains', 'prefix']).optional(),
  tenant: z.string().max(64).optional(),
  role: z.enum(['user', 'auditor', 'admin']).optional(),
  state: z.enum(['active', 'deactivated']).optional(),
  cursor: z.string().max(800).optional(),
  limit: z
    .string()
    .regex(/^\d{1,3}$/, `a whole number from 1 to ${MAX_PAGE_SIZE}`)
    .transform(Number)
    .refine((n) => n >= 1 && n <= MAX_PAGE_SIZE, `a whole number from 1 to ${MAX_PAGE_SIZE}`)
    .optional(),
});
export const NoQuery = z.strictObject({});
export const NoBody = z.strictObject({});
// The service checks the words of a reason (one line, trimmed); the schema the shape.
export const DeactivateBody = z.strictObject({
  reason: z
    .string()
    .max(REASON_MAX * 4)
    .optional(),
});
export const ResetMfaBody = z.strictObject({ reason: z.string().max(REASON_MAX * 4) });
export const RoleBody = z.strictObject({ role: z.enum(['user', 'auditor', 'admin']) });

export function usersAdminApiRoutes(deps: RouteDeps): Router {
  const admin = [requireSessionLogin, requireRole('admin')];
  const destructive = [...admin, requireRecentAuth(deps.config.ADMIN_REAUTH_MINUTES)];
  return Router()
    .get(BASE, ...admin, (req, res) => search(deps, req, res))
    .get(`${BASE}/:id`, ...admin, (req, res) => show(deps, req, res))
    .post(`${BASE}/:id/deactivate`, ...destructive, (req, res) => deactivate(deps, req, res))
    .post(`${BASE}/:id/reactivate`, ...admin, (req, res) => reactivate(deps, req, res))
    .post(`${BASE}/:id/end-sessions`, ...destructive, (req, res) => endSessions(deps, req, res))
    .post(`${BASE}/:id/reset-mfa`, ...destructive, (req, res) => resetMfa(deps, req, res))
    .post(`${BASE}/:id/role`, ...destructive, (req, res) => changeRole(deps, req, res));
}

function actorOf(req: Request): AdminActor {
  return { userId: (req.user as Express.User).userId, by: whoOf(req) };
}

async function search(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  const query = parse(SearchQuery, req.query, 'query');
  const page = await searchPeople(deps.pool, query);
  res.json({ users: page.people, nextCursor: page.nextCursor });
}

async function show(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  parse(NoQuery, req.query, 'query');
  const detail = await personDetail(
    deps.pool,
    String(req.params.id),
    deps.config.SESSION_ABSOLUTE_HOURS * 3600,
  );
  res.json({
    user: detail.person,
    liveSessions: detail.liveSessions,
    liveTokens: detail.liveTokens,
    unusedRecoveryCodes: detail.unusedRecoveryCodes,
    signIns: detail.signIns,
    refusals: detail.refusals,
  });
}

async function deactivate(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  const body = parse(DeactivateBody, req.body ?? {});
  const ended = await deactivatePerson(deps.pool, actorOf(req), String(req.params.id), body.reason);
  res.json({ deactivated: true, ...ended });
}

async function reactivate(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  parse(NoBody, req.body ?? {});
  await reactivatePerson(deps.pool, actorOf(req), String(req.params.id));
  res.json({ reactivated: true });
}

async function endSessions(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  parse(NoBody, req.body ?? {});
  const sessionsEnded = await endSessionsOfPerson(deps.pool, actorOf(req), String(req.params.id));
  res.json({ sessionsEnded });
}

async function resetMfa(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  const body = parse(ResetMfaBody, req.body ?? {});
  const done = await resetMfaOfPerson(deps.pool, actorOf(req), String(req.params.id), body.reason);
  res.json({ reset: true, ...done });
}

async function changeRole(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  const body = parse(RoleBody, req.body ?? {});
  res.json(await changeRoleOfPerson(deps.pool, actorOf(req), String(req.params.id), body.role));
}
