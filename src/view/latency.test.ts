import { describe, expect, it } from 'vitest';
import { chainStages, HIST_BINS, latencyOf } from './latency.js';
import { syntheticChromeTrace } from './syntheticTrace.js';
import { buildTimeline } from './timelineModel.js';

// the synthetic chain: device_assert, gic_iar (+200 ns), gic_lr_write (+200 ns), guest_eoi (+200 ns)
const d = buildTimeline('t', [
  { label: 'a', source: 's', trace: syntheticChromeTrace(50) },
  { label: 'b', source: 's', trace: syntheticChromeTrace(100) },
]);

describe('latencyOf', () => {
  it('splits a causal chain into stages named by the event that ends each', () => {
    expect(chainStages(d, 0)).toEqual([
      { key: 'gic_iar', name: 'gic_iar', ns: 200 },
      { key: 'gic_lr_write', name: 'gic_lr_write', ns: 200 },
      { key: 'guest_eoi', name: 'guest_eoi', ns: 200 },
    ]);
  });

  it('per run: one entry per IRQ, mean stages adding up to the mean total, histogram bins summing to the IRQ count', () => {
    const lat = latencyOf(d);
    expect(lat.runs.map((r) => r.irqs)).toEqual([10, 20]);
    for (const r of lat.runs) {
      const mean = r.total.reduce((a, b) => a + b, 0) / r.irqs;
      expect(r.mean.reduce((a, s) => a + s.ns, 0)).toBeCloseTo(mean, 6);
      expect(lat.total.counts[r.run]!.reduce((a, b) => a + b, 0)).toBe(r.irqs);
      expect(lat.total.counts[r.run]).toHaveLength(HIST_BINS);
      // no chain reaches guest_irq_entry here: delivery is unknown, not zero
      expect(r.delivery.every(Number.isNaN)).toBe(true);
      expect(lat.delivery.counts[r.run]!.reduce((a, b) => a + b, 0)).toBe(0);
    }
    expect(lat.runs[1]!.chainOfSeq.get(1)).toBeDefined();
    expect(lat.names).toEqual(['gic_iar', 'gic_lr_write', 'guest_eoi']);
  });

  it('numbers a stage whose event recurs in the chain (a second gic_iar on the normal path is `gic_iar #2`)', () => {
    const lat = latencyOf(
      buildTimeline('t', [
        {
          label: 'r',
          source: 's',
          trace: {
            traceEvents: ['device_assert', 'gic_iar', 'gic_dir', 'gic_iar'].flatMap((name, k) => [
              { name, cat: 'irqfwd', ph: 'X', ts: k, dur: 0.02, pid: 1, tid: 100, args: { seq: 1 } },
              {
                name: 'irq',
                cat: 'irqfwd.flow',
                ph: k === 0 ? 's' : k === 3 ? 'f' : 't',
                id: 1,
                ts: k,
                pid: 1,
                tid: 100,
              },
            ]),
          },
        },
      ]),
    );
    expect(lat.runs[0]!.mean.map((s) => [s.key, s.ns])).toEqual([
      ['gic_iar', 1000],
      ['gic_dir', 1000],
      ['gic_iar #2', 1000],
    ]);
  });
});
