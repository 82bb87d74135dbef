// Tasks: the workspace service, shared by the JSON API and the pages.
//
// Exported (same conventions as notes.ts):
//   listTasks(uow, TaskListQuery)            -> { tasks: TaskView[], nextCursor: string | null }
//   getTask(uow, id)                         -> TaskView            (NotFoundError)
//   createTask(uow, TaskCreate, actor)       -> TaskView            (NotFoundError for a noteId not in this workspace)
//   updateTask(uow, id, TaskUpdate, actor)   -> TaskView (new version)  (NotFoundError, VersionConflictError)
//   deleteTask(uow, id, { version? }, actor) -> void
//
// A task may link to a note of the same workspace. The linked note is locked
// FOR KEY SHARE while the link is written, so a concurrent delete of that note
// waits instead of failing our insert on the foreign key (a 500); a note id
// from another workspace is simply not found in this schema: 404.
import { LockMode } from '@mikro-orm/core';
import type { UnitOfWork } from '../../tenancy/unit-of-work.ts';
import { NoteSchema, TaskSchema } from '../../tenancy/workspace-entities.ts';
import { NotFoundError, VersionConflictError } from '../app-errors.ts';
import type { Actor } from './actor.ts';
import { recordChange } from './change-audit.ts';
import { NOTE_SORT_SPECS } from './notes.ts';
import { decodeCursor, type KeysetSort, page } from './pagination.ts';
import type { TaskCreate, TaskListQuery, TaskSort, TaskUpdate } from './validation.ts';
import { notFound } from './validation.ts';
import { type Task, type TaskView, taskRowView, taskView } from './views.ts';
import * as sql from './workspace-sql.ts';

export const TASK_FIELDS = ['title', 'status', 'dueDate', 'noteId'] as const;

export const TASK_SORT_SPECS: Record<TaskSort, KeysetSort> = {
  ...NOTE_SORT_SPECS,
  due_asc: { name: 'due_asc', column: 'due_date', type: 'date', direction: 'asc', nullable: true },
  due_desc: { name: 'due_desc', column: 'due_date', type: 'date', direction: 'desc', nullable: true },
};

export async function listTasks(
  uow: UnitOfWork,
  query: TaskListQuery,
): Promise<{ tasks: TaskView[]; nextCursor: string | null }> {
  const sort = TASK_SORT_SPECS[query.sort];
  const cursor = query.cursor === undefined ? undefined : decodeCursor(query.cursor, sort);
  const rows = await uow.query<sql.TaskRow>(
    sql.listTasks({ sort, cursor, status: query.status, limit: query.limit + 1 }),
  );
  const shown = page(
    rows.map((r) => ({ ...r, id: Number(r.id), sortKey: r.sort_key })),
    query.limit,
    sort,
  );
  return { tasks: shown.rows.map(taskRowView), nextCursor: shown.nextCursor };
}

export async function getTask(uow: UnitOfWork, id: number): Promise<TaskView> {
  const task = await uow.em.findOne(TaskSchema, id, { disableIdentityMap: true });
  if (!task) throw notFound('task');
  return taskView(task);
}

export async function createTask(uow: UnitOfWork, input: TaskCreate, by: Actor): Promise<TaskView> {
  if (input.noteId !== null) await lockLinkedNote(uow, input.noteId);
  const task = uow.em.create(TaskSchema, {
    title: input.title,
    status: input.status,
    dueDate: input.dueDate,
    note: input.noteId === null ? null : uow.em.getReference(NoteSchema, input.noteId),
  });
  await uow.em.flush();
  const view = taskView(task);
  recordChange(uow, by, 'task.create', { type: 'task', id: view.id }, {}, snapshot(task), TASK_FIELDS);
  return view;
}

export async function updateTask(
  uow: UnitOfWork,
  id: number,
  input: TaskUpdate,
  by: Actor,
): Promise<TaskView> {
  // The note before the task: deleteNote locks a note, then its tasks, so
  // taking them in the same order here cannot deadlock with it.
  if (typeof input.noteId === 'number') await lockLinkedNote(uow, input.noteId);
  const task = await lockedTask(uow, id, input.version);
  const before = snapshot(task);
  if (input.title !== undefined) task.title = input.title;
  if (input.status !== undefined) task.status = input.status;
  if (input.dueDate !== undefined) task.dueDate = input.dueDate;
  if (input.noteId !== undefined && input.noteId !== before.noteId) {
    task.note = input.noteId === null ? null : uow.em.getReference(NoteSchema, input.noteId);
  }
  await uow.em.flush();
  if (task.version !== before.version) {
    recordChange(uow, by, 'task.update', { type: 'task', id }, before, snapshot(task), TASK_FIELDS);
  }
  return taskView(task);
}

export async function deleteTask(
  uow: UnitOfWork,
  id: number,
  input: { version?: number },
  by: Actor,
): Promise<void> {
  const task = await lockedTask(uow, id, input.version);
  const before = snapshot(task);
  uow.em.remove(task);
  await uow.em.flush();
  recordChange(uow, by, 'task.delete', { type: 'task', id }, before, {}, TASK_FIELDS);
}

async function lockedTask(uow: UnitOfWork, id: number, version: number | undefined): Promise<Task> {
  const task = await uow.em.findOne(TaskSchema, id, { lockMode: LockMode.PESSIMISTIC_WRITE });
  if (!task) throw notFound('task');
  if (version !== undefined && task.version !== version) {
    throw new VersionConflictError(
      `This task was changed since you opened it (you had version ${version}, it is now at version ${task.version}). Reload it and apply your change again.`,
      taskView(task),
    );
  }
  return task;
}

async function lockLinkedNote(uow: UnitOfWork, noteId: number): Promise<void> {
  const rows = await uow.query(sql.lockNoteForLink(noteId));
  if (rows.length === 0) {
    throw new NotFoundError(`There is no note ${noteId} in your workspace to link this task to.`);
  }
}

function snapshot(t: Task) {
  return {
    title: t.title,
    status: t.status,
    dueDate: t.dueDate ?? null,
    noteId: t.note ? Number(t.note.id) : null,
    version: t.version,
  };
}
