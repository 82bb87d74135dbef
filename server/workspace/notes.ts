// Notes: the workspace service, shared by the JSON API and the pages.
//
// Exported (each takes the request's UnitOfWork; input already parsed with the
// schemas of validation.ts; writers also take the Actor from actorOf(req, res)):
//   listNotes(uow, NoteListQuery)            -> { notes: NoteSummary[], nextCursor: string | null }
//   searchNotes(uow, SearchQuery)            -> { results: SearchHit[], nextCursor: string | null }
//   getNote(uow, id)                         -> NoteView            (NotFoundError)
//   createNote(uow, NoteCreate, actor)       -> NoteView
//   updateNote(uow, id, NoteUpdate, actor)   -> NoteView (new version)  (NotFoundError, VersionConflictError)
//   deleteNote(uow, id, { version? }, actor) -> void                (NotFoundError, VersionConflictError)
// Ids come from parseId(raw, 'note') (validation.ts): malformed ids are 404s.
// Views and their types are in views.ts; tasks in tasks.ts; reference data in
// reference.ts.
//
// A note's HTML is rendered once, when its body is written (markdown.ts
// renderNote, at a bounded cost), and stored with it: reading a note never
// runs the Markdown renderer.
//
// Edits never overwrite silently: the row is locked (SELECT ... FOR UPDATE),
// its version compared with the one the edit was based on, and a stale edit
// refused with VersionConflictError carrying the current note. Every change
// is audited in the same transaction (change-audit.ts); a refused one leaves nothing.
import { LockMode } from '@mikro-orm/core';
import type { UnitOfWork } from '../../tenancy/unit-of-work.ts';
import { NoteSchema } from '../../tenancy/workspace-entities.ts';
import { VersionConflictError } from '../app-errors.ts';
import type { Actor } from './actor.ts';
import { recordChange } from './change-audit.ts';
import { renderNote } from './markdown.ts';
import { type Cursor, decodeCursor, type KeysetSort, page } from './pagination.ts';
import type { NoteCreate, NoteListQuery, NoteSort, NoteUpdate, SearchQuery } from './validation.ts';
import { notFound } from './validation.ts';
import {
  type Note,
  type NoteSummary,
  type NoteView,
  noteSummary,
  noteView,
  type SearchHit,
  searchHit,
} from './views.ts';
import * as sql from './workspace-sql.ts';

export const NOTE_FIELDS = ['title', 'body', 'tags'] as const;

export const NOTE_SORT_SPECS: Record<NoteSort, KeysetSort> = {
  updated_desc: { name: 'updated_desc', column: 'updated_at', type: 'timestamp', direction: 'desc' },
  updated_asc: { name: 'updated_asc', column: 'updated_at', type: 'timestamp', direction: 'asc' },
  created_desc: { name: 'created_desc', column: 'created_at', type: 'timestamp', direction: 'desc' },
  created_asc: { name: 'created_asc', column: 'created_at', type: 'timestamp', direction: 'asc' },
  title_asc: { name: 'title_asc', column: 'title', type: 'text', direction: 'asc' },
  title_desc: { name: 'title_desc', column: 'title', type: 'text', direction: 'desc' },
};

const RANK_SORT: KeysetSort = { name: 'rank', column: 'rank', type: 'number', direction: 'desc' };

export async function listNotes(
  uow: UnitOfWork,
  query: NoteListQuery,
): Promise<{ notes: NoteSummary[]; nextCursor: string | null }> {
  const sort = NOTE_SORT_SPECS[query.sort];
  const cursor = query.cursor === undefined ? undefined : decodeCursor(query.cursor, sort);
  const rows = await uow.query<sql.NoteSummaryRow>(
    sql.listNotes({ sort, cursor, tag: query.tag, limit: query.limit + 1 }),
  );
  const shown = page(
    rows.map((r) => ({ ...r, id: Number(r.id), sortKey: r.sort_key })),
    query.limit,
    sort,
  );
  return { notes: shown.rows.map(noteSummary), nextCursor: shown.nextCursor };
}

/**
 * A page of search results. Only the `candidates` most recently edited matches are ranked
 * (workspace-sql.ts searchNotes); `cutShort` says that there were more, which were not
 * looked at. The candidate set is the same on every page while nothing is edited, so the
 * cursor pages through one ranking.
 */
export async function searchNotes(
  uow: UnitOfWork,
  query: SearchQuery,
  candidates: number = sql.SEARCH_CANDIDATES,
): Promise<{ results: SearchHit[]; nextCursor: string | null; cutShort: boolean }> {
  const cursor = searchCursorOf(query);
  const rows = await uow.query<sql.SearchStatementRow>(
    sql.searchNotes({ q: query.q, sort: RANK_SORT, cursor, limit: query.limit + 1, candidates }),
  );
  const cutShort = rows[0]?.cut_short === true;
  const hits = rows.filter((r): r is sql.SearchRow & { cut_short: boolean } => r.id !== null);
  const shown = page(
    hits.map((r) => ({ ...r, id: Number(r.id), sortKey: r.sort_key })),
    query.limit,
    RANK_SORT,
  );
  return { results: shown.rows.map(searchHit), nextCursor: shown.nextCursor, cutShort };
}

