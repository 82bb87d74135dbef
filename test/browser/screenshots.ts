// Screenshots of the pages in a real browser, at desktop and phone width, for
// a person to look at: `npm run screenshots` writes PNGs to
// .data/screenshots/. Not part of `npm test` (it needs Debian's chromium:
// `apt-get install -y chromium`). It fails if the browser reports a Content
// Security Policy violation or any other console error not caused by a page
// we meant to fail.
//
// Needs the same PostgreSQL and Redis as the tests (TEST_DATABASE_URL, TEST_REDIS_URL).
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { generate } from 'otplib';
import { chromium } from 'playwright-core';
import { GOOD_PASSWORD, startTestServer, uniqueEmail } from '../helpers/server.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const OUT = path.resolve(process.argv[2] ?? '.data/screenshots');
const VIEWPORTS = {
  desktop: { width: 1280, height: 900 },
  phone: { width: 390, height: 844 },
} as const;

if (!existsSync(CHROMIUM)) {
  console.error(`screenshots: no browser at ${CHROMIUM}; install it with: apt-get install -y chromium`);
  process.exit(1);
}
process.env.TEST_DATABASE_URL ??= 'postgres://postgres@127.0.0.1:5432/postgres';
mkdirSync(OUT, { recursive: true });

const server = await startTestServer();
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
  ],
});
const problems: string[] = [];
try {
  for (const [width, viewport] of Object.entries(VIEWPORTS)) {
    const context = await browser.newContext({ viewport });
    const page = await context.newPage();
    page.on('console', (m) => {
      // A 4xx that we asked for (a refused form) is logged as a failed load; anything else is a problem.
      if (m.type() === 'error' && !/status of 4\d\d/.test(m.text())) problems.push(`${width}: ${m.text()}`);
    });
    const shot = (name: string) =>
      page.screenshot({ path: path.join(OUT, `${name}-${width}.png`), fullPage: true });

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
    await page.waitForURL('**/account');
    await shot('account');

    await page.click('text=Set up two-step sign-in');
    await page.click('button.button-primary');
    await shot('mfa-setup');
    const secret = ((await page.textContent('#mfa-key')) ?? '').replace(/ /g, '');
    await page.fill('#code', await generate({ secret }));
    await page.click('button.button-primary');
    await shot('mfa-codes');
    await page.click('text=I have saved them');
    await page.fill('#token-name', 'nightly export');
    await page.click('text=Create token');
    await shot('account-token');

    await page.goto(`${server.url}/no/such/page`);
    await shot('not-found');
    await page.click('header button'); // sign out
    await shot('login');
    await context.close();
  }
} finally {
  await browser.close();
  await server.stop();
}
if (problems.length) {
  console.error(`screenshots: the browser reported:\n${problems.join('\n')}`);
  process.exit(1);
}
console.log(`screenshots: written to ${OUT}`);
