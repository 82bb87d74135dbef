// What rendering one note body costs: renderMarkdown (unbounded: what every
// read of a note cost before HTML was stored) against renderNote (what a write
// costs now, within NOTE_RENDER_LIMITS), on ordinary documents and on the
// costliest inputs found, each at up to 100,000 characters (the body limit).
// In-process, one core, no database; the best and the median of --rounds runs
// after one warm-up run, so a busy machine shows in the median, not the best.
//
//   node bench/markdown.bench.ts [--rounds 7]
// Results: bench/results/markdown-<time>.json.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { renderMarkdown, renderNote, syntaxWeight } from '../server/workspace/markdown.ts';
import { saveResults } from './results.ts';

const { values } = parseArgs({
  options: { rounds: { type: 'string', default: process.env.BENCH_ROUNDS ?? '7' } },
});
const rounds = Number(values.rounds);

const LIMIT = 100_000;
/** `unit` followed by `filler`, repeated to `length` characters. */
const repeatTo = (unit: string, length = LIMIT) =>
  unit.repeat(Math.ceil(length / unit.length)).slice(0, length);

function table(length: number, cols = 20): string {
  let s = `|${Array.from({ length: cols }, (_, i) => `h${i}`).join('|')}|\n|${'-|'.repeat(cols)}\n`;
  while (s.length < length) s += `|${Array.from({ length: cols }, () => 'x').join('|')}|\n`;
  return s;
}

function richDocument(length: number): string {
  let doc = '';
  for (let i = 0; doc.length < length; i++) {
    doc += `## Section ${i}\n\nSome prose with *emphasis*, **strong** words, \`code\` and [a link](https://example.com/${i}).\n\n- a list item\n- another one, longer than the first\n\n| key | value |\n|-----|-------|\n| a | ${i} |\n\n\`\`\`\nconst x = ${i};\n\`\`\`\n\n> A quote, and a sentence or two of ordinary text to read between the marks.\n\n`;
  }
  return doc;
}

const prose = repeatTo('The quick brown fox jumps over the lazy dog, and then it rests. ');
const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

const inputs: Record<string, string> = {
  'prose, 100k': prose,
  'README.md': readme,
  'rich document, 95k': richDocument(95_000),
  'table, 79k (the reported case)': table(79_000),
  'table, 100k, 5 columns': table(LIMIT, 5),
  '[ x 100k': '['.repeat(LIMIT),
  '[ every 4 chars': repeatTo('[aaa'),
  '![ x 50k': '!['.repeat(LIMIT / 2),
  '*_ x 50k': '*_'.repeat(LIMIT / 2),
  'lines a\\n x 50k': 'a\n'.repeat(LIMIT / 2),
  'e-mail addresses': repeatTo('a@b.co '),
  'mailto: links': repeatTo('mailto:a@b.co '),
  'bare URLs': repeatTo('http://a.b/c '),
  'autolinks <...>': repeatTo('<http://a.b>'),
  'nested lists': repeatTo('- - - - x\n'),
  // At the syntax weight (25,000): the worst that still renders as Markdown.
  '[ every 25 chars, weight 24k': repeatTo(`[${'a'.repeat(24)}`),
  '[ + words, weight 24k': repeatTo(`[${'word '.repeat(4)}aaaa`),
  '\\n every 4 chars, weight 25k': repeatTo('\naaa'),
  '*_ every 8 chars, weight 25k': repeatTo('*_aaaaaa'),
  '100 mailto: + [ in one paragraph': `${'mailto:a@b.co '.repeat(50)}${repeatTo(`[${'a'.repeat(24)}`, LIMIT - 800)}`,
};

function time(fn: () => unknown): number {
  const t0 = performance.now();
  fn();
  return performance.now() - t0;
}

function stats(samples: number[]) {
  const sorted = [...samples].sort((a, b) => a - b);
  return { bestMs: round(sorted[0] ?? 0), medianMs: round(sorted[Math.floor(sorted.length / 2)] ?? 0) };
}
const round = (n: number) => Math.round(n * 10) / 10;

const startedAt = new Date().toISOString();
const rows = Object.entries(inputs).map(([name, source]) => {
  renderMarkdown(source);
  renderNote(source);
  const unbounded: number[] = [];
  const bounded: number[] = [];
  for (let i = 0; i < rounds; i++) {
    unbounded.push(time(() => renderMarkdown(source)));
    bounded.push(time(() => renderNote(source)));
  }
  const note = renderNote(source);
  return {
    name,
    chars: source.length,
    syntaxWeight: syntaxWeight(source),
    rendering: note.rendering,
    htmlChars: note.html.length,
    renderMarkdown: stats(unbounded),
    renderNote: stats(bounded),
  };
});

console.log(
  `${'input'.padEnd(36)} ${'chars'.padStart(7)} ${'weight'.padStart(7)}  renderMarkdown best/median  renderNote best/median  stored as`,
);
for (const r of rows) {
  console.log(
    `${r.name.padEnd(36)} ${String(r.chars).padStart(7)} ${String(r.syntaxWeight).padStart(7)}  ${`${r.renderMarkdown.bestMs} / ${r.renderMarkdown.medianMs} ms`.padStart(26)}  ${`${r.renderNote.bestMs} / ${r.renderNote.medianMs} ms`.padStart(22)}  ${r.rendering}`,
  );
}
const file = saveResults('markdown', startedAt, {
  startedAt,
  rounds,
  node: process.version,
  cpu: os.cpus()[0]?.model,
  cores: os.cpus().length,
  loadAverage1m: os.loadavg()[0],
  rows,
});
console.log(`\nresults: ${file}`);
