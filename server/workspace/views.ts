// The plain shapes the workspace hands out (API JSON and page templates alike):
// numbers for ids, ISO strings for times, no entity objects, never the
// `search` tsvector.
import type { NoteSchema, TaskSchema } from '../../tenancy/workspace-entities.ts';
import { excerpt, renderNote } from './markdown.ts';
import type { TaskStatus } from './validation.ts';
import { MARK_END, MARK_START, type NoteSummaryRow, type SearchRow, type TaskRow } from './workspace-sql.ts';

export type Note = InstanceType<typeof NoteSchema.class>;
export type Task = InstanceType<typeof TaskSchema.class>;

export interface NoteView {
  id: number;
  title: string;
  /** The Markdown as typed. */
  body: string;
  /** The body rendered to safe HTML when it was written (markdown.ts renderNote): insert it unescaped. */
  html: string;
  tags: string[];
  version: number;
  createdAt: string;
  updatedAt: string;
}

/** A note in a list: an excerpt of the body instead of the whole of it. */
export interface NoteSummary {
  id: number;
  title: string;
  excerpt: string;
  tags: string[];
  version: number;
  createdAt: string;
  updatedAt: string;
}

export interface TaskView {
  id: number;
  title: string;
  status: TaskStatus;
  /** `YYYY-MM-DD` or null. */
  dueDate: string | null;
  noteId: number | null;
  version: number;
  createdAt: string;
  updatedAt: string;
}

/** A search result; the snippet is segments of plain text, `hit` marking the matched words. */
export interface SearchHit {
  id: number;
  title: string;
  tags: string[];
  version: number;
  updatedAt: string;
  rank: number;
  snippet: Array<{ text: string; hit: boolean }>;
}

const isoOf = (d: Date | string) => (d instanceof Date ? d.toISOString() : new Date(d).toISOString());

/**
 * The stored HTML, never rendered here; a note written before migration 0003
 * has none until its first read stores it (notes.ts getNote), and is rendered
 * on the spot only when shown before that (e.g. as the current version in a
 * conflict).
 */
export function noteView(n: Note): NoteView {
  return {
    id: Number(n.id),
    title: n.title,
    body: n.body,
    html: n.html ?? renderNote(n.body).html,
    tags: [...n.tags],
    version: n.version,
    createdAt: isoOf(n.createdAt),
    updatedAt: isoOf(n.updatedAt),
  };
}

export function noteSummary(r: NoteSummaryRow): NoteSummary {
  return {
    id: Number(r.id),
    title: r.title,
    excerpt: excerpt(r.excerpt_source),
    tags: r.tags,
    version: r.version,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export function taskView(t: Task): TaskView {
  return {
    id: Number(t.id),
    title: t.title,
    status: t.status as TaskStatus,
    dueDate: t.dueDate ?? null,
    noteId: t.note ? Number(t.note.id) : null,
    version: t.version,
    createdAt: isoOf(t.createdAt),
    updatedAt: isoOf(t.updatedAt),
  };
}

export function taskRowView(r: TaskRow): TaskView {
  return {
    id: Number(r.id),
    title: r.title,
    status: r.status,
    dueDate: r.due_date,
    noteId: r.note_id === null ? null : Number(r.note_id),
    version: r.version,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export function searchHit(r: SearchRow): SearchHit {
  return {
    id: Number(r.id),
    title: r.title,
    tags: r.tags,
    version: r.version,
    updatedAt: r.updated_at,
    rank: Number(r.rank),
    snippet: snippetSegments(r.snippet),
  };
}

/** Splits ts_headline's output on the private-use marks into plain-text segments. */
export function snippetSegments(marked: string): Array<{ text: string; hit: boolean }> {
  const out: Array<{ text: string; hit: boolean }> = [];
  const flat = marked.replace(/\s+/g, ' ');
  let hit = false;
  let text = '';
  for (const ch of flat) {
    if (ch === MARK_START || ch === MARK_END) {
      if (text) out.push({ text, hit });
      text = '';
      hit = ch === MARK_START;
    } else {
      text += ch;
    }
  }
  if (text) out.push({ text, hit });
  return out;
}
