// The auditor's pages under /audit: a search form (tenant, actor, action,
// outcome, time), the sealed entries newest first with paging, the downloads
// (bundle, public keys, latest checkpoints) and how to verify offline. They
// call the same services as the JSON API (audit/search.ts), so a page view is
// audited like an API search. Auditors only: anyone else signed in gets 403,
// anonymous visitors are sent to sign in. No script, no inline style.
import { type Request, type Response, Router } from 'express';
import {
  decodeCursor,
  EMPTY_FILTER,
  type FoundEntry,
  filterParams,
  parseFilter,
  type SearchFilter,
  searchEntries,
} from '../../audit/search.ts';
import { AUDIT_API } from '../api/audit-api.ts';
import { auditorPageGuard } from '../auth/guards.ts';
import { assetUrl, render } from '../http/render.ts';
import { whoOf } from '../http/request-audit.ts';
import type { RouteDeps } from '../http/route-deps.ts';
import { formProblem } from './page-forms.ts';

const PAGE = 50;
const CELL = 160;
/** `2026-11-22T17:00` from a datetime-local field: the page says times are UTC, so it is read as UTC. */
const LOCAL_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?$/;

export function auditPages(deps: RouteDeps): Router {
  const router = Router();

  router.use('/audit', auditorPageGuard);
  router.get('/audit', (req, res) => showAuditTrail(deps, req, res));

  return router;
}

async function showAuditTrail(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  const query = asUtc(req.query as Record<string, unknown>);
  const values = formValues(query);
  let filter: SearchFilter = EMPTY_FILTER;
  try {
    filter = parseFilter(query, ['cursor']);
    const cursor = decodeCursor(query.cursor);
    const page = await searchEntries(deps.pool, filter, { cursor, limit: PAGE, by: whoOf(req) });
    const params = filterParams(filter);
    render(res, 'audit/search', {
      ...common(filter, values, res.locals.auditContent),
      rows: page.entries.map(rowOf),
      pending: page.pending,
      paged: cursor !== null,
      next: page.nextCursor ? `/audit?${new URLSearchParams({ ...params, cursor: page.nextCursor })}` : null,
      first: `/audit?${new URLSearchParams(params)}`,
    });
  } catch (err) {
    const problem = formProblem(res, err);
    render(
      res,
      'audit/search',
      {
        ...common(EMPTY_FILTER, values, res.locals.auditContent),
        rows: [],
        pending: null,
        error: problem.message,
      },
      problem.status,
    );
  }
}

/** What every rendering of the page needs: the form's values, the download links, what the details hold. */
function common(filter: SearchFilter, values: Record<string, string>, content: 'hash' | 'full' = 'hash') {
  const tenant = filter.tenant && filter.tenant !== 'platform' ? filter.tenant : null;
  const range = filterParams({ ...EMPTY_FILTER, tenant, from: filter.from, to: filter.to });
  const chain: Record<string, string> = tenant ? { tenant } : {};
  return {
    title: 'Audit trail',
    wide: true,
    // AUDIT_CONTENT: the page says what the details of workspace changes show.
    contentHashed: content === 'hash',
    stylesheets: [assetUrl('audit.css')],
    values,
    outcomes: [
      { value: '', label: 'Any' },
      { value: 'success', label: 'Success' },
      { value: 'failure', label: 'Failure' },
    ],
    downloads: {
      bundle: `${AUDIT_API}/export?${new URLSearchParams(range)}`,
      bundleLabel: tenant ? `Bundle of tenant ${tenant}` : 'Bundle of the whole trail',
      keys: `${AUDIT_API}/public-keys?format=pem`,
      checkpoints: `${AUDIT_API}/checkpoints?${new URLSearchParams({ ...chain, format: 'jsonl' })}`,
    },
  };
}

/** The form fields as typed (so a refused search shows them again), all strings. */
function formValues(query: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of ['tenant', 'actor', 'action', 'outcome', 'from', 'to']) {
    const v = query[name];
    out[name] = typeof v === 'string' ? v.replace(/Z$/, '') : '';
  }
  return out;
}

function asUtc(query: Record<string, unknown>): Record<string, unknown> {
  const out = { ...query };
  for (const name of ['from', 'to']) {
    const v = out[name];
    if (typeof v === 'string' && LOCAL_TIME.test(v.trim())) out[name] = `${v.trim()}Z`;
  }
  return out;
}

/** An id as the table shows it: short, the whole one in a tooltip and a link that filters by it. */
function idCell(id: string | null | undefined, filterBy?: 'actor' | 'tenant') {
  if (!id) return null;
  return {
    full: id,
    short: id.length > 14 ? `${id.slice(0, 8)}…` : id,
    href: filterBy ? `/audit?${new URLSearchParams({ [filterBy]: id })}` : null,
  };
}

/** One table row: the entry's fields as short strings; the whole entry for the expandable detail. */
function rowOf(found: FoundEntry) {
  const e = found.entry as {
    at?: string;
    tenant?: string | null;
    actor?: { type?: string; id?: string | null };
    action?: string;
    resource?: { type?: string; id?: string | null } | null;
    outcome?: { result?: string; code?: string | null };
    where?: { ip?: string | null; ua?: string | null; request?: string | null };
    details?: unknown;
  };
  const details = JSON.stringify(e.details ?? {});
  return {
    chain: found.chain,
    chainHref: `/audit?${new URLSearchParams({ tenant: e.tenant ?? 'platform' })}`,
    seq: found.seq,
    at: (e.at ?? '').replace('T', ' '),
    atIso: e.at ?? '',
    actorType: e.actor?.type ?? '',
    actorId: idCell(e.actor?.id, 'actor'),
    action: e.action ?? '',
    resourceType: e.resource?.type ?? '',
    resourceId: idCell(e.resource?.id),
    failed: e.outcome?.result === 'failure',
    outcome: e.outcome?.result ?? '',
    code: e.outcome?.code ?? null,
    ip: e.where?.ip ?? '',
    details: details === '{}' ? 'Entry' : details.length > CELL ? `${details.slice(0, CELL)}…` : details,
    full: JSON.stringify(found.entry, null, 2),
    hash: found.hash,
  };
}
