import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  excerpt,
  isSafeLink,
  NOTE_RENDER_LIMITS,
  renderMarkdown,
  renderNote,
  syntaxWeight,
} from '../../../server/workspace/markdown.ts';

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

  test('excerpt gives the same text with single spaces only (no collapse needed) as with any whitespace', () => {
    const slow = (s: string, max = 200) => {
      const flat = s.replace(/\s+/g, ' ').trim();
      return flat.length <= max ? flat : `${flat.slice(0, max - 1).trimEnd()}…`;
    };
    const pieces = [' ', '  ', '\t', '\n', '\u00a0', '\u2028', '\ufeff', '\u3000', 'a', 'bc', '.', 'é'];
    for (let i = 0; i < 2000; i++) {
      let s = '';
      const n = (i * 7919) % 300;
      for (let j = 0; j < n; j++) s += pieces[(i * 31 + j * j * 17) % pieces.length];
      assert.equal(excerpt(s), slow(s), JSON.stringify(s));
    }
    assert.equal(excerpt(' one two three '), 'one two three');
    assert.equal(excerpt('one\u00a0two  three'), 'one two three');
  });

  test('excerpt flattens whitespace and cuts long text with an ellipsis', () => {
    assert.equal(excerpt('a\n\n  b\tc'), 'a b c');
    const long = excerpt('word '.repeat(100), 20);
    assert.ok(long.length <= 20);
    assert.ok(long.endsWith('…'));
  });
});

describe('renderNote: what is stored for a note body, at a bounded cost', () => {
  const plain = /^<p class="hint">This note is shown as plain text: [^<]+\.<\/p>\n<pre class="plain-text">/;

  test('ordinary Markdown is rendered exactly as renderMarkdown does', () => {
    for (const source of [
      '',
      '# Title\n\n*a* **b** `c`',
      '- one\n- two\n\n| a | b |\n|---|---|\n| 1 | 2 |',
      'see https://example.com',
    ]) {
      assert.deepEqual(renderNote(source), { html: renderMarkdown(source), rendering: 'markdown' });
    }
  });

  test('a long, richly formatted document stays Markdown', () => {
    const section = (i: number) =>
      `## Section ${i}\n\nSome prose with *emphasis*, **strong** words, \`code\` and [a link](https://example.com/${i}).\n\n- a list item\n- another one, longer than the first\n\n| key | value |\n|-----|-------|\n| a | ${i} |\n\n\`\`\`\nconst x = ${i};\n\`\`\`\n\n> A quote, and a sentence or two of ordinary text to read between the marks.\n\n`;
    let doc = '';
    for (let i = 0; doc.length < 95_000; i++) doc += section(i);
    assert.ok(syntaxWeight(doc) <= NOTE_RENDER_LIMITS.syntaxWeight, String(syntaxWeight(doc)));
    assert.equal(renderNote(doc).rendering, 'markdown');
  });

  // Each took 0.1 to 0.35 s to render at 79,000 to 100,000 characters (measured before the bound).
  const pathological: Array<[string, string]> = [
    [
      'a 79,000-character table',
      (() => {
        let s = `|${'h|'.repeat(20)}\n|${'-|'.repeat(20)}\n`;
        while (s.length < 79_000) s += `|${'x|'.repeat(20)}\n`;
        return s;
      })(),
    ],
    ['100,000 opening brackets', '['.repeat(100_000)],
    ['emphasis marks', '*_'.repeat(50_000)],
    ['image marks', '!['.repeat(50_000)],
    ['one line each', 'a\n'.repeat(50_000)],
    ['empty list items', '- \n'.repeat(33_000)],
    ['autolinks', '<http://a.b>'.repeat(10_000)],
  ];
  for (const [name, source] of pathological) {
    test(`${name}: stored as escaped plain text, with a line saying why`, () => {
      const { html, rendering } = renderNote(source);
      assert.equal(rendering, 'plain');
      assert.match(html, plain);
      assert.ok(html.includes(source.slice(0, 50).replace(/</g, '&lt;').replace(/>/g, '&gt;')));
    });
  }

  test('a note whose HTML would be too large is stored as plain text too', () => {
    const source = '<http://a.b>'.repeat(8_000); // under the syntax weight, but 70 bytes of HTML per 12 characters
    assert.ok(syntaxWeight(source) <= NOTE_RENDER_LIMITS.syntaxWeight);
    assert.ok(renderMarkdown(source).length > NOTE_RENDER_LIMITS.htmlChars);
    const { html, rendering } = renderNote(source);
    assert.equal(rendering, 'plain');
    assert.match(
      html,
      /^<p class="hint">This note is shown as plain text: its formatted version would be too large\.<\/p>/,
    );
  });

  test('plain text is escaped: no markup of the source survives', () => {
    const source = `<script>alert(1)</script> & <img src=x onerror=y> ${'*'.repeat(30_000)}`;
    const { html } = renderNote(source);
    assert.match(html, /&lt;script&gt;alert\(1\)&lt;\/script&gt; &amp; &lt;img src=x onerror=y&gt;/);
    assert.doesNotMatch(html, /<script|<img/);
  });

  test('many bare links: rendered without turning them into links; written links still are', () => {
    const source = `[written](https://example.com/w)\n\n${'mailto:a@b.co '.repeat(2_000)}`;
    const { html, rendering } = renderNote(source);
    assert.equal(rendering, 'markdown-without-autolinks');
    assert.match(html, /<a href="https:\/\/example.com\/w" rel="noopener noreferrer nofollow">written<\/a>/);
    assert.doesNotMatch(html, /href="mailto:/);
    assert.equal(renderNote('mail me: a@b.co').rendering, 'markdown', 'a few are still linked');
    assert.match(renderNote('mail me: a@b.co').html, /href="mailto:a@b.co"/);
  });
});
