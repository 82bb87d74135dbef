// Writes the settings table of docs/CONFIGURATION.md from SETTINGS in
// kernel/config.ts: `npm run docs:config`. The table sits between two marker
// comments; everything else in the page is written by hand.
// test/kernel/config-doc.test.ts fails when the page and SETTINGS disagree.
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SETTINGS } from '../kernel/config.ts';

export const CONFIG_DOC = path.join(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  'docs',
  'CONFIGURATION.md',
);
export const BEGIN_MARKER =
  '<!-- settings:begin (generated from SETTINGS in kernel/config.ts by `npm run docs:config`) -->';
export const END_MARKER = '<!-- settings:end -->';

type Setting = (typeof SETTINGS)[number];

const cell = (text: string) => text.replaceAll('|', '\\|').replaceAll('\n', ' ');
// A placeholder such as "(embedded)" reads as prose; a value is code.
const fallbackCell = (fallback: string) => (fallback.startsWith('(') ? cell(fallback) : `\`${fallback}\``);

/** The Markdown table for the given settings, one row each, in their order. */
export function settingsTable(settings: readonly Setting[] = SETTINGS): string {
  const rows = settings.map((s) => `| \`${s.name}\` | ${fallbackCell(s.fallback)} | ${cell(s.meaning)} |`);
  return ['| setting | default | meaning |', '|---|---|---|', ...rows].join('\n');
}

/** The page with the text between the markers replaced by the table; throws if a marker is missing. */
export function withSettingsTable(page: string, table: string = settingsTable()): string {
  const begin = page.indexOf(BEGIN_MARKER);
  const end = page.indexOf(END_MARKER);
  if (begin < 0 || end < begin) {
    throw new Error(
      `docs/CONFIGURATION.md must hold the markers ${BEGIN_MARKER} and ${END_MARKER}, in that order`,
    );
  }
  return `${page.slice(0, begin + BEGIN_MARKER.length)}\n${table}\n${page.slice(end)}`;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const page = await readFile(CONFIG_DOC, 'utf8');
  const updated = withSettingsTable(page);
  if (updated === page) {
    process.stdout.write('docs/CONFIGURATION.md: settings table up to date\n');
  } else {
    await writeFile(CONFIG_DOC, updated);
    process.stdout.write(`docs/CONFIGURATION.md: settings table written (${SETTINGS.length} settings)\n`);
  }
}
