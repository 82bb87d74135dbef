// Server-rendered pages: Eta templates in views/, every interpolation escaped
// (`<%= %>`; `<%~ %>` is kept for the layout's body). render() hands every page
// the CSRF token, the signed-in person and the flash messages, so no template
// can forget them. The CSP allows no inline script or style, so the stylesheet
// is a file under views/assets/, served by the app with a content-hash URL.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Eta } from 'eta';
import { type Request, type RequestHandler, type Response, Router } from 'express';
import { csrfToken } from '../auth/csrf.ts';

export const VIEWS_DIR = fileURLToPath(new URL('../../views/', import.meta.url));
const ASSETS_DIR = path.join(VIEWS_DIR, 'assets');

export interface Message {
  kind: 'success' | 'error' | 'info';
  text: string;
}

declare module 'express-session' {
  interface SessionData {
    /** Messages for the next page this session renders (post/redirect/get). */
    flash?: Message[];
  }
}

// Compiled templates are cached; set ETA_NO_CACHE=1 while editing templates.
const eta = new Eta({
  views: VIEWS_DIR,
  autoEscape: true,
  cache: process.env.ETA_NO_CACHE !== '1',
  autoTrim: [false, 'nl'],
});

/** Keeps a message for the next page this session shows. */
export function flash(req: Request, kind: Message['kind'], text: string): void {
  if (!req.session) return;
  req.session.flash = [...(req.session.flash ?? []), { kind, text }];
}

function takeFlash(req: Request): Message[] {
  const messages = req.session?.flash ?? [];
  if (req.session?.flash) delete req.session.flash;
  return messages;
}

/** The form token of the session, or '' where there is no session (its store may be down). */
function tokenOf(req: Request): string {
  if (!req.session) return '';
  try {
    return csrfToken(req);
  } catch {
    return '';
  }
}

/** Our services speak in sentence fragments ("the password must be ..."); pages show sentences. */
export function sentence(text: string): string {
  const trimmed = text.trim();
  if (!trimmed) return trimmed;
  const capital = trimmed[0]?.toUpperCase() + trimmed.slice(1);
  return /[.!?]$/.test(capital) ? capital : `${capital}.`;
}

const DATE_TIME = new Intl.DateTimeFormat('en-GB', {
  dateStyle: 'medium',
  timeStyle: 'short',
  timeZone: 'UTC',
});

/** "22 Nov 2026, 16:47 UTC": unambiguous on every device, whatever its locale. */
export function displayTime(value: Date | string): string {
  return `${DATE_TIME.format(new Date(value))} UTC`;
}

/** Helpers every template may call. */
const helpers = { asset: assetUrl, displayTime };

/**
 * Renders `views/<template>.eta` with `data` plus what every page needs, as a
 * page that is never cached (it carries a form token and personal data).
 */
export function render(
  res: Response,
  template: string,
  data: Record<string, unknown> = {},
  status = 200,
): void {
  page(res, template, data, status, true);
}

/** `withToken` false: no form token unless someone is signed in (the sign-out button needs one). */
function page(
  res: Response,
  template: string,
  data: Record<string, unknown>,
  status: number,
  withToken: boolean,
): void {
  const req = res.req;
  const extra = Array.isArray(data.messages) ? (data.messages as Message[]) : [];
  const html = eta.render(template, {
    title: undefined,
    ...data,
    ...helpers,
    csrfToken: withToken || req.user ? tokenOf(req) : '',
    user: req.user ?? null,
    path: req.path,
    messages: [...takeFlash(req), ...extra],
  });
  res.status(status).set('Cache-Control', 'no-store').type('html').send(html);
}

const TITLES: Record<number, string> = {
  400: 'That did not work',
  401: 'Please sign in',
  403: 'Not allowed',
  404: 'Page not found',
  409: 'That did not work',
  429: 'Too many attempts',
  503: 'Temporarily unavailable',
};

/** The error page: same status and message as the JSON body the API would get. */
export function renderErrorPage(
  res: Response,
  problem: { status: number; code: string; message: string },
): void {
  const { status, code } = problem;
  const title = TITLES[status] ?? (status >= 500 ? 'Something went wrong' : 'That did not work');
  // No new session (and cookie) for an anonymous visitor's 404.
  page(res, 'error', { title, status, code, message: sentence(problem.message) }, status, false);
}

// --- Static assets --------------------------------------------------------

interface Asset {
  body: Buffer;
  type: string;
  hash: string;
}

const TYPES: Record<string, string> = {
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

/** Read once at start: a handful of small files, and the hash must match what is served. */
function loadAssets(dir: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  for (const name of readdirSync(dir)) {
    const type = TYPES[path.extname(name)];
    const file = path.join(dir, name);
    if (!type || !statSync(file).isFile()) continue;
    const body = readFileSync(file);
    const hash = createHash('sha256').update(body).digest('hex').slice(0, 16);
    assets.set(name, { body, type, hash });
  }
  return assets;
}

const ASSETS = loadAssets(ASSETS_DIR);

/** `/assets/app.css?v=<content hash>`: a changed file gets a new URL, so it can be cached for a year. */
export function assetUrl(name: string): string {
  const asset = ASSETS.get(name);
  if (!asset) throw new Error(`no asset named ${name} in ${ASSETS_DIR}`);
  return `/assets/${name}?v=${asset.hash}`;
}

/**
 * Serves views/assets/*. Mounted before the session middleware: a stylesheet
 * needs no session, and should not cost a Redis round trip.
 */
export function assetsRouter(): RequestHandler {
  const router = Router();
  router.get('/assets/:name', (req, res, next) => {
    const asset = ASSETS.get(req.params.name);
    if (!asset) return next();
    const versioned = req.query.v === asset.hash;
    res.set({
      'Content-Type': asset.type,
      ETag: `"${asset.hash}"`,
      // The versioned URL never changes content; an unversioned one is revalidated each time.
      'Cache-Control': versioned ? 'public, max-age=31536000, immutable' : 'no-cache',
    });
    if (req.fresh) return void res.status(304).end();
    res.send(asset.body);
  });
  return router;
}
