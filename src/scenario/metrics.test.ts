import { describe, expect, it } from 'vitest';
import {
  checkExpectations,
  emptyMetrics,
  fmtNum,
  formatMetricsTable,
  isMetricPath,
  LatencyRecorder,
  type Metrics,
  MetricsCollector,
  metricAt,
  metricPaths,
  renderTable,
} from './metrics.js';

function sample(mode: 'normal' | 'forwarded', exitsPerIrq: number, hostPerIrq: number): Metrics {
  const c = new MetricsCollector(mode, 2.4e9, [{ device: 'd0', index: 0, intid: 80 }]);
  for (let i = 0; i < 100; i++) {
    c.raised(0);
    c.delivered(0, 10_000 + i);
    c.deactivated(20_000 + i);
    c.rearmed(30_000);
    c.exit('irq');
    if (exitsPerIrq > 1) {
      c.exit('maintenance');
      c.counters.maintenanceIrqs++;
      c.counters.resamples++;
      c.counters.unmasks++;
    }
    c.counters.eventfdSignals += exitsPerIrq;
  }
  return c.finish({ simCycles: 24_000_000, hostCycles: hostPerIrq * 100, leftActive: 0, leftMasked: 0 });
}

describe('LatencyRecorder', () => {
  it('computes nearest-rank percentiles, mean and max, in cycles and ns', () => {
    const r = new LatencyRecorder(4);
    for (let v = 1; v <= 100; v++) r.record(101 - v);
    const s = r.summary(2e9);
    expect(s.count).toBe(100);
    expect(s.cycles).toEqual({ mean: 50.5, p50: 50, p99: 99, max: 100 });
    expect(s.ns).toEqual({ mean: 25.25, p50: 25, p99: 49.5, max: 50 });
  });

  it('grows by doubling and never loses samples', () => {
    const r = new LatencyRecorder(2);
    for (let i = 0; i < 1000; i++) r.record(i);
    expect(r.count).toBe(1000);
    expect(r.capacity).toBe(1024);
    expect(r.summary(1e9).cycles?.max).toBe(999);
  });

  it('an empty recorder summarises to null figures, not zeros (no sample is not "instant")', () => {
    expect(new LatencyRecorder().summary(1e9)).toEqual({ count: 0, cycles: null, ns: null });
  });

  it('a single sample is every percentile', () => {
    const r = new LatencyRecorder();
    r.record(7);
    expect(r.summary(1e9).cycles).toEqual({ mean: 7, p50: 7, p99: 7, max: 7 });
  });
});

describe('MetricsCollector', () => {
  it('derives lost, per-IRQ exits and host cycles per IRQ', () => {
    const c = new MetricsCollector('normal', 2e9, [
      { device: 'd0', index: 0, intid: 80 },
      { device: 'd0', index: 1, intid: 81 },
    ]);
    for (let i = 0; i < 10; i++) c.raised(0);
    for (let i = 0; i < 8; i++) c.delivered(0, 100);
    c.coalesced(0);
    c.raised(1);
    c.orphaned(1);
    for (let i = 0; i < 16; i++) c.exit(i % 2 ? 'irq' : 'maintenance');
    const m = c.finish({ simCycles: 2e6, hostCycles: 80_000, leftActive: 1, leftMasked: 0 });
    expect(m.irqs).toEqual({
      raised: 11,
      delivered: 8,
      coalesced: 1,
      orphaned: 1,
      lost: 1,
      duplicates: 0,
      leftActive: 1,
      leftMasked: 0,
    });
    expect(m.exits.total).toBe(16);
    expect(m.exits.perIrq.total).toBe(2);
    expect(m.exits.perIrq.byReason).toMatchObject({ irq: 1, maintenance: 1, wfx: 0 });
    expect(m.hostCycles).toEqual({ total: 80_000, perIrq: 10_000, byCpu: [], livelocked: 0 });
    expect(m.simulated).toEqual({ cycles: 2e6, ns: 1e6, hz: 2e9 });
    expect(m.lines.map((l) => l.lost)).toEqual([1, 0]);
    expect(m.probes).toEqual({});
  });

  it('has stable top-level field names', () => {
    expect(Object.keys(emptyMetrics('forwarded', 1e9))).toEqual([
      'mode',
      'simulated',
      'irqs',
      'exits',
      'hostCycles',
      'latency',
      'counters',
      'probes',
      'lines',
    ]);
  });

  it('records probes only when sampled', () => {
    const c = new MetricsCollector('normal', 1e9, []);
    c.probe('hypercall', 6400);
    c.probe('hypercall', 6600);
    const m = c.finish({ simCycles: 1, hostCycles: 0, leftActive: 0, leftMasked: 0 });
    expect(Object.keys(m.probes)).toEqual(['hypercall']);
    expect(m.probes.hypercall!.cycles?.mean).toBe(6500);
  });
});

