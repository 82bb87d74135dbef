// The note pages: list (tag filter, order, keyset "More notes"), view
// (Markdown rendered safely by the service), editor (new, edit, delete).
//
// No silent overwrites: the editor carries the version it was based on; a
// stale save comes back as the conflict page (the person's text kept in the
// form, the saved text beside it) offering "Save mine as a copy", "Overwrite
// the saved version with mine" and a "Reload the saved version" link. A save
// to a note deleted meanwhile keeps the text too, and offers to save it as a
// new note. Every refused form shows what was typed.
import { type Request, type Response, Router } from 'express';
import { NotFoundError, VersionConflictError } from '../app-errors.ts';
import { workspaceOf } from '../auth/guards.ts';
import { flash } from '../http/render.ts';
import { actorOf } from '../workspace/actor.ts';
import { createNote, deleteNote, getNote, listNotes, updateNote } from '../workspace/notes.ts';
import {
  LIMITS,
  NOTE_SORTS,
  NoteCreate,
  NoteListQuery,
  type NoteSort,
  NoteUpdate,
  parse,
  parseId,
} from '../workspace/validation.ts';
import type { NoteSummary, NoteView } from '../workspace/views.ts';
import { deleteHandlers } from './confirm-delete.ts';
import { field } from './page-forms.ts';
import { formMessage, loadShared, renderWorkspace, type Shared } from './workspace-page-context.ts';
import {
  chipsOf,
  type NoteFormValues,
  noteFormFrom,
  noteFormOf,
  plainPreview,
  tagsOf,
  timeOf,
  versionFrom,
} from './workspace-view.ts';

export const NOTES_PER_PAGE = 20;

const SORT_LABELS: Record<NoteSort, string> = {
  updated_desc: 'Recently updated',
  updated_asc: 'Least recently updated',
  created_desc: 'Newest first',
  created_asc: 'Oldest first',
  title_asc: 'Title A–Z',
  title_desc: 'Title Z–A',
};
const SORTS = NOTE_SORTS.map((value) => ({ value, label: SORT_LABELS[value] }));

const FORM_LIMITS = { title: LIMITS.title, body: LIMITS.body };
const COPY_SUFFIX = ' (copy)';

/** A note as a list shows it. */
export function noteItem(n: NoteSummary, palette: ReadonlySet<string>) {
  const updated = timeOf(n.updatedAt);
  return {
    id: n.id,
    title: n.title,
    excerpt: plainPreview(n.excerpt),
    tags: chipsOf(n.tags, palette),
    updatedIso: updated.iso,
    updatedLabel: updated.label,
  };
}

function notePage(n: NoteView, palette: ReadonlySet<string>) {
  const updated = timeOf(n.updatedAt);
  return {
    id: n.id,
    title: n.title,
    body: n.body,
    html: n.body.trim() ? n.html : '',
    tags: chipsOf(n.tags, palette),
    version: n.version,
    updatedIso: updated.iso,
    updatedLabel: updated.label,
  };
}

function queryText(req: Request, name: string): string {
  const value = req.query[name];
  return typeof value === 'string' ? value : '';
}

/** The copy keeps the person's title, marked, within the title limit. */
function copyTitle(title: string): string {
  const trimmed = title.trim();
  if (!trimmed) return trimmed;
  return `${trimmed.slice(0, LIMITS.title - COPY_SUFFIX.length)}${COPY_SUFFIX}`;
}

export function notePages(): Router {
  const router = Router();
  // --- List -------------------------------------------------------------
  router.get('/workspace/notes', showNoteList);
  // --- New --------------------------------------------------------------
  router.get('/workspace/notes/new', showNewNoteForm);
  router.post('/workspace/notes', createNoteFromForm);
  // --- View -------------------------------------------------------------
  router.get('/workspace/notes/:id', showNote);
  // --- Edit -------------------------------------------------------------
  router.get('/workspace/notes/:id/edit', showEditNoteForm);
  router.post('/workspace/notes/:id', saveNoteFromForm);
  router.get('/workspace/notes/:id/delete', noteDelete.confirm);
  router.post('/workspace/notes/:id/delete', noteDelete.remove);

  return router;
}

