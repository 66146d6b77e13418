// More forwarded platform lines than a GICv3 has SPIs (988: INTIDs 32..1019), on a GICv3.1 host whose distributor
// implements Extended SPIs (INTIDs 4096..): the last lines are ESPIs, which irq-gic-v3.c drives as SPIs
// (ESPI_RANGE, convert_offset_espi) and which KVM forwards like SPIs — the HW list register's pINTID[44:32] holds
// an ESPI (vgic_v3_populate_lr writes hwintid unmasked). KVM's vGIC-v3 has no ESPIs (VGIC_MAX_SPI 1019), so each
// VM sees its lines as ordinary vSPIs 32 + gsi. One VM has 16 vCPUs (a vGIC-v3 VM takes up to VGIC_V3_MAX_CPUS).
import { describe, expect, it } from 'vitest';
import { loadScenario } from '../../src/scenario/loader.js';
import { runScenario } from '../../src/scenario/runner.js';

const DEVICES = 250;
const LINES_PER_DEVICE = 4;
const LINES = DEVICES * LINES_PER_DEVICE; // 1000 > 988
const SPIS = 988;
const IRQS_PER_LINE = 2;
/** Line k: SPI 32 + k while SPIs last, then ESPI 4096 + (k - 988). */
const intidOf = (k: number) => (k < SPIS ? 32 + k : 4096 + k - SPIS);
/** vm0 (16 vCPUs) takes the first half of the devices, vm1 (2 vCPUs) the rest, ESPIs included. */
const vmOf = (d: number) => (d < DEVICES / 2 ? 'vm0' : 'vm1');
const VCPUS = { vm0: 16, vm1: 2 };
/** Cycles between the first raises of two consecutive lines; each line is raised again one round later. */
const STAGGER_US = 10;

function scenario() {
  const devices = Array.from({ length: DEVICES }, (_, d) => ({
    name: `dev${d}`,
    iommuGroup: 10 + d,
    irqs: Array.from({ length: LINES_PER_DEVICE }, (_, i) => ({
      intid: intidOf(d * LINES_PER_DEVICE + i),
      trigger: 'level',
    })),
  }));
  const gsi = { vm0: 0, vm1: 0 };
  const vmm = devices.flatMap((dev, d) => {
    const vm = vmOf(d);
    return [
      { step: 'open-device', device: dev.name, vm },
      ...dev.irqs.flatMap((_, index) => [
        { step: 'irqfd', device: dev.name, index, gsi: gsi[vm]++, resample: true, vm },
        { step: 'assign', device: dev.name, index, vm },
      ]),
    ];
  });
  // round-robin over the lines, one raise every STAGGER_US: each line IRQS_PER_LINE times, one round apart
  const workloads = devices.flatMap((dev, d) =>
    dev.irqs.map((_, index) => ({
      device: dev.name,
      index,
      kind: 'periodic',
      period: `${LINES * STAGGER_US}us`,
      start: `${5 + (d * LINES_PER_DEVICE + index) * STAGGER_US}us`,
      count: IRQS_PER_LINE,
    })),
  );
  // the guest spreads its IRQs over its vCPUs (irq_set_affinity: a trapped GICD_IROUTER write), vINTID 32 + g → g mod n
  const retarget = (vm: 'vm0' | 'vm1') =>
    Array.from({ length: gsi[vm] }, (_, g) => ({ intid: 32 + g, vcpu: g % VCPUS[vm] }));
  return loadScenario(
    JSON.stringify({
      name: 'gicv3-espi',
      seed: 1,
      duration: `${IRQS_PER_LINE * LINES * STAGGER_US}us`,
      mode: 'forwarded',
      host: { cpus: 8, costProfile: 'xgene', gic: { version: 'v3', nrIrqs: 1024, nrEspis: 32 } },
      devices,
      vms: [
        { name: 'vm0', vcpus: VCPUS.vm0, guest: { workload: 'idle' }, retarget: retarget('vm0') },
        { name: 'vm1', vcpus: VCPUS.vm1, guest: { workload: 'idle' }, retarget: retarget('vm1') },
      ],
      vmm,
      workloads,
    }),
    'gicv3-espi.json',
  );
}

describe('a GICv3.1 host forwarding 1000 lines (988 SPIs + 12 ESPIs) to a 16-vCPU and a 2-vCPU VM', () => {
  const report = runScenario(scenario(), { modes: ['forwarded'] });
  const run = report.runs[0]!;

  it('delivers every raise of every line, none lost, with no invariant violated', () => {
    expect(run.violations).toEqual([]);
    expect(run.metrics.irqs).toMatchObject({
      raised: LINES * IRQS_PER_LINE,
      delivered: LINES * IRQS_PER_LINE,
      lost: 0,
      leftActive: 0,
      leftMasked: 0,
    });
    expect(run.metrics.lines).toHaveLength(LINES);
    for (const line of run.metrics.lines)
      expect(line).toMatchObject({ raised: IRQS_PER_LINE, delivered: IRQS_PER_LINE });
  });

  it('every IRQ is forwarded: no VFIO unmask or resample, maintenance only when a vCPU had more vIRQs than LRs', () => {
    const c = run.metrics.counters;
    expect(c).toMatchObject({ unmasks: 0, resamples: 0 });
    // no EOI maintenance (HW list registers): the only ones are vgic_v3_set_underflow's, one per LR overflow
    expect(c.maintenanceIrqs).toBe(c.lrOverflows);
    expect(run.metrics.exits.byReason.maintenance).toBe(c.lrOverflows);
  });
});