describe('metric paths and expectations', () => {
  it('metric paths name numbers, including probes', () => {
    expect(isMetricPath('exits.perIrq.total')).toBe(true);
    expect(isMetricPath('probes.hypercall.cycles.mean')).toBe(true);
    expect(isMetricPath('latency.toGuest.ns.p99')).toBe(true);
    expect(isMetricPath('irqs')).toBe(false);
    expect(isMetricPath('lines')).toBe(false);
    expect(metricPaths()).toContain('counters.maintenanceIrqs');
    expect(metricAt(sample('normal', 2, 15_000), 'exits.perIrq.total')).toBe(2);
  });

  it('checks values, anchors with tolerance, and skips what it cannot check', () => {
    const m = sample('normal', 2, 15_000);
    const c = new MetricsCollector('forwarded', 1e9, []);
    c.probe('hypercall', 7000);
    const f = c.finish({ simCycles: 1, hostCycles: 0, leftActive: 0, leftMasked: 0 });
    const anchors = { hypercall: { cycles: 6500, source: 'ISCA' } };
    const r = checkExpectations(
      [
        { metric: 'exits.perIrq.total', value: 2, mode: 'normal' },
        { metric: 'probes.hypercall.cycles.mean', anchor: 'hypercall', tolerance: 0.1 },
        { metric: 'probes.hypercall.cycles.mean', anchor: 'virqCompletion' },
      ],
      [m, f],
      anchors,
    );
    expect(r.map((x) => [x.mode, x.ok, x.skipped !== undefined])).toEqual([
      ['normal', true, false],
      ['normal', true, true], // no hypercall samples in the normal run
      ['forwarded', true, false], // 7000 within 6500 ± 10 %
      ['normal', true, true],
      ['forwarded', true, true],
    ]);
    const miss = checkExpectations(
      [{ metric: 'probes.hypercall.cycles.mean', anchor: 'hypercall', tolerance: 0.05 }],
      [f],
      anchors,
    );
    expect(miss[0]).toMatchObject({ ok: false, expected: 6500, actual: 7000, source: 'ISCA' });
  });
});

