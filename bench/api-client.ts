// The few calls the HTTP benchmarks make to a running Enclave server to set
// themselves up: one JSON request, and registering a person (which provisions
// their workspace) with the session cookie and CSRF token kept.
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Pool } from '../kernel/db.ts';

export interface ApiAnswer {
  status: number;
  headers: Headers;
  text: string;
  json(): unknown;
}

export async function api(
  base: string,
  method: string,
  route: string,
  options: { cookie?: string; csrf?: string; body?: unknown } = {},
): Promise<ApiAnswer> {
  const headers: Record<string, string> = {};
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  if (options.cookie) headers.cookie = options.cookie;
  if (options.csrf) headers['x-csrf-token'] = options.csrf;
  const res = await fetch(new URL(route, base), {
    method,
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, json: () => JSON.parse(text) as unknown };
}

export interface Registered {
  cookie: string;
  csrf: string;
  tenantId: string;
  schema: string;
  role: string;
}

/**
 * Registers a new person through POST /api/v1/auth/register and keeps the
 * session; the tenant's schema and role are read from the control plane
 * through `pool` (the scratch database).
 */
export async function registerPerson(
  base: string,
  pool: Pool,
  log: (line: string) => void,
): Promise<Registered> {
  const body = {
    email: `bench.${randomBytes(4).toString('hex')}@example.com`,
    password: randomBytes(18).toString('base64url'),
    displayName: 'Bench Person',
  };
  let reg = await api(base, 'POST', '/api/v1/auth/register', { body });
  // The per-IP sign-up limit lives in Redis, which test suites on this machine share: wait it out.
  for (let tries = 1; reg.status === 429 && tries <= 3; tries++) {
    const { error } = reg.json() as { error?: { details?: { retryAfterSeconds?: number } } };
    const seconds = Math.min(error?.details?.retryAfterSeconds ?? 30, 120);
    log(`registration is rate-limited (shared Redis): retrying in ${seconds} s`);
    await sleep(seconds * 1000 + 500);
    reg = await api(base, 'POST', '/api/v1/auth/register', { body });
  }
  if (reg.status !== 201) throw new Error(`registration answered ${reg.status}: ${reg.text}`);
  const setCookie = reg.headers.getSetCookie().find((c) => c.startsWith('enclave.sid='));
  if (!setCookie) throw new Error('registration set no session cookie');
  const cookie = setCookie.split(';')[0] as string;
  const { csrfToken: csrf, user } = reg.json() as { csrfToken: string; user: { tenantId: string } };
  const { rows } = await pool.query<{ schema_name: string; role_name: string }>(
    'SELECT schema_name, role_name FROM control.tenants WHERE id = $1',
    [user.tenantId],
  );
  const tenant = rows[0];
  if (!tenant) throw new Error(`tenant ${user.tenantId} not found in control.tenants`);
  return { cookie, csrf, tenantId: user.tenantId, schema: tenant.schema_name, role: tenant.role_name };
}

/** Signs out, so the session does not linger in the shared Redis until it expires. */
export async function signOut(base: string, session: { cookie: string; csrf: string }): Promise<void> {
  await api(base, 'POST', '/api/v1/auth/logout', { cookie: session.cookie, csrf: session.csrf });
}
