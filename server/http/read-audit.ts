// AUDIT_READS: with the setting on, every successful read of workspace data
// (a GET on the workspace API or pages) records one `workspace.read` event:
// who, which resource (type and id, or the list's parameters), from where. It
// is written by the request's own unit of work, so it commits with the read's
// transaction like any other event. Off by default: it costs one inbox row per
// page view and makes the trail grow with traffic rather than with changes.
//
// The one place it hooks in is requireWorkspace (auth/guards.ts), through
// which every workspace route reaches tenant data; the setting reaches it as
// `res.locals.auditReads`, set by the middleware below (server/web.ts).
import type { Request, RequestHandler } from 'express';
import { eventBy } from '../../kernel/audit-inbox.ts';
import type { UnitOfWork } from '../../tenancy/unit-of-work.ts';
import type { AuditContentMode } from '../workspace/actor.ts';
import { contentDigest } from '../workspace/change-audit.ts';
import { whoOf } from './request-audit.ts';

declare global {
  namespace Express {
    interface Locals {
      /** AUDIT_READS is on. */
      auditReads?: boolean;
      /** This request's read event is written (one per request, however many units of work). */
      readAudited?: boolean;
    }
  }
}

const READS = new Set(['GET', 'HEAD']);
const MAX_PARAMS = 20;
const MAX_VALUE = 200;

export function auditReads(enabled: boolean): RequestHandler {
  return (_req, res, next) => {
    res.locals.auditReads = enabled;
    next();
  };
}

/**
 * `fn` as it should run for this request: unchanged, or (a read with
 * AUDIT_READS on) followed by a `workspace.read` event in the same unit of
 * work, unless fn recorded an event of its own (an export records itself).
 */
export function withReadAudit<T>(req: Request, fn: (uow: UnitOfWork) => Promise<T>) {
  const locals = req.res?.locals;
  if (!READS.has(req.method) || !locals?.auditReads || locals.readAudited) return fn;
  return async (uow: UnitOfWork): Promise<T> => {
    let recorded = false;
    const watched: UnitOfWork = {
      ...uow,
      audit: (event) => {
        recorded = true;
        uow.audit(event);
      },
    };
    const result = await fn(watched);
    if (!recorded) uow.audit(readEvent(req));
    locals.readAudited = true;
    return result;
  };
}

/** The event of one read: the route names the resource; its id or the list's query parameters. */
export function readEvent(req: Request): Parameters<UnitOfWork['audit']>[0] {
  const route = `${req.baseUrl}${typeof req.route?.path === 'string' ? req.route.path : req.path}`;
  const { tenantId: _, ...event } = eventBy(whoOf(req), {
    action: 'workspace.read',
    resource: resourceOf(route, req.params as Record<string, string | undefined>),
    outcome: 'success',
    details: { route, query: paramsOf(req.query, req.res?.locals.auditContent ?? 'hash') },
  });
  return event;
}

/** `/api/v1/notes/:id` → note 42; `/workspace/tasks` → task (a list); `/api/v1/search` → search. */
export function resourceOf(
  route: string,
  params: Record<string, string | undefined>,
): { type: string; id: string | null } {
  const parts = route.split('/').filter(Boolean);
  const idAt = parts.findLastIndex((p) => p.startsWith(':'));
  const named = idAt > 0 ? parts[idAt - 1] : parts.findLast((p) => !p.startsWith(':'));
  const type = singular(named ?? 'workspace');
  const id = idAt >= 0 ? (params[(parts[idAt] as string).slice(1)] ?? null) : null;
  return { type, id };
}

function singular(word: string): string {
  return word.endsWith('s') && word.length > 1 ? word.slice(0, -1) : word;
}

/** Parameters whose values are workspace content (a search's words, a tag): hashed under AUDIT_CONTENT=hash. */
const CONTENT_PARAMS = new Set(['q', 'tag']);

/**
 * The query string, bounded: at most 20 parameters, each value at most 200
 * characters; search words and tags as length and SHA-256 unless AUDIT_CONTENT=full.
 */
function paramsOf(query: unknown, content: AuditContentMode): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (typeof query !== 'object' || query === null) return out;
  for (const [key, value] of Object.entries(query).slice(0, MAX_PARAMS)) {
    const cut = (v: unknown) => String(v).slice(0, MAX_VALUE);
    const kept = Array.isArray(value) ? value.slice(0, MAX_PARAMS).map(cut) : cut(value);
    out[key.slice(0, MAX_VALUE)] = content === 'hash' && CONTENT_PARAMS.has(key) ? contentDigest(kept) : kept;
  }
  return out;
}
