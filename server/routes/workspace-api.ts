// The workspace JSON API: notes, tasks, search and reference data, for a
// session or an API token (read-only tokens are refused on writes by the
// guard). Handlers only parse, call a service of server/workspace/ in the
// caller's unit of work, and answer; errors are typed and mapped in
// http-errors.ts.
//
// Input is checked before any transaction starts: bodies and query strings
// against strict schemas (unknown fields and unknown query parameters are a
// 400, so a typo is never silently ignored), ids with parseId (anything that
// is not a positive integer is a 404, like an id of another workspace).
import { type Request, type Response, Router } from 'express';
import { z } from 'zod';
import { requireWorkspace, workspaceOf } from '../auth/guards.ts';
import { actorOf } from '../workspace/actor.ts';
import { createNote, deleteNote, getNote, listNotes, searchNotes, updateNote } from '../workspace/notes.ts';
import { readReference } from '../workspace/reference.ts';
import { storageUsage } from '../workspace/storage.ts';
import { createTask, deleteTask, getTask, listTasks, updateTask } from '../workspace/tasks.ts';
import {
  DeleteQuery,
  NoteCreate,
  NoteListQuery,
  NoteUpdate,
  parse,
  parseId,
  SearchQuery,
  TaskCreate,
  TaskListQuery,
  TaskUpdate,
} from '../workspace/validation.ts';
import type { RouteDeps } from './deps.ts';
import { storageQuota } from './workspace-quota.ts';

const NoQuery = z.strictObject({});

const PATHS = ['/api/v1/notes', '/api/v1/tasks', '/api/v1/search', '/api/v1/reference', '/api/v1/workspace'];

export function workspaceApiRoutes(deps: RouteDeps): Router {
  const router = Router();
  for (const path of PATHS) {
    // Writes run with the workspace's storage quota in force (413 when it would go over).
    router.use(
      path,
      requireWorkspace(deps.tenants),
      storageQuota(deps.tenantQuotaBytes),
      (_req, res, next) => {
        // Workspace content is private: no shared cache may keep it.
        res.setHeader('Cache-Control', 'no-store');
        next();
      },
    );
  }

  router.get('/api/v1/notes', async (req, res) => {
    const query = parse(NoteListQuery, req.query, 'query');
    res.json(await workspaceOf(req)((uow) => listNotes(uow, query)));
  });

  router.post('/api/v1/notes', async (req, res) => {
    parse(NoQuery, req.query, 'query');
    const input = parse(NoteCreate, req.body, 'note');
    const by = actorOf(req, res);
    const note = await workspaceOf(req)((uow) => createNote(uow, input, by));
    res.status(201).location(`/api/v1/notes/${note.id}`).json({ note });
  });

  router.get('/api/v1/notes/:id', async (req, res) => {
    const id = parseId(req.params.id, 'note');
    parse(NoQuery, req.query, 'query');
    res.json({ note: await workspaceOf(req)((uow) => getNote(uow, id)) });
  });

  router.patch('/api/v1/notes/:id', async (req, res) => {
    const id = parseId(req.params.id, 'note');
    parse(NoQuery, req.query, 'query');
    const input = parse(NoteUpdate, req.body, 'note');
    const by = actorOf(req, res);
    res.json({ note: await workspaceOf(req)((uow) => updateNote(uow, id, input, by)) });
  });

  router.delete('/api/v1/notes/:id', async (req, res) => {
    const id = parseId(req.params.id, 'note');
    const input = parse(DeleteQuery, req.query, 'query');
    const by = actorOf(req, res);
    await workspaceOf(req)((uow) => deleteNote(uow, id, input, by));
    res.status(204).end();
  });

  router.get('/api/v1/tasks', async (req, res) => {
    const query = parse(TaskListQuery, req.query, 'query');
    res.json(await workspaceOf(req)((uow) => listTasks(uow, query)));
  });

  router.post('/api/v1/tasks', async (req, res) => {
    parse(NoQuery, req.query, 'query');
    const input = parse(TaskCreate, req.body, 'task');
    const by = actorOf(req, res);
    const task = await workspaceOf(req)((uow) => createTask(uow, input, by));
    res.status(201).location(`/api/v1/tasks/${task.id}`).json({ task });
  });

  router.get('/api/v1/tasks/:id', async (req, res) => {
    const id = parseId(req.params.id, 'task');
    parse(NoQuery, req.query, 'query');
    res.json({ task: await workspaceOf(req)((uow) => getTask(uow, id)) });
  });

  router.patch('/api/v1/tasks/:id', async (req, res) => {
    const id = parseId(req.params.id, 'task');
    parse(NoQuery, req.query, 'query');
    const input = parse(TaskUpdate, req.body, 'task');
    const by = actorOf(req, res);
    res.json({ task: await workspaceOf(req)((uow) => updateTask(uow, id, input, by)) });
  });

  router.delete('/api/v1/tasks/:id', async (req, res) => {
    const id = parseId(req.params.id, 'task');
    const input = parse(DeleteQuery, req.query, 'query');
    const by = actorOf(req, res);
    await workspaceOf(req)((uow) => deleteTask(uow, id, input, by));
    res.status(204).end();
  });

  router.get('/api/v1/search', async (req, res) => {
    const query = parse(SearchQuery, req.query, 'query');
    // A search may read every note: at most TENANT_MAX_SEARCHES of one workspace run at once (429 beyond).
    const tenantId = (req.user as Express.User).tenantId as string;
    res.json(
      await deps.slots.hold(tenantId, 'search', () => workspaceOf(req)((uow) => searchNotes(uow, query))),
    );
  });

  // The workspace itself: for now, how much storage it uses of its quota.
  router.get('/api/v1/workspace', async (req, res) => {
    parse(NoQuery, req.query, 'query');
    const storage = await workspaceOf(req)((uow) => storageUsage(uow, deps.tenantQuotaBytes));
    res.json({ workspace: { storage } });
  });

  router.get('/api/v1/reference', async (req: Request, res: Response) => {
    parse(NoQuery, req.query, 'query');
    res.json(await workspaceOf(req)((uow) => readReference(uow)));
  });

  return router;
}
