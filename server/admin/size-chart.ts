// A tenant's size over time as an SVG chart drawn on the server (the admin
// console's tenant page): plain markup, no script, no font from anywhere, no
// style attribute (SVG presentation attributes only, which the CSP does not
// govern). Every piece of text in it is escaped here, since the page inserts
// the markup as it is. Screen readers get `role="img"` and an `aria-label`
// that says the series in words; the <title> says it too.
import { formatBytes } from '../workspace/storage.ts';

export interface SizeSample {
  at: Date;
  bytes: number;
}

export interface SizeChartOptions {
  /** Who the chart is about (a tenant's name): in the title and the label. */
  subject: string;
  /** The right edge of the time axis (default: now). */
  now?: Date;
  /** Days shown, ending at `now` (default 30). */
  days?: number;
  /** An id prefix unique on the page (default "size-chart"). */
  id?: string;
}

const WIDTH = 640;
const HEIGHT = 240;
const LEFT = 72;
const RIGHT = 16;
const TOP = 16;
const BOTTOM = 36;
const DAY_MS = 24 * 3600 * 1000;

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** XML 1.0 has no place for these control characters, not even escaped. */
const forbidden = (code: number) => code < 0x20 && code !== 0x09 && code !== 0x0a && code !== 0x0d;

/** Text and attribute values for SVG/XML: the five special characters escaped, control characters dropped. */
export function escapeXml(text: string): string {
  let out = '';
  for (const c of text) {
    if (forbidden(c.charCodeAt(0))) continue;
    out += ESCAPES[c] ?? c;
  }
  return out;
}

const SHORT_DATE = new Intl.DateTimeFormat('en-GB', { day: 'numeric', month: 'short', timeZone: 'UTC' });
const shortDate = (d: Date) => SHORT_DATE.format(d);
const fixed = (n: number) => (Math.round(n * 10) / 10).toString();

/** A round top for the size axis, at or above `max` (1, 2 or 5 times a power of ten). */
export function niceCeiling(max: number): number {
  if (max <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(max));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= max) return step * power;
  return 10 * power;
}

/** The samples within the window, oldest first. */
export function windowOf(samples: readonly SizeSample[], now: Date, days: number): SizeSample[] {
  const from = now.getTime() - days * DAY_MS;
  return samples
    .filter((s) => s.at.getTime() >= from && s.at.getTime() <= now.getTime())
    .sort((a, b) => a.at.getTime() - b.at.getTime());
}

/** The series in words: what the chart's label and title say. */
export function describeSeries(samples: readonly SizeSample[], days: number): string {
  const first = samples[0];
  const last = samples[samples.length - 1];
  if (!first || !last) return `No size statistics in the last ${days} days.`;
  const max = samples.reduce((m, s) => (s.bytes > m.bytes ? s : m), first);
  const count = `${samples.length} ${samples.length === 1 ? 'sample' : 'samples'}`;
  if (samples.length === 1)
    return `Size over the last ${days} days: ${formatBytes(first.bytes)} on ${shortDate(first.at)} (${count}).`;
  return (
    `Size over the last ${days} days: from ${formatBytes(first.bytes)} on ${shortDate(first.at)} ` +
    `to ${formatBytes(last.bytes)} on ${shortDate(last.at)}, highest ${formatBytes(max.bytes)} (${count}).`
  );
}

/**
 * The chart as SVG markup, or null when no sample falls within the window
 * (the page then says there are no statistics yet).
 */
export function sizeChart(all: readonly SizeSample[], options: SizeChartOptions): string | null {
  const now = options.now ?? new Date();
  const days = options.days ?? 30;
  const id = (options.id ?? 'size-chart').replace(/[^A-Za-z0-9_-]/g, '');
  const samples = windowOf(all, now, days);
  if (samples.length === 0) return null;

  const from = now.getTime() - days * DAY_MS;
  const top = niceCeiling(Math.max(...samples.map((s) => s.bytes)));
  const plotW = WIDTH - LEFT - RIGHT;
  const plotH = HEIGHT - TOP - BOTTOM;
  const x = (at: Date) => LEFT + ((at.getTime() - from) / (days * DAY_MS)) * plotW;
  const y = (bytes: number) => TOP + plotH - (bytes / top) * plotH;
  const bottom = TOP + plotH;

  const words = describeSeries(samples, days);
  const title = `Size of ${options.subject} over the last ${days} days`;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${WIDTH} ${HEIGHT}" width="${WIDTH}" height="${HEIGHT}"` +
      ` role="img" aria-label="${escapeXml(words)}" class="size-chart"` +
      ` font-family="system-ui, sans-serif" font-size="12">`,
  );
  out.push(`<title id="${id}-title">${escapeXml(title)}</title>`);
  out.push(`<desc id="${id}-desc">${escapeXml(words)}</desc>`);

  // The size axis: gridlines and labels at 0, ½ and the top.
  out.push('<g class="size-chart-grid" stroke="currentColor" stroke-opacity="0.2" stroke-width="1">');
  for (const f of [0.5, 1])
    out.push(
      `<line x1="${LEFT}" y1="${fixed(y(top * f))}" x2="${WIDTH - RIGHT}" y2="${fixed(y(top * f))}"/>`,
    );
  out.push('</g>');
  out.push('<g class="size-chart-axes" stroke="currentColor" stroke-width="1">');
  out.push(`<line x1="${LEFT}" y1="${TOP}" x2="${LEFT}" y2="${bottom}"/>`);
  out.push(`<line x1="${LEFT}" y1="${bottom}" x2="${WIDTH - RIGHT}" y2="${bottom}"/>`);
  out.push('</g>');
  out.push('<g class="size-chart-labels" fill="currentColor" aria-hidden="true">');
  for (const f of [0, 0.5, 1])
    out.push(
      `<text x="${LEFT - 8}" y="${fixed(y(top * f) + 4)}" text-anchor="end">${escapeXml(formatBytes(Math.round(top * f)))}</text>`,
    );
  const start = new Date(from);
  const middle = new Date(from + (days * DAY_MS) / 2);
  out.push(`<text x="${LEFT}" y="${HEIGHT - 12}" text-anchor="start">${escapeXml(shortDate(start))}</text>`);
  out.push(
    `<text x="${fixed(x(middle))}" y="${HEIGHT - 12}" text-anchor="middle">${escapeXml(shortDate(middle))}</text>`,
  );
  out.push(
    `<text x="${WIDTH - RIGHT}" y="${HEIGHT - 12}" text-anchor="end">${escapeXml(shortDate(now))}</text>`,
  );
  out.push('</g>');

  // The series: a line through every sample, a dot on the latest.
  const points = samples.map((s) => `${fixed(x(s.at))},${fixed(y(s.bytes))}`);
  const d = `M${points.join(' L')}`;
  out.push(
    `<path class="size-chart-line" d="${d}" fill="none" stroke="currentColor" stroke-width="2" stroke-linejoin="round" stroke-linecap="round"/>`,
  );
  const last = samples[samples.length - 1] as SizeSample;
  out.push(
    `<circle class="size-chart-latest" cx="${fixed(x(last.at))}" cy="${fixed(y(last.bytes))}" r="4" fill="currentColor"/>`,
  );
  out.push('</svg>');
  return out.join('\n');
}
