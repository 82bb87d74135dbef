// The People pages of the admin console (/admin/users, /admin/users/:id) on a
// real server, and the pieces of server/admin/people.ts that need no server:
// admins only; no inline code; the search form and its keyset pages; the
// destructive forms go through the password check first and need the
// person's email typed back; a deactivated person is signed out at once and
// told at the sign-in form (only after the right password); reactivated,
// they get in again; bad input comes back as the form with its message.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import {
  checkReason,
  decodeCursor,
  encodeCursor,
  escapeLike,
  likePattern,
} from '../../../server/admin/people.ts';
import { HTML, submit } from '../../helpers/http.ts';
import { assertNoInlineCode } from '../../helpers/pages.ts';
import {
  type SignedIn,
  signIn,
  signInPrivileged,
  signUp,
  startTestServer,
  type TestServer,
} from '../../helpers/server.ts';
import { enrolMfa } from '../../helpers/totp.ts';

describe('People: the pieces', () => {
  test('LIKE patterns match %, _ and \\ literally; contains and prefix', () => {
    assert.equal(escapeLike('a_b%c\\d'), 'a\\_b\\%c\\\\d');
    assert.equal(likePattern('  Ann_ '), '%ann\\_%');
    assert.equal(likePattern('ann', 'prefix'), 'ann%');
  });

  test('a cursor goes round; anything else is refused as a cursor', () => {
    const c = { email: 'ann@example.com', id: '6f1c2b1e-8a54-4f0a-9e57-5d8f3e0c1a2b' };
    assert.deepEqual(decodeCursor(encodeCursor(c)), c);
    assert.equal(decodeCursor(undefined), null);
    assert.equal(decodeCursor(''), null);
    for (const bad of [
      'x',
      '!!!',
      Buffer.from('{"a":1}').toString('base64url'),
      Buffer.from('["a","not-a-uuid"]').toString('base64url'),
      Buffer.from(`["${'a'.repeat(300)}","6f1c2b1e-8a54-4f0a-9e57-5d8f3e0c1a2b"]`).toString('base64url'),
    ])
      assert.throws(() => decodeCursor(bad), /cursor/, bad);
  });

  test('a reason is one trimmed line of 1 to 500 characters; optional ones may be empty', () => {
    assert.equal(checkReason('  lost phone ', true), 'lost phone');
    assert.equal(checkReason('', false), null);
    assert.equal(checkReason(undefined, false), null);
    assert.equal(checkReason('x'.repeat(500), true), 'x'.repeat(500));
    assert.throws(() => checkReason('', true), /reason is required/);
    assert.throws(() => checkReason(' \t ', true), /reason is required/);
    assert.throws(() => checkReason('x'.repeat(501), true), /at most 500/);
    assert.throws(() => checkReason('a\nb', true), /one line/);
    assert.throws(() => checkReason('a\u2028b', true), /one line/);
    assert.throws(() => checkReason(['a'], true), /must be text/);
  });
});

/** The answer, after checking its status (with the page's text when it is not the one expected). */
function status(res: request.Response, expected: number): request.Response {
  assert.equal(res.status, expected, res.text.slice(0, 2000));
  return res;
}

