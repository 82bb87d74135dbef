// Nothing behind a session may be kept by a browser cache or a shared proxy:
// every dynamic answer is `Cache-Control: no-store`; only the content-hashed
// assets are cacheable. A real server, real PostgreSQL and Redis.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import { assetUrl } from '../../../server/http/render.ts';
import { HTML } from '../../helpers/http.ts';
import { signUp, startTestServer, type TestServer } from '../../helpers/server.ts';

let t: TestServer;
before(async () => {
  t = await startTestServer();
});
after(async () => {
  await t?.stop();
});

function assertNoStore(res: request.Response, what: string) {
  assert.equal(res.headers['cache-control'], 'no-store', `${what}: Cache-Control`);
}

describe('Cache-Control', () => {
  test('account, session, token, CSRF and workspace answers to a signed-in person are no-store', async () => {
    const person = await signUp(t.url);
    const note = await person.agent
      .post('/api/v1/notes')
      .set('X-CSRF-Token', person.csrf)
      .send({ title: 'private' })
      .expect(201);
    assertNoStore(note, 'POST /api/v1/notes');
    for (const path of [
      '/api/v1/me',
      '/api/v1/sessions',
      '/api/v1/tokens',
      '/api/v1/csrf',
      '/api/v1/notes',
      `/api/v1/notes/${note.body.note.id}`,
      '/api/v1/tasks',
    ]) {
      assertNoStore(await person.agent.get(path).expect(200), `GET ${path}`);
    }
    for (const page of ['/workspace', `/workspace/notes/${note.body.note.id}`, '/account']) {
      assertNoStore(await person.agent.get(page).set('Accept', HTML).expect(200), `page ${page}`);
    }
    // Errors behind the session too: a 404 of the API and of a page.
    assertNoStore(await person.agent.get('/api/v1/notes/999999').expect(404), 'API 404');
    assertNoStore(await person.agent.get('/workspace/nowhere').set('Accept', HTML).expect(404), 'page 404');
  });

  test('answers to an API token are no-store', async () => {
    const person = await signUp(t.url);
    const created = await person.agent
      .post('/api/v1/tokens')
      .set('X-CSRF-Token', person.csrf)
      .send({ name: 'script', scope: 'read' })
      .expect(201);
    assertNoStore(created, 'POST /api/v1/tokens');
    const bearer = { Authorization: `Bearer ${created.body.secret}` };
    assertNoStore(await request(t.url).get('/api/v1/notes').set(bearer).expect(200), 'GET /api/v1/notes');
    assertNoStore(await request(t.url).get('/api/v1/me').set(bearer).expect(200), 'GET /api/v1/me');
  });

  test('anonymous answers are no-store; only the versioned assets may be cached', async () => {
    assertNoStore(await request(t.url).get('/api/v1/csrf').expect(200), 'GET /api/v1/csrf');
    assertNoStore(await request(t.url).get('/login').set('Accept', HTML).expect(200), 'GET /login');
    assertNoStore(await request(t.url).get('/api/v1/me').expect(401), 'GET /api/v1/me (401)');
    assertNoStore(await request(t.url).get('/healthz').expect(200), 'GET /healthz');
    const css = await request(t.url).get(assetUrl('app.css')).expect(200);
    assert.equal(css.headers['cache-control'], 'public, max-age=31536000, immutable');
  });
});
