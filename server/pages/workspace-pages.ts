// The workspace pages under /workspace: home (recent notes, open tasks, the
// shared templates and tag palette), search, and the palette stylesheet; the
// note and task pages are in note-pages.ts and task-pages.ts.
//
// They call the same services as the JSON API (server/workspace/), each page
// in one unit of work of the signed-in owner's tenant. Only a browser session
// of a workspace owner gets in: anonymous visitors are sent to sign in,
// auditors and admins get 403, API tokens 401 (tokens are for /api). No
// JavaScript: every action is a link or a form button, so the pages work
// with a keyboard, a screen reader and the strict CSP alike.
import { type Request, type Response, Router } from 'express';
import { workspaceOf, workspacePageGuard } from '../auth/guards.ts';
import type { RouteDeps } from '../http/route-deps.ts';
import { storageQuota } from '../http/storage-quota.ts';
import { listNotes, searchCursorOf, searchNotes } from '../workspace/notes.ts';
import { readReference } from '../workspace/reference.ts';
import { storageUsage } from '../workspace/storage.ts';
import { listTasks } from '../workspace/tasks.ts';
import { NoteListQuery, parse, SearchQuery, TaskListQuery } from '../workspace/validation.ts';
import { noteItem } from './note-pages.ts';
import { taskItem } from './task-pages.ts';
import {
  formMessage,
  loadShared,
  PALETTE_CSS_PATH,
  paletteHash,
  renderWorkspace,
} from './workspace-page-context.ts';
import { chipsOf, paletteCss, plainPreview, timeOf, todayIso } from './workspace-view.ts';

const HOME_NOTES = 6;
const HOME_TASKS = 8;
const RESULTS_PER_PAGE = 20;

/**
 * In front of every page under /workspace (home, search, notes, tasks): only the owner's browser
 * session gets in, and form posts run with the workspace's storage quota in force (the form comes
 * back with a 413). Registered before the workspace page routers in server/routes.ts.
 */
export function workspacePageGate(deps: RouteDeps): Router {
  return Router().use('/workspace', ...workspacePageGuard(deps.tenants), storageQuota(deps.tenantQuotaBytes));
}

export function workspacePages(deps: RouteDeps): Router {
  const router = Router();
  router.get('/workspace', (req, res) => showHome(deps, req, res));
  router.get('/workspace/search', (req, res) => showSearch(deps, req, res));
  router.get(PALETTE_CSS_PATH, sendPaletteCss);

  return router;
}

async function showHome(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  const notesQuery = parse(NoteListQuery, { limit: String(HOME_NOTES) }, 'query');
  // In progress first, then waiting; each by due date (undated last).
  const taskQuery = (status: 'open' | 'doing') =>
    parse(TaskListQuery, { status, sort: 'due_asc', limit: String(HOME_TASKS) }, 'query');
  const data = await workspaceOf(req)(async (uow) => ({
    shared: await loadShared(uow),
    notes: await listNotes(uow, notesQuery),
    doing: await listTasks(uow, taskQuery('doing')),
    open: await listTasks(uow, taskQuery('open')),
    storage: await storageUsage(uow, deps.tenantQuotaBytes),
  }));
  const { shared } = data;
  const today = todayIso();
  const titles = new Map(data.notes.notes.map((n) => [n.id, n.title]));
  const tasks = [...data.doing.tasks, ...data.open.tasks]
    .slice(0, HOME_TASKS)
    .map((t) => taskItem(t, titles, today));
  renderWorkspace(res, shared, 'home', {
    title: 'Workspace',
    notes: data.notes.notes.map((n) => noteItem(n, shared.paletteNames)),
    tasks,
    templates: shared.templates,
    storage: data.storage,
  });
}

async function showSearch(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  const q = typeof req.query.q === 'string' ? req.query.q : '';
  const cursor = typeof req.query.cursor === 'string' ? req.query.cursor : '';
  let query: SearchQuery | undefined;
  let error: string | undefined;
  if (q.trim()) {
    try {
      const input = { q, limit: String(RESULTS_PER_PAGE), ...(cursor ? { cursor } : {}) };
      query = parse(SearchQuery, input, 'query');
    } catch (err) {
      error = formMessage(res, err).message;
    }
  }
  const sq = query;
  const read = () =>
    workspaceOf(req)(async (uow) => ({
      shared: await loadShared(uow),
      found: sq ? await searchNotes(uow, sq, deps.config.SEARCH_CANDIDATES) : null,
    }));
  // As in the API: a bad cursor is a 400 (the error page) and no search; then at most
  // TENANT_SEARCHES_PER_MINUTE / 6 searches of one workspace start per 10 seconds and at most
  // TENANT_MAX_SEARCHES run at once (429 beyond either, the error page with Retry-After).
  // The empty search form is no search.
  const tenantId = (req.user as Express.User).tenantId as string;
  if (sq) {
    searchCursorOf(sq);
    await deps.searchRate(req, res);
  }
  const { shared, found } = sq ? await deps.slots.hold(tenantId, 'search', read) : await read();
  const results = found?.results.map((r) => {
    const updated = timeOf(r.updatedAt);
    return {
      id: r.id,
      title: r.title,
      snippet: r.snippet
        .map((part) => ({ ...part, text: plainPreview(part.text, false) }))
        .filter((part) => part.text !== ''),
      tags: chipsOf(r.tags, shared.paletteNames),
      updatedIso: updated.iso,
      updatedLabel: updated.label,
    };
  });
  const n = results?.length ?? 0;
  const more = found?.nextCursor ? ' or more' : '';
  const countLabel =
    n === 0 ? 'No results.' : `${n}${more} ${n === 1 && !more ? 'note' : 'notes'}, best match first.`;
  const next = found?.nextCursor
    ? `/workspace/search?${new URLSearchParams({ q, cursor: found.nextCursor })}`
    : null;
  renderWorkspace(
    res,
    shared,
    'search',
    {
      title: q.trim() ? `Search: ${q.trim()}` : 'Search',
      q,
      results,
      countLabel,
      next,
      // Only the most recently edited matches were ranked (workspace-sql.ts searchNotes).
      cutShort: found?.cutShort === true,
      candidates: deps.config.SEARCH_CANDIDATES.toLocaleString('en'),
      error,
    },
    error ? 400 : 200,
  );
}

// The palette as CSS classes (no style attributes under the CSP). Pages link
// it with the palette's hash in the URL, so the versioned URL is cached.
async function sendPaletteCss(req: Request, res: Response): Promise<void> {
  const { tagPalette } = await workspaceOf(req)(readReference);
  const hash = paletteHash(tagPalette);
  res.set({
    'Content-Type': 'text/css; charset=utf-8',
    ETag: `"${hash}"`,
    'Cache-Control': req.query.v === hash ? 'private, max-age=31536000, immutable' : 'private, no-cache',
  });
  if (req.fresh) return void res.status(304).end();
  res.send(paletteCss(tagPalette));
}
