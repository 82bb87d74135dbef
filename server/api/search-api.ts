// /api/v1/search: full-text search of the workspace's notes (see workspace-api.ts for the rules
// all workspace API routes share).
import { type Request, type Response, Router } from 'express';
import { workspaceOf } from '../auth/guards.ts';
import type { RouteDeps } from '../http/route-deps.ts';
import { searchCursorOf, searchNotes } from '../workspace/notes.ts';
import { parse, SearchQuery } from '../workspace/validation.ts';
import { workspaceApiGate } from './workspace-api.ts';

export function searchApiRoutes(deps: RouteDeps): Router {
  return Router()
    .use('/api/v1/search', ...workspaceApiGate(deps))
    .get('/api/v1/search', (req, res) => searchApi(deps, req, res));
}

async function searchApi(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  const query = parse(SearchQuery, req.query, 'query');
  searchCursorOf(query); // a bad cursor is a 400 here, not a search counted by the rate below
  // At most TENANT_SEARCHES_PER_MINUTE / 6 searches of one workspace start per 10 seconds, and
  // a search may read every note: at most TENANT_MAX_SEARCHES of them run at once (429 beyond either).
  await deps.searchRate(req, res);
  const tenantId = (req.user as Express.User).tenantId as string;
  res.json(
    await deps.slots.hold(tenantId, 'search', () =>
      workspaceOf(req)((uow) => searchNotes(uow, query, deps.config.SEARCH_CANDIDATES)),
    ),
  );
}
