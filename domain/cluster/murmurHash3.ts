const utf8 = new TextEncoder();

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

const rotl = (x: number, r: number): number => (x << r) | (x >>> (32 - r));

const scramble = (k: number): number => Math.imul(rotl(Math.imul(k, C1), 15), C2);

/**
 * MurmurHash3, x86 32-bit variant (Austin Appleby's reference `MurmurHash3_x86_32`), over the UTF-8
 * bytes of `text` (or over `text` itself when given bytes). Returns an unsigned 32-bit integer. It is the same function as Guava's
 * `murmur3_32_fixed`, Python's `mmh3.hash(text, seed, signed=False)` and Go's `murmur3.Sum32WithSeed`,
 * so any tool can recompute slot ownership. Never change it: it decides which node owns which task.
 */
export const murmurHash3 = (text: string | Uint8Array, seed = 0): number => {
  const bytes = typeof text === 'string' ? utf8.encode(text) : text;
  const length = bytes.length;
  const blocks = length - (length % 4);
  let h = seed | 0;
  for (let i = 0; i < blocks; i += 4) {
    const k = bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24);
    h ^= scramble(k);
    h = (Math.imul(rotl(h, 13), 5) + 0xe6546b64) | 0;
  }
  const rest = length - blocks;
  if (rest > 0) {
    let k = 0;
    if (rest >= 3) k ^= bytes[blocks + 2]! << 16;
    if (rest >= 2) k ^= bytes[blocks + 1]! << 8;
    k ^= bytes[blocks]!;
    h ^= scramble(k);
  }
  h ^= length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
};