function showEditor(
  res: Response,
  shared: Shared,
  data: {
    heading: string;
    action: string;
    values: NoteFormValues;
    version?: number;
    noteId?: number;
    submitLabel?: string;
    cancel?: string;
    error?: string;
    conflict?: ReturnType<typeof notePage> & { updatedLabel: string };
  },
  status = 200,
) {
  renderWorkspace(
    res,
    shared,
    'note-form',
    {
      title: data.heading,
      limits: FORM_LIMITS,
      submitLabel: 'Save',
      cancel: '/workspace/notes',
      // Two texts side by side need the room.
      wide: data.conflict !== undefined,
      ...data,
    },
    status,
  );
}

async function showNoteList(req: Request, res: Response): Promise<void> {
  const tagText = queryText(req, 'tag').trim();
  const sortText = queryText(req, 'sort');
  const input: Record<string, string> = { limit: String(NOTES_PER_PAGE) };
  if (tagText) input.tag = tagText;
  if (sortText) input.sort = sortText;
  const cursor = queryText(req, 'cursor');
  if (cursor) input.cursor = cursor;

  let query: NoteListQuery | undefined;
  let error: string | undefined;
  try {
    query = parse(NoteListQuery, input, 'query');
  } catch (err) {
    error = formMessage(res, err).message;
  }
  const q = query;
  const { shared, list } = await workspaceOf(req)(async (uow) => ({
    shared: await loadShared(uow),
    list: q ? await listNotes(uow, q) : { notes: [], nextCursor: null },
  }));
  const sort = q?.sort ?? 'updated_desc';
  const hrefFor = (tag: string | null, next?: string) => {
    const params = new URLSearchParams();
    if (tag) params.set('tag', tag);
    if (sort !== 'updated_desc') params.set('sort', sort);
    if (next) params.set('cursor', next);
    const search = params.toString();
    return search ? `/workspace/notes?${search}` : '/workspace/notes';
  };
  const tag = q?.tag ? chipsOf([q.tag], shared.paletteNames)[0] : undefined;
  renderWorkspace(
    res,
    shared,
    'notes',
    {
      title: tag ? `Notes tagged ${tag.name}` : 'Notes',
      notes: list.notes.map((n) => noteItem(n, shared.paletteNames)),
      tag,
      tagText: q?.tag ?? tagText,
      sort,
      sorts: SORTS,
      after: Boolean(q?.cursor),
      next: list.nextCursor ? hrefFor(q?.tag ?? null, list.nextCursor) : null,
      hrefFor,
      error,
    },
    error ? 400 : 200,
  );
}

async function showNewNoteForm(req: Request, res: Response): Promise<void> {
  const shared = await workspaceOf(req)(loadShared);
  const values: NoteFormValues = { title: '', body: '', tags: [], otherTags: '' };
  showEditor(res, shared, {
    heading: 'New note',
    action: '/workspace/notes',
    values,
    submitLabel: 'Create note',
  });
}

async function createNoteFromForm(req: Request, res: Response): Promise<void> {
  const values = noteFormFrom(req);
  // "Save mine as a copy" on the conflict page is this form's submit button with saveAs=copy.
  const copy = field(req, 'saveAs') === 'copy';
  const by = actorOf(req, res);
  let note: NoteView;
  try {
    const title = copy ? copyTitle(values.title) : values.title;
    const input = parse(NoteCreate, { title, body: values.body, tags: tagsOf(values) }, 'note');
    note = await workspaceOf(req)((uow) => createNote(uow, input, by));
  } catch (err) {
    const problem = formMessage(res, err);
    const shared = await workspaceOf(req)(loadShared);
    const data = { heading: 'New note', action: '/workspace/notes', values, submitLabel: 'Create note' };
    return showEditor(res, shared, { ...data, error: problem.message }, problem.status);
  }
  flash(
    req,
    'success',
    copy ? 'Your text is saved as a new note. The other version is unchanged.' : 'Note created.',
  );
  res.redirect(303, `/workspace/notes/${note.id}`);
}

