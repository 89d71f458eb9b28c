import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { semiSpaceFlag } from '../../src/threads/youngGeneration.js';

describe('the young generation of the processes that fold the log', () => {
  it("the CLI's shebang gives node the same flag the read side's process gets", () => {
    const shebang = readFileSync(new URL('../../src/cli/main.ts', import.meta.url), 'utf8').split('\n')[0];
    expect(shebang).toBe(`#!/usr/bin/env -S node ${semiSpaceFlag}`);
  });
});
