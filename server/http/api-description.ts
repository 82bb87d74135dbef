// Every operation of the JSON API under /api/v1, one entry per route the
// routers register (test/server/http/openapi.test.ts walks the real app and
// fails on a route without an entry, or an entry without a route). Query
// strings and bodies point at the SAME zod schemas the handlers parse with,
// so the description cannot drift from what a route accepts. Where a route
// checks its input in code instead (sign-in, registration, passwords, MFA,
// tokens, setup, the audit API's filters, every path id), the input is
// described by hand here and `checkedBy` names the code that does the check.
// server/http/openapi.ts turns this list into the OpenAPI document.
import type { z } from 'zod';
import { AccountDeletionBody } from '../accounts/account-deletion.ts';
import { TOKEN_NAME_MAX } from '../accounts/api-tokens.ts';
import { PASSWORD_MAX, PASSWORD_MIN } from '../accounts/credentials.ts';
import { DirectoryQuerySchema } from '../admin/tenant-directory.ts';
import * as adminApi from '../api/admin-api.ts';
import * as adminTenantsApi from '../api/admin-tenants-api.ts';
import * as backupApi from '../api/backup-api.ts';
import * as backupJobsApi from '../api/backup-jobs-api.ts';
import * as jobsApi from '../api/jobs-api.ts';
import * as lifecycleApi from '../api/lifecycle-api.ts';
import * as reauthApi from '../api/reauth-api.ts';
import * as statsApi from '../api/stats-api.ts';
import * as threatsApi from '../api/threats-api.ts';
import * as usersAdminApi from '../api/users-admin-api.ts';
import * as workspaceApi from '../api/workspace-api.ts';
import * as v from '../workspace/validation.ts';

export const OPENAPI_PATH = '/api/v1/openapi.json';

/** Who may call: nobody in particular, a browser session only, or a session or an API token. */
export type Access = 'public' | 'session' | 'session-or-token';

/** A JSON Schema written by hand, for input a route checks in code rather than with zod. */
export type JsonSchema = Record<string, unknown>;

export type Input =
  | { zod: z.ZodType }
  | {
      byHand: JsonSchema;
      /** The code that really checks this input. */
      checkedBy: string;
    };

export interface PathParam {
  description: string;
  pattern?: string;
  example?: string;
}

/** A query parameter a route checks in code (the audit API). */
export interface HandQueryParam {
  name: string;
  description: string;
  schema: JsonSchema;
}

export interface ApiOperation {
  method: 'get' | 'post' | 'patch' | 'delete';
  /** As the router registers it, e.g. `/api/v1/notes/:id`. */
  path: string;
  tag: string;
  summary: string;
  access: Access;
  role?: 'user' | 'admin' | 'auditor';
  /** Needs a recent password (or MFA) confirmation: POST /api/v1/admin/reauth, else 403 reauth_required. */
  reauth?: true;
  /** Path parameters, by hand: routes check ids in code (parseId, isTenantId, isUuid), a bad one is a 404. */
  params?: Record<string, PathParam>;
  query?:
    | { zod: z.ZodObject; example?: Record<string, string> }
    | { byHand: HandQueryParam[]; checkedBy: string };
  body?: Input & {
    required: boolean;
    example?: unknown;
    note?: string;
    /** A refinement zod cannot put in JSON Schema: at least one of these fields is sent. */
    atLeastOneOf?: string[];
  };
  success: { status: number; description: string; type?: 'json' | 'gzip' | 'octet-stream' | 'none' };
  /** Another success answer (a restore as a new workspace is a 201). */
  alsoSuccess?: { status: number; description: string };
}

// --- Path parameters (checked in code: anything malformed is a 404, like an unknown id) ---

const entityId = (what: string): PathParam => ({
  description: `The ${what}'s id, a positive integer (server/workspace/validation.ts parseId).`,
  pattern: '^[1-9][0-9]{0,15}$',
  example: '1',
});
const tenantId: PathParam = {
  description: 'A tenant (workspace) id: 12 characters a-z and 0-9 (kernel/identifiers.ts isTenantId).',
  pattern: '^[a-z0-9]{12}$',
  example: 'k3v9x2m7q1zp',
};
const uuid = (what: string): PathParam => ({
  description: `The ${what}'s id, a UUID.`,
  pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$',
  example: '0b3c2f9e-6a1d-4c55-9d3e-2f1a7b8c9d0e',
});

