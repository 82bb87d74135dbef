// Screenshots of the pages in a real browser, at desktop and phone width, for
// a person to look at: `npm run screenshots` writes PNGs to .data/screenshots/
// (or the folder given as the argument, or BROWSER_SCREENSHOTS_DIR). More
// pages than the flows of `npm test` (test/browser/flows.test.ts): two-step
// sign-in, the editor's conflict page, the task board. Every page goes
// through the same checks (test/browser/harness.ts): no serious or critical
// accessibility violation, no console error, no Content Security Policy
// violation. It fails listing every page that did not pass.
//
// Needs Debian's chromium (`apt-get install -y chromium`, or CHROMIUM_PATH) and
// the same PostgreSQL and Redis as the tests (TEST_DATABASE_URL, TEST_REDIS_URL).
import path from 'node:path';
import { generate } from 'otplib';
import type { BrowserContext, Page } from 'playwright-core';
import { GOOD_PASSWORD, startTestServer, uniqueEmail } from '../helpers/server.ts';
import {
  checkPage,
  closeTab,
  launchBrowser,
  openTab,
  requireChromium,
  screenshotsDir,
  VIEWPORTS,
  type ViewportName,
} from './harness.ts';

if (process.argv[2]) process.env.BROWSER_SCREENSHOTS_DIR = path.resolve(process.argv[2]);
try {
  requireChromium();
} catch (err) {
  console.error(`screenshots: ${(err as Error).message}`);
  process.exit(1);
}
process.env.TEST_DATABASE_URL ??= 'postgres://postgres@127.0.0.1:5432/postgres';

const server = await startTestServer();
const browser = await launchBrowser();
const problems: string[] = [];

const NOTE_BODY = `## Before the trip

- [x] Book the hotel
- [ ] Renew the **passport**
- [ ] Print the [train times](https://example.com/trains)

> Leave by 7:30 to catch the early train.

\`\`\`
Platform 4, coach C, seats 41-42
\`\`\``;

/** The workspace pages: notes, the editor and its conflict page, the task board, search. */
async function workspace(page: Page, context: BrowserContext, shot: (name: string) => Promise<unknown>) {
  const newNote = async (title: string, body: string, tags: string[], other = '') => {
    await page.goto(`${server.url}/workspace/notes/new`);
    await page.fill('#title', title);
    await page.fill('#body', body);
    for (const tag of tags) await page.check(`#tag-${tag}`);
    if (other) await page.fill('#otherTags', other);
    await page.click('button:has-text("Create note")');
    await page.waitForURL(/\/workspace\/notes\/\d+$/);
    return page.url();
  };
  await newNote('Reading list', 'Books to read this winter: *The Dispossessed*, *Piranesi*.', [
    'reading',
    'later',
  ]);
  await newNote(
    'Quarterly planning',
    'Goals, owners and dates for the next quarter.',
    ['work', 'urgent'],
    'q3, planning',
  );
  const trip = await newNote('Trip to Lisbon', NOTE_BODY, ['personal', 'idea'], 'travel');
  await shot('note-view');

  await page.goto(`${server.url}/workspace/notes`);
  await shot('notes');
  await page.goto(`${trip}/edit`);
  await shot('note-edit');

  // The same note saved in another tab meanwhile: this tab's save is a conflict.
  const other = await context.newPage();
  await other.goto(`${trip}/edit`);
  await other.fill('#body', `${NOTE_BODY}\n\nAdded from my phone: bring the adapter.`);
  await other.click('button:has-text("Save")');
  await other.waitForURL(/\/workspace\/notes\/\d+$/);
  await other.close();
  await page.fill('#title', 'Trip to Lisbon and Porto');
  await page.fill('#body', `${NOTE_BODY}\n\nPorto for two days after Lisbon.`);
  await page.click('button:has-text("Save")');
  await shot('note-conflict');
  await page.click('button:has-text("Save mine as a copy")');
  await page.waitForURL(/\/workspace\/notes\/\d+$/);

  await page.goto(`${server.url}/workspace/tasks`);
  await shot('tasks-empty');
  await page.click('button:has-text("Weekly review")');
  await page.click('button:has-text("Follow up on an email")');
  await page.goto(`${server.url}/workspace/tasks/new`);
  await page.fill('#title', 'Book the train to Porto');
  await page.fill('#dueDate', '2026-01-15');
  await page.selectOption('#noteId', { label: 'Trip to Lisbon' });
  await shot('task-new');
  await page.click('button:has-text("Create task")');
  await page.goto(`${server.url}/workspace/tasks/new`);
  await page.fill('#title', 'Send the quarterly report to the whole team before the review meeting');
  await page.check('#status-done');
  await page.click('button:has-text("Create task")');
  await page.click('.column-open .task-card:first-child button:has-text("Start")');
  await page.waitForURL(/#task-\d+$/);
  await shot('tasks');
  // Keyboard: the focus ring on a card's button.
  await page.focus('.column-doing .task-card button');
  await page.keyboard.press('Tab');
  await shot('tasks-focus');

  await page.goto(`${server.url}/workspace/search?q=trip`);
  await shot('search');
  await page.goto(`${server.url}/workspace`);
  await shot('workspace');
}
try {
  for (const width of Object.keys(VIEWPORTS) as ViewportName[]) {
    const page = await openTab(browser, width);
    const context = page.context();
    const shot = (name: string) =>
      checkPage(page, name).catch((err: Error) => {
        problems.push(err.message);
      });

    await page.goto(`${server.url}/register`);
    await shot('register');
    await page.fill('#displayName', 'Grace Hopper');
    await page.fill('#email', uniqueEmail('shot'));
    await page.fill('#password', 'too-short');
    // Let the server's own check answer (the browser's would stop the short password first).
    await page.$eval('form.stack', (f) => f.setAttribute('novalidate', ''));
    await page.click('button.button-primary');
    await shot('register-error');
    await page.fill('#password', GOOD_PASSWORD);
    await page.click('button.button-primary');
    await page.waitForURL('**/workspace');
    await shot('workspace-empty');
    await page.goto(`${server.url}/account`);
    await shot('account');

    await page.click('text=Set up two-step sign-in');
    await page.click('button.button-primary');
    await shot('mfa-setup');
    const secret = ((await page.textContent('#mfa-key')) ?? '').replace(/ /g, '');
    await page.fill('#code', await generate({ secret }));
    await page.fill('#enable-password', GOOD_PASSWORD);
    await page.click('button.button-primary');
    await shot('mfa-codes');
    await page.click('text=I have saved them');
    await page.fill('#token-name', 'nightly export');
    await page.click('text=Create token');
    await shot('account-token');

    await workspace(page, context, shot);

    await page.goto(`${server.url}/no/such/page`);
    await shot('not-found');
    await page.click('header button'); // sign out
    await shot('login');
    await closeTab(page).catch((err: Error) => {
      problems.push(err.message);
    });
  }
} finally {
  await browser.close();
  await server.stop();
}
if (problems.length) {
  console.error(`screenshots: pages that did not pass the checks:\n${problems.join('\n')}`);
  process.exit(1);
}
console.log(`screenshots: written to ${screenshotsDir()}`);