describe('formatting', () => {
  it('fmtNum groups thousands', () => {
    expect(fmtNum(1234567)).toBe('1,234,567');
    expect(fmtNum(-1234.5, 1)).toBe('-1,234.5');
    expect(fmtNum(12)).toBe('12');
  });

  it('renderTable aligns label left and cells right', () => {
    const t = renderTable(['', 'a', 'bb'], [['x', '1', '22'], null, ['long label', '333', '4']]);
    expect(t).toBe(['               a   bb', 'x              1   22', '', 'long label   333    4', ''].join('\n'));
  });

  it('the compare table shows both modes side by side with a ratio column', () => {
    const t = formatMetricsTable([sample('normal', 2, 15_000), sample('forwarded', 1, 7_000)]);
    const lines = t.split('\n');
    expect(lines[0]).toMatch(/^\s+normal\s+forwarded\s+fwd\/normal$/);
    expect(t).toMatch(/exits per IRQ\s+2\.00\s+1\.00\s+0\.50×/);
    expect(t).toMatch(/ {2}maintenance\s+1\.00\s+0\.00/);
    expect(t).toMatch(/host cycles per IRQ\s+15,000\s+7,000\s+0\.47×/);
    expect(t).toMatch(/IRQs lost\s+0\s+0/);
    const widths = new Set(lines.filter((l) => l.includes('×')).map((l) => l.length));
    expect(widths.size).toBe(1); // the ratio column is right-aligned
  });

  it('deactivation is marked and explained; re-armed (deactivated and unmasked) compares like with like', () => {
    const t = formatMetricsTable([sample('normal', 2, 15_000), sample('forwarded', 1, 7_000)]);
    expect(t).toMatch(/assert → deactivation\*, ns {2}mean/);
    expect(t).toMatch(/assert → re-armed, ns {7}mean\s+12,500\.0\s+12,500\.0\s+1\.00×/);
    expect(t).toMatch(/\(deactivated and unmasked\) p99/);
    expect(t).toContain('* deactivation alone: the normal path deactivates the INTID at the host EOI');
  });

  it('coalesced and orphaned IRQs and a livelocked CPU show in the text table', () => {
    const c = new MetricsCollector('normal', 1e9, [{ device: 'd', index: 0, intid: 80 }]);
    for (let i = 0; i < 5; i++) c.raised(0);
    c.delivered(0, 10);
    c.coalesced(0);
    c.coalesced(0);
    c.orphaned(0);
    c.orphaned(0);
    // CPU 1 spent 995 of 1000 cycles in the host: livelocked (≥ 99 %); CPU 0 half
    const m = c.finish({
      simCycles: 1000,
      hostCycles: 1495,
      hostByCpu: [500, 995],
      windowCycles: 1000,
      leftActive: 0,
      leftMasked: 0,
    });
    expect(m.hostCycles.livelocked).toBe(1);
    const t = formatMetricsTable([m]);
    expect(t).toMatch(/ {2}coalesced \(merged, pending\)\s+2\n/);
    expect(t).toMatch(/ {2}orphaned \(no VM owned line\)\s+2\n/);
    expect(t).toMatch(/CPUs livelocked \(≥ 99 % host\)\s+1\n/);
  });

  it('a run with no samples prints — in the table and null in JSON, never 0', () => {
    const m = new MetricsCollector('forwarded', 1e9, [{ device: 'd', index: 0, intid: 80 }]).finish({
      simCycles: 1000,
      hostCycles: 0,
      leftActive: 0,
      leftMasked: 0,
    });
    const t = formatMetricsTable([m]);
    expect(t).toMatch(/exits per IRQ\s+—\n/);
    expect(t).toMatch(/host cycles per IRQ\s+—\n/);
    expect(t).toMatch(/assert → guest handler, ns {2}mean\s+—\n/);
    expect(t).toMatch(/assert → re-armed, ns {7}mean\s+—\n/);
    const j = JSON.parse(JSON.stringify(m));
    expect(j.exits.perIrq.total).toBeNull();
    expect(j.exits.perIrq.byReason.irq).toBeNull();
    expect(j.hostCycles.perIrq).toBeNull();
    expect(j.latency.toGuest).toEqual({ count: 0, cycles: null, ns: null });
    // an expectation on a figure with no samples is skipped, not compared with 0
    const [e] = checkExpectations([{ metric: 'latency.toGuest.cycles.mean', value: 0 }], [m], {});
    expect(e).toMatchObject({ ok: true, skipped: 'no samples in this run' });
  });

  it('a single mode has no ratio column', () => {
    const t = formatMetricsTable([sample('forwarded', 1, 7_000)]);
    expect(t.split('\n')[0]).toMatch(/^\s+forwarded$/);
    expect(t).not.toContain('×');
  });
});
