// The admin console's People pages: /admin/users (find people by email,
// tenant, role, state; keyset pages in email order) and /admin/users/:id (the
// person: role, tenant, state, two-step sign-in, recent sign-ins and refused
// attempts, and the actions). They call the same service as the JSON API
// (server/admin/people.ts). Admins only (adminPageGuard). The destructive
// forms (deactivate, end sessions, reset two-step sign-in, change the role)
// say what will happen, need the person's email typed in `confirm`, and a
// recent password check (requireRecentAuth sends the admin to /admin/reauth
// first). A refused form comes back with its message and the status the API
// would answer; success is post/redirect/get with a flash message.
import { type Request, type Response, Router } from 'express';
import { z } from 'zod';
import { InvalidInputError } from '../../kernel/errors.ts';
import {
  type AdminActor,
  changeRoleOfPerson,
  deactivatePerson,
  endSessionsOfPerson,
  findPerson,
  type PeopleQuery,
  type PersonView,
  personDetail,
  REASON_MAX,
  reactivatePerson,
  resetMfaOfPerson,
  searchPeople,
} from '../admin/people.ts';
import { adminPageGuard } from '../auth/guards.ts';
import { requireRecentAuth } from '../auth/recent-auth.ts';
import { assetUrl, displayTime, flash, render } from '../http/render.ts';
import { whoOf } from '../http/request-audit.ts';
import type { RouteDeps } from '../http/route-deps.ts';
import { parse } from '../workspace/validation.ts';
import { field, formProblem } from './page-forms.ts';

const LIST = '/admin/users';
const PERSON = '/admin/users/:id';

// The search form's fields, all text ('' from an empty field or "Any").
const SearchQuery = z.strictObject({
  q: z.string().max(254).optional(),
  match: z.enum(['', 'contains', 'prefix']).optional(),
  tenant: z.string().max(64).optional(),
  role: z.enum(['', 'user', 'auditor', 'admin']).optional(),
  state: z.enum(['', 'active', 'deactivated']).optional(),
  cursor: z.string().max(800).optional(),
});
const NoQuery = z.strictObject({});

type Action = 'deactivate' | 'reactivate' | 'end-sessions' | 'reset-mfa' | 'role';

export function adminUsersPages(deps: RouteDeps): Router {
  const recent = requireRecentAuth(deps.config.ADMIN_REAUTH_MINUTES);
  const admin = adminPageGuard;
  return Router()
    .get(LIST, admin, (req, res) => showPeople(deps, req, res))
    .get(PERSON, admin, (req, res) => showPerson(deps, req, res))
    .post(`${PERSON}/deactivate`, admin, recent, (req, res) => act(deps, 'deactivate', req, res))
    .post(`${PERSON}/reactivate`, admin, (req, res) => act(deps, 'reactivate', req, res))
    .post(`${PERSON}/end-sessions`, admin, recent, (req, res) => act(deps, 'end-sessions', req, res))
    .post(`${PERSON}/reset-mfa`, admin, recent, (req, res) => act(deps, 'reset-mfa', req, res))
    .post(`${PERSON}/role`, admin, recent, (req, res) => act(deps, 'role', req, res));
}

/** The admin nav and stylesheet, once the console's shared files exist (views/partials/admin-nav.eta, admin.css). */
function chrome() {
  return { stylesheets: [assetUrl('admin.css')], wide: true };
}

const pageOf = (id: string) => `/admin/users/${id}`;

const ROLE_LABEL: Record<string, string> = {
  user: 'User (workspace owner)',
  auditor: 'Auditor',
  admin: 'Admin',
};

// --- the list ---------------------------------------------------------------------

async function showPeople(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  const raw = req.query as Record<string, unknown>;
  const values = {
    q: text(raw.q),
    match: text(raw.match) || 'contains',
    tenant: text(raw.tenant),
    role: text(raw.role),
    state: text(raw.state),
  };
  const common = {
    title: 'People',
    ...chrome(),
    values,
    roleLabel: ROLE_LABEL,
    displayTime,
  };
  try {
    const query = parse(SearchQuery, raw, 'query');
    const filter: PeopleQuery = {
      q: query.q || undefined,
      match: query.match || undefined,
      tenant: query.tenant || undefined,
      role: query.role || undefined,
      state: query.state || undefined,
      cursor: query.cursor || undefined,
    };
    const page = await searchPeople(deps.pool, filter);
    const params: Record<string, string> = {};
    for (const [k, v] of Object.entries(values)) if (v && !(k === 'match' && v === 'contains')) params[k] = v;
    render(res, 'admin/users', {
      ...common,
      people: page.people,
      paged: Boolean(filter.cursor),
      first: `${LIST}?${new URLSearchParams(params)}`,
      next: page.nextCursor ? `${LIST}?${new URLSearchParams({ ...params, cursor: page.nextCursor })}` : null,
      error: null,
    });
  } catch (err) {
    const problem = formProblem(res, err);
    render(
      res,
      'admin/users',
      { ...common, people: [], paged: false, first: LIST, next: null, error: problem.message },
      problem.status,
    );
  }
}

