// Checks on the HTML pages. The pages carry no JavaScript at all and the
// strict CSP forbids inline code, so none of it may be in the markup, whatever
// a note or a name contains.
import assert from 'node:assert/strict';

/** No script (inline or loaded), no inline style, no event handler, no script URL, no asset from another origin. */
export function assertNoInlineCode(html: string, page: string): void {
  assert.doesNotMatch(html, /<script/i, `${page}: a <script> element`);
  assert.doesNotMatch(html, /<style/i, `${page}: a <style> element`);
  assert.doesNotMatch(html, /<[a-z][^>]*\sstyle\s*=/i, `${page}: a style= attribute`);
  assert.doesNotMatch(html, /<[a-z][^>]*\son[a-z]+\s*=/i, `${page}: an on*= event handler attribute`);
  assert.doesNotMatch(
    html,
    /(href|src|action|formaction)\s*=\s*"\s*(javascript|data|vbscript):/i,
    `${page}: a script URL`,
  );
  // (A note may link to another site; nothing may be loaded from one.)
  assert.doesNotMatch(
    html,
    /<(link|script|img|iframe|source)\b[^>]*(src|href)="(https?:)?\/\//i,
    `${page}: an asset from another origin`,
  );
}
