// MikroORM entities over the tenant migrations. `schema: '*'` means "the schema
// of the fork": a unit of work forks the EntityManager for its tenant's schema.
import { defineEntity, p } from '@mikro-orm/core';

export const NoteSchema = defineEntity({
  name: 'Note',
  tableName: 'notes',
  schema: '*',
  properties: {
    id: p.bigint('number').primary().autoincrement(),
    title: p.text(),
    body: p.text().default(''),
    tags: p.array().default([]),
    /** The body rendered when it was written (server/workspace/markdown.ts renderNote); NULL before migration 0003. */
    html: p.text().nullable(),
    version: p.integer().version(),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p
      .datetime()
      .onCreate(() => new Date())
      .onUpdate(() => new Date()),
  },
});

export const TaskSchema = defineEntity({
  name: 'Task',
  tableName: 'tasks',
  schema: '*',
  properties: {
    id: p.bigint('number').primary().autoincrement(),
    title: p.text(),
    status: p.enum(['open', 'doing', 'done'] as const).default('open'),
    dueDate: p.date().nullable(),
    note: () => p.manyToOne(NoteSchema).nullable().deleteRule('set null'),
    version: p.integer().version(),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p
      .datetime()
      .onCreate(() => new Date())
      .onUpdate(() => new Date()),
  },
});

export const WORKSPACE_ENTITIES = [NoteSchema, TaskSchema];
