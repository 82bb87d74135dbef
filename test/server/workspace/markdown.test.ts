import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { excerpt, isSafeLink, renderMarkdown } from '../../../server/workspace/markdown.ts';

describe('renderMarkdown', () => {
  test('renders ordinary Markdown', () => {
    assert.equal(
      renderMarkdown('# Title\n\n*a* **b** `c`'),
      '<h1>Title</h1>\n<p><em>a</em> <strong>b</strong> <code>c</code></p>\n',
    );
  });

  test('raw HTML is escaped, never passed through', () => {
    const html = renderMarkdown(
      '<script>alert(1)</script>\n\n<div onclick="x()">hi</div>\n\ntext <b onmouseover=y()>b</b>',
    );
    assert.doesNotMatch(html, /<script|<div|<b /);
    assert.match(html, /&lt;script&gt;/);
  });

  for (const [name, source] of [
    ['javascript:', '[x](javascript:alert(1))'],
    ['mixed case', '[x](JaVaScRiPt:alert(1))'],
    ['entity-encoded', '[x](&#x6A;avascript:alert(1))'],
    ['leading space', '[x]( javascript:alert(1))'],
    ['vbscript:', '[x](vbscript:msgbox(1))'],
    ['data: html', '[x](data:text/html,<script>alert(1)</script>)'],
    ['data: image link', '[x](data:image/png;base64,AAAA)'],
    ['file:', '[x](file:///etc/passwd)'],
    ['reference link', '[x][r]\n\n[r]: javascript:alert(1)'],
    ['autolink', '<javascript:alert(1)>'],
  ] as const) {
    test(`a ${name} link is not made into a link`, () => {
      const html = renderMarkdown(source);
      assert.doesNotMatch(html, /<a /, html);
    });
  }

  test('images are not rendered, not even data: images', () => {
    assert.doesNotMatch(
      renderMarkdown('![x](https://tracker.example/p.gif) ![y](data:image/png;base64,AAAA)'),
      /<img/,
    );
  });

  test('safe links get rel="noopener noreferrer nofollow"', () => {
    for (const url of [
      'https://example.com/a?b=c',
      'http://example.com',
      'mailto:me@example.com',
      '/workspace/notes/1',
      '#top',
    ]) {
      const html = renderMarkdown(`[x](${url})`);
      assert.match(html, /<a href="[^"]+" rel="noopener noreferrer nofollow">x<\/a>/, url);
    }
    assert.match(
      renderMarkdown('see https://example.com'),
      /rel="noopener noreferrer nofollow"/,
      'linkified URLs too',
    );
  });

  test('attribute quoting cannot be broken out of', () => {
    const html = renderMarkdown('[x](https://e.com/"onmouseover="alert(1))');
    assert.doesNotMatch(html, /" onmouseover=|"onmouseover="/);
  });

  test('isSafeLink allows only http, https, mailto and relative links', () => {
    assert.equal(isSafeLink('https://a.b'), true);
    assert.equal(isSafeLink('relative/path'), true);
    assert.equal(isSafeLink('javascript:x'), false);
    assert.equal(isSafeLink('ftp://a.b'), false);
    assert.equal(isSafeLink('  JAVASCRIPT:x'), false);
  });

  test('excerpt flattens whitespace and cuts long text with an ellipsis', () => {
    assert.equal(excerpt('a\n\n  b\tc'), 'a b c');
    const long = excerpt('word '.repeat(100), 20);
    assert.ok(long.length <= 20);
    assert.ok(long.endsWith('…'));
  });
});
