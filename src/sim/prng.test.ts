import { describe, expect, it } from 'vitest';
import { EventHeap } from './eventHeap.js';
import { Prng, RandomStreams } from './prng.js';

describe('prng', () => {
  it('is a pure function of the seed', () => {
    const a = new Prng(42);
    const b = new Prng(42);
    const xs = Array.from({ length: 5 }, () => a.nextU32());
    expect(Array.from({ length: 5 }, () => b.nextU32())).toEqual(xs);
    expect(new Prng(43).nextU32()).not.toBe(xs[0]);
  });

  it('gives each named stream its own sequence, unaffected by other streams', () => {
    const r1 = new RandomStreams(9);
    const r2 = new RandomStreams(9);
    r2.stream('noise').nextU32();
    r2.stream('noise').nextU32();
    expect(r2.stream('dev0').nextU32()).toBe(r1.stream('dev0').nextU32());
    expect(r1.stream('dev1').nextU32()).not.toBe(new RandomStreams(9).stream('dev0').nextU32());
  });

  it('below(n) stays in range', () => {
    const p = new Prng(1);
    for (let i = 0; i < 1000; i++) {
      const v = p.below(7);
      expect(v >= 0 && v < 7 && Number.isInteger(v)).toBe(true);
    }
  });
});

describe('event heap', () => {
  it('pops by time, ties in insertion order, and supports removal and re-keying', () => {
    const h = new EventHeap(2);
    h.push(3, 50);
    h.push(1, 10);
    h.push(2, 10);
    h.push(0, 30);
    h.push(7, 5);
    h.remove(7);
    h.push(0, 10); // re-key: now ties with 1 and 2 but inserted last
    const out: number[] = [];
    for (let a = h.pop(); a >= 0; a = h.pop()) out.push(a);
    expect(out).toEqual([1, 2, 0, 3]);
    expect(h.size).toBe(0);
  });
});