async function showNote(req: Request, res: Response): Promise<void> {
  const id = parseId(req.params.id, 'note');
  const { shared, note } = await workspaceOf(req)(async (uow) => ({
    note: await getNote(uow, id),
    shared: await loadShared(uow),
  }));
  renderWorkspace(res, shared, 'note', { title: note.title, note: notePage(note, shared.paletteNames) });
}

async function showEditNoteForm(req: Request, res: Response): Promise<void> {
  const id = parseId(req.params.id, 'note');
  const { shared, note } = await workspaceOf(req)(async (uow) => ({
    note: await getNote(uow, id),
    shared: await loadShared(uow),
  }));
  showEditor(res, shared, {
    heading: 'Edit note',
    action: `/workspace/notes/${id}`,
    values: noteFormOf(note, shared.paletteNames),
    version: note.version,
    noteId: id,
    cancel: `/workspace/notes/${id}`,
  });
}

async function saveNoteFromForm(req: Request, res: Response): Promise<void> {
  const id = parseId(req.params.id, 'note');
  const values = noteFormFrom(req);
  const version = versionFrom(req);
  const by = actorOf(req, res);
  try {
    const input = parse(
      NoteUpdate,
      { version, title: values.title, body: values.body, tags: tagsOf(values) },
      'note',
    );
    await workspaceOf(req)((uow) => updateNote(uow, id, input, by));
  } catch (err) {
    return showFailedNoteSave(req, res, { id, values, version }, err);
  }
  flash(req, 'success', 'Note saved.');
  res.redirect(303, `/workspace/notes/${id}`);
}

/** The editor again after a refused save: beside the newer version, as a new note if deleted, or with the message. */
async function showFailedNoteSave(
  req: Request,
  res: Response,
  edit: { id: number; values: NoteFormValues; version: number },
  err: unknown,
): Promise<void> {
  const { id, values, version } = edit;
  const problem = formMessage(res, err); // rethrows what is not the person's to fix
  const shared = await workspaceOf(req)(loadShared);
  const base = { heading: 'Edit note', action: `/workspace/notes/${id}`, values, noteId: id };
  if (err instanceof VersionConflictError) {
    const current = err.current as NoteView;
    const conflict = notePage(current, shared.paletteNames);
    // The form now carries the current version: "Overwrite" means over what the person was shown.
    return showEditor(
      res,
      shared,
      {
        ...base,
        heading: 'Your edit conflicts with a newer version',
        version: current.version,
        conflict,
      },
      409,
    );
  }
  if (err instanceof NotFoundError) {
    // Deleted meanwhile (or never here): the text is still worth keeping, as a new note.
    return showEditor(
      res,
      shared,
      {
        heading: 'This note no longer exists',
        action: '/workspace/notes',
        values,
        submitLabel: 'Save as a new note',
        error:
          'This note was deleted (perhaps in another window) before your changes were saved. Your text is below: save it as a new note to keep it.',
      },
      404,
    );
  }
  return showEditor(
    res,
    shared,
    { ...base, version, cancel: `/workspace/notes/${id}`, error: problem.message },
    problem.status,
  );
}

// --- Delete -----------------------------------------------------------
const noteDelete = deleteHandlers({
  kind: 'note',
  section: 'notes',
  consequence: 'Tasks linked to it stay, without the link.',
  cancel: (id) => `/workspace/notes/${id}`,
  done: '/workspace/notes',
  get: getNote,
  remove: deleteNote,
});
