import { parse, stringify } from 'uuid';
import { describe, expect, it } from 'vitest';
import { uuidText } from '../../domain/ids/uuidText.js';

describe('uuid text', () => {
  it('is the text uuid itself writes, for any 16 bytes, and parses back to them', () => {
    for (let i = 0; i < 2_000; i++) {
      const bytes = crypto.getRandomValues(new Uint8Array(16));
      // uuid's stringify checks the version and variant it knows: give the bytes a valid pair.
      bytes[6] = (bytes[6]! & 0x0f) | 0x70;
      bytes[8] = (bytes[8]! & 0x3f) | 0x80;
      const text = uuidText(bytes);
      expect(text).toBe(stringify(bytes));
      expect(parse(text)).toEqual(bytes);
    }
    expect(uuidText(new Uint8Array(16))).toBe('00000000-0000-0000-0000-000000000000');
    expect(uuidText(new Uint8Array(16).fill(255))).toBe('ffffffff-ffff-ffff-ffff-ffffffffffff');
  });
});