/**
 * The search's cursor, decoded and checked against the rank order (InvalidInputError, 400).
 * The routes call it before the workspace's search rate: a bad cursor is no search.
 */
export function searchCursorOf(query: SearchQuery): Cursor | undefined {
  return query.cursor === undefined ? undefined : decodeCursor(query.cursor, RANK_SORT);
}

/** A note as stored: its HTML was rendered when it was written (never here, but once for a note older than that). */
export async function getNote(uow: UnitOfWork, id: number): Promise<NoteView> {
  const note = await uow.em.findOne(NoteSchema, id, { disableIdentityMap: true });
  if (!note) throw notFound('note');
  if (note.html === null || note.html === undefined) note.html = await storeMissingHtml(uow, note);
  return noteView(note);
}

/**
 * A note written before HTML was stored (migration 0003 cannot render
 * Markdown in SQL) is rendered on its first read and the HTML kept. This is
 * not a change of the note: its version and updated_at stay, and an edit that
 * committed meanwhile (another version) is left alone.
 */
async function storeMissingHtml(uow: UnitOfWork, note: Note): Promise<string> {
  const { html } = renderNote(note.body);
  await uow.query(sql.storeMissingHtml(Number(note.id), note.version, html));
  return html;
}

export async function createNote(uow: UnitOfWork, input: NoteCreate, by: Actor): Promise<NoteView> {
  const note = uow.em.create(NoteSchema, {
    title: input.title,
    body: input.body,
    tags: input.tags,
    html: renderNote(input.body).html,
  });
  await uow.em.flush();
  const view = noteView(note);
  recordChange(uow, by, 'note.create', { type: 'note', id: view.id }, {}, snapshot(note), NOTE_FIELDS);
  return view;
}

export async function updateNote(
  uow: UnitOfWork,
  id: number,
  input: NoteUpdate,
  by: Actor,
): Promise<NoteView> {
  // Rendered before the row is locked: a long body must not hold the lock while it renders.
  const html = input.body === undefined ? undefined : renderNote(input.body).html;
  const note = await lockedNote(uow, id, input.version);
  const before = snapshot(note);
  if (input.title !== undefined) note.title = input.title;
  if (input.body !== undefined && html !== undefined && input.body !== note.body) {
    note.body = input.body;
    note.html = html;
  }
  if (input.tags !== undefined) note.tags = input.tags;
  // MikroORM writes only changed columns, bumps `version` and `updatedAt`, and
  // checks the version in its UPDATE's WHERE as well. An edit that changes
  // nothing writes nothing and keeps its version: there is nothing to audit.
  await uow.em.flush();
  if (note.version !== before.version) {
    recordChange(uow, by, 'note.update', { type: 'note', id }, before, snapshot(note), NOTE_FIELDS);
  }
  return noteView(note);
}

export async function deleteNote(
  uow: UnitOfWork,
  id: number,
  input: { version?: number },
  by: Actor,
): Promise<void> {
  const note = await lockedNote(uow, id, input.version);
  const before = snapshot(note);
  // Tasks linked to the note lose the link: each is a change of its own (new
  // version, its own audit event), not a side effect nobody hears of.
  const unlinked = await uow.query<{ id: string | number; version: number }>(sql.unlinkTasksOfNote(id));
  uow.em.remove(note);
  await uow.em.flush();
  recordChange(uow, by, 'note.delete', { type: 'note', id }, before, {}, NOTE_FIELDS, {
    unlinkedTasks: unlinked.map((t) => Number(t.id)),
  });
  for (const task of unlinked) {
    recordChange(
      uow,
      by,
      'task.update',
      { type: 'task', id: Number(task.id) },
      { noteId: id },
      { noteId: null },
      ['noteId'],
      { reason: 'note.delete' },
    );
  }
}

/** The note, locked for this transaction; 404 if absent, 409 if `version` is given and stale. */
async function lockedNote(uow: UnitOfWork, id: number, version: number | undefined): Promise<Note> {
  const note = await uow.em.findOne(NoteSchema, id, { lockMode: LockMode.PESSIMISTIC_WRITE });
  if (!note) throw notFound('note');
  if (version !== undefined && note.version !== version) {
    throw new VersionConflictError(
      `This note was changed since you opened it (you had version ${version}, it is now at version ${note.version}). Reload it, or keep a copy of your text and apply your change again.`,
      noteView(note),
    );
  }
  return note;
}

function snapshot(n: Note) {
  return { title: n.title, body: n.body, tags: [...n.tags], version: n.version };
}
