// /api/v1/tasks: list, create, read, update, delete (see workspace-api.ts for the rules all
// workspace API routes share).
import { type Request, type Response, Router } from 'express';
import { workspaceOf } from '../auth/guards.ts';
import type { RouteDeps } from '../http/route-deps.ts';
import { actorOf } from '../workspace/actor.ts';
import { createTask, deleteTask, getTask, listTasks, updateTask } from '../workspace/tasks.ts';
import {
  DeleteQuery,
  parse,
  parseId,
  TaskCreate,
  TaskListQuery,
  TaskUpdate,
} from '../workspace/validation.ts';
import { NoQuery, workspaceApiGate } from './workspace-api.ts';

export function tasksApiRoutes(deps: RouteDeps): Router {
  return Router()
    .use('/api/v1/tasks', ...workspaceApiGate(deps))
    .get('/api/v1/tasks', listTasksApi)
    .post('/api/v1/tasks', createTaskApi)
    .get('/api/v1/tasks/:id', getTaskApi)
    .patch('/api/v1/tasks/:id', updateTaskApi)
    .delete('/api/v1/tasks/:id', deleteTaskApi);
}

async function listTasksApi(req: Request, res: Response): Promise<void> {
  const query = parse(TaskListQuery, req.query, 'query');
  res.json(await workspaceOf(req)((uow) => listTasks(uow, query)));
}

async function createTaskApi(req: Request, res: Response): Promise<void> {
  parse(NoQuery, req.query, 'query');
  const input = parse(TaskCreate, req.body, 'task');
  const by = actorOf(req, res);
  const task = await workspaceOf(req)((uow) => createTask(uow, input, by));
  res.status(201).location(`/api/v1/tasks/${task.id}`).json({ task });
}

async function getTaskApi(req: Request, res: Response): Promise<void> {
  const id = parseId(req.params.id, 'task');
  parse(NoQuery, req.query, 'query');
  res.json({ task: await workspaceOf(req)((uow) => getTask(uow, id)) });
}

async function updateTaskApi(req: Request, res: Response): Promise<void> {
  const id = parseId(req.params.id, 'task');
  parse(NoQuery, req.query, 'query');
  const input = parse(TaskUpdate, req.body, 'task');
  const by = actorOf(req, res);
  res.json({ task: await workspaceOf(req)((uow) => updateTask(uow, id, input, by)) });
}

async function deleteTaskApi(req: Request, res: Response): Promise<void> {
  const id = parseId(req.params.id, 'task');
  const input = parse(DeleteQuery, req.query, 'query');
  const by = actorOf(req, res);
  await workspaceOf(req)((uow) => deleteTask(uow, id, input, by));
  res.status(204).end();
}
