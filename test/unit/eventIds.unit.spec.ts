import { v5 as uuidv5 } from 'uuid';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { KAIROS_NAMESPACE, fireIdOf, firedEventIdOf, manualFireIdOf } from '../../domain/task/fireId.js';
import { newEventId } from '../../src/store/eventId.js';

const T0 = Date.UTC(2026, 11, 7, 10, 0, 0);
const timeBits = (id: string): number => parseInt(id.replaceAll('-', '').slice(0, 12), 16);
const version = (id: string): string => id.charAt(14);
const isUuid = (id: string): boolean => z.uuid().safeParse(id).success;

describe('fire ids', () => {
  it('are the same for the same tick of the same task, on every call', () => {
    expect(fireIdOf('t1', T0)).toBe(fireIdOf('t1', T0));
    expect(fireIdOf('t1', T0)).not.toBe(fireIdOf('t2', T0));
    expect(fireIdOf('t1', T0)).not.toBe(fireIdOf('t1', T0 + 1));
  });

  it('are RFC 9562 version 8 UUIDs that carry the scheduled time in their first 48 bits', () => {
    const id = fireIdOf('t1', T0);
    expect(isUuid(id)).toBe(true);
    expect(version(id)).toBe('8');
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(timeBits(id)).toBe(T0);
  });

  it('sort in time order, whatever the task: the log index on event ids grows at one end', () => {
    const ids = Array.from({ length: 200 }, (_, i) => fireIdOf(`task-${(i * 7919) % 200}`, T0 + i * 1_000));
    expect([...ids].sort()).toEqual(ids);
  });

  it('keep the rest of the bits of a hash of the task and tick: ten thousand tasks on one instant never collide', () => {
    const ids = new Set(Array.from({ length: 10_000 }, (_, i) => fireIdOf(`t-${i}`, T0)));
    expect(ids.size).toBe(10_000);
    // The hash bits are those of the v5 of the same name.
    const v5 = uuidv5(`t1@${T0}`, KAIROS_NAMESPACE);
    expect(fireIdOf('t1', T0).slice(15)).toBe(v5.slice(15));
  });

  it('give a manual fire its own id, time-ordered by when it was asked for', () => {
    const manual = manualFireIdOf('t1', T0, 0);
    expect(manual).not.toBe(fireIdOf('t1', T0));
    expect(manualFireIdOf('t1', T0, 1)).not.toBe(manual);
    expect(timeBits(manual)).toBe(T0);
    expect(version(manual)).toBe('8');
  });

  it('are the ids logs already hold: the same text as the ids derived before (pinned)', () => {
    const TICK = 1767225600000;
    expect(fireIdOf('t1', TICK)).toBe('019b76da-a800-8d65-bc96-46c856bddc1c');
    expect(fireIdOf('job-00042', 1765152000123)).toBe('019afb42-087b-86b5-bcb5-a322bd9505f5');
    expect(manualFireIdOf('t1', TICK, 3)).toBe('019b76da-a800-8b27-b317-8189e3cf77e2');
    expect(firedEventIdOf(fireIdOf('t1', TICK), 2)).toBe('019b76da-a800-8014-b478-ee6780ba493f');
    expect(fireIdOf('ü-任务', 0)).toBe('00000000-0000-84c6-a14c-fdf9729f4fb4');
  });

  it('wrap times outside 48 bits rather than write a malformed id', () => {
    for (const time of [-1, 2 ** 48 + 5, -(2 ** 48)]) {
      const id = fireIdOf('t1', time);
      expect(isUuid(id), id).toBe(true);
      expect(timeBits(id)).toBe(((time % 2 ** 48) + 2 ** 48) % 2 ** 48);
    }
  });
});

describe('TaskFired event ids', () => {
  it('are the fire id for the first attempt and a derived id sharing its time bits for a retry', () => {
    const fireId = fireIdOf('t1', T0);
    expect(firedEventIdOf(fireId, 1)).toBe(fireId);
    const second = firedEventIdOf(fireId, 2);
    expect(second).toBe(firedEventIdOf(fireId, 2));
    expect(second).not.toBe(fireId);
    expect(firedEventIdOf(fireId, 3)).not.toBe(second);
    expect(timeBits(second)).toBe(T0);
    expect(isUuid(second)).toBe(true);
  });

  it('derive deterministically from a fire id written before ids were time-ordered (a v5)', () => {
    const legacy = uuidv5(`t1@${T0}`, KAIROS_NAMESPACE);
    const retry = firedEventIdOf(legacy, 2);
    expect(retry).toBe(firedEventIdOf(legacy, 2));
    expect(retry.slice(0, 13)).toBe(legacy.slice(0, 13));
    expect(version(retry)).toBe('8');
  });
});

describe('fresh event ids', () => {
  it('are version 7 UUIDs carrying the given time, unique within one millisecond', () => {
    const ids = Array.from({ length: 1_000 }, () => newEventId(T0));
    expect(new Set(ids).size).toBe(1_000);
    for (const id of ids.slice(0, 10)) {
      expect(isUuid(id)).toBe(true);
      expect(version(id)).toBe('7');
      expect(timeBits(id)).toBe(T0);
    }
    expect(newEventId(T0 + 1) > newEventId(T0)).toBe(true);
  });
});
