// The admin's threats page (docs/ADMIN.md, "Threats"): open flags by
// severity at the top, the flags newest first (filtered by state and
// severity, paged by a keyset cursor), and on each open flag a form to
// acknowledge it with a note. Same services as the JSON API
// (server/api/threats-api.ts); no tenant content, only who or what (account
// ids, addresses, hashed session ids, tenant ids) and counts.
import { type Request, type Response, Router } from 'express';
import { AcknowledgeBody, PAGE_SIZE, ThreatsQuery } from '../api/threats-api.ts';
import { ConflictError, ValidationError } from '../app-errors.ts';
import { adminPageGuard } from '../auth/guards.ts';
import { assetUrl, displayTime, flash, render } from '../http/render.ts';
import { whoOf } from '../http/request-audit.ts';
import type { RouteDeps } from '../http/route-deps.ts';
import {
  acknowledgeThreatFlag,
  type FlagView,
  listThreatFlags,
  openFlagsBySeverity,
} from '../threats/flags.ts';
import { SEVERITIES } from '../threats/rules.ts';
import { parse } from '../workspace/validation.ts';
import { field, formProblem } from './page-forms.ts';

const PAGE = '/admin/threats';

export function adminThreatsPages(deps: RouteDeps): Router {
  const router = Router();
  router.use(PAGE, adminPageGuard);
  router.get(PAGE, (req, res) => showThreats(deps, req, res));
  router.post(`${PAGE}/:id/acknowledge`, (req, res) => acknowledge(deps, req, res));
  return router;
}

function chrome() {
  let stylesheets: string[] = [];
  try {
    stylesheets = [assetUrl('admin.css')];
  } catch {
    // not there: app.css alone
  }
  return { title: 'Threats', stylesheets, wide: true };
}

async function showThreats(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  const raw = req.query as Record<string, unknown>;
  // An empty select ("any severity") is no filter.
  const query = Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== ''));
  const values = { state: String(query.state ?? 'open'), severity: String(query.severity ?? '') };
  let error: string | undefined;
  let flags: FlagView[] = [];
  let next: string | null = null;
  let status = 200;
  try {
    const q = parse(ThreatsQuery, query, 'query');
    const page = await listThreatFlags(deps.pool, {
      state: q.state ?? 'open',
      severity: q.severity ?? null,
      before: q.cursor ?? null,
      limit: PAGE_SIZE,
    });
    flags = page.flags;
    if (page.nextCursor) {
      const params = new URLSearchParams({ state: q.state ?? 'open', cursor: page.nextCursor });
      if (q.severity) params.set('severity', q.severity);
      next = `${PAGE}?${params}`;
    }
  } catch (err) {
    const problem = formProblem(res, err);
    error = problem.message;
    status = problem.status;
  }
  const open = await openFlagsBySeverity(deps.pool);
  render(
    res,
    'admin/threats',
    {
      ...chrome(),
      open,
      severities: SEVERITIES,
      values,
      error,
      next,
      paged: typeof query.cursor === 'string',
      flags: flags.map((f) => ({
        ...f,
        firstSeenText: displayTime(f.firstSeen),
        lastSeenText: displayTime(f.lastSeen),
        acknowledgedText: f.acknowledgedAt ? displayTime(f.acknowledgedAt) : null,
        facts: factsOf(f.details),
        warn: f.severity === 'high' || f.severity === 'critical',
      })),
    },
    status,
  );
}

/** The details worth a line on the page (ids, addresses, counts: never content). */
function factsOf(details: Record<string, unknown>): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const [key, value] of Object.entries(details)) {
    if (value === null || value === undefined || typeof value === 'object') continue;
    out.push([key, String(value).slice(0, 200)]);
  }
  return out;
}

async function acknowledge(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  const back = `${PAGE}#flag-${encodeURIComponent(String(req.params.id)).slice(0, 20)}`;
  try {
    const { note } = parse(AcknowledgeBody, { note: field(req, 'note') }, 'form');
    const flag = await acknowledgeThreatFlag(deps.pool, String(req.params.id), note, whoOf(req));
    flash(req, 'success', `Flag ${flag.id} acknowledged.`);
    res.redirect(303, PAGE);
  } catch (err) {
    if (!(err instanceof ValidationError || err instanceof ConflictError)) throw err;
    const problem = formProblem(res, err);
    flash(req, 'error', problem.message);
    res.redirect(303, back);
  }
}
