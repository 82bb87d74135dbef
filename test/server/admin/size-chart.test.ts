// The tenant page's size chart: well-formed SVG with role="img" and a label
// that says the series in words, every piece of text escaped (a tenant's name
// is whatever its owner typed), nothing a strict CSP would refuse (no script,
// no style attribute, no font from elsewhere), only the last 30 days drawn.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { describeSeries, escapeXml, niceCeiling, sizeChart } from '../../../server/admin/size-chart.ts';
import { assertNoInlineCode } from '../../helpers/pages.ts';
import { parseXmlRoot } from '../../helpers/xml.ts';

const NOW = new Date('2026-11-22T12:00:00Z');
const daysAgo = (d: number) => new Date(NOW.getTime() - d * 24 * 3600 * 1000);
const MB = 1_000_000;

describe('size chart', () => {
  test('no sample in the window: no chart (the page says there are no statistics yet)', () => {
    assert.equal(sizeChart([], { subject: 'Acme', now: NOW }), null);
    assert.equal(sizeChart([{ at: daysAgo(31), bytes: 5 }], { subject: 'Acme', now: NOW }), null);
  });

  test('a well-formed <svg> with role="img", a <title> and an aria-label that states the series in words', () => {
    const svg = sizeChart(
      [
        { at: daysAgo(40), bytes: 99 * MB }, // outside the window: not drawn, not described
        { at: daysAgo(29), bytes: 1.2 * MB },
        { at: daysAgo(10), bytes: 2 * MB },
        { at: daysAgo(0), bytes: 3.4 * MB },
      ],
      { subject: 'Acme', now: NOW },
    ) as string;
    assert.ok(svg.startsWith('<svg '), svg.slice(0, 20));
    const root = parseXmlRoot(svg);
    assert.equal(root.name, 'svg');
    assert.equal(root.attributes.xmlns, 'http://www.w3.org/2000/svg');
    assert.equal(root.attributes.role, 'img');
    assert.equal(
      root.attributes['aria-label'],
      'Size over the last 30 days: from 1.2 MB on 24 Oct to 3.4 MB on 22 Nov, highest 3.4 MB (3 samples).',
    );
    const title = root.elements.find((e) => e.name === 'title');
    assert.equal(title?.text, 'Size of Acme over the last 30 days');
    assert.equal(root.elements[1]?.name, 'title', 'the title is the first child');
    // The line goes through the three samples in the window, oldest first.
    const path = root.elements.find((e) => e.name === 'path');
    assert.equal((path?.attributes.d ?? '').split('L').length, 3);
    // The axis labels are there: sizes and dates.
    const labels = root.elements.filter((e) => e.name === 'text').map((e) => e.text);
    assert.ok(labels.includes('0 bytes'), labels.join('|'));
    assert.ok(labels.includes('5 MB'), labels.join('|'));
    assert.ok(labels.includes('23 Oct') && labels.includes('22 Nov'), labels.join('|'));
  });

  test('a hostile tenant name is escaped everywhere; nothing a strict CSP refuses', () => {
    const name = 'Acme <script>alert(1)</script> "quoted" & \'single\' \u0007';
    const svg = sizeChart([{ at: daysAgo(1), bytes: 12_345 }], { subject: name, now: NOW }) as string;
    const root = parseXmlRoot(svg);
    const title = root.elements.find((e) => e.name === 'title');
    assert.equal(title?.text, `Size of ${name.replace('\u0007', '')} over the last 30 days`);
    assert.equal(svg.includes('<script'), false);
    assert.ok(svg.includes('&lt;script&gt;'));
    assert.ok(svg.includes('&quot;quoted&quot; &amp; &#39;single&#39;'));
    assertNoInlineCode(svg, 'size chart');
    assert.doesNotMatch(svg, /\sstyle=|@import|url\(|https?:\/\/(?!www\.w3\.org\/2000\/svg")/);
    assert.equal(root.attributes['aria-label'], 'Size over the last 30 days: 12.3 kB on 21 Nov (1 sample).');
  });

  test('the id prefix keeps only safe characters', () => {
    const svg = sizeChart([{ at: daysAgo(1), bytes: 1 }], { subject: 'x', now: NOW, id: 'a"b<c' }) as string;
    assert.ok(svg.includes('id="abc-title"'));
    parseXmlRoot(svg);
  });

  test('helpers: escaping, round axis tops, words for the series', () => {
    assert.equal(escapeXml('<a href="x">&\'</a>'), '&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;');
    assert.equal(escapeXml('a\u0000b\tc\n'), 'ab\tc\n');
    assert.deepEqual([0, 1, 7, 12, 180, 3_400_000].map(niceCeiling), [1, 1, 10, 20, 200, 5_000_000]);
    assert.equal(describeSeries([], 30), 'No size statistics in the last 30 days.');
  });
});
