// dependency-cruiser reads TypeScript through the TypeScript compiler's
// JavaScript API, which TypeScript 7 (the native compiler `npm run typecheck`
// uses) no longer ships. This hook hands dependency-cruiser, and only it,
// TypeScript 6 (devDependency `typescript-for-depcruise`). Used by `npm run lint`:
//   node --import ./.dependency-cruiser-hook.mjs node_modules/dependency-cruiser/bin/dependency-cruiser.mjs ...
import { registerHooks } from 'node:module';

registerHooks({
  resolve(specifier, context, nextResolve) {
    if (
      /^typescript(\/|$)/.test(specifier) &&
      context.parentURL?.includes('/node_modules/dependency-cruiser/')
    )
      return nextResolve(specifier.replace(/^typescript/, 'typescript-for-depcruise'), context);
    return nextResolve(specifier, context);
  },
});
