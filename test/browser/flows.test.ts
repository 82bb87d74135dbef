// The flows of issue 13 in a real browser (Debian's chromium, playwright-core),
// once at desktop and once at phone width, each width in its own browser
// contexts: register → write a note → find it by search; an admin suspends
// that tenant, its user sees the suspension page, the admin resumes it; an
// admin restores a tenant from a backup with the typed confirmation; an
// auditor exports an audit bundle (and it verifies); a deactivated user cannot
// sign in. Every page on the way, and the other pages people land on, goes
// through checkPage() (test/browser/harness.ts): axe finds nothing serious or
// critical, no console error, no CSP violation, and a screenshot is written.
//
// The admin flows drive the console pages (/admin/tenants/:id,
// /admin/users/:id, /admin/reauth, ...): a page that is not there fails the flow.
// No chromium is a failure, not a skip (CHROMIUM_PATH overrides the path).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { openSigner } from '../../audit/signing.ts';
import { type VerifyOk, verifyBundle } from '../../audit/verifier/verify.ts';
import { createPrivilegedUser } from '../../server/accounts/accounts.ts';
import { sealAll } from '../audit/chain-helpers.ts';
import {
  GOOD_PASSWORD,
  type SignedIn,
  signIn,
  signUp,
  startTestServer,
  type TestServer,
  uniqueEmail,
} from '../helpers/server.ts';
import {
  checkPage,
  closeTab,
  launchBrowser,
  openTab,
  requireChromium,
  VIEWPORTS,
  type ViewportName,
} from './harness.ts';

let server: TestServer;
let browser: Browser;
let dataDir: string;

const url = (p: string) => `${server.url}${p}`;
const pathOf = (page: Page) => new URL(page.url()).pathname;

/** Opens `p` and checks it; the answer must have `status`. */
async function visit(page: Page, p: string, name: string, status = 200): Promise<void> {
  const res = await page.goto(url(p));
  assert.equal(res?.status(), status, `GET ${p} answers ${status}`);
  await checkPage(page, name);
}

/** Signs in through the /login form; the browser lands on the account's home page. */
async function signInThroughPage(page: Page, email: string, password = GOOD_PASSWORD): Promise<void> {
  await visit(page, '/login', 'login');
  const form = page.locator('form[action="/login"]');
  await form.getByLabel('Email').fill(email);
  await form.getByLabel('Password', { exact: true }).fill(password);
  await form.locator('button[type=submit]').click();
  await page.waitForLoadState();
}

/** Every one of these GET pages answers (not 404) for the tab's session. */
async function assertPagesExist(page: Page, paths: string[]): Promise<void> {
  for (const p of paths) {
    const res = await page.request.get(url(p), { maxRedirects: 0 });
    assert.notEqual(res.status(), 404, `${p} answers 404`);
  }
}

/**
 * Submits the admin form posting to `action`, with `fields` filled (and
 * `ifPresent` where the form has them). A destructive action first sends the
 * admin to /admin/reauth: the password is confirmed there (that page checked
 * too) and, back on the page the form was on, the form is submitted again.
 */
async function adminSubmit(
  page: Page,
  action: string,
  fields: Record<string, string> = {},
  ifPresent: Record<string, string> = {},
): Promise<void> {
  const from = pathOf(page);
  for (let attempt = 0; attempt < 2; attempt++) {
    const form = page.locator(`form[action="${action}"]`);
    assert.equal(await form.count(), 1, `${pathOf(page)} has one form posting to ${action}`);
    for (const [name, value] of Object.entries(fields)) await form.locator(`[name="${name}"]`).fill(value);
    for (const [name, value] of Object.entries(ifPresent)) {
      const input = form.locator(`[name="${name}"]:not([type=hidden])`);
      if (await input.count()) await input.fill(value);
    }
    await form.locator('button[type=submit]').first().click();
    await page.waitForLoadState();
    if (pathOf(page) !== '/admin/reauth') return;
    assert.equal(attempt, 0, 'the admin is asked to confirm the password only once');
    await checkPage(page, 'admin-reauth');
    const reauth = page.locator('form:has(input[name="password"])');
    await reauth.locator('input[name="password"]').fill(GOOD_PASSWORD);
    await reauth.locator('button[type=submit]').first().click();
    await page.waitForLoadState();
    assert.notEqual(pathOf(page), '/admin/reauth', 'the password confirmation is accepted');
    assert.equal(
      pathOf(page),
      from,
      'after confirming the password the admin is back on the page of the form',
    );
  }
}

async function noErrorMessage(page: Page, what: string): Promise<void> {
  const errors = await page.locator('.message-error, [role=alert]').allTextContents();
  assert.deepEqual(errors, [], `${what}: no error message`);
}

async function privilegedTab(viewport: ViewportName, role: 'admin' | 'auditor'): Promise<Page> {
  const email = uniqueEmail(`browser-${role}`);
  await createPrivilegedUser(server.db.pool, {
    email,
    password: GOOD_PASSWORD,
    displayName: `Browser ${role}`,
    role,
  });
  const page = await openTab(browser, viewport);
  await signInThroughPage(page, email);
  assert.equal(pathOf(page), '/account', `an ${role} lands on the account page`);
  await checkPage(page, `account-${role}`);
  return page;
}

