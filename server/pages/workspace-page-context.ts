// What every workspace page needs besides its own content: the guard that lets
// only the owner's browser session in, the shared reference data (tag palette,
// task templates) read in the page's own unit of work, the palette stylesheet's
// URL, and how a failed form is explained in words a person can act on.
import { createHash } from 'node:crypto';
import type { Response } from 'express';
import type { UnitOfWork } from '../../tenancy/unit-of-work.ts';
import { ValidationError } from '../app-errors.ts';
import { type HttpProblem, problemFor } from '../http/http-errors.ts';
import { render, sentence } from '../http/render.ts';
import { readReference } from '../workspace/reference.ts';
import { formProblem } from './page-forms.ts';
import {
  addDays,
  chipsOf,
  type PaletteColor,
  paletteCss,
  type TagChip,
  type TaskStatus,
  todayIso,
} from './workspace-view.ts';

export const PALETTE_CSS_PATH = '/workspace/palette.css';

export interface TemplateButton {
  id: number;
  title: string;
  status: TaskStatus;
  dueInDays: number | null;
  dueLabel: string;
}

/** The reference data as the pages use it. */
export interface Shared {
  paletteNames: ReadonlySet<string>;
  paletteChips: TagChip[];
  templates: TemplateButton[];
  stylesheet: string;
}

export async function loadShared(uow: UnitOfWork): Promise<Shared> {
  const ref = await readReference(uow);
  const paletteNames = new Set(ref.tagPalette.map((p) => p.name));
  return {
    paletteNames,
    paletteChips: chipsOf(
      ref.tagPalette.map((p) => p.name),
      paletteNames,
    ),
    templates: ref.taskTemplates.map((t) => ({ ...t, dueLabel: dueInWords(t.dueInDays) })),
    // The content hash in the URL: a changed palette is a new URL, so the stylesheet can be cached.
    stylesheet: `${PALETTE_CSS_PATH}?v=${paletteHash(ref.tagPalette)}`,
  };
}

function dueInWords(days: number | null): string {
  if (days === null) return '';
  if (days === 0) return 'due today';
  return days === 1 ? 'due tomorrow' : `due in ${days} days`;
}

/** The due date a template gives a task made today. */
export function templateDueDate(t: { dueInDays: number | null }, today = todayIso()): string | null {
  return t.dueInDays === null ? null : addDays(today, t.dueInDays);
}

export function paletteHash(palette: readonly PaletteColor[]): string {
  return createHash('sha256').update(paletteCss(palette)).digest('hex').slice(0, 16);
}

/** A workspace page: the palette stylesheet linked, the wider layout where asked. */
export function renderWorkspace(
  res: Response,
  shared: Shared,
  template: string,
  data: Record<string, unknown>,
  status = 200,
): void {
  render(
    res,
    `workspace/${template}`,
    { ...data, stylesheets: [shared.stylesheet], palette: shared.paletteChips },
    status,
  );
}

const FIELD_LABELS: Record<string, string> = {
  title: 'Title',
  body: 'Text',
  tags: 'Tags',
  status: 'Status',
  dueDate: 'Due date',
  noteId: 'Note',
  version: 'Version',
  q: 'Search',
  tag: 'Tag',
  cursor: 'Page',
};

/**
 * The message for a form that was refused: the field's name and what is wrong
 * with it ("Title: a title is required."), rather than the API's "Invalid
 * note: title: ...". Internal errors are rethrown (formProblem).
 */
export function formMessage(res: Response, err: unknown): HttpProblem {
  const problem = formProblem(res, err);
  if (!(err instanceof ValidationError) || err.issues.length === 0) return problem;
  const seen = new Set<string>();
  const parts: string[] = [];
  for (const issue of err.issues) {
    const label = FIELD_LABELS[issue.path.split('.')[0] ?? ''] ?? '';
    const text = sentence(label ? `${label}: ${issue.message}` : issue.message);
    if (!seen.has(text)) parts.push(text);
    seen.add(text);
    if (parts.length === 3) break;
  }
  return { ...problemFor(err), message: parts.join(' ') };
}
