import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Box, Labeler, overlaps } from './declutter.js';

describe('Labeler', () => {
  it('takes the first free candidate and refuses a label that meets every candidate', () => {
    const l = new Labeler();
    expect(l.place([[0, 0, 50, 10]])).toBe(0);
    expect(
      l.place([
        [10, 5, 50, 10],
        [10, 10, 50, 10],
      ]),
    ).toBe(1); // touching edges do not overlap
    expect(l.place([[40, 0, 10, 20]])).toBe(-1);
    expect(l.boxes).toHaveLength(2);
    l.clear();
    expect(l.place([[40, 0, 10, 20]])).toBe(0);
  });

  it('never keeps two overlapping boxes, wherever the candidates fall (across its 64 px columns)', () => {
    const box = fc
      .tuple(fc.integer({ min: -50, max: 500 }), fc.integer({ min: 0, max: 200 }), fc.integer({ min: 1, max: 150 }))
      .map(([x, y, w]): Box => [x, y, w, 13]);
    fc.assert(
      fc.property(fc.array(fc.array(box, { minLength: 1, maxLength: 4 }), { maxLength: 60 }), (labels) => {
        const l = new Labeler();
        for (const cands of labels) l.place(cands);
        for (let i = 0; i < l.boxes.length; i++)
          for (let j = i + 1; j < l.boxes.length; j++) expect(overlaps(l.boxes[i]!, l.boxes[j]!)).toBe(false);
      }),
    );
  });
});