// --- Input checked by hand, in code rather than with a zod schema ----------------------------

const password = { type: 'string', minLength: 1, maxLength: PASSWORD_MAX };
const newPassword = {
  ...password,
  minLength: PASSWORD_MIN,
  description: 'Not a common password, nor one containing the email.',
};
const email = { type: 'string', minLength: 3, maxLength: 254, format: 'email' };
const code = { type: 'string', description: 'A six-digit code from the authenticator app.', maxLength: 64 };
const strictObject = (properties: Record<string, JsonSchema>, required: string[]): JsonSchema => ({
  type: 'object',
  properties,
  required,
  additionalProperties: false,
});
const looseObject = (properties: Record<string, JsonSchema>, required: string[]): JsonSchema => ({
  type: 'object',
  properties,
  required,
});
const PASSWORD_CODE: Input = {
  byHand: looseObject({ password, code }, ['password', 'code']),
  checkedBy: 'server/accounts/mfa.ts (passwordInput, totpInput)',
};
const AUDIT_FILTER: HandQueryParam[] = [
  {
    name: 'tenant',
    description: 'A tenant id, or `platform` for events without a tenant.',
    schema: { type: 'string' },
  },
  { name: 'actor', description: 'An actor id or type.', schema: { type: 'string', maxLength: 200 } },
  {
    name: 'action',
    description: 'An action such as `auth.login`, or a prefix ending in `*`.',
    schema: { type: 'string', maxLength: 65 },
  },
  {
    name: 'outcome',
    description: 'success or failure.',
    schema: { type: 'string', enum: ['success', 'failure'] },
  },
  { name: 'from', description: 'An ISO 8601 time or date.', schema: { type: 'string' } },
  { name: 'to', description: 'An ISO 8601 time or date.', schema: { type: 'string' } },
];
const byName = (names: string[]) => AUDIT_FILTER.filter((p) => names.includes(p.name));

// --- The operations, grouped like server/routes.ts registers them -----------------------------

const ADMIN = { access: 'session', role: 'admin' } as const;
const OWNER = { access: 'session-or-token', role: 'user', tag: 'workspace' } as const;
const TENANT = { tenantId };
const BACKUP = { tenantId, backupId: uuid('backup') };
const json = (status: number, description: string) => ({ status, description });
const none = (description: string) => ({ status: 204, description, type: 'none' as const });

