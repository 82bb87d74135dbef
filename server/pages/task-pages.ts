// The task pages: the board (open / doing / done columns, a small form button
// per card to move a task, "More" per column), new task (blank, for a note, or
// straight from a shared template), edit and delete.
//
// Like notes, every change carries the version it was based on. A move from a
// board that has gone stale is refused and the board says what changed; a
// stale edit comes back with the person's changes kept beside the saved ones.
import { type Request, type Response, Router } from 'express';
import type { UnitOfWork } from '../../tenancy/unit-of-work.ts';
import { NotFoundError, VersionConflictError } from '../app-errors.ts';
import { workspaceOf } from '../auth/guards.ts';
import { flash } from '../http/render.ts';
import { actorOf } from '../workspace/actor.ts';
import { getNote, listNotes } from '../workspace/notes.ts';
import { createTask, deleteTask, getTask, listTasks, updateTask } from '../workspace/tasks.ts';
import {
  LIMITS,
  NoteListQuery,
  parse,
  parseId,
  TASK_STATUSES,
  TaskCreate,
  TaskListQuery,
  type TaskSort,
  TaskUpdate,
} from '../workspace/validation.ts';
import type { TaskView } from '../workspace/views.ts';
import { deleteHandlers } from './confirm-delete.ts';
import { field } from './page-forms.ts';
import {
  formMessage,
  loadShared,
  renderWorkspace,
  type Shared,
  templateDueDate,
} from './workspace-page-context.ts';
import {
  dueOf,
  movesOf,
  STATUS_LABELS,
  STATUSES,
  type TaskFormValues,
  type TaskStatus,
  taskFormFrom,
  taskInputOf,
  timeOf,
  todayIso,
  versionFrom,
} from './workspace-view.ts';

export const TASKS_PER_COLUMN = 50;
/** Notes offered in the task form's "Note" list, most recently updated first. */
const NOTE_CHOICES = 100;
/** Linked notes outside those whose titles are looked up one by one, at most. */
const TITLE_LOOKUPS = 20;

// Unfinished work by due date (undated last); finished work most recent first.
const COLUMN_SORT: Record<TaskStatus, TaskSort> = { open: 'due_asc', doing: 'due_asc', done: 'updated_desc' };
const EMPTY: Record<TaskStatus, string> = {
  open: 'Nothing waiting.',
  doing: 'Nothing in progress.',
  done: 'Nothing finished yet.',
};

type Titles = Map<number, string>;

/** Titles of recent notes, plus those of the given notes that are not among them. */
async function noteTitles(uow: UnitOfWork, ids: Iterable<number>) {
  const recent = await listNotes(uow, parse(NoteListQuery, { limit: String(NOTE_CHOICES) }, 'query'));
  const titles: Titles = new Map(recent.notes.map((n) => [n.id, n.title]));
  const missing = [...new Set(ids)].filter((id) => !titles.has(id)).slice(0, TITLE_LOOKUPS);
  for (const id of missing) {
    try {
      titles.set(id, (await getNote(uow, id)).title);
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
    }
  }
  return { titles, choices: recent.notes.map((n) => ({ id: n.id, title: n.title })) };
}

export function taskItem(t: TaskView, titles: Titles, today = todayIso()) {
  return {
    id: t.id,
    title: t.title,
    status: t.status,
    statusLabel: STATUS_LABELS[t.status],
    version: t.version,
    due: dueOf(t.dueDate, t.status, today),
    note: t.noteId === null ? null : { id: t.noteId, title: titles.get(t.noteId) ?? `Note ${t.noteId}` },
    moves: movesOf(t.status),
  };
}

function formValuesOf(t: TaskView): TaskFormValues {
  return {
    title: t.title,
    status: t.status,
    dueDate: t.dueDate ?? '',
    noteId: t.noteId === null ? '' : String(t.noteId),
  };
}

function queryText(req: Request, name: string): string {
  const value = req.query[name];
  return typeof value === 'string' ? value : '';
}

function isStatus(value: string): value is TaskStatus {
  return (TASK_STATUSES as readonly string[]).includes(value);
}

export function taskPages(): Router {
  const router = Router();
  // --- Board --------------------------------------------------------------
  router.get('/workspace/tasks', showBoard);
  // --- New ----------------------------------------------------------------
  router.get('/workspace/tasks/new', showNewTaskForm);
  router.post('/workspace/tasks', createTaskFromForm);
  router.post('/workspace/tasks/from-template', createTaskFromTemplate);
  // --- Edit ---------------------------------------------------------------
  router.get('/workspace/tasks/:id', redirectToEdit);
  router.get('/workspace/tasks/:id/edit', showEditTaskForm);
  router.post('/workspace/tasks/:id', saveTaskFromForm);
  // --- Move (the card buttons) ----------------------------------------------
  router.post('/workspace/tasks/:id/move', moveTask);
  router.get('/workspace/tasks/:id/delete', taskDelete.confirm);
  router.post('/workspace/tasks/:id/delete', taskDelete.remove);

  return router;
}

