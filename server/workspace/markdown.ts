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
//
// A note is rendered once, when it is written, and the HTML stored with it
// (renderNote; notes.ts): reading a note never runs markdown-it. What one
// render may cost is bounded before it starts (NOTE_RENDER_LIMITS): markdown-it
// is linear but slow on text dense with syntax (a 79k-character table took
// 0.3 s), and its automatic linking of bare URLs is slower than linear in a
// long paragraph full of them. So a note with more Markdown syntax than a
// long, richly formatted document has is shown as plain, escaped, preformatted
// text with a line saying why; one with many bare URLs or addresses is
// rendered without turning them into links (written links still work).
// Worst cases measured in bench/markdown.bench.ts.
import markdownIt, { type MarkdownIt } from 'markdown-it';

const SCHEME = /^([a-z][a-z0-9+.-]*):/i;
const ALLOWED_SCHEMES = new Set(['http', 'https', 'mailto']);

/** True for links we render: relative ones and http(s)/mailto. */
export function isSafeLink(url: string): boolean {
  const scheme = SCHEME.exec(url.trim());
  return !scheme || ALLOWED_SCHEMES.has((scheme[1] as string).toLowerCase());
}

function createRenderer(linkify: boolean): MarkdownIt {
  const md = markdownIt('default', { html: false, linkify, typographer: false });
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

const renderer = createRenderer(true);
const withoutLinkify = createRenderer(false);

/** Markdown source to HTML that is safe to put in a page as it is (no cost bound: see renderNote). */
export function renderMarkdown(source: string): string {
  return renderer.render(source);
}

export const NOTE_RENDER_LIMITS = {
  /**
   * Markdown syntax, weighed by what it costs markdown-it: every character that
   * can start syntax (line breaks, emphasis, backticks...) counts 1, a table
   * pipe `|` 2 and an opening bracket `[` 6 (each one starts a search for its
   * link). A 95,000-character document dense with headings, lists, tables,
   * code and links weighs 23,000 and renders in 15 ms; the worst inputs found
   * at 25,000 take 40-60 ms on a busy 2-core machine, where a 79,000-character
   * table (weight 80,000) took 75-350 ms (bench/markdown.bench.ts).
   */
  syntaxWeight: 25_000,
  /**
   * Bare URLs and e-mail addresses (`://`, `@`, `mailto:`, `www.` in the text)
   * turned into links automatically. linkify's cost grows with their number
   * times the length of the paragraph they are in; above this many the note is
   * rendered without automatic links (written ones still work).
   */
  autoLinks: 100,
  /** The HTML kept for one note (counted in the workspace's storage); above it the note is shown as plain text. */
  htmlChars: 500_000,
} as const;

// markdown-it's inline terminators (where an inline rule may start) plus `|` for tables.
const SYNTAX = /[\n!#$%&*+\-:<=>@[\\\]^_`{|}~]/g;
const PIPE = /\|/g;
const BRACKET = /\[/g;
// Bare URLs and addresses, which linkify looks for in text; not the targets of
// written links `[x](https://...)` or autolinks `<https://...>`, which it never scans.
const AUTO_LINK = /(?<!\]\([a-z]*|<[a-z]*):\/\/|(?<!\]\(|<)mailto:|@|www\./gi;

function count(source: string, pattern: RegExp): number {
  let n = 0;
  for (const _ of source.matchAll(pattern)) n += 1;
  return n;
}

/** The weight of a source's Markdown syntax, as NOTE_RENDER_LIMITS.syntaxWeight counts it. */
export function syntaxWeight(source: string): number {
  return count(source, SYNTAX) + count(source, PIPE) + 5 * count(source, BRACKET);
}

/** How a note was rendered: Markdown, Markdown without automatic links, or plain text. */
export type NoteRendering = 'markdown' | 'markdown-without-autolinks' | 'plain';

/** The HTML stored for a note body, at a bounded cost (NOTE_RENDER_LIMITS). */
export function renderNote(source: string): { html: string; rendering: NoteRendering } {
  if (syntaxWeight(source) > NOTE_RENDER_LIMITS.syntaxWeight) {
    return { html: plainText(source, 'it has more Markdown formatting than we render'), rendering: 'plain' };
  }
  const linkify = count(source, AUTO_LINK) <= NOTE_RENDER_LIMITS.autoLinks;
  const html = (linkify ? renderer : withoutLinkify).render(source);
  if (html.length > NOTE_RENDER_LIMITS.htmlChars) {
    return { html: plainText(source, 'its formatted version would be too large'), rendering: 'plain' };
  }
  return { html, rendering: linkify ? 'markdown' : 'markdown-without-autolinks' };
}

/** The source as escaped, preformatted text, with a line saying why it is not formatted. */
export function plainText(source: string, why: string): string {
  const escaped = source.replace(/[&<>]/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : '&gt;'));
  return `<p class="hint">This note is shown as plain text: ${why}.</p>\n<pre class="plain-text">${escaped}</pre>\n`;
}

/** Whitespace that `replace(/\s+/g, ' ')` would change: any but a single space, or two in a row. */
const COLLAPSIBLE = /[^\S ]| {2}/;

/**
 * Plain text for previews and list excerpts: the first `max` characters with
 * whitespace runs collapsed (the Markdown marks stay; the page escapes it).
 */
export function excerpt(source: string, max = 200): string {
  // Most text has only single spaces: then collapsing changes nothing, and a
  // test that finds nothing is much cheaper than a replace of every space.
  const flat = (COLLAPSIBLE.test(source) ? source.replace(/\s+/g, ' ') : source).trim();
  return flat.length <= max ? flat : `${flat.slice(0, max - 1).trimEnd()}…`;
}
