// Loaded with `node --import` by lazy-loading.test.ts: records the URL of every
// module the process resolves (ES modules and require() alike) and writes them,
// one a line, to the file named by MODULE_LOG when the process exits.
import { writeFileSync } from 'node:fs';
import { registerHooks } from 'node:module';

const file = process.env.MODULE_LOG;
const seen = new Set<string>();
registerHooks({
  resolve(specifier, context, nextResolve) {
    const result = nextResolve(specifier, context);
    seen.add(result.url);
    return result;
  },
});
process.on('exit', () => {
  if (file) writeFileSync(file, [...seen].join('\n'));
});