describe('People pages', () => {
  let t: TestServer;
  let admin: SignedIn;

  before(async () => {
    t = await startTestServer();
    admin = await signInPrivileged(t, 'admin');
  });
  after(() => t?.stop());

  const page = (who: SignedIn, path: string) => who.agent.get(path).set('Accept', HTML);

  test('admins only: anonymous visitors are sent to sign in, users and auditors get 403', async () => {
    const owner = await signUp(t.url);
    const auditor = await signInPrivileged(t, 'auditor');
    for (const path of ['/admin/users', `/admin/users/${owner.user.id}`]) {
      const anon = await request(t.url).get(path).set('Accept', HTML).expect(303);
      assert.equal(anon.headers.location, '/login');
      await page(owner, path).expect(403);
      await page(auditor, path).expect(403);
    }
    for (const action of ['deactivate', 'reactivate', 'end-sessions', 'reset-mfa', 'role']) {
      const res = await owner.agent
        .post(`/admin/users/${owner.user.id}/${action}`)
        .set('Accept', HTML)
        .type('form')
        .send({ _csrf: owner.csrf, confirm: owner.email });
      assert.equal(res.status, 403, action);
    }
    await owner.agent.get('/api/v1/me').expect(200);
  });

  test('the list: a search form with labels, results in email order (aria-sort), keyset pages; no inline code', async () => {
    const tag = `pg${Date.now().toString(36)}`;
    const people = [];
    for (const n of [1, 2, 3]) people.push(await signUp(t.url, { email: `${tag}.${n}@example.com` }));
    const all = await page(admin, '/admin/users').expect(200);
    assertNoInlineCode(all.text, '/admin/users');
    assert.match(all.text, /<label for="p-q">Email<\/label>/);
    assert.match(all.text, /<form method="get" action="\/admin\/users"[^>]*role="search"/);
    assert.match(all.text, /<th scope="col" aria-sort="ascending">Email<\/th>/);

    const first = await page(admin, `/admin/users?q=${tag}`).expect(200);
    assert.match(first.text, new RegExp(`${tag}\\.1@example\\.com`));
    assert.match(first.text, new RegExp(`href="/admin/users/${people[0]?.user.id}"`));
    // One per page is not on offer in the form, but the pages are keyset all the same: the API's limit.
    const none = await page(admin, `/admin/users?q=${tag}&state=deactivated`).expect(200);
    assert.match(none.text, /Nobody matches these filters/);
    const bad = await page(admin, '/admin/users?role=root').expect(400);
    assertNoInlineCode(bad.text, '/admin/users?role=root');
    assert.match(bad.text, /role/);
    const unknown = await page(admin, '/admin/users?order=email').expect(400);
    assert.match(unknown.text, /unknown field order/);
  });

  test('the list pages by keyset: "Next page" links carry a cursor and nobody shows twice', async () => {
    const tag = `kp${Date.now().toString(36)}`;
    const n = 53; // more than one page of 50
    await Promise.all(
      Array.from({ length: n }, (_, i) =>
        t.db.pool.query(
          `INSERT INTO control.users (email, email_normalized, display_name, password_hash, role)
           VALUES ($1, $1, 'Paged', 'x', 'auditor')`,
          [`${tag}.${String(i).padStart(3, '0')}@example.com`],
        ),
      ),
    );
    const seen: string[] = [];
    let path: string | null = `/admin/users?q=${tag}`;
    let pages = 0;
    while (path) {
      const res: request.Response = await page(admin, path).expect(200);
      pages += 1;
      seen.push(
        ...[...res.text.matchAll(new RegExp(`>(${tag}\\.\\d{3}@example\\.com)<`, 'g'))].map(
          (m) => m[1] as string,
        ),
      );
      const next: string | undefined = /<a class="button-secondary" href="([^"]+)" rel="next">/.exec(
        res.text,
      )?.[1];
      path = next ? next.replace(/&amp;/g, '&') : null;
    }
    assert.equal(pages, 2);
    assert.equal(seen.length, n);
    assert.equal(new Set(seen).size, n);
    assert.deepEqual(seen, [...seen].sort());
  });

  test("a person's page: facts, sign-ins, failed attempts and the action forms with confirm fields; no inline code, no workspace content", async () => {
    const owner = await signUp(t.url);
    await owner.agent
      .post('/api/v1/notes')
      .set('X-CSRF-Token', owner.csrf)
      .send({ title: 'secret plans for the merger' })
      .expect(201);
    await request(t.url)
      .post('/api/v1/auth/login')
      .send({ email: owner.email, password: 'wrong-password-here' })
      .expect(401);
    const res = await page(admin, `/admin/users/${owner.user.id}`).expect(200);
    assertNoInlineCode(res.text, '/admin/users/:id');
    assert.ok(res.text.includes(owner.email));
    assert.doesNotMatch(res.text, /secret plans/);
    assert.match(res.text, /<h2 id="signins-title">Recent sign-ins<\/h2>/);
    assert.match(res.text, /Sign-in failed \(wrong password\)/);
    for (const action of ['deactivate', 'end-sessions', 'role'].slice(0, 2))
      assert.match(res.text, new RegExp(`action="/admin/users/${owner.user.id}/${action}"`));
    assert.equal((res.text.match(/name="confirm"/g) ?? []).length, 2); // deactivate, end sessions (no MFA, owner's role fixed)
    assert.match(res.text, /workspace owner&#39;s role cannot change|workspace owner's role cannot change/);
    await page(admin, '/admin/users/not-an-id').expect(404);
    await page(admin, '/admin/users/00000000-0000-4000-8000-000000000000').expect(404);
    // Admins see themselves without a deactivate form.
    const self = await page(admin, `/admin/users/${admin.user.id}`).expect(200);
    assert.doesNotMatch(self.text, new RegExp(`action="/admin/users/${admin.user.id}/deactivate"`));
    assert.match(self.text, /cannot deactivate your own account/);
  });

  test('destructive forms without a recent password check go to /admin/reauth (303) and change nothing', async () => {
    const fresh = await signInPrivileged(t, 'admin');
    const owner = await signUp(t.url);
    const person = `/admin/users/${owner.user.id}`;
    for (const action of ['deactivate', 'end-sessions', 'reset-mfa', 'role']) {
      const res = status(
        await submit(
          fresh.agent,
          person,
          `${person}/${action}`,
          { confirm: owner.email, reason: 'x', role: 'admin' },
          { Accept: HTML, Referer: `${t.url}${person}` },
        ),
        303,
      );
      assert.equal(res.headers.location, `/admin/reauth?next=${encodeURIComponent(person)}`, action);
    }
    await owner.agent.get('/api/v1/me').expect(200);
  });

  test('deactivate from the page: the email typed back, then signed out at once; the sign-in form says why after the right password; reactivate lets them in', async () => {
    const owner = await signUp(t.url);
    const browser = await signIn(t.url, owner.email, owner.password);
    await admin.agent
      .post('/api/v1/admin/reauth')
      .set('X-CSRF-Token', admin.csrf)
      .send({ password: admin.password })
      .expect(204);
    const person = `/admin/users/${owner.user.id}`;

    const wrong = status(
      await submit(admin.agent, person, `${person}/deactivate`, {
        reason: 'left',
        confirm: 'someone-else@example.com',
      }),
      400,
    );
    assertNoInlineCode(wrong.text, 'refused deactivate');
    assert.match(wrong.text, /Nothing was changed: type the email address/);
    assert.match(wrong.text, /value="left"/); // what was typed comes back
    await browser.agent.get('/api/v1/me').expect(200);

    const done = status(
      await submit(admin.agent, person, `${person}/deactivate`, {
        reason: 'left',
        confirm: `  ${owner.email.toUpperCase()} `,
      }),
      303,
    );
    assert.equal(done.headers.location, person);
    const shown = await page(admin, person).expect(200);
    assert.match(shown.text, /is deactivated: 2 sessions and 0 API tokens ended/);
    assert.match(shown.text, /Deactivated<\/span> since/);
    await browser.agent.get('/api/v1/me').expect(401);

    // The sign-in form: the right password hears why, a wrong one the usual words.
    const visitor = request.agent(t.url);
    const right = status(
      await submit(visitor, '/login', '/login', { email: owner.email, password: owner.password }),
      401,
    );
    assert.match(right.text, /This account has been deactivated by an administrator/);
    const wrongPassword = status(
      await submit(visitor, '/login', '/login', {
        email: owner.email,
        password: 'not-the-password-at-all',
      }),
      401,
    );
    assert.doesNotMatch(wrongPassword.text, /deactivated/);

    const back = status(await submit(admin.agent, person, `${person}/reactivate`, {}), 303);
    assert.equal(back.headers.location, person);
    assert.match((await page(admin, person)).text, /can sign in again/);
    const again = await submit(visitor, '/login', '/login', { email: owner.email, password: owner.password });
    assert.equal(again.status, 303);
  });

  test('reset MFA and change the role from the page: the reason and role are checked, the form comes back with the message', async () => {
    await admin.agent
      .post('/api/v1/admin/reauth')
      .set('X-CSRF-Token', admin.csrf)
      .send({ password: admin.password })
      .expect(204);
    const owner = await signUp(t.url);
    await enrolMfa(owner);
    const person = `/admin/users/${owner.user.id}`;
    const empty = status(
      await submit(admin.agent, person, `${person}/reset-mfa`, {
        reason: '   ',
        confirm: owner.email,
      }),
      400,
    );
    assert.match(empty.text, /A reason is required/);
    const repeated = status(
      await submit(admin.agent, person, `${person}/reset-mfa`, {
        reason: ['a', 'b'],
        confirm: owner.email,
      }),
      400,
    );
    assert.match(repeated.text, /reason must be given once/i);
    const ok = status(
      await submit(admin.agent, person, `${person}/reset-mfa`, {
        reason: 'lost phone, checked ID',
        confirm: owner.email,
      }),
      303,
    );
    assert.equal(ok.headers.location, person);
    const after = await page(admin, person).expect(200);
    assert.match(after.text, /Two-step sign-in of .* is reset/);
    assert.doesNotMatch(after.text, /action="[^"]*\/reset-mfa"/);

    const auditor = await signInPrivileged(t, 'auditor');
    const who = `/admin/users/${auditor.user.id}`;
    const root = status(
      await submit(admin.agent, who, `${who}/role`, { role: 'root', confirm: auditor.email }),
      400,
    );
    assert.match(root.text, /role must be one of user, auditor, admin/i);
    const owners = status(
      await submit(admin.agent, person, `${person}/role`, { role: 'admin', confirm: owner.email }),
      409,
    );
    assert.match(owners.text, /owns a workspace/);
    const promoted = status(
      await submit(admin.agent, who, `${who}/role`, { role: 'admin', confirm: auditor.email }),
      303,
    );
    assert.equal(promoted.headers.location, who);
    await page(auditor, '/admin/users').expect(200); // the new role, at the next request
  });
});
