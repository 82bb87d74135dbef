// The admin's threat flags (docs/ADMIN.md, "Threats"): the list, newest
// first, filtered by state and severity with a keyset cursor, and the
// acknowledgement with a note (audited as `threat.acknowledge`). Admins only,
// from a browser session, like the rest of the admin API.
import { type Request, type Response, Router } from 'express';
import { z } from 'zod';
import { requireRole, requireSessionLogin } from '../auth/guards.ts';
import { whoOf } from '../http/request-audit.ts';
import type { RouteDeps } from '../http/route-deps.ts';
import { acknowledgeThreatFlag, FLAG_ID, listThreatFlags } from '../threats/flags.ts';
import { SEVERITIES } from '../threats/rules.ts';
import { parse } from '../workspace/validation.ts';

export const THREATS_API = '/api/v1/admin/threats';
export const PAGE_SIZE = 50;

export const ThreatsQuery = z.strictObject({
  state: z.enum(['open', 'acknowledged', 'all']).optional(),
  severity: z.enum(SEVERITIES).optional(),
  cursor: z.string().regex(FLAG_ID, 'must be a cursor from a previous page').optional(),
});

export const AcknowledgeBody = z.strictObject({
  note: z.string().trim().min(1, 'must say what was done about it').max(2000),
});

export const NoQuery = z.strictObject({});

export function threatsApiRoutes(deps: RouteDeps): Router {
  const admin = [requireSessionLogin, requireRole('admin')];
  return Router()
    .get(THREATS_API, ...admin, (req, res) => listFlags(deps, req, res))
    .post(`${THREATS_API}/:id/acknowledge`, ...admin, (req, res) => acknowledge(deps, req, res));
}

async function listFlags(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  const q = parse(ThreatsQuery, req.query, 'query');
  const page = await listThreatFlags(deps.pool, {
    state: q.state ?? 'open',
    severity: q.severity ?? null,
    before: q.cursor ?? null,
    limit: PAGE_SIZE,
  });
  res.json(page);
}

async function acknowledge(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  parse(NoQuery, req.query, 'query');
  const { note } = parse(AcknowledgeBody, req.body ?? {}, 'body');
  const flag = await acknowledgeThreatFlag(deps.pool, String(req.params.id), note, whoOf(req));
  res.json({ flag });
}