/** Reference data and the notes the form offers (with the selected one, wherever it is). */
async function formContext(uow: UnitOfWork, noteId: string) {
  const selected = /^\d{1,15}$/.test(noteId) ? [Number(noteId)] : [];
  const [shared, notes] = [await loadShared(uow), await noteTitles(uow, selected)];
  const choices = [...notes.choices];
  for (const id of selected) {
    const title = notes.titles.get(id);
    if (title !== undefined && !choices.some((c) => c.id === id)) choices.push({ id, title });
  }
  return { shared, notes: choices };
}

function showTaskForm(
  res: Response,
  context: { shared: Shared; notes: Array<{ id: number; title: string }> },
  data: {
    heading: string;
    action: string;
    values: TaskFormValues;
    version?: number;
    taskId?: number;
    submitLabel?: string;
    error?: string;
    conflict?: ReturnType<typeof taskItem> & { updatedIso: string; updatedLabel: string };
  },
  status = 200,
) {
  renderWorkspace(
    res,
    context.shared,
    'task-form',
    {
      title: data.heading,
      limits: { title: LIMITS.title },
      statuses: STATUSES,
      notes: context.notes,
      submitLabel: 'Save',
      wide: data.conflict !== undefined,
      ...data,
    },
    status,
  );
}

async function showBoard(req: Request, res: Response): Promise<void> {
  const column = queryText(req, 'status');
  const cursor = queryText(req, 'cursor');
  // One column (a "More" link) or the whole board.
  const statuses: TaskStatus[] = isStatus(column) ? [column] : [...TASK_STATUSES];
  const queries = statuses.map((status) =>
    parse(
      TaskListQuery,
      {
        status,
        sort: COLUMN_SORT[status],
        limit: String(TASKS_PER_COLUMN),
        ...(isStatus(column) && cursor ? { cursor } : {}),
      },
      'query',
    ),
  );
  const { shared, lists, titles } = await workspaceOf(req)(async (uow) => {
    const lists = [];
    for (const q of queries) lists.push(await listTasks(uow, q));
    const linked = lists.flatMap((l) => l.tasks.flatMap((t) => (t.noteId === null ? [] : [t.noteId])));
    return { shared: await loadShared(uow), lists, titles: (await noteTitles(uow, linked)).titles };
  });
  const today = todayIso();
  const columns = statuses.map((status, i) => {
    const list = lists[i] ?? { tasks: [], nextCursor: null };
    const n = list.tasks.length;
    return {
      status,
      label: STATUS_LABELS[status],
      countLabel: list.nextCursor ? `${n}+` : String(n),
      tasks: list.tasks.map((t) => taskItem(t, titles, today)),
      empty: EMPTY[status],
      next: list.nextCursor
        ? `/workspace/tasks?${new URLSearchParams({ status, cursor: list.nextCursor })}`
        : null,
    };
  });
  renderWorkspace(res, shared, 'tasks', {
    title: 'Tasks',
    wide: true,
    columns,
    singleColumn: isStatus(column),
    templates: shared.templates,
  });
}

async function showNewTaskForm(req: Request, res: Response): Promise<void> {
  const noteId = queryText(req, 'noteId');
  const status = queryText(req, 'status');
  const context = await workspaceOf(req)((uow) => formContext(uow, noteId));
  const values: TaskFormValues = {
    title: '',
    status: isStatus(status) ? status : 'open',
    dueDate: '',
    noteId: context.notes.some((n) => String(n.id) === noteId) ? noteId : '',
  };
  showTaskForm(res, context, {
    heading: 'New task',
    action: '/workspace/tasks',
    values,
    submitLabel: 'Create task',
  });
}

async function createTaskFromForm(req: Request, res: Response): Promise<void> {
  const values = taskFormFrom(req);
  const by = actorOf(req, res);
  let task: TaskView;
  try {
    const input = parse(TaskCreate, taskInputOf(values), 'task');
    task = await workspaceOf(req)((uow) => createTask(uow, input, by));
  } catch (err) {
    // Also a note id that is not in this workspace (404): the form comes back with what was typed.
    const problem = formMessage(res, err);
    const context = await workspaceOf(req)((uow) => formContext(uow, values.noteId));
    const data = { heading: 'New task', action: '/workspace/tasks', values, submitLabel: 'Create task' };
    return showTaskForm(res, context, { ...data, error: problem.message }, problem.status);
  }
  flash(req, 'success', `Task “${task.title}” added.`);
  res.redirect(303, `/workspace/tasks#task-${task.id}`);
}

async function createTaskFromTemplate(req: Request, res: Response): Promise<void> {
  const raw = field(req, 'templateId');
  const by = actorOf(req, res);
  const task = await workspaceOf(req)(async (uow) => {
    const shared = await loadShared(uow);
    const template = shared.templates.find((t) => String(t.id) === raw);
    if (!template) throw new NotFoundError('There is no such task template.');
    const input = parse(
      TaskCreate,
      { title: template.title, status: template.status, dueDate: templateDueDate(template), noteId: null },
      'task',
    );
    return createTask(uow, input, by);
  });
  const due = dueOf(task.dueDate, task.status);
  flash(req, 'success', `Task “${task.title}” added${due ? `, due ${due.label}` : ''}.`);
  res.redirect(303, `/workspace/tasks#task-${task.id}`);
}

