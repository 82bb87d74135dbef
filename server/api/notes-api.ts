// /api/v1/notes: list, create, read, update, delete (see workspace-api.ts for the rules all
// workspace API routes share).
import { type Request, type Response, Router } from 'express';
import { workspaceOf } from '../auth/guards.ts';
import type { RouteDeps } from '../http/route-deps.ts';
import { actorOf } from '../workspace/actor.ts';
import { createNote, deleteNote, getNote, listNotes, updateNote } from '../workspace/notes.ts';
import {
  DeleteQuery,
  NoteCreate,
  NoteListQuery,
  NoteUpdate,
  parse,
  parseId,
} from '../workspace/validation.ts';
import { NoQuery, workspaceApiGate } from './workspace-api.ts';

export function notesApiRoutes(deps: RouteDeps): Router {
  return Router()
    .use('/api/v1/notes', ...workspaceApiGate(deps))
    .get('/api/v1/notes', listNotesApi)
    .post('/api/v1/notes', createNoteApi)
    .get('/api/v1/notes/:id', getNoteApi)
    .patch('/api/v1/notes/:id', updateNoteApi)
    .delete('/api/v1/notes/:id', deleteNoteApi);
}

async function listNotesApi(req: Request, res: Response): Promise<void> {
  const query = parse(NoteListQuery, req.query, 'query');
  // A read in SQL only: no MikroORM fork, BEGIN sent with the tenant binding (tenancy/unit-of-work.ts).
  res.json(await workspaceOf(req)((uow) => listNotes(uow, query), { sqlOnly: true }));
}

async function createNoteApi(req: Request, res: Response): Promise<void> {
  parse(NoQuery, req.query, 'query');
  const input = parse(NoteCreate, req.body, 'note');
  const by = actorOf(req, res);
  const note = await workspaceOf(req)((uow) => createNote(uow, input, by));
  res.status(201).location(`/api/v1/notes/${note.id}`).json({ note });
}

async function getNoteApi(req: Request, res: Response): Promise<void> {
  const id = parseId(req.params.id, 'note');
  parse(NoQuery, req.query, 'query');
  res.json({ note: await workspaceOf(req)((uow) => getNote(uow, id)) });
}

async function updateNoteApi(req: Request, res: Response): Promise<void> {
  const id = parseId(req.params.id, 'note');
  parse(NoQuery, req.query, 'query');
  const input = parse(NoteUpdate, req.body, 'note');
  const by = actorOf(req, res);
  res.json({ note: await workspaceOf(req)((uow) => updateNote(uow, id, input, by)) });
}

async function deleteNoteApi(req: Request, res: Response): Promise<void> {
  const id = parseId(req.params.id, 'note');
  const input = parse(DeleteQuery, req.query, 'query');
  const by = actorOf(req, res);
  await workspaceOf(req)((uow) => deleteNote(uow, id, input, by));
  res.status(204).end();
}
