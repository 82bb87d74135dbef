// HTTP as a browser does it: ask for HTML, read a form's _csrf field, post
// the form urlencoded with it; and the cookies an answer sets.
import assert from 'node:assert/strict';
import type request from 'supertest';
import { SESSION_COOKIE } from '../../server/auth/session-middleware.ts';

/** The Accept header of a browser asking for a page. */
export const HTML = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';

/** The value of a page's `_csrf` form field; fails when the page has none. */
export function csrfOf(html: string): string {
  const match = /name="_csrf" value="([^"]+)"/.exec(html);
  assert.ok(match?.[1], 'the page has a _csrf field');
  return match[1];
}

/** Opens `page`, then posts `fields` to `action` urlencoded, with the page's token (and `headers` on both). */
export async function submit(
  agent: request.Agent,
  page: string,
  action: string,
  fields: Record<string, string | string[]>,
  headers: Record<string, string> = {},
): Promise<request.Response> {
  const form = await agent.get(page).set(headers).expect(200);
  return agent
    .post(action)
    .set(headers)
    .type('form')
    .send({ _csrf: csrfOf(form.text), ...fields });
}

/** `name=value` of the cookie `name` the answer sets, if it sets one. */
export function cookieOf(res: request.Response, name: string): string | undefined {
  const all = ([] as string[]).concat(res.headers['set-cookie'] ?? []);
  return all.find((c) => c.startsWith(`${name}=`))?.split(';')[0];
}

/** `enclave.sid=...` if the answer sets the session cookie. */
export function sessionCookie(res: request.Response): string | undefined {
  return cookieOf(res, SESSION_COOKIE);
}

/** Makes an API token through the JSON API, as `who` (a signed-in agent and its CSRF token). */
export async function createApiToken(
  who: { agent: request.Agent; csrf: string },
  scope: 'read' | 'write',
  name = `test ${scope}`,
): Promise<{ id: string; secret: string }> {
  const res = await who.agent
    .post('/api/v1/tokens')
    .set('X-CSRF-Token', who.csrf)
    .send({ name, scope })
    .expect(201);
  return { id: res.body.token.id, secret: res.body.secret };
}
