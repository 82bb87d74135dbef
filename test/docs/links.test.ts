// Every relative link in README.md and docs/*.md points at a file that exists,
// and every #anchor at a heading of that file (GitHub's heading slugs); every
// repository path the pages name in backticks (`kernel/config.ts`) exists.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const pages = [
  path.join(root, 'README.md'),
  ...readdirSync(path.join(root, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .map((name) => path.join(root, 'docs', name)),
];

const withoutCode = (text: string) => text.replace(/```[\s\S]*?```/g, '');

function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}_\- ]/gu, '')
    .replaceAll(' ', '-');
}

function anchorsOf(file: string): Set<string> {
  const headings = withoutCode(readFileSync(file, 'utf8')).match(/^#{1,6} .*$/gm) ?? [];
  return new Set(headings.map((h) => slug(h.replace(/^#+ /, ''))));
}

test('every relative link in the README and docs/ resolves, anchors included', () => {
  const broken: string[] = [];
  for (const page of pages) {
    for (const [, target] of withoutCode(readFileSync(page, 'utf8')).matchAll(/\]\(([^)\s]+)\)/g)) {
      if (!target || /^[a-z]+:/.test(target)) continue;
      const [file = '', anchor] = target.split('#');
      const resolved = file ? path.resolve(path.dirname(page), file) : page;
      const from = path.relative(root, page);
      if (!existsSync(resolved)) broken.push(`${from}: ${target} (no such file)`);
      else if (anchor && resolved.endsWith('.md') && !anchorsOf(resolved).has(anchor))
        broken.push(`${from}: ${target} (no such heading)`);
    }
  }
  assert.deepEqual(broken, []);
});

test('the README does not point outside the repository', () => {
  const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
  assert.doesNotMatch(readme, /\]\(\.\.\//);
  assert.doesNotMatch(readme, /\.\.\/shared/);
});

// docs/BENCHMARKS.md is a record of past runs (their result files stay local in
// bench/results/, which git ignores): the files it names are as they were then.
const RECORDS = new Set(['BENCHMARKS.md']);
const FOLDERS = 'kernel|tenancy|audit|jobs|server|cli|bin|migrations|views|test|bench|docs';

test('every repository path named in the README and docs/ exists', () => {
  const missing: string[] = [];
  for (const page of pages.filter((p) => !RECORDS.has(path.basename(p)))) {
    const text = withoutCode(readFileSync(page, 'utf8'));
    for (const [, named] of text.matchAll(new RegExp(`\`((?:${FOLDERS})/[\\w./-]*)\``, 'g'))) {
      if (!named || /NNNN/.test(named)) continue; // a pattern for a new file, not a file
      if (named.startsWith('bench/results/')) continue; // made by a benchmark run, ignored by git
      if (!existsSync(path.join(root, named))) missing.push(`${path.relative(root, page)}: ${named}`);
    }
  }
  assert.deepEqual(missing, []);
});
