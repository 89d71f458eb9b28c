import { describe, expect, it } from 'vitest';
import { DueAdmission } from '../../src/node/dueAdmission.js';
import { flush } from './support/nodeHarness.js';

/** An admission whose decisions stay under way until the test settles them. */
const admission = (maxInFlight: number) => {
  const advanced: Array<{ id: string; overloaded: boolean; done: () => void }> = [];
  let running = true;
  const gate: DueAdmission = new DueAdmission({
    maxInFlight,
    advance: (id, overloaded) => {
      let done!: () => void;
      void gate.track(new Promise<void>((resolve) => (done = resolve)));
      advanced.push({ id, overloaded, done });
    },
    running: () => running,
  });
  return { gate, advanced, stop: () => (running = false) };
};

describe('DueAdmission', () => {
  it('admits due tasks in order up to the bound; the rest wait, once each, and go as room frees up', async () => {
    const { gate, advanced } = admission(3);
    gate.admit(['a', 'b', 'c', 'd', 'e']);
    gate.admit(['d', 'f']);
    expect(advanced.map((a) => a.id)).toEqual(['a', 'b', 'c']);
    expect(gate.inFlight).toBe(3);
    expect(gate.waiting).toBe(3);
    advanced[0]!.done();
    advanced[1]!.done();
    await flush();
    expect(advanced.map((a) => a.id)).toEqual(['a', 'b', 'c', 'd', 'e']);
    for (const a of advanced) a.done();
    await flush();
    expect(advanced.map((a) => a.id)).toEqual(['a', 'b', 'c', 'd', 'e', 'f']);
    advanced.at(-1)!.done();
    await flush();
    expect(gate.inFlight).toBe(0);
    expect(gate.waiting).toBe(0);
  });

  it('marks as overloaded exactly the tasks that waited because of the bound', async () => {
    const { gate, advanced } = admission(2);
    gate.admit(['a', 'b', 'c']);
    for (const a of advanced.splice(0)) a.done();
    await flush();
    expect(advanced.map((a) => [a.id, a.overloaded])).toEqual([['c', true]]);
    advanced.pop()!.done();
    await flush();
    // Room again: nothing waits, nothing is marked.
    gate.admit(['d']);
    expect(advanced.map((a) => [a.id, a.overloaded])).toEqual([['d', false]]);
  });

  it('admits a large instant in slices, yielding between them, when there is room for all', async () => {
    const { gate, advanced } = admission(10_000);
    gate.admit(Array.from({ length: 2_500 }, (_, i) => `t${i}`));
    expect(advanced).toHaveLength(1_000);
    await flush();
    expect(advanced).toHaveLength(2_500);
    expect(advanced.every((a) => !a.overloaded)).toBe(true);
  });

  it('admits nothing once the node stops running; refuses a bound that is not a whole number ≥ 1', async () => {
    const { gate, advanced, stop } = admission(1);
    gate.admit(['a', 'b']);
    stop();
    advanced[0]!.done();
    await flush();
    expect(advanced.map((a) => a.id)).toEqual(['a']);
    for (const bad of [0, 1.5, Number.NaN])
      expect(() => new DueAdmission({ maxInFlight: bad, advance: () => {}, running: () => true })).toThrow(
        /maxInFlight/,
      );
  });
});
