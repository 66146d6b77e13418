import { describe, expect, it } from 'vitest';
import { createHost } from '../machine.js';
import { LineLedger, type LineState } from './lineLedger.js';
import { loadScenario } from './loader.js';
import { MetricsCollector } from './metrics.js';

const YAML = `
name: ledger
duration: 100us
devices:
  - { name: dev0, iommuGroup: 3, irqs: [{ intid: 70 }, { intid: 71, trigger: edge }] }
vms: [{ vcpus: 1 }]
workloads: [{ device: dev0, index: 0, kind: periodic, period: 10us }]
`;

function ledger() {
  const s = loadScenario(YAML, 'ledger.yaml');
  const host = createHost({ cpus: 2, devices: [{ name: 'dev0', iommuGroup: 3, irqs: s.devices[0]!.irqs }] });
  const c = new MetricsCollector('normal', 2e9, [
    { device: 'dev0', index: 0, intid: 70 },
    { device: 'dev0', index: 1, intid: 71 },
  ]);
  const led = new LineLedger(host.engine, c, host.devices, s);
  const finish = () => {
    const m = c.finish({ simCycles: 1, hostCycles: 0, leftActive: 0, leftMasked: 0 });
    led.settle(m);
    return m;
  };
  return { host, led, l: led.line('dev0', 0) as LineState, finish };
}

describe('LineLedger', () => {
  it('a crafted sequence: orphaned before the irqfd, coalesced while asserted, a late irqfd delivers the orphan, then a duplicate', () => {
    const { led, l, finish } = ledger();
    led.raise(l); // no irqfd yet: orphaned
    l.hw.deassert(l.index);
    l.owned = true; // the irqfd step
    led.raise(l); // outstanding
    led.raise(l); // the device condition is still set: coalesced (one pending state per INTID)
    led.delivered(l, 500);
    led.delivered(l, 600); // nothing outstanding: it answers the orphaned raise, which is then not orphaned
    led.delivered(l, 700); // nothing left to answer: delivered twice
    const m = finish();
    expect(m.lines[0]).toMatchObject({ raised: 3, delivered: 2, coalesced: 1, orphaned: 0, lost: 0 });
    expect(m.irqs).toMatchObject({ raised: 3, delivered: 2, coalesced: 1, orphaned: 0, duplicates: 1, lost: 0 });
    expect(led.happened({ kind: 'raised', device: 'dev0', index: 0, n: 3 })).toBe(true);
    expect(led.happened({ kind: 'delivered', device: 'dev0', index: 0, n: 3 })).toBe(true); // handler entries, duplicates too
    expect(led.happened({ kind: 'delivered', device: 'dev0', index: 0, n: 4 })).toBe(false);
  });

  it('a VM destroyed with a raise in flight orphans it; a late delivery turns the orphan back into a delivery', () => {
    const { led, l, finish } = ledger();
    l.owned = true;
    led.raise(l);
    expect(led.inFlight()).toBe(true);
    led.release(l);
    expect(led.inFlight()).toBe(false);
    led.delivered(l, 100); // the guest was already in its handler
    const m = finish();
    expect(m.lines[0]).toMatchObject({ raised: 1, delivered: 1, orphaned: 0, lost: 0 });
    expect(m.irqs).toMatchObject({ orphaned: 0, duplicates: 0, lost: 0 });
  });

  it('a raise nobody serves is lost; deactivation counts once per raise (the lazy-disable re-activation is not)', () => {
    const { led, l, finish } = ledger();
    l.owned = true;
    led.raise(l);
    expect(led.deactivated(70)).toBe(true);
    expect(led.deactivated(70)).toBe(false);
    expect(led.deactivated(99)).toBe(false); // not a passed-through line
    expect(led.happened({ kind: 'deactivated', device: 'dev0', index: 0, n: 1 })).toBe(true);
    const m = finish();
    expect(m.irqs).toMatchObject({ raised: 1, delivered: 0, lost: 1 });
    expect(m.latency.toDeactivation.count).toBe(1);
  });

  it('eventfd events: orphaned without an irqfd, coalesced while one is outstanding or the backend is busy', () => {
    const { led, l, finish } = ledger();
    expect(led.signal(l, false, false)).toBe(false);
    l.owned = true;
    expect(led.signal(l, true, false)).toBe(true);
    expect(led.signal(l, true, false)).toBe(false);
    led.delivered(l, 10);
    expect(led.signal(l, true, true)).toBe(false);
    const m = finish();
    expect(m.lines[0]).toMatchObject({ raised: 4, delivered: 1, coalesced: 2, orphaned: 1, lost: 0 });
  });
});

describe('LineLedger: MSI vectors', () => {
  it('orphaned before the irqfd; one handler entry serves every MSI queued (the rest coalesced); an MSI never served is lost', () => {
    const host = createHost({
      cpus: 2,
      gic: 'v3',
      msiDevices: [{ name: '0000:01:00.0', iommuGroup: 4, deviceId: 0x100, vectors: 2 }],
    });
    const c = new MetricsCollector('normal', 2e9, [{ device: '0000:01:00.0', index: 0, intid: 8192 }]);
    const s = loadScenario(YAML, 'ledger.yaml');
    const led = new LineLedger(host.engine, c, [], s, [{ fn: host.msiDevices[0]!, lpiBase: 8192 }]);
    const v = led.line('0000:01:00.0', 0)!;
    expect(v).toMatchObject({ kind: 'msi', intid: 8192 });
    led.raise(v); // no irqfd yet: orphaned (the function's MSI is not even enabled: it drops the write)
    expect(host.msiDevices[0]!.hw.dropped[0]).toBe(1);
    v.owned = true;
    led.raise(v);
    led.raise(v);
    expect(led.inFlight()).toBe(true);
    led.delivered(v, 300); // the driver drains both
    expect(led.inFlight()).toBe(false);
    led.raise(v); // never served
    const m = c.finish({ simCycles: 1, hostCycles: 0, leftActive: 0, leftMasked: 0 });
    led.settle(m);
    expect(m.lines[0]).toMatchObject({ raised: 4, delivered: 1, coalesced: 1, orphaned: 1, lost: 1 });
  });
});
