import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { semiSpaceFlag } from '../../src/threads/youngGeneration.js';

const file = (path: string): string => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');

describe('the young generation of a node', () => {
  it("the start script and the image's command give node the flag the read side's process gets", () => {
    const scripts = (JSON.parse(file('package.json')) as { scripts: Record<string, string> }).scripts;
    expect(scripts.start).toBe(`node ${semiSpaceFlag} dist/src/cli/main.js start`);
    expect(file('Dockerfile')).toContain(`CMD ["node", "${semiSpaceFlag}", "dist/src/cli/main.js", "start"]`);
  });

  // Any V8 flag there costs every command ~15 % of its start (V8's code cache no longer matches); a
  // replay with the node down gets its young generation in a thread of its own (offlineReplay.ts).
  it('the CLI itself starts with V8 as it is: no node options in its shebang', () => {
    expect(file('src/cli/main.ts').split('\n')[0]).toBe('#!/usr/bin/env node');
  });
});
