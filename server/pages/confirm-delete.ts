// "Delete this …?" for notes and tasks: the confirmation page, and the form
// post that deletes with the version the page was showing. A stale version
// shows the page again (409) with the item as it is now, so nothing is deleted
// that the person has not seen.
import type { Request, Response } from 'express';
import type { UnitOfWork } from '../../tenancy/unit-of-work.ts';
import { VersionConflictError } from '../app-errors.ts';
import { workspaceOf } from '../auth/guards.ts';
import { flash } from '../http/render.ts';
import { type Actor, actorOf } from '../workspace/actor.ts';
import { parseId } from '../workspace/validation.ts';
import { loadShared, renderWorkspace, type Shared } from './workspace-page-context.ts';
import { versionFrom } from './workspace-view.ts';

interface Deletable {
  id: number;
  title: string;
  version: number;
}

/** What differs between deleting a note and a task. */
export interface DeleteSpec<T extends Deletable> {
  kind: 'note' | 'task';
  section: 'notes' | 'tasks';
  /** What else happens, in a sentence ('' for nothing). */
  consequence: string;
  /** Where "Cancel" goes for this item. */
  cancel: (id: number) => string;
  /** Where a done delete goes. */
  done: string;
  get: (uow: UnitOfWork, id: number) => Promise<T>;
  remove: (uow: UnitOfWork, id: number, input: { version?: number }, by: Actor) => Promise<void>;
}

/** The GET (confirmation page) and POST (delete) handlers for one kind of item. */
export function deleteHandlers<T extends Deletable>(spec: DeleteSpec<T>) {
  const Kind = spec.kind === 'note' ? 'Note' : 'Task';

  function show(res: Response, shared: Shared, item: T, error?: string, status = 200) {
    renderWorkspace(
      res,
      shared,
      'confirm-delete',
      {
        title: `Delete ${spec.kind}`,
        section: spec.section,
        heading: `Delete this ${spec.kind}?`,
        name: item.title,
        consequence: spec.consequence,
        action: `/workspace/${spec.section}/${item.id}/delete`,
        version: item.version,
        confirmLabel: `Delete ${spec.kind}`,
        cancel: spec.cancel(item.id),
        error,
      },
      status,
    );
  }

  async function confirm(req: Request, res: Response): Promise<void> {
    const id = parseId(req.params.id, spec.kind);
    const { shared, item } = await workspaceOf(req)(async (uow) => ({
      item: await spec.get(uow, id),
      shared: await loadShared(uow),
    }));
    show(res, shared, item);
  }

  async function remove(req: Request, res: Response): Promise<void> {
    const id = parseId(req.params.id, spec.kind);
    const version = versionFrom(req);
    const by = actorOf(req, res);
    try {
      await workspaceOf(req)((uow) => spec.remove(uow, id, { version }, by));
    } catch (err) {
      if (!(err instanceof VersionConflictError)) throw err;
      const current = err.current as T;
      const shared = await workspaceOf(req)(loadShared);
      const message = `This ${spec.kind} was changed after you opened this page (it is now at version ${current.version}). Look at the current version before you delete it.`;
      return show(res, shared, current, message, 409);
    }
    flash(req, 'success', `${Kind} deleted.`);
    res.redirect(303, spec.done);
  }

  return { confirm, remove };
}
