// Reference data every tenant reads and none writes (control-plane schema
// `reference`, SELECT-only for tenant roles): the tag palette and task
// templates. Read through the tenant's own unit of work, so it needs no
// privilege beyond what the tenant role already has.
import type { UnitOfWork } from '../../tenancy/unit-of-work.ts';
import type { TaskStatus } from './validation.ts';
import * as sql from './workspace-sql.ts';

export interface ReferenceData {
  tagPalette: Array<{ name: string; color: string }>;
  taskTemplates: Array<{ id: number; title: string; status: TaskStatus; dueInDays: number | null }>;
}

export async function readReference(uow: UnitOfWork): Promise<ReferenceData> {
  const tags = await uow.query<{ name: string; color: string }>(sql.tagPalette());
  const rows = await uow.query<{
    id: string | number;
    title: string;
    status: TaskStatus;
    due_in_days: number | null;
  }>(sql.taskTemplates());
  return {
    tagPalette: tags.map((t) => ({ name: t.name, color: t.color })),
    taskTemplates: rows.map((r) => ({
      id: Number(r.id),
      title: r.title,
      status: r.status,
      dueInDays: r.due_in_days,
    })),
  };
}
