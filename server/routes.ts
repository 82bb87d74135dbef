// Every router of the web, in the order a request tries them: the JSON API
// (server/api/, one file per noun) first, then the pages (server/pages/). No
// router mounts another; a new noun is one file and one line here.
import type { Router } from 'express';
import { accountApiRoutes } from './api/account-api.ts';
import { adminApiRoutes } from './api/admin-api.ts';
import { adminTenantsApiRoutes } from './api/admin-tenants-api.ts';
import { auditApiRoutes } from './api/audit-api.ts';
import { authRoutes } from './api/auth-api.ts';
import { backupApiRoutes } from './api/backup-api.ts';
import { backupJobsApiRoutes } from './api/backup-jobs-api.ts';
import { exportRoutes } from './api/export-api.ts';
import { jobsApiRoutes } from './api/jobs-api.ts';
import { lifecycleApiRoutes } from './api/lifecycle-api.ts';
import { mfaRoutes } from './api/mfa-api.ts';
import { notesApiRoutes } from './api/notes-api.ts';
import { reauthApiRoutes } from './api/reauth-api.ts';
import { searchApiRoutes } from './api/search-api.ts';
import { sessionRoutes } from './api/sessions-api.ts';
import { setupApiRoutes } from './api/setup-api.ts';
import { statsApiRoutes } from './api/stats-api.ts';
import { tasksApiRoutes } from './api/tasks-api.ts';
import { threatsApiRoutes } from './api/threats-api.ts';
import { tokenRoutes } from './api/tokens-api.ts';
import { usersAdminApiRoutes } from './api/users-admin-api.ts';
import { workspaceApiRoutes } from './api/workspace-api.ts';
import { openApiRoutes } from './http/openapi.ts';
import type { RouteDeps } from './http/route-deps.ts';
import { accountPages } from './pages/account-pages.ts';
import { adminPages } from './pages/admin-pages.ts';
import { adminTenantPages } from './pages/admin-tenant-pages.ts';
import { adminThreatsPages } from './pages/admin-threats-pages.ts';
import { adminUsersPages } from './pages/admin-users-pages.ts';
import { auditPages } from './pages/audit-pages.ts';
import { notePages } from './pages/note-pages.ts';
import { setupPages } from './pages/setup-pages.ts';
import { signInPages } from './pages/sign-in-pages.ts';
import { suspendedPages } from './pages/suspended-pages.ts';
import { taskPages } from './pages/task-pages.ts';
import { workspacePageGate, workspacePages } from './pages/workspace-pages.ts';

/** The routers in registration order (the order matters only where paths overlap; kept as it always was). */
export function routes(deps: RouteDeps): Router[] {
  return [
    openApiRoutes(), // GET /api/v1/openapi.json: the description of every route below
    authRoutes(deps),
    sessionRoutes(deps),
    adminApiRoutes(deps),
    adminTenantsApiRoutes(deps),
    usersAdminApiRoutes(deps),
    threatsApiRoutes(deps),
    reauthApiRoutes(deps),
    backupApiRoutes(deps),
    backupJobsApiRoutes(deps),
    jobsApiRoutes(deps),
    lifecycleApiRoutes(deps),
    statsApiRoutes(deps),
    notesApiRoutes(deps),
    tasksApiRoutes(deps),
    searchApiRoutes(deps),
    workspaceApiRoutes(deps),
    exportRoutes(deps),
    accountApiRoutes(deps),
    tokenRoutes(deps),
    mfaRoutes(deps),
    signInPages(deps),
    accountPages(deps),
    suspendedPages(deps), // before the workspace gate: a suspended workspace's people get its page
    workspacePageGate(deps),
    workspacePages(deps),
    notePages(),
    taskPages(),
    setupApiRoutes(deps),
    setupPages(deps),
    auditApiRoutes(deps),
    auditPages(deps),
    adminPages(deps),
    adminTenantPages(deps),
    adminUsersPages(deps),
    adminThreatsPages(deps),
  ];
}
