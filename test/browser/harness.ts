// The browser side of the tests: Debian's chromium driven by playwright-core,
// one context per width (desktop 1280×900, phone 390×844), and checkPage(),
// which every page a browser test visits goes through: no serious or critical
// accessibility violation (axe, @axe-core/playwright), no console error, no
// Content Security Policy violation (chromium reports those to the console as
// errors; the pages carry no script, so there is nothing to listen with in the
// page itself), no failed asset, and a screenshot for people to look at.
//
// CHROMIUM_PATH overrides /usr/bin/chromium; BROWSER_SCREENSHOTS_DIR overrides
// .data/screenshots/ (git-ignored). Used by test/browser/flows.test.ts and
// test/browser/screenshots.ts.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { AxeBuilder } from '@axe-core/playwright';
import { type Browser, chromium, type Page } from 'playwright-core';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export const VIEWPORTS = {
  desktop: { width: 1280, height: 900 },
  phone: { width: 390, height: 844 },
} as const;
export type ViewportName = keyof typeof VIEWPORTS;

/** Headless, no sandbox (CI runs as root), and nothing that calls home while a test runs. */
export const LAUNCH_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

const REPO = path.resolve(import.meta.dirname, '../..');

/** Where screenshots go: BROWSER_SCREENSHOTS_DIR, else .data/screenshots/ of the checkout. */
export function screenshotsDir(): string {
  return path.resolve(REPO, process.env.BROWSER_SCREENSHOTS_DIR ?? '.data/screenshots');
}

/** Fails loudly (never skips) when there is no browser to drive. */
export function requireChromium(executable = CHROMIUM_PATH): string {
  if (!existsSync(executable))
    throw new Error(`no browser at ${executable}; install it with apt-get install -y chromium`);
  return executable;
}

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: requireChromium(), args: LAUNCH_ARGS });
}

interface Watch {
  viewport: ViewportName;
  /** Console errors, CSP violations, page errors and failed assets not yet reported by checkPage. */
  problems: string[];
  /** Main-document URLs that answered 4xx: a page we asked for on purpose (a refusal, a 404). */
  refusedDocuments: Set<string>;
}
const watches = new WeakMap<Page, Watch>();

/**
 * A new browser context at `viewport`'s size with one page, watched from the
 * start: console errors (CSP violations among them), uncaught page errors,
 * assets answering 4xx/5xx. A main document answering 4xx is not a problem by
 * itself (the test asserts its status); its "Failed to load resource" line is ignored.
 */
export async function openTab(browser: Browser, viewport: ViewportName): Promise<Page> {
  const context = await browser.newContext({ viewport: VIEWPORTS[viewport], acceptDownloads: true });
  const page = await context.newPage();
  const watch: Watch = { viewport, problems: [], refusedDocuments: new Set() };
  watches.set(page, watch);
  page.on('response', (res) => {
    const request = res.request();
    const status = res.status();
    if (request.isNavigationRequest() && request.frame() === page.mainFrame()) {
      if (status >= 400 && status < 500) watch.refusedDocuments.add(res.url());
      else if (status >= 500) watch.problems.push(`the page ${res.url()} answered ${status}`);
    } else if (status >= 400) {
      watch.problems.push(`${request.resourceType()} ${res.url()} answered ${status}`);
    }
  });
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const text = m.text();
    if (
      /^Failed to load resource: .*status of 4\d\d/.test(text) &&
      watch.refusedDocuments.has(m.location().url)
    )
      return;
    watch.problems.push(`console error: ${text}${m.location().url ? ` (${m.location().url})` : ''}`);
  });
  page.on('pageerror', (err) => watch.problems.push(`page error: ${err.message}`));
  return page;
}

export function viewportOf(page: Page): ViewportName {
  const watch = watches.get(page);
  assert.ok(watch, 'the page was opened with openTab()');
  return watch.viewport;
}

/** Closes the page's context; fails if it reported anything after its last checkPage. */
export async function closeTab(page: Page): Promise<void> {
  const watch = watches.get(page);
  await page.context().close();
  if (watch?.problems.length)
    assert.fail(
      `the browser (${watch.viewport}) reported after the last checked page:\n  ${watch.problems.join('\n  ')}`,
    );
}

const BLOCKING = new Set(['serious', 'critical']);

/**
 * Checks the page as it is now and writes `<name>-<viewport>.png`: axe finds
 * no serious or critical violation, and nothing went wrong in the browser
 * since the previous check on this page (console errors, CSP violations,
 * page errors, failed assets). Fails with every finding, readably.
 */
export async function checkPage(page: Page, name: string): Promise<void> {
  const watch = watches.get(page);
  assert.ok(watch, 'the page was opened with openTab()');
  const where = `${name} (${watch.viewport}, ${page.url()})`;
  const dir = screenshotsDir();
  mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: path.join(dir, `${name}-${watch.viewport}.png`), fullPage: true });

  const results = await new AxeBuilder({ page }).analyze();
  const found: string[] = watch.problems.splice(0);
  for (const v of results.violations) {
    if (!BLOCKING.has(v.impact ?? '')) continue;
    found.push(`axe ${v.id} (${v.impact}): ${v.help} ${v.helpUrl}`);
    for (const node of v.nodes.slice(0, 5)) {
      const summary = (node.failureSummary ?? '').replace(/\s*\n\s*/g, ' ');
      found.push(`    at ${node.target.join(' ')}: ${summary}`);
    }
    if (v.nodes.length > 5) found.push(`    and ${v.nodes.length - 5} more`);
  }
  // Anything the analysis itself made the browser say counts too.
  found.push(...watch.problems.splice(0));
  if (found.length) assert.fail(`${where}:\n  ${found.join('\n  ')}`);
}
