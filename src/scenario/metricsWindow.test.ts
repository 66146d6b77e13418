import { describe, expect, it } from 'vitest';
import { createHost } from '../machine.js';
import { HostCycleObserver } from './hostCycles.js';
import { MetricsCollector } from './metrics.js';
import { MetricsWindow } from './metricsWindow.js';

function window() {
  const host = createHost({
    cpus: 2,
    devices: [{ name: 'dev0', iommuGroup: 3, irqs: [{ intid: 70, trigger: 'level' }] }],
  });
  const cycles = new HostCycleObserver(2);
  const w = new MetricsWindow(host, { kvmVms: () => host.kvm.vms }, cycles);
  const c = new MetricsCollector('normal', 2e9, [{ device: 'dev0', index: 0, intid: 70 }]);
  return { host, cycles, w, c };
}

describe('MetricsWindow', () => {
  it('counters and host cycles are the differences between its two ends: boot and teardown do not count', () => {
    const { host, cycles, w, c } = window();
    w.injections = 2; // during boot
    w.maint = 1;
    cycles.total = 100;
    cycles.byCpu[1] = 100;
    expect(w.open).toBe(false);
    w.openNow();
    expect(w.open).toBe(true);
    w.injections += 3;
    w.maint += 2;
    w.lrOverflows++;
    cycles.total += 50;
    cycles.byCpu[1]! += 50;
    host.run(1000);
    w.closeNow();
    expect(w.open).toBe(false);
    w.injections += 4; // teardown
    cycles.total += 7;
    const m = w.finish(c, 5000);
    expect(m.counters).toMatchObject({ injections: 3, maintenanceIrqs: 2, lrOverflows: 1 });
    expect(m.hostCycles).toMatchObject({ total: 50, byCpu: [0, 50] });
    expect(m.simulated.cycles).toBe(5000);
  });

  it('never opened: everything since the machine was built; a line left active at the GIC is reported', () => {
    const { host, w, c } = window();
    w.injections = 2;
    host.irq.gic.distributor.setActive(70, true); // as a host that took INTID 70 and never deactivated it
    const m = w.finish(c, 10);
    expect(m.counters.injections).toBe(2);
    expect(m.irqs.leftActive).toBe(1);
  });
});