export const API_OPERATIONS: readonly ApiOperation[] = [
  {
    method: 'get',
    path: OPENAPI_PATH,
    tag: 'meta',
    summary: 'This description of the API (OpenAPI 3.1)',
    access: 'public',
    success: json(200, 'The OpenAPI document; cacheable, with an ETag.'),
  },
  // server/api/auth-api.ts
  {
    method: 'get',
    path: '/api/v1/csrf',
    tag: 'auth',
    summary: 'The CSRF token to send as X-CSRF-Token',
    access: 'public',
    success: json(200, '`{ token }`'),
  },
  {
    method: 'post',
    path: '/api/v1/auth/register',
    tag: 'auth',
    summary: 'Register: a person and their workspace, signed in',
    access: 'public',
    body: {
      byHand: looseObject({ email, password: newPassword, displayName: { type: 'string', maxLength: 200 } }, [
        'email',
        'password',
        'displayName',
      ]),
      checkedBy: 'server/accounts/accounts.ts checkRegistration',
      required: true,
      example: { email: 'ada@example.com', password: 'violet-kettle-harbour-92', displayName: 'Ada' },
    },
    success: json(201, '`{ user, csrfToken }`'),
  },
  {
    method: 'post',
    path: '/api/v1/auth/login',
    tag: 'auth',
    summary: 'Sign in (with `totp` when two-step sign-in is on)',
    access: 'public',
    body: {
      byHand: looseObject({ email, password, totp: code }, ['email', 'password']),
      checkedBy: 'server/auth/sign-in-credentials.ts',
      required: true,
      example: { email: 'ada@example.com', password: 'violet-kettle-harbour-92' },
    },
    success: json(200, '`{ user, csrfToken, failedAttemptsSinceLastSignIn, notices }`'),
  },
  {
    method: 'post',
    path: '/api/v1/auth/logout',
    tag: 'auth',
    summary: 'Sign out: this session ends',
    access: 'public',
    success: none('Signed out (or was not signed in).'),
  },
  {
    method: 'get',
    path: '/api/v1/me',
    tag: 'auth',
    summary: 'Who is signed in',
    access: 'session-or-token',
    success: json(200, '`{ user, role, tenantId }`'),
  },
  // server/api/sessions-api.ts
  {
    method: 'get',
    path: '/api/v1/sessions',
    tag: 'sessions',
    summary: "This person's sessions",
    access: 'session',
    success: json(200, '`{ sessions }`'),
  },
  {
    method: 'delete',
    path: '/api/v1/sessions/:id',
    tag: 'sessions',
    summary: 'End one of them',
    access: 'session',
    params: { id: uuid('session') },
    success: none('Ended.'),
  },
  {
    method: 'post',
    path: '/api/v1/sessions/revoke-all',
    tag: 'sessions',
    summary: 'End every other session and every API token',
    access: 'session',
    success: json(200, '`{ ended, tokensEnded }`'),
  },
  // server/api/admin-api.ts
  {
    method: 'get',
    path: '/api/v1/admin/tenants/:tenantId/sessions',
    tag: 'admin',
    summary: "A tenant's active sessions",
    ...ADMIN,
    params: TENANT,
    success: json(200, '`{ sessions }`'),
  },
  {
    method: 'post',
    path: '/api/v1/admin/tenants/:tenantId/sessions/revoke-all',
    tag: 'admin',
    summary: "End every session of a tenant's people",
    ...ADMIN,
    reauth: true,
    params: TENANT,
    query: { zod: adminApi.NoQuery },
    body: { zod: adminApi.NoBody, required: false },
    success: json(200, '`{ sessionsEnded }`'),
  },
  {
    method: 'delete',
    path: '/api/v1/admin/sessions/:id',
    tag: 'admin',
    summary: 'End any one session',
    ...ADMIN,
    reauth: true,
    params: { id: uuid('session') },
    success: none('Ended.'),
  },
  // server/api/admin-tenants-api.ts
  {
    method: 'get',
    path: '/api/v1/admin/tenants',
    tag: 'admin',
    summary: 'The tenants table, filtered, sorted, keyset-paged (empty values mean "not set")',
    ...ADMIN,
    query: { zod: DirectoryQuerySchema, example: { state: 'active', sort: 'size', limit: '20' } },
    success: json(200, '`{ tenants, nextCursor, latestVersion, sort, dir }`'),
  },
  {
    method: 'get',
    path: '/api/v1/admin/overview',
    tag: 'admin',
    summary: "The admin console's cards",
    ...ADMIN,
    query: { zod: adminTenantsApi.NoQuery },
    success: json(200, 'The overview cards.'),
  },
  {
    method: 'post',
    path: '/api/v1/admin/jobs/:name/run',
    tag: 'admin',
    summary: 'Start a scheduled job now, in the background (409 while it runs)',
    ...ADMIN,
    params: { name: { description: 'A job name such as `backup-fleet` (404 for an unknown one).' } },
    query: { zod: adminTenantsApi.NoQuery },
    body: { zod: adminTenantsApi.NoBody, required: false },
    success: json(202, '`{ job, status: "started", history }`'),
  },
  // server/api/users-admin-api.ts
  {
    method: 'get',
    path: '/api/v1/admin/users',
    tag: 'admin',
    summary: 'Find people',
    ...ADMIN,
    query: { zod: usersAdminApi.SearchQuery, example: { q: 'ada', match: 'prefix', limit: '10' } },
    success: json(200, '`{ users, nextCursor }`'),
  },
  {
    method: 'get',
    path: '/api/v1/admin/users/:id',
    tag: 'admin',
    summary: 'One person, their recent sign-ins and refused attempts',
    ...ADMIN,
    params: { id: uuid('person') },
    query: { zod: usersAdminApi.NoQuery },
    success: json(200, '`{ user, liveSessions, liveTokens, unusedRecoveryCodes, signIns, refusals }`'),
  },
  {
    method: 'post',
    path: '/api/v1/admin/users/:id/deactivate',
    tag: 'admin',
    summary: 'Deactivate a person: their sessions and tokens end at once',
    ...ADMIN,
    reauth: true,
    params: { id: uuid('person') },
    body: { zod: usersAdminApi.DeactivateBody, required: false, example: { reason: 'left the company' } },
    success: json(200, '`{ deactivated: true, … }`'),
  },
  {
    method: 'post',
    path: '/api/v1/admin/users/:id/reactivate',
    tag: 'admin',
    summary: 'Reactivate a person',
    ...ADMIN,
    params: { id: uuid('person') },
    body: { zod: usersAdminApi.NoBody, required: false },
    success: json(200, '`{ reactivated: true }`'),
  },
  {
    method: 'post',
    path: '/api/v1/admin/users/:id/end-sessions',
    tag: 'admin',
    summary: "End a person's sessions",
    ...ADMIN,
    reauth: true,
    params: { id: uuid('person') },
    body: { zod: usersAdminApi.NoBody, required: false },
    success: json(200, '`{ sessionsEnded }`'),
  },
  {
    method: 'post',
    path: '/api/v1/admin/users/:id/reset-mfa',
    tag: 'admin',
    summary: "Reset a person's two-step sign-in",
    ...ADMIN,
    reauth: true,
    params: { id: uuid('person') },
    body: { zod: usersAdminApi.ResetMfaBody, required: true, example: { reason: 'lost their phone' } },
    success: json(200, '`{ reset: true, … }`'),
  },
  {
    method: 'post',
    path: '/api/v1/admin/users/:id/role',
    tag: 'admin',
    summary: "Change a person's role (the last admin cannot be demoted)",
    ...ADMIN,
    reauth: true,
    params: { id: uuid('person') },
    body: { zod: usersAdminApi.RoleBody, required: true, example: { role: 'auditor' } },
    success: json(200, 'The person with the new role.'),
  },
  // server/api/threats-api.ts
  {
    method: 'get',
    path: '/api/v1/admin/threats',
    tag: 'admin',
    summary: 'Threat flags, newest first',
    ...ADMIN,
    query: { zod: threatsApi.ThreatsQuery, example: { state: 'all', severity: 'critical' } },
    success: json(200, '`{ flags, nextCursor }`'),
  },
  {
    method: 'post',
    path: '/api/v1/admin/threats/:id/acknowledge',
    tag: 'admin',
    summary: 'Acknowledge a threat flag with a note',
    ...ADMIN,
    params: { id: { description: 'The flag id, a positive integer.', pattern: '^[1-9][0-9]{0,17}$' } },
    query: { zod: threatsApi.NoQuery },
    body: { zod: threatsApi.AcknowledgeBody, required: true, example: { note: 'a known scanner; blocked' } },
    success: json(200, '`{ flag }`'),
  },
  // server/api/reauth-api.ts
  {
    method: 'post',
    path: '/api/v1/admin/reauth',
    tag: 'admin',
    summary: 'Confirm the password (and MFA code) before destructive admin calls',
    ...ADMIN,
    body: { zod: reauthApi.ReauthBody, required: true, example: { password: 'violet-kettle-harbour-92' } },
    success: none('Confirmed for ADMIN_REAUTH_MINUTES.'),
  },
  // server/api/backup-api.ts
  {
    method: 'post',
    path: '/api/v1/admin/tenants/:tenantId/backups',
    tag: 'backups',
    summary: 'Back a tenant up now',
    ...ADMIN,
    params: TENANT,
    query: { zod: backupApi.NoQuery },
    body: { zod: backupApi.NoBody, required: false },
    success: json(201, '`{ backup }`'),
  },
  {
    method: 'get',
    path: '/api/v1/admin/tenants/:tenantId/backups',
    tag: 'backups',
    summary: "A tenant's backups",
    ...ADMIN,
    params: TENANT,
    query: { zod: backupApi.NoQuery },
    success: json(200, '`{ backups }`'),
  },
  {
    method: 'get',
    path: '/api/v1/admin/tenants/:tenantId/backups/:backupId/download',
    tag: 'backups',
    summary: 'Download a backup archive (audited)',
    ...ADMIN,
    params: BACKUP,
    query: { zod: backupApi.NoQuery },
    success: { status: 200, description: 'The archive, with Repr-Digest.', type: 'octet-stream' },
  },
  {
    method: 'post',
    path: '/api/v1/admin/tenants/:tenantId/backups/:backupId/verify',
    tag: 'backups',
    summary: 'Verify a backup (`restore=1`: by restoring it into a scratch schema)',
    ...ADMIN,
    params: BACKUP,
    query: { zod: backupApi.VerifyQuery, example: { restore: '0' } },
    body: { zod: backupApi.NoBody, required: false },
    success: json(200, '`{ ok, backupId, manifest, tables? }`'),
  },
  {
    method: 'post',
    path: '/api/v1/admin/tenants/:tenantId/backups/:backupId/restore',
    tag: 'backups',
    summary: 'Restore a backup in place (`confirm`: the tenant id) or as a new workspace (`asNew`)',
    ...ADMIN,
    reauth: true,
    params: BACKUP,
    query: { zod: backupApi.NoQuery },
    body: {
      zod: backupApi.RestoreBody,
      required: true,
      example: { confirm: 'k3v9x2m7q1zp' },
      note: 'Exactly one of `confirm` (the tenant id typed back) and `asNew` (a name): checked by the handler.',
    },
    success: json(200, '`{ restore }`: restored in place'),
    alsoSuccess: { status: 201, description: '`{ restore }`: restored as a new workspace' },
  },
  // server/api/backup-jobs-api.ts
  {
    method: 'get',
    path: '/api/v1/admin/backups/health',
    tag: 'backups',
    summary: "The fleet's backup health",
    ...ADMIN,
    query: { zod: backupJobsApi.HealthQuery, example: { withinHours: '24', limit: '100', attention: '1' } },
    success: json(200, '`{ now, withinHours, summary, tenants }`'),
  },
  // server/api/jobs-api.ts
  {
    method: 'get',
    path: '/api/v1/admin/jobs',
    tag: 'admin',
    summary: 'Each scheduled job: schedule, next run, last outcome',
    ...ADMIN,
    query: { zod: jobsApi.NoQuery },
    success: json(200, '`{ jobs }`'),
  },
  {
    method: 'get',
    path: '/api/v1/admin/jobs/runs',
    tag: 'admin',
    summary: 'The run history',
    ...ADMIN,
    query: { zod: jobsApi.RunsQuery, example: { job: 'backup-fleet', failed: '1', limit: '20' } },
    success: json(200, '`{ runs, nextCursor }`'),
  },
  // server/api/lifecycle-api.ts
  ...(['suspend', 'resume', 'archive', 'hold', 'release'] as const).map(
    (action): ApiOperation => ({
      method: 'post',
      path: `/api/v1/admin/tenants/:tenantId/${action}`,
      tag: 'lifecycle',
      summary: `${action === 'hold' ? 'Legal hold on' : action === 'release' ? 'Legal hold off' : `${action[0]?.toUpperCase()}${action.slice(1)}`}: audited`,
      ...ADMIN,
      ...(action === 'suspend' || action === 'archive' || action === 'release' ? { reauth: true } : {}),
      params: TENANT,
      query: { zod: lifecycleApi.NoQuery },
      body: { zod: lifecycleApi.NoBody, required: false },
      success: json(200, '`{ tenant }`'),
    }),
  ),
  {
    method: 'get',
    path: '/api/v1/admin/tenants/:tenantId/lifecycle',
    tag: 'lifecycle',
    summary: "A tenant's lifecycle stage and step log",
    ...ADMIN,
    params: TENANT,
    query: { zod: lifecycleApi.NoQuery },
    success: json(200, '`{ tenant, steps }`'),
  },
  {
    method: 'get',
    path: '/api/v1/admin/lifecycle',
    tag: 'lifecycle',
    summary: "The lifecycle's dry-run plan",
    ...ADMIN,
    query: { zod: lifecycleApi.PlanQuery, example: { within: '7' } },
    success: json(200, '`{ asOf, settings, enabled, steps, dropped }`'),
  },
  // server/api/stats-api.ts
  {
    method: 'get',
    path: '/api/v1/admin/stats',
    tag: 'admin',
    summary: 'Fleet totals, top tenants by size and by growth',
    ...ADMIN,
    query: { zod: statsApi.FleetQuery, example: { limit: '20' } },
    success: json(200, '`{ collectedAt, tenants, totals, topBySize, topByGrowth }`'),
  },
  {
    method: 'get',
    path: '/api/v1/admin/tenants/:tenantId/stats',
    tag: 'admin',
    summary: "One tenant's history, tables and indexes (`exact=1`: measured now)",
    ...ADMIN,
    params: TENANT,
    query: { zod: statsApi.TenantQuery, example: { exact: '0' } },
    success: json(200, '`{ tenant, latest, history, exact? }`'),
  },
  // server/api/notes-api.ts
  {
    method: 'get',
    path: '/api/v1/notes',
    ...OWNER,
    summary: 'List notes, keyset-paged',
    query: { zod: v.NoteListQuery, example: { sort: 'title_asc', limit: '10', tag: 'home' } },
    success: json(200, '`{ notes, nextCursor }`'),
  },
  {
    method: 'post',
    path: '/api/v1/notes',
    ...OWNER,
    summary: 'Create a note',
    query: { zod: workspaceApi.NoQuery },
    body: {
      zod: v.NoteCreate,
      required: true,
      example: { title: 'Groceries', body: 'Milk, *eggs*', tags: ['home'] },
    },
    success: json(201, '`{ note }`, and `Location`'),
  },
  {
    method: 'get',
    path: '/api/v1/notes/:id',
    ...OWNER,
    summary: 'Read a note',
    params: { id: entityId('note') },
    query: { zod: workspaceApi.NoQuery },
    success: json(200, '`{ note }`'),
  },
  {
    method: 'patch',
    path: '/api/v1/notes/:id',
    ...OWNER,
    summary: 'Change a note (the version read last; 409 version_conflict if it moved on)',
    params: { id: entityId('note') },
    query: { zod: workspaceApi.NoQuery },
    body: {
      zod: v.NoteUpdate,
      required: true,
      example: { version: 1, title: 'Groceries for Sunday' },
      atLeastOneOf: ['title', 'body', 'tags'],
    },
    success: json(200, '`{ note }` with the new version'),
  },
  {
    method: 'delete',
    path: '/api/v1/notes/:id',
    ...OWNER,
    summary: 'Delete a note (its tasks lose the link)',
    params: { id: entityId('note') },
    query: { zod: v.DeleteQuery, example: { version: '1' } },
    success: none('Deleted.'),
  },
  // server/api/tasks-api.ts
  {
    method: 'get',
    path: '/api/v1/tasks',
    ...OWNER,
    summary: 'List tasks, keyset-paged',
    query: { zod: v.TaskListQuery, example: { sort: 'due_asc', status: 'open', limit: '10' } },
    success: json(200, '`{ tasks, nextCursor }`'),
  },
  {
    method: 'post',
    path: '/api/v1/tasks',
    ...OWNER,
    summary: 'Create a task',
    query: { zod: workspaceApi.NoQuery },
    body: {
      zod: v.TaskCreate,
      required: true,
      example: { title: 'Buy milk', status: 'open', dueDate: '2027-01-15' },
    },
    success: json(201, '`{ task }`, and `Location`'),
  },
  {
    method: 'get',
    path: '/api/v1/tasks/:id',
    ...OWNER,
    summary: 'Read a task',
    params: { id: entityId('task') },
    query: { zod: workspaceApi.NoQuery },
    success: json(200, '`{ task }`'),
  },
  {
    method: 'patch',
    path: '/api/v1/tasks/:id',
    ...OWNER,
    summary: 'Change a task (the version read last; 409 version_conflict if it moved on)',
    params: { id: entityId('task') },
    query: { zod: workspaceApi.NoQuery },
    body: {
      zod: v.TaskUpdate,
      required: true,
      example: { version: 1, status: 'done' },
      atLeastOneOf: ['title', 'status', 'dueDate', 'noteId'],
    },
    success: json(200, '`{ task }` with the new version'),
  },
  {
    method: 'delete',
    path: '/api/v1/tasks/:id',
    ...OWNER,
    summary: 'Delete a task',
    params: { id: entityId('task') },
    query: { zod: v.DeleteQuery, example: { version: '1' } },
    success: none('Deleted.'),
  },
  // server/api/search-api.ts
  {
    method: 'get',
    path: '/api/v1/search',
    ...OWNER,
    summary: 'Full-text search of the notes, best first (rate-limited per workspace)',
    query: { zod: v.SearchQuery, example: { q: 'milk', limit: '5' } },
    success: json(200, '`{ results, nextCursor, cutShort }`'),
  },
  // server/api/workspace-api.ts
  {
    method: 'get',
    path: '/api/v1/workspace',
    ...OWNER,
    summary: 'The workspace: storage used of its quota',
    query: { zod: workspaceApi.NoQuery },
    success: json(200, '`{ workspace: { storage } }`'),
  },
  {
    method: 'get',
    path: '/api/v1/reference',
    ...OWNER,
    summary: 'Reference data: the tag palette and task templates',
    query: { zod: workspaceApi.NoQuery },
    success: json(200, '`{ tagPalette, taskTemplates }`'),
  },
  // server/api/export-api.ts
  {
    method: 'get',
    path: '/api/v1/export',
    ...OWNER,
    summary: 'The whole workspace as a download',
    success: { status: 200, description: 'A .tar.gz of the workspace.', type: 'gzip' },
  },
  // server/api/account-api.ts
  {
    method: 'post',
    path: '/api/v1/account/delete',
    tag: 'account',
    summary: 'Delete my account and my workspace',
    access: 'session',
    role: 'user',
    body: {
      zod: AccountDeletionBody,
      required: true,
      example: { confirm: 'DELETE MY ACCOUNT', password: 'violet-kettle-harbour-92' },
      note: '`confirm` must be exactly `DELETE MY ACCOUNT`.',
    },
    success: json(200, '`{ deleted: true, tenantId, sessionsEnded }`'),
  },
  {
    method: 'post',
    path: '/api/v1/account/password',
    tag: 'account',
    summary: 'Change my password: every other session and every API token end',
    access: 'session',
    body: {
      byHand: looseObject({ currentPassword: password, newPassword: newPassword }, [
        'currentPassword',
        'newPassword',
      ]),
      checkedBy: 'server/accounts/accounts.ts changePassword',
      required: true,
      example: { currentPassword: 'violet-kettle-harbour-92', newPassword: 'amber-lantern-orchard-47' },
    },
    success: json(200, '`{ csrfToken, sessionsEnded, tokensEnded }`'),
  },
  // server/api/tokens-api.ts
  {
    method: 'post',
    path: '/api/v1/tokens',
    tag: 'tokens',
    summary: 'Create an API token (the secret is in this answer only)',
    access: 'session',
    role: 'user',
    body: {
      byHand: strictObject(
        {
          name: { type: 'string', minLength: 1, maxLength: TOKEN_NAME_MAX },
          scope: { type: 'string', enum: ['read', 'write'] },
        },
        ['name', 'scope'],
      ),
      checkedBy: 'server/accounts/api-tokens.ts checkTokenInput',
      required: true,
      example: { name: 'backup script', scope: 'read' },
    },
    success: json(201, 'The token, with its `secret`.'),
  },
  {
    method: 'get',
    path: '/api/v1/tokens',
    tag: 'tokens',
    summary: 'My API tokens',
    access: 'session',
    role: 'user',
    success: json(200, '`{ tokens }`'),
  },
  {
    method: 'delete',
    path: '/api/v1/tokens/:id',
    tag: 'tokens',
    summary: 'Revoke an API token',
    access: 'session',
    role: 'user',
    params: { id: uuid('token') },
    success: none('Revoked.'),
  },
  // server/api/mfa-api.ts
  {
    method: 'get',
    path: '/api/v1/mfa',
    tag: 'mfa',
    summary: 'Two-step sign-in status',
    access: 'session',
    success: json(200, 'The status.'),
  },
  {
    method: 'post',
    path: '/api/v1/mfa/setup',
    tag: 'mfa',
    summary: 'Start enrolment: a new secret and its QR code',
    access: 'session',
    success: json(200, 'The secret, its otpauth URL and QR code.'),
  },
  {
    method: 'post',
    path: '/api/v1/mfa/enable',
    tag: 'mfa',
    summary: 'Finish enrolment with the password and a first code',
    access: 'session',
    body: {
      ...PASSWORD_CODE,
      required: true,
      example: { password: 'violet-kettle-harbour-92', code: '123456' },
    },
    success: json(200, '`{ recoveryCodes, user, csrfToken }`'),
  },
  {
    method: 'post',
    path: '/api/v1/mfa/disable',
    tag: 'mfa',
    summary: 'Turn two-step sign-in off',
    access: 'session',
    body: {
      ...PASSWORD_CODE,
      required: true,
      example: { password: 'violet-kettle-harbour-92', code: '123456' },
    },
    success: json(200, '`{ user, csrfToken }`'),
  },
  {
    method: 'post',
    path: '/api/v1/mfa/recovery-codes',
    tag: 'mfa',
    summary: 'New recovery codes',
    access: 'session',
    body: {
      ...PASSWORD_CODE,
      required: true,
      example: { password: 'violet-kettle-harbour-92', code: '123456' },
    },
    success: json(200, '`{ recoveryCodes }`'),
  },
  // server/api/setup-api.ts
  {
    method: 'post',
    path: '/api/v1/setup/admin',
    tag: 'setup',
    summary: 'Create the first admin with the one-time link from the log',
    access: 'public',
    body: {
      byHand: looseObject(
        {
          token: { type: 'string', maxLength: 100 },
          email,
          password: newPassword,
          displayName: { type: 'string', maxLength: 200 },
        },
        ['token', 'email', 'password', 'displayName'],
      ),
      checkedBy: 'server/accounts/admin-setup.ts completeSetup',
      required: true,
    },
    success: json(201, '`{ user: { id, email, role } }`'),
  },
  // server/api/audit-api.ts
  {
    method: 'get',
    path: '/api/v1/audit/entries',
    tag: 'audit',
    summary: 'Search the sealed audit trail, newest first',
    access: 'session',
    role: 'auditor',
    query: {
      byHand: [
        ...AUDIT_FILTER,
        { name: 'cursor', description: 'From a previous page.', schema: { type: 'string' } },
        {
          name: 'limit',
          description: '1 to 500; default 50.',
          schema: { type: 'string', pattern: '^[0-9]{1,4}$' },
        },
      ],
      checkedBy: 'audit/search.ts parseFilter',
    },
    success: json(200, '`{ entries, nextCursor, pending }`'),
  },
  {
    method: 'get',
    path: '/api/v1/audit/checkpoints',
    tag: 'audit',
    summary: 'The latest signed checkpoint of each chain',
    access: 'session',
    role: 'auditor',
    query: {
      byHand: [
        ...byName(['tenant']),
        { name: 'after', description: 'A chain name: the next page.', schema: { type: 'string' } },
        {
          name: 'format',
          description: '`jsonl`: a download for `enclave audit verify --prev`.',
          schema: { type: 'string', enum: ['json', 'jsonl'] },
        },
      ],
      checkedBy: 'server/api/audit-api.ts listCheckpointsApi',
    },
    success: json(200, '`{ checkpoints, nextAfter }`, or JSON lines with `format=jsonl`'),
  },
  {
    method: 'get',
    path: '/api/v1/audit/public-keys',
    tag: 'audit',
    summary: 'Every signing key',
    access: 'session',
    role: 'auditor',
    query: {
      byHand: [
        {
          name: 'format',
          description: '`pem`: one file for `--key`.',
          schema: { type: 'string', enum: ['json', 'pem'] },
        },
      ],
      checkedBy: 'server/api/audit-api.ts listPublicKeysApi',
    },
    success: json(200, '`{ keys }`, or PEM with `format=pem`'),
  },
  {
    method: 'get',
    path: '/api/v1/audit/export',
    tag: 'audit',
    summary: 'The audit bundle (the same as `enclave audit export`), streamed',
    access: 'session',
    role: 'auditor',
    query: { byHand: byName(['tenant', 'from', 'to']), checkedBy: 'server/api/audit-api.ts sendBundle' },
    success: { status: 200, description: 'The bundle.', type: 'gzip' },
  },
];