function redirectToEdit(req: Request, res: Response): void {
  const id = parseId(req.params.id, 'task');
  res.redirect(303, `/workspace/tasks/${id}/edit`);
}

async function showEditTaskForm(req: Request, res: Response): Promise<void> {
  const id = parseId(req.params.id, 'task');
  const { task, context } = await workspaceOf(req)(async (uow) => {
    const task = await getTask(uow, id);
    return { task, context: await formContext(uow, task.noteId === null ? '' : String(task.noteId)) };
  });
  showTaskForm(res, context, {
    heading: 'Edit task',
    action: `/workspace/tasks/${id}`,
    values: formValuesOf(task),
    version: task.version,
    taskId: id,
  });
}

async function saveTaskFromForm(req: Request, res: Response): Promise<void> {
  const id = parseId(req.params.id, 'task');
  const values = taskFormFrom(req);
  const version = versionFrom(req);
  const by = actorOf(req, res);
  let task: TaskView;
  try {
    const input = parse(TaskUpdate, { version, ...taskInputOf(values) }, 'task');
    task = await workspaceOf(req)((uow) => updateTask(uow, id, input, by));
  } catch (err) {
    return showFailedTaskSave(req, res, { id, values, version }, err);
  }
  flash(req, 'success', `Task “${task.title}” saved.`);
  res.redirect(303, `/workspace/tasks#task-${id}`);
}

/** The form again after a refused save: beside the newer version, as a new task if deleted, or with the message. */
async function showFailedTaskSave(
  req: Request,
  res: Response,
  edit: { id: number; values: TaskFormValues; version: number },
  err: unknown,
): Promise<void> {
  const { id, values, version } = edit;
  const problem = formMessage(res, err); // rethrows what is not the person's to fix
  const { context, exists, titles } = await workspaceOf(req)(async (uow) => {
    const context = await formContext(uow, values.noteId);
    const exists = await getTask(uow, id).then(
      () => true,
      (e) => (e instanceof NotFoundError ? false : Promise.reject(e)),
    );
    const current = err instanceof VersionConflictError ? (err.current as TaskView) : null;
    const titles = await noteTitles(uow, current?.noteId ? [current.noteId] : []);
    return { context, exists, titles: titles.titles };
  });
  const base = { heading: 'Edit task', action: `/workspace/tasks/${id}`, values, taskId: id };
  if (err instanceof VersionConflictError) {
    const current = err.current as TaskView;
    const conflict = { ...taskItem(current, titles), ...timeLabels(current.updatedAt) };
    const heading = 'Your edit conflicts with a newer version';
    return showTaskForm(res, context, { ...base, heading, version: current.version, conflict }, 409);
  }
  if (err instanceof NotFoundError && !exists) {
    const error =
      'This task was deleted (perhaps in another window) before your changes were saved. Your changes are below: save them as a new task to keep them.';
    const data = { heading: 'This task no longer exists', action: '/workspace/tasks', values };
    return showTaskForm(res, context, { ...data, submitLabel: 'Save as a new task', error }, 404);
  }
  return showTaskForm(res, context, { ...base, version, error: problem.message }, problem.status);
}

async function moveTask(req: Request, res: Response): Promise<void> {
  const id = parseId(req.params.id, 'task');
  const status = field(req, 'status');
  const version = versionFrom(req);
  const by = actorOf(req, res);
  try {
    const input = parse(TaskUpdate, { version, status }, 'task');
    const task = await workspaceOf(req)((uow) => updateTask(uow, id, input, by));
    flash(req, 'success', `“${task.title}” moved to ${STATUS_LABELS[task.status]}.`);
  } catch (err) {
    if (err instanceof VersionConflictError) {
      const current = err.current as TaskView;
      flash(
        req,
        'error',
        `“${current.title}” was changed somewhere else after this board was loaded, so it was not moved. It is in ${STATUS_LABELS[current.status]} now; move it again if you still want to.`,
      );
    } else if (err instanceof NotFoundError) {
      throw err;
    } else {
      flash(req, 'error', formMessage(res, err).message);
    }
  }
  res.redirect(303, `/workspace/tasks#task-${id}`);
}

// --- Delete ---------------------------------------------------------------
const taskDelete = deleteHandlers({
  kind: 'task',
  section: 'tasks',
  consequence: '',
  cancel: (id) => `/workspace/tasks/${id}/edit`,
  done: '/workspace/tasks',
  get: getTask,
  remove: deleteTask,
});

function timeLabels(value: string) {
  const t = timeOf(value);
  return { updatedIso: t.iso, updatedLabel: t.label };
}
