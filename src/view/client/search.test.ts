import { describe, expect, it } from 'vitest';
import { lowerBound, runningMaxEnd, upperBound, visibleRange } from './search.js';

describe('client binary searches', () => {
  it('bounds', () => {
    const v = [1, 3, 3, 5];
    expect([lowerBound(v, 3, 0, 4), upperBound(v, 3, 0, 4), lowerBound(v, 6, 0, 4), upperBound(v, 0, 0, 4)]).toEqual([
      1, 3, 4, 0,
    ]);
  });

  it('visibleRange finds a long slice that started before the view, per segment', () => {
    // segment 0: [0,100) long, [10,12), [50,51); segment 1: [5,6)
    const start = [0, 10, 50, 5];
    const dur = [100, 2, 1, 1];
    const first = [0, 3, 4];
    const maxEnd = runningMaxEnd(start, dur, first, 2);
    expect([...maxEnd]).toEqual([100, 100, 100, 6]);
    expect(visibleRange(start, maxEnd, first, 0, 60, 70)).toEqual([0, 3]);
    expect(visibleRange(start, maxEnd, first, 1, 60, 70)).toEqual([4, 4]);
    expect(visibleRange(start, maxEnd, first, 1, 0, 5.5)).toEqual([3, 4]);
  });
});
