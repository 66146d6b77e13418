import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ChromeEvent } from '../chromeTrace.js';
import { STYLE_GUEST, STYLE_HANDLER } from '../timelineData.js';
import { buildTimeline } from '../timelineModel.js';
import { bucketSummary, countIn, coveredBefore, densityIndex } from './density.js';

/** A CPU lane: back-to-back guest and handler slices of random lengths, and instants between them. */
const lane = fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 1, max: 50 }), fc.integer({ min: 0, max: 3 })), {
  minLength: 1,
  maxLength: 40,
});

function build(spec: [boolean, number, number][]) {
  const ev: ChromeEvent[] = [{ name: 'thread_name', ph: 'M', pid: 1, tid: 100, args: { name: 'CPU 0' } }];
  let t = 0;
  for (const [guest, len, points] of spec) {
    ev.push({ name: guest ? 'guest (vCPU 0)' : 'IRQ 3 vfio', ph: 'X', ts: t, dur: len, pid: 1, tid: 100 });
    for (let p = 0; p < points; p++) ev.push({ name: 'kvm_exit', ph: 'i', ts: t + p, pid: 1, tid: 100 });
    t += len;
  }
  return buildTimeline('t', [{ label: 'r', source: 's', trace: { traceEvents: ev } }]);
}

describe('density index', () => {
  it('counts point events and slice time per interval exactly as a scan over the events does', () => {
    fc.assert(
      fc.property(lane, fc.integer({ min: -10, max: 2000 }), fc.integer({ min: 1, max: 2000 }), (spec, a, len) => {
        const d = build(spec);
        const ld = densityIndex(d)[0]!;
        const t0 = a * 1000 + d.startNs;
        const t1 = t0 + len * 1000;
        let points = 0;
        const share = new Map<number, number>();
        for (let i = 0; i < d.itemStart.length; i++) {
          const s = d.itemStart[i]!;
          if (d.itemDur[i] === 0) points += s >= t0 && s < t1 ? 1 : 0;
          else {
            const st = d.itemStyle[i]!;
            share.set(st, (share.get(st) ?? 0) + Math.max(0, Math.min(t1, s + d.itemDur[i]!) - Math.max(t0, s)));
          }
        }
        expect(countIn(ld.points, t0, t1)).toBe(points);
        ld.styles.forEach((st, k) => {
          expect(coveredBefore(ld, k, t1) - coveredBefore(ld, k, t0)).toBe(share.get(st) ?? 0);
        });
      }),
    );
  });

  it('says what a bucket holds: events and time in guest mode and in the host IRQ handler', () => {
    const d = build([
      [true, 6, 1],
      [false, 2, 0],
      [true, 2, 0],
    ]);
    const names = (s: number): string => (s === STYLE_GUEST ? 'guest' : s === STYLE_HANDLER ? 'handler' : '?');
    expect(bucketSummary(densityIndex(d)[0]!, d.startNs, d.startNs + 10_000, names)).toBe(
      '1 event, guest 80.0%, handler 20.0%',
    );
  });

  it("counts a device line's IRQs: its assertions, not the deassertions beside them", () => {
    const ev: ChromeEvent[] = [{ name: 'thread_name', ph: 'M', pid: 3, tid: 100320, args: { name: 'INTID 80 line' } }];
    for (let k = 0; k < 3; k++)
      for (const [name, at] of [
        ['device_assert', 0],
        ['device_deassert', 4],
      ] as const)
        ev.push({ name, ph: 'X', ts: k * 10 + at, dur: 0.02, pid: 3, tid: 100320, args: { seq: k + 1 } });
    const d = buildTimeline('t', [{ label: 'r', source: 's', trace: { traceEvents: ev } }]);
    const ld = densityIndex(d)[0]!;
    expect([...ld.irqs]).toEqual([0, 10_000, 20_000]);
    expect(bucketSummary(ld, 0, 15_000, () => '')).toBe('2 IRQs asserted, 4 events');
  });
});
