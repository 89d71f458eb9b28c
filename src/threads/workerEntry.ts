import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

/**
 * How to start a worker thread on the script `name` beside the module at `here` (its
 * `import.meta.url`). Compiled, that is `name.js`. Run from TypeScript sources (vitest,
 * `node --import tsx`), a worker cannot load `name.ts` by itself, and on Node 20 neither `--import
 * tsx` in the worker's execArgv nor tsx's loader module registers hooks outside the main thread
 * (measured), so a small bootstrap registers tsx's ESM API in the worker first. tsx is resolved from
 * here, through its package's exports map (the CommonJS build of that API points its hooks at a wrong
 * path), so the working directory does not matter.
 */
export const workerEntry = (here: string, name: string): { entry: string | URL; eval: boolean } => {
  if (!here.endsWith('.ts')) return { entry: new URL(`./${name}.js`, here), eval: false };
  const manifest = createRequire(import.meta.url).resolve('tsx/package.json');
  const { exports } = JSON.parse(readFileSync(manifest, 'utf8')) as {
    exports: { './esm/api': { import: { default: string } } };
  };
  const api = pathToFileURL(join(dirname(manifest), exports['./esm/api'].import.default)).href;
  const script = new URL(`./${name}.ts`, here).href;
  return {
    entry: `import(${JSON.stringify(api)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(script)}); });`,
    eval: true,
  };
};
