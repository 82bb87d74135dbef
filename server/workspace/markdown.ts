// Note bodies are Markdown, stored as typed and rendered to HTML on the way
// out. Rendering is where safety lives (stored text is never trusted as HTML):
// - `html: false`: raw HTML in the source (`<script>`, `<img onerror>`) is
//   escaped and shows as text;
// - links pass an allow-list of schemes (http, https, mailto, or relative);
//   `javascript:`, `vbscript:`, `data:`, `file:` and any other scheme are not
//   made into links at all (markdown-it's own check still lets `data:image/...`
//   through; ours does not);
// - images are off: with the strict CSP (img-src 'self') a remote image could
//   not load anyway, and a note should not be a tracking pixel for its reader;
// - every link gets rel="noopener noreferrer nofollow".
// The result is safe to insert unescaped into a page (`<%~ %>` in Eta).
import markdownIt, { type MarkdownIt } from 'markdown-it';

const SCHEME = /^([a-z][a-z0-9+.-]*):/i;
const ALLOWED_SCHEMES = new Set(['http', 'https', 'mailto']);

/** True for links we render: relative ones and http(s)/mailto. */
export function isSafeLink(url: string): boolean {
  const scheme = SCHEME.exec(url.trim());
  return !scheme || ALLOWED_SCHEMES.has((scheme[1] as string).toLowerCase());
}

function createRenderer(): MarkdownIt {
  const md = markdownIt('default', { html: false, linkify: true, typographer: false });
  md.disable('image');
  md.validateLink = isSafeLink;
  const defaultLinkOpen =
    md.renderer.rules.link_open ??
    ((tokens, idx, options, _env, self) => self.renderToken(tokens, idx, options));
  md.renderer.rules.link_open = (tokens, idx, options, env, self) => {
    tokens[idx]?.attrSet('rel', 'noopener noreferrer nofollow');
    return defaultLinkOpen(tokens, idx, options, env, self);
  };
  return md;
}

const renderer = createRenderer();

/** Markdown source to HTML that is safe to put in a page as it is. */
export function renderMarkdown(source: string): string {
  return renderer.render(source);
}

/**
 * Plain text for previews and list excerpts: the first `max` characters with
 * whitespace runs collapsed (the Markdown marks stay; the page escapes it).
 */
export function excerpt(source: string, max = 200): string {
  const flat = source.replace(/\s+/g, ' ').trim();
  return flat.length <= max ? flat : `${flat.slice(0, max - 1).trimEnd()}…`;
}
