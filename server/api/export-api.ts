// GET /api/v1/export: the whole workspace as a .tar.gz download (session or
// API token, read scope is enough; owners only). The work, its limits and its
// clean-up are the export service's (export/workspace-export.ts).
import { type Request, type Response, Router } from 'express';
import { requireWorkspace, workspaceOf } from '../auth/guards.ts';
import { sendWorkspaceExport } from '../export/workspace-export.ts';
import type { RouteDeps } from '../http/route-deps.ts';
import { actorOf } from '../workspace/actor.ts';

export function exportRoutes(deps: RouteDeps): Router {
  return Router().get('/api/v1/export', requireWorkspace(deps.tenants), (req, res) =>
    exportWorkspace(deps, req, res),
  );
}

async function exportWorkspace(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  const tenantId = (req.user as Express.User).tenantId as string;
  await sendWorkspaceExport(deps, { tenantId, who: actorOf(req, res), workspace: workspaceOf(req) }, res);
}
