// The configuration page is generated from SETTINGS (kernel/config.ts) by
// `npm run docs:config`: these tests fail when the page, SETTINGS and the
// settings the schema actually reads drift apart.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, test } from 'node:test';
import { CONFIG_DOC, settingsTable, withSettingsTable } from '../../cli/config-doc.ts';
import { loadConfig, SETTING_NAMES, SETTINGS } from '../../kernel/config.ts';

describe('the configuration doc', () => {
  test('every setting the schema reads has a SETTINGS entry, and no entry names anything else', () => {
    const documented = SETTINGS.map((s) => s.name);
    const missing = SETTING_NAMES.filter((name) => !documented.includes(name));
    assert.deepEqual(missing, [], `settings without a SETTINGS entry: ${missing.join(', ')}`);
    const unknown = documented.filter((name) => !SETTING_NAMES.includes(name));
    assert.deepEqual(unknown, [], `SETTINGS entries the schema does not read: ${unknown.join(', ')}`);
    assert.equal(new Set(documented).size, documented.length, 'a setting is listed twice');
  });

  test('every entry has a default and a meaning', () => {
    for (const s of SETTINGS) {
      assert.ok(s.fallback.trim(), `${s.name}: empty default`);
      assert.ok(s.meaning.trim().length > 10, `${s.name}: meaning too short`);
    }
  });

  test('the defaults in SETTINGS are the values loadConfig applies to an empty environment', () => {
    const config = loadConfig({}) as Record<string, unknown>;
    let compared = 0;
    for (const s of SETTINGS) {
      const value = config[s.name];
      // Paths are resolved against the working directory, and placeholders such as "(embedded)" are prose.
      if (value === undefined || s.fallback.startsWith('(') || s.fallback.startsWith('./')) continue;
      assert.equal(
        String(value),
        s.fallback,
        `${s.name}: SETTINGS says ${s.fallback}, loadConfig gives ${value}`,
      );
      compared++;
    }
    assert.ok(compared >= 20, `only ${compared} defaults compared`);
  });

  test('docs/CONFIGURATION.md carries exactly the table SETTINGS generates (run `npm run docs:config`)', async () => {
    const page = await readFile(CONFIG_DOC, 'utf8');
    assert.equal(page, withSettingsTable(page), 'the settings table is stale: run `npm run docs:config`');
    for (const s of SETTINGS)
      assert.ok(page.includes(`| \`${s.name}\` |`), `${s.name} missing from the page`);
  });

  test('the table changes when SETTINGS does, so the check above can fail', () => {
    const first = SETTINGS[0];
    assert.ok(first);
    const changed = [{ ...first, meaning: `${first.meaning} (changed)` }, ...SETTINGS.slice(1)];
    assert.notEqual(settingsTable(changed), settingsTable());
    assert.notEqual(settingsTable(SETTINGS.slice(1)), settingsTable());
  });

  test('a page without the markers is refused rather than silently left alone', () => {
    assert.throws(() => withSettingsTable('# Configuration\n'), /markers/);
  });
});
