// The workspace JSON API (notes-api.ts, tasks-api.ts, search-api.ts and this
// file: the workspace itself and its reference data), for a session or an API
// token (read-only tokens are refused on writes by the guard). Handlers only
// parse, call a service of server/workspace/ in the caller's unit of work, and
// answer; errors are typed and mapped in http/http-errors.ts.
//
// Input is checked before any transaction starts: bodies and query strings
// against strict schemas (unknown fields and unknown query parameters are a
// 400, so a typo is never silently ignored), ids with parseId (anything that
// is not a positive integer is a 404, like an id of another workspace).
import { type Request, type RequestHandler, type Response, Router } from 'express';
import { z } from 'zod';
import { requireWorkspace, workspaceOf } from '../auth/guards.ts';
import type { RouteDeps } from '../http/route-deps.ts';
import { storageQuota } from '../http/storage-quota.ts';
import { readReference } from '../workspace/reference.ts';
import { storageUsage } from '../workspace/storage.ts';
import { parse } from '../workspace/validation.ts';

/** No query parameters at all. */
export const NoQuery = z.strictObject({});

/** Workspace content is private: no shared cache may keep it. */
const noStore: RequestHandler = (_req, res, next) => {
  res.setHeader('Cache-Control', 'no-store');
  next();
};

/**
 * In front of every workspace API path: the owner's unit of work, writes with the
 * workspace's storage quota in force (413 when it would go over), no caching.
 */
export function workspaceApiGate(deps: RouteDeps): RequestHandler[] {
  return [requireWorkspace(deps.tenants), storageQuota(deps.tenantQuotaBytes), noStore];
}

export function workspaceApiRoutes(deps: RouteDeps): Router {
  const router = Router();
  for (const path of ['/api/v1/reference', '/api/v1/workspace']) router.use(path, ...workspaceApiGate(deps));
  router.get('/api/v1/workspace', (req, res) => showWorkspace(deps, req, res));
  router.get('/api/v1/reference', showReference);
  return router;
}

/** The workspace itself: for now, how much storage it uses of its quota. */
async function showWorkspace(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  parse(NoQuery, req.query, 'query');
  const storage = await workspaceOf(req)((uow) => storageUsage(uow, deps.tenantQuotaBytes));
  res.json({ workspace: { storage } });
}

async function showReference(req: Request, res: Response): Promise<void> {
  parse(NoQuery, req.query, 'query');
  res.json(await workspaceOf(req)((uow) => readReference(uow)));
}
