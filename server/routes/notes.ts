// The first workspace endpoints (the workspace issue builds the rest on them):
// every query runs in the caller's tenant unit of work, through MikroORM.
import { Router } from 'express';
import { InvalidInputError } from '../../tenancy/errors.ts';
import { NoteSchema } from '../../tenancy/workspace-entities.ts';
import { requireWorkspace, workspaceOf } from '../auth/guards.ts';
import type { RouteDeps } from './deps.ts';

type Note = InstanceType<typeof NoteSchema.class>;

export function noteView(n: Note) {
  return {
    id: n.id,
    title: n.title,
    body: n.body,
    tags: n.tags,
    version: n.version,
    createdAt: n.createdAt,
    updatedAt: n.updatedAt,
  };
}

export function noteRoutes(deps: RouteDeps): Router {
  const router = Router();
  router.use('/api/v1/notes', requireWorkspace(deps.tenants));

  router.get('/api/v1/notes', async (req, res) => {
    const notes = await workspaceOf(req)((uow) =>
      uow.em.find(
        NoteSchema,
        {},
        // Read-only: untracked entities cost no change-set work at commit.
        { orderBy: { updatedAt: 'desc', id: 'desc' }, limit: 50, disableIdentityMap: true },
      ),
    );
    res.json({ notes: notes.map(noteView) });
  });

  router.post('/api/v1/notes', async (req, res) => {
    const { title, body } = (req.body ?? {}) as { title?: unknown; body?: unknown };
    if (typeof title !== 'string' || title.trim() === '' || title.length > 500) {
      throw new InvalidInputError('a title of 1 to 500 characters is required');
    }
    if (body !== undefined && (typeof body !== 'string' || body.length > 100_000)) {
      throw new InvalidInputError('the body must be text of at most 100,000 characters');
    }
    const note = await workspaceOf(req)(async (uow) => {
      const n = uow.em.create(NoteSchema, { title: title.trim(), body: body ?? '', tags: [] });
      await uow.em.flush();
      return n;
    });
    res.status(201).json({ note: noteView(note) });
  });

  return router;
}
