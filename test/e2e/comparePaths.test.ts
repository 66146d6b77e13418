// scenarios/compare-paths.yaml as `irqfwd compare` runs it: each path is the scenario with its parameters set, in its
// own mode — so the GICv2 columns are the default scenario's two runs, the GICv3 column is gicv3-default's forwarded
// run, figure for figure, and the GICv4.1 column is the same workload from a vfio-pci function's MSI vector 0,
// forwarded by irqbypass as a vLPI (kvm_vgic_v4_set_forwarding → its_map_vlpi) that the ITS injects into the resident
// vCPU with no exit (vgic_v4_load made its vPE resident; no doorbell, no host IRQ, no eventfd).
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { expandPaths, loadScenarioFile, sweepPoint } from '../../src/scenario/loader.js';
import { runScenario } from '../../src/scenario/runner.js';

const DIR = join(import.meta.dirname, '../../scenarios');

describe('scenarios/compare-paths.yaml: irqfd, HW-bit on GICv2, HW-bit on GICv3, GICv4.1 direct injection', () => {
  const paths = expandPaths(loadScenarioFile(join(DIR, 'compare-paths.yaml')));
  const runs = paths.map((p) => runScenario(p.scenario, { modes: [p.mode] }).runs[0]!);
  const v2 = runScenario(loadScenarioFile(join(DIR, 'default.yaml')), { modes: ['normal', 'forwarded'] }).runs;
  const v3 = runScenario(loadScenarioFile(join(DIR, 'gicv3-default.yaml')), { modes: ['forwarded'] }).runs[0]!;

  it('delivers every IRQ on every path with no invariant violated; forwarding saves the maintenance exit, direct injection every exit', () => {
    expect(paths.map((p) => p.name)).toEqual(['irqfd-v2', 'hwbit-v2', 'hwbit-v3', 'vlpi-v41']);
    for (const r of runs) {
      expect(r.violations).toEqual([]);
      expect(r.metrics.irqs).toMatchObject({
        raised: 1000,
        delivered: 1000,
        coalesced: 0,
        orphaned: 0,
        lost: 0,
        duplicates: 0,
        leftActive: 0,
        leftMasked: 0,
      });
    }
    expect(runs.map((r) => r.metrics.exits.perIrq.total)).toEqual([2, 1, 1, 0]);
    expect(runs.map((r) => r.metrics.hostCycles.perIrq)).toEqual([15300, 7220, 7120, 0]);
  });

  it('each column is the machine it names: the default scenario on GICv2, gicv3-default on GICv3', () => {
    expect(runs[0]!.metrics).toEqual(v2[0]!.metrics);
    expect(runs[1]!.metrics).toEqual(v2[1]!.metrics);
    expect(runs[2]!.metrics).toEqual(v3.metrics);
  });

  it('vlpi-v41 with the vCPU resident: no exit, no host cycle, no eventfd, no injection through KVM (its_map_vlpi)', () => {
    const m = runs[3]!.metrics;
    expect(m.exits.total).toBe(0);
    expect(m.hostCycles.total).toBe(0);
    expect(m.counters).toEqual({
      eventfdSignals: 0,
      unmasks: 0,
      maintenanceIrqs: 0,
      resamples: 0,
      injections: 0,
      lrOverflows: 0,
    });
    // MSI sent → the guest's handler: the vLPI is pending in the vPE at once; the guest's ICC_IAR1_EL1 read and
    // the 200-cycle compute step it interrupts are all that remain
    expect(m.latency.toGuest.cycles).toEqual(LATENCY_RESIDENT);
    expect(m.lines).toMatchObject([{ device: '0000:01:00.0', index: 0, intid: 8192, raised: 1000, delivered: 1000 }]);
  });

  it('the same function without GICv4 (normal: kvm-arm.vgic_v4_enable=0) or with the vCPU in WFI (the doorbell)', () => {
    const v41 = sweepPoint(paths[3]!.scenario, 'workloads[0].count', 200); // 200 MSIs suffice here
    const sw = runScenario(v41, { modes: ['normal'] }).runs[0]!.metrics;
    const wfi = runScenario(sweepPoint(v41, 'vms[0].guest.workload', 'idle'), { modes: ['forwarded'] }).runs[0]!;
    // software: host LPI → vfio_msihandler → eventfd → irqfd → vITS translation → vLPI, the vCPU kicked out to take it
    expect(sw.irqs).toMatchObject({ raised: 200, delivered: 200, lost: 0 });
    expect(sw.exits.perIrq.byReason).toMatchObject({ ipi: 1, irq: 0, maintenance: 0 });
    expect(sw.counters.eventfdSignals).toBe(200);
    expect(sw.hostCycles.perIrq).toBe(7383);
    // non-resident: the doorbell (vgic_v4_doorbell_handler) wakes the vCPU, which takes the vLPI, then WFIs again
    expect(wfi.violations).toEqual([]);
    expect(wfi.metrics.irqs).toMatchObject({ raised: 200, delivered: 200, lost: 0 });
    expect(wfi.metrics.exits.perIrq.byReason).toMatchObject({ wfx: 1, irq: 0, ipi: 0 });
    expect(wfi.metrics.counters.eventfdSignals).toBe(0);
    expect(wfi.metrics.hostCycles.perIrq).toBe(7560);
  });
});

const LATENCY_RESIDENT = { mean: 129.5, p50: 129, p99: 227, max: 229 };