async function notesOf(who: SignedIn): Promise<string[]> {
  const res = await who.agent.get('/api/v1/notes').expect(200);
  return (res.body.notes as Array<{ title: string }>).map((n) => n.title);
}

describe('the pages in a real browser', () => {
  before(async () => {
    requireChromium(); // fails the file loudly: no browser, no browser tests
    dataDir = mkdtempSync(path.join(tmpdir(), 'enclave-browser-'));
    server = await startTestServer({ DATA_DIR: dataDir });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  for (const viewport of Object.keys(VIEWPORTS) as ViewportName[]) {
    describe(`at ${viewport} width (${VIEWPORTS[viewport].width}×${VIEWPORTS[viewport].height})`, () => {
      const tabs: Page[] = [];
      let owner: { page: Page; tenantId: string; title: string } | undefined;
      let adminPage: Page | undefined;
      const admin = async () => {
        if (!adminPage) {
          adminPage = await privilegedTab(viewport, 'admin');
          tabs.push(adminPage);
        }
        return adminPage;
      };
      const tab = async () => {
        const page = await openTab(browser, viewport);
        tabs.push(page);
        return page;
      };
      after(async () => {
        for (const page of tabs) await closeTab(page);
      });

      test('a visitor registers, writes a note and finds it by searching', async () => {
        const page = await tab();
        await visit(page, '/register', 'register');
        const form = page.locator('form[action="/register"]');
        await form.getByLabel('Your name').fill('Ada Lovelace');
        await form.getByLabel('Email').fill(uniqueEmail('browser'));
        await form.getByLabel('Password', { exact: true }).fill(GOOD_PASSWORD);
        await form.locator('button[type=submit]').click();
        await page.waitForURL('**/workspace');
        await checkPage(page, 'workspace-empty');

        await page.getByRole('link', { name: 'New note' }).click();
        await page.waitForURL('**/workspace/notes/new');
        await checkPage(page, 'note-new');
        const title = `Harbour survey ${viewport}`;
        await page.getByLabel('Title').fill(title);
        await page.getByLabel('Text').fill('Count the **lighthouses** along the northern coast.');
        await page.locator('form.editor button[type=submit]').click();
        await page.waitForURL(/\/workspace\/notes\/\d+$/);
        await checkPage(page, 'note');
        assert.equal(await page.getByRole('heading', { level: 1 }).textContent(), title);

        const search = page.locator('form[role=search]');
        await search.getByLabel('Search notes').fill('lighthouses');
        await search.locator('button[type=submit]').click();
        await page.waitForURL(/\/workspace\/search\?q=lighthouses$/);
        await checkPage(page, 'search');
        const found = page.locator('.results').getByRole('link', { name: title });
        assert.equal(await found.count(), 1, 'the search finds the note');
        await found.click();
        await page.waitForURL(/\/workspace\/notes\/\d+$/);

        const me = await page.request.get(url('/api/v1/me'));
        owner = { page, tenantId: (await me.json()).tenantId as string, title };
        assert.match(owner.tenantId, /^[a-z0-9]{12}$/);
      });

      test('an admin suspends that tenant: its user gets the suspension page until the admin resumes it', async () => {
        assert.ok(owner, 'the registration flow made a tenant');
        const { tenantId } = owner;
        const page = await admin();
        const tenantPage = `/admin/tenants/${tenantId}`;
        await assertPagesExist(page, [tenantPage, '/admin/reauth']);

        await visit(page, tenantPage, 'admin-tenant');
        await adminSubmit(page, `${tenantPage}/suspend`, {}, { confirm: tenantId });
        await noErrorMessage(page, 'suspend');
        await checkPage(page, 'admin-tenant-suspended');

        await visit(owner.page, '/workspace', 'suspended', 403);
        assert.equal(
          await owner.page.getByRole('heading', { level: 1 }).textContent(),
          'This workspace is suspended',
        );
        assert.equal(await owner.page.getByText(owner.title).count(), 0, 'nothing of the workspace shows');

        if (pathOf(page) !== tenantPage) await page.goto(url(tenantPage));
        await adminSubmit(page, `${tenantPage}/resume`, {}, { confirm: tenantId });
        await noErrorMessage(page, 'resume');
        await checkPage(page, 'admin-tenant-resumed');

        await visit(owner.page, '/workspace', 'workspace');
        assert.equal(
          await owner.page.getByRole('link', { name: owner.title }).count(),
          1,
          'the note is back',
        );
      });

      test('an admin restores a tenant from a backup only after typing its id', async () => {
        const page = await admin();
        const keeper = await signUp(server.url);
        const tenantId = keeper.user.tenantId as string;
        const tenantPage = `/admin/tenants/${tenantId}`;
        await assertPagesExist(page, [tenantPage, '/admin/reauth']);
        const created = await keeper.agent
          .post('/api/v1/notes')
          .set('X-CSRF-Token', keeper.csrf)
          .send({ title: 'Kept by the backup', body: 'Restored later.' })
          .expect(201);

        await visit(page, tenantPage, 'admin-tenant-backups');
        await adminSubmit(page, `${tenantPage}/backups`);
        await noErrorMessage(page, 'back up now');
        await checkPage(page, 'admin-tenant-backed-up');
        const listed = await page.request.get(url(`/api/v1/admin/tenants/${tenantId}/backups`));
        const backups = (await listed.json()).backups as Array<{ id: string; outcome: string }>;
        const backup = backups.find((b) => b.outcome === 'succeeded');
        assert.ok(backup, `the tenant has a good backup: ${JSON.stringify(backups)}`);

        await keeper.agent
          .delete(`/api/v1/notes/${created.body.note.id}`)
          .set('X-CSRF-Token', keeper.csrf)
          .expect(204);
        assert.deepEqual(await notesOf(keeper), []);

        const restorePage = `${tenantPage}/backups/${backup.id}/restore`;
        // The tenant page links to the restore page of each good backup.
        await page.locator(`a[href="${restorePage}"]`).first().click();
        await page.waitForLoadState();
        assert.equal(pathOf(page), restorePage);
        await checkPage(page, 'admin-restore-confirm');
        assert.equal(await page.locator(`form[action="${restorePage}"] [name="confirm"]`).count(), 1);

        await adminSubmit(page, restorePage, { confirm: 'not-the-id' });
        await checkPage(page, 'admin-restore-refused');
        assert.ok((await page.locator('[role=alert]').count()) > 0, 'the page says the id does not match');
        assert.deepEqual(await notesOf(keeper), [], 'a wrong confirmation restores nothing');

        if (pathOf(page) !== restorePage) await page.goto(url(restorePage));
        await adminSubmit(page, restorePage, { confirm: tenantId });
        await noErrorMessage(page, 'restore');
        await checkPage(page, 'admin-restored');
        const again = await signIn(server.url, keeper.email, keeper.password);
        assert.deepEqual(await notesOf(again), ['Kept by the backup'], 'the backup came back');
      });

      test('an auditor downloads an audit bundle from the audit page, and it verifies', async () => {
        const page = await privilegedTab(viewport, 'auditor');
        tabs.push(page);
        const signer = await openSigner(path.join(dataDir, 'audit-signing-key.pem'), { create: false });
        await sealAll(server.db.pool, signer).catch((err: Error) => {
          throw new Error(
            `sealing waits for every older transaction in the cluster (is one left open?): ${err.message}`,
          );
        });
        await page.getByRole('link', { name: 'Audit trail' }).click();
        await page.waitForURL('**/audit');
        await checkPage(page, 'audit');

        const download = async (name: RegExp) => {
          const [file] = await Promise.all([
            page.waitForEvent('download'),
            page.getByRole('link', { name }).click(),
          ]);
          return { name: file.suggestedFilename(), bytes: readFileSync(await file.path()) };
        };
        const bundle = await download(/^Bundle of the whole trail/);
        assert.match(bundle.name, /^enclave-audit-all-\d{4}-\d\d-\d\d\.tar\.gz$/);
        const keys = await download(/^Public keys/);
        const result = await verifyBundle(bundle.bytes, keys.bytes.toString('utf8'));
        assert.equal(result.ok, true, JSON.stringify(result));
        assert.ok((result as VerifyOk).chains.length > 0, 'the bundle holds the sealed chains');
        await checkPage(page, 'audit-after-download');
      });

      test('a user an admin deactivated cannot sign in', async () => {
        const page = await admin();
        const person = await signUp(server.url);
        const userPage = `/admin/users/${person.user.id}`;
        await assertPagesExist(page, [userPage, '/admin/reauth']);

        await visit(page, userPage, 'admin-user');
        await adminSubmit(
          page,
          `${userPage}/deactivate`,
          {},
          { confirm: person.email, reason: 'left the team' },
        );
        await noErrorMessage(page, 'deactivate');
        await checkPage(page, 'admin-user-deactivated');
        await person.agent.get('/api/v1/me').expect(401);

        const theirs = await tab();
        await signInThroughPage(theirs, person.email, person.password);
        assert.equal(pathOf(theirs), '/login', 'the sign-in is refused');
        assert.equal(await theirs.locator('[role=alert]').count(), 1, 'the page says why');
        await checkPage(theirs, 'login-deactivated');
        assert.equal((await theirs.request.get(url('/workspace'), { maxRedirects: 0 })).status(), 303);
      });

      test('the other pages people land on pass the same checks', async () => {
        assert.ok(owner, 'the registration flow made an account');
        await visit(owner.page, '/account', 'account');
        await visit(owner.page, '/workspace/notes', 'notes');
        await visit(owner.page, '/workspace/tasks', 'tasks');
        await visit(owner.page, '/no/such/page', 'not-found', 404);

        const page = await admin();
        const console = ['/admin', '/admin/tenants', '/admin/users', '/admin/threats', '/admin/jobs'];
        for (const p of console)
          await visit(page, p, `admin${p.slice('/admin'.length).replace(/\//g, '-') || '-console'}`);
      });
    });
  }
});
