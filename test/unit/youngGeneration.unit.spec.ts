import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { semiSpaceFlag } from '../../src/threads/youngGeneration.js';

const file = (path: string): string => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');

describe('the young generation every Kairos process runs with', () => {
  it("the CLI's shebang, the start script and the image's command give node the flag the read side's process gets", () => {
    expect(file('src/cli/main.ts').split('\n')[0]).toBe(`#!/usr/bin/env -S node ${semiSpaceFlag}`);
    const scripts = (JSON.parse(file('package.json')) as { scripts: Record<string, string> }).scripts;
    expect(scripts.start).toBe(`node ${semiSpaceFlag} dist/src/cli/main.js start`);
    expect(file('Dockerfile')).toContain(`CMD ["node", "${semiSpaceFlag}", "dist/src/cli/main.js", "start"]`);
  });
});
