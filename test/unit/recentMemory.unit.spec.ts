import { describe, expect, it } from 'vitest';
import { RecentMemory } from '../../src/client/recentMemory.js';

describe('RecentMemory', () => {
  it('remembers at least the last half of its size and at most its size, newest first to stay', () => {
    const memory = new RecentMemory<number>(4);
    for (let i = 0; i < 10; i++) memory.set(`k${i}`, i);
    // Generations of two: k8, k9 in the older one (the newer one just started), everything before dropped.
    expect([...Array(10).keys()].filter((i) => memory.has(`k${i}`))).toEqual([8, 9]);
    memory.set('k10', 10);
    expect(memory.get('k8')).toBe(8);
    expect(memory.get('k10')).toBe(10);
    expect(memory.get('k7')).toBeUndefined();
  });

  it('carries a key used again from the older generation into the newer one', () => {
    const memory = new RecentMemory<string>(4);
    memory.set('a', 'A');
    memory.set('b', 'B'); // the newer fills: a and b become the older generation
    memory.set('a', memory.get('a') as string); // used again: into the newer one
    memory.set('c', 'C'); // the newer fills again: b is dropped with the older generation
    expect(memory.get('a')).toBe('A');
    expect(memory.has('b')).toBe(false);
    expect(memory.get('c')).toBe('C');
  });

  it('with a size of one remembers exactly the last key', () => {
    const memory = new RecentMemory<boolean>(1);
    memory.set('x', true);
    memory.set('y', true);
    expect(memory.has('y')).toBe(true);
    expect(memory.has('x')).toBe(false);
  });
});