/** A query value as the form shows it again: text only. */
function text(value: unknown): string {
  return typeof value === 'string' ? value.slice(0, 254) : '';
}

// --- one person -------------------------------------------------------------------

async function showPerson(deps: RouteDeps, req: Request, res: Response): Promise<void> {
  parse(NoQuery, req.query, 'query');
  await renderPerson(deps, req, res, String(req.params.id), null, 200);
}

/** What the forms of the person's page need, then the page (`problem`: a refused form and what was typed). */
async function renderPerson(
  deps: RouteDeps,
  req: Request,
  res: Response,
  id: string,
  problem: { action: Action; message: string; typed: Record<string, string> } | null,
  status: number,
): Promise<void> {
  const detail = await personDetail(deps.pool, id, deps.config.SESSION_ABSOLUTE_HOURS * 3600);
  const p = detail.person;
  const self = p.id === (req.user as Express.User).userId;
  render(
    res,
    'admin/user',
    {
      title: `${p.displayName} · People`,
      ...chrome(),
      ...detail,
      p,
      self,
      base: pageOf(p.id),
      roleLabel: ROLE_LABEL,
      roleTargets: p.role === 'user' ? [] : (['auditor', 'admin'] as const).filter((r) => r !== p.role),
      reasonMax: REASON_MAX,
      problem,
      displayTime,
      outcomeText,
    },
    status,
  );
}

/** A failed or refused check, in words. */
function outcomeText(e: { action: string; code: string | null }): string {
  const what = e.action === 'admin.reauth' ? 'Admin password check' : 'Sign-in';
  const why: Record<string, string> = {
    wrong_password: 'wrong password',
    wrong_code: 'wrong code',
    reused_code: 'code used before',
    account_deactivated: 'refused: account deactivated',
    locked: 'refused: locked out',
  };
  return `${what} failed${e.code ? ` (${why[e.code] ?? e.code})` : ''}`;
}

async function act(deps: RouteDeps, action: Action, req: Request, res: Response): Promise<void> {
  const id = String(req.params.id);
  const person = await findPerson(deps.pool, id); // 404 for an unknown or malformed id
  const actor: AdminActor = { userId: (req.user as Express.User).userId, by: whoOf(req) };
  const typed = {
    reason: field(req, 'reason').slice(0, REASON_MAX * 2),
    role: field(req, 'role'),
    confirm: field(req, 'confirm').slice(0, 254),
  };
  let done: string;
  try {
    if (action !== 'reactivate') checkConfirmation(req, person);
    done = await perform(deps, action, actor, req, person);
  } catch (err) {
    const problem = formProblem(res, err);
    return renderPerson(
      deps,
      req,
      res,
      person.id,
      { action, message: problem.message, typed },
      problem.status,
    );
  }
  flash(req, 'success', done);
  res.redirect(303, pageOf(person.id));
}

/** The form's field must be a string: a repeated field (an array) is refused, not read as empty. */
function single(req: Request, name: string): string {
  const value = (req.body as Record<string, unknown> | undefined)?.[name];
  if (value === undefined) return '';
  if (typeof value !== 'string') throw new InvalidInputError(`${name} must be given once, as text`);
  return value;
}

/** The person's email typed back, so a destructive form is never sent by a slip of the mouse. */
function checkConfirmation(req: Request, person: PersonView): void {
  if (single(req, 'confirm').trim().toLowerCase() !== person.email.toLowerCase())
    throw new InvalidInputError(
      `Nothing was changed: type the email address ${person.email} in the confirmation box`,
    );
}

async function perform(
  deps: RouteDeps,
  action: Action,
  actor: AdminActor,
  req: Request,
  person: PersonView,
): Promise<string> {
  const who = person.email;
  const plural = (n: number, one: string) => `${n} ${one}${n === 1 ? '' : 's'}`;
  switch (action) {
    case 'deactivate': {
      const ended = await deactivatePerson(deps.pool, actor, person.id, single(req, 'reason'));
      return `${who} is deactivated: ${plural(ended.sessionsEnded, 'session')} and ${plural(ended.tokensEnded, 'API token')} ended.`;
    }
    case 'reactivate':
      await reactivatePerson(deps.pool, actor, person.id);
      return `${who} can sign in again.`;
    case 'end-sessions': {
      const n = await endSessionsOfPerson(deps.pool, actor, person.id);
      return `${plural(n, 'session')} of ${who} ended.`;
    }
    case 'reset-mfa': {
      await resetMfaOfPerson(deps.pool, actor, person.id, single(req, 'reason'));
      return `Two-step sign-in of ${who} is reset: they sign in with their password alone${person.mfaRequired ? ' and must set it up again' : ''}.`;
    }
    case 'role': {
      const changed = await changeRoleOfPerson(deps.pool, actor, person.id, single(req, 'role'));
      return changed.changed
        ? `${who} is now ${ROLE_LABEL[changed.to]?.toLowerCase() ?? changed.to} (was ${changed.from}).`
        : `${who} already has the role ${changed.to}: nothing was changed.`;
    }
  }
}
