import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { createHost, type Host } from '../machine.js';
import type { TimerHandler } from '../sim/engine.js';
import { findUncopyable } from '../sim/snapshot.js';
import { DEFAULT_SCENARIO, loadScenario, sweepPoint } from './loader.js';
import { runScenario } from './runner.js';
import { createQemuVm, kvmVfioSupported } from './vmm.js';

/** Runtime probe: does this build's KVM offer the kvm-vfio device (KVM_CREATE_DEVICE_TEST)? */
function probeKvmVfio(): boolean {
  const host = createHost({ cpus: 1 });
  const p = host.process();
  const vm = createQemuVm(p, { vcpus: 1 });
  return kvmVfioSupported(p, vm.vm);
}
const kvmVfioAvailable = probeKvmVfio();
const SCENARIOS = fileURLToPath(new URL('../../scenarios/', import.meta.url));

const SHORT = `
name: short
seed: 7
duration: 300us
host: { cpus: 2, costProfile: xgene }
devices:
  - { name: dev0, iommuGroup: 3, irqs: [{ intid: 70 }, { intid: 71, trigger: edge }] }
vms:
  - { vcpus: 1, pinning: [1], guest: { workload: busy } }
workloads:
  - { device: dev0, index: 0, kind: poisson, meanInterval: 10us }
  - { device: dev0, index: 1, kind: periodic, period: 15us, start: 3us }
`;

describe('runScenario', () => {
  it('the default scenario, normal mode: 1000 raised and delivered, none lost, 2 exits per IRQ, no violation', () => {
    const r = runScenario(loadScenario(DEFAULT_SCENARIO, 'default'), { modes: ['normal'] });
    const run = r.runs[0]!;
    expect(run.violations).toEqual([]);
    const m = run.metrics;
    expect(m.irqs).toMatchObject({
      raised: 1000,
      delivered: 1000,
      lost: 0,
      duplicates: 0,
      leftActive: 0,
      leftMasked: 0,
    });
    expect(m.exits.byReason.irq).toBe(1000);
    expect(m.exits.byReason.maintenance).toBe(1000);
    expect(m.counters).toMatchObject({ unmasks: 1000, resamples: 1000, eventfdSignals: 2000, maintenanceIrqs: 1000 });
    expect(m.latency.toGuest.count).toBe(1000);
    expect(m.latency.toDeactivation.count).toBe(1000);
    expect(m.hostCycles.perIrq).toBeGreaterThan(0);
  });

  it('is deterministic: same scenario and seed → byte-identical trace; another seed → another run', () => {
    const s = loadScenario(SHORT, 'short.yaml');
    const a = runScenario(s, { modes: ['normal'], trace: 'text' });
    const b = runScenario(s, { modes: ['normal'], trace: 'text' });
    expect(a.runs[0]!.trace!.data.length).toBeGreaterThan(1000);
    expect(a.runs[0]!.trace!.data).toBe(b.runs[0]!.trace!.data);
    expect(a.runs[0]!.metrics).toEqual(b.runs[0]!.metrics);
    const c = runScenario(loadScenario(SHORT, 'short.yaml', { seed: 8 }), { modes: ['normal'], trace: 'text' });
    expect(c.runs[0]!.trace!.data).not.toBe(a.runs[0]!.trace!.data);
  });

  it("trace 'report' is trace-cmd report's layout of the same records: cpus=N, no latency-flags column", () => {
    const s = loadScenario(SHORT, 'short.yaml');
    const text = runScenario(s, { modes: ['normal'], trace: 'text' }).runs[0]!.trace!.data.split('\n');
    const report = runScenario(s, { modes: ['normal'], trace: 'report' }).runs[0]!;
    expect(report.trace!.format).toBe('report');
    const lines = report.trace!.data.split('\n');
    expect(lines[0]).toMatch(/^cpus=\d+$/);
    const events = text.filter((l) => l !== '' && !l.startsWith('#'));
    expect(lines.filter((l) => l !== '').length - 1).toBe(events.length);
    expect(lines.slice(1).some((l) => /\] [.dDbhHnNpsz]{3}/.test(l))).toBe(false);
  });

  it('accounts for every raise of a level and an edge line; the text trace uses the kernel event names', () => {
    const r = runScenario(loadScenario(SHORT, 'short.yaml'), { modes: ['normal'], trace: 'text' });
    const run = r.runs[0]!;
    expect(run.violations).toEqual([]);
    const m = run.metrics;
    expect(m.irqs.lost).toBe(0);
    expect(m.irqs.duplicates).toBe(0);
    expect(m.irqs.raised).toBe(m.irqs.delivered + m.irqs.coalesced + m.irqs.orphaned);
    expect(m.lines[1]!.delivered).toBeGreaterThan(0);
    const text = run.trace!.data;
    for (const ev of ['irq_handler_entry', 'kvm_entry', 'kvm_exit', 'kvm_set_irq', 'device_assert', 'guest_irq_entry'])
      expect(text).toContain(`${ev}:`);
    expect(text).toContain('CPU 0/KVM');
  });

  it('writes Perfetto JSON that parses', () => {
    const r = runScenario(loadScenario(SHORT, 'short.yaml'), { modes: ['normal'], trace: 'perfetto' });
    const doc = JSON.parse(r.runs[0]!.trace!.data) as { traceEvents: unknown[] };
    expect(doc.traceEvents.length).toBeGreaterThan(100);
  });

  it("the default scenario's Perfetto JSON: tracks per CPU, vCPU and INTID; each IRQ flows from assert to deactivation", () => {
    const r = runScenario(loadScenario(DEFAULT_SCENARIO, 'default'), { modes: ['forwarded'], trace: 'perfetto' });
    type Ev = {
      name: string;
      ph: string;
      cat?: string;
      ts?: number;
      id?: number;
      pid?: number;
      args?: { name?: string; seq?: number };
    };
    const ev = (JSON.parse(r.runs[0]!.trace!.data) as { traceEvents: Ev[] }).traceEvents;
    const names = ev.filter((e) => e.ph === 'M' && e.name.endsWith('_name')).map((e) => e.args?.name);
    expect(names).toEqual(expect.arrayContaining(['Host CPUs', 'vCPUs', 'INTIDs', 'CPU 0', 'CPU 1', 'vCPU 0']));
    expect(names.some((n) => /INTID 80|80/.test(String(n)))).toBe(true);
    for (const seq of [1, 500, 1000]) {
      const flow = ev.filter((e) => e.cat === 'irqfwd.flow' && e.id === seq);
      const start = flow.find((e) => e.ph === 's');
      const end = flow.find((e) => e.ph === 'f');
      const assert = ev.find((e) => e.name === 'device_assert' && e.args?.seq === seq);
      const deact = ev.find((e) => e.name === 'vgic_hw_deactivate' && e.args?.seq === seq);
      expect(start?.ts).toBe(assert?.ts);
      expect(end?.ts).toBe(deact?.ts);
    }
  });

  it('forwarded mode of the default scenario: 1 exit per IRQ, no maintenance, no unmask; the guest EOI deactivates', () => {
    expect(kvmVfioAvailable).toBe(true);
    const r = runScenario(loadScenario(DEFAULT_SCENARIO, 'default'), { modes: ['forwarded'], trace: 'text' });
    const run = r.runs[0]!;
    expect(run.violations).toEqual([]);
    expect(run.metrics.irqs).toMatchObject({ raised: 1000, delivered: 1000, lost: 0, leftActive: 0, leftMasked: 0 });
    expect(run.metrics.exits.perIrq.total).toBe(1);
    expect(run.metrics.counters).toMatchObject({ unmasks: 0, resamples: 0, maintenanceIrqs: 0 });
    const text = String(run.trace?.data);
    // every physical deactivation of INTID 80 is the guest's EOI through the HW list register, none a host DIR
    expect(
      text.match(/guest\/vcpu0-\d+ +\[\d+\] [^:]+: vgic_hw_deactivate: vcpu=0 vintid=80 pintid=80 /g),
    ).toHaveLength(1000);
    expect(text).not.toMatch(/gic_dir: intid=80 /);
  });

  it('re-armed: the normal level path is re-armed at the VFIO unmask, after its early deactivation; forwarded at the deactivation', () => {
    const s = loadScenario(DEFAULT_SCENARIO, 'default');
    const [normal, forwarded] = runScenario(s, { modes: ['normal', 'forwarded'] }).runs.map((r) => r.metrics.latency);
    // normal: vfio_automasked_irq_handler disabled the line before the host EOI deactivated it; vfio_platform_unmask
    // (resamplefd → virqfd) re-enables it after the guest's EOI
    expect(normal!.toRearm.count).toBe(1000);
    expect(normal!.toRearm.cycles!.mean).toBeGreaterThan(normal!.toDeactivation.cycles!.mean);
    expect(normal!.toRearm.cycles!.mean).toBeGreaterThan(normal!.toGuest.cycles!.mean);
    // forwarded: nothing masks the line; the guest EOI deactivates it and it can fire again
    expect(forwarded!.toRearm).toEqual(forwarded!.toDeactivation);
    expect(forwarded!.toRearm.cycles!.mean).toBeLessThan(normal!.toRearm.cycles!.mean);
  });

  it('an edge storm on the irqfd path livelocks the host CPU that takes it; forwarding does not', () => {
    const s = loadScenario(
      `duration: 200us
host: { cpus: 2, costProfile: xgene }
devices: [{ name: d, iommuGroup: 1, irqs: [{ intid: 80, trigger: edge }] }]
vms: [{ vcpus: 1, pinning: [1], guest: { workload: busy } }]
workloads: [{ device: d, kind: periodic, period: 50ns, start: 1us }]
`,
      'storm.yaml',
    );
    const [normal, forwarded] = runScenario(s, { modes: ['normal', 'forwarded'] }).runs.map(
      (r) => r.metrics.hostCycles,
    );
    expect(normal!.livelocked).toBe(1);
    expect(normal!.byCpu[1]).toBeGreaterThan(normal!.byCpu[0]!);
    expect(forwarded!.livelocked).toBe(0);
  });
});

describe('runScenario: a PCI function with two MSI vectors (vfio_msi_enable, vfio_msi_set_block)', () => {
  const MSI = `
name: two-vectors
duration: 200us
host: { cpus: 2, costProfile: xgene, gic: { version: v3, nrVpes: 2 } }
devices:
  - { name: '0000:02:00.0', bus: pci, iommuGroup: 9, msi: { vectors: 2 } }
vms:
  - { vcpus: 1, pinning: [1], guest: { workload: busy } }
workloads:
  - { device: '0000:02:00.0', index: 0, kind: periodic, period: 10us, start: 2us }
  - { device: '0000:02:00.0', index: 1, kind: periodic, period: 15us, start: 7us }
`;

  // The normal run's guest idles: the host ITS puts vector 1's LPI on CPU 1 (its_select_cpu: the least loaded), and
  // the first MSI of each event misses KVM's translation cache, so irqfd_inject runs as work on CPU 1 — which the
  // model's KVM_RUN loop never yields to while a busy guest runs there (it has no need_resched check yet).
  // injections: the normal run's vITS makes every message's LPI pending (the first of each event through the
  // irqfd's inject work and kvm_set_irq, the others from the translation cache in irqfd_wakeup's atomic path, which
  // calls no kvm_set_irq); the forwarded run's messages go to the vPE with no injection by KVM
  it.each([
    ['normal', 'idle', 0.8182, 33],
    ['forwarded', 'busy', 0, 0],
  ] as const)(
    '%s, guest %s: every MSI of both vectors reaches its guest LPI; %d exits per IRQ, %d injections',
    (mode, workload, exits, injections) => {
      const s = sweepPoint(loadScenario(MSI, 'two-vectors.yaml'), 'vms[0].guest.workload', workload);
      const r = runScenario(s, { modes: [mode] }).runs[0]!;
      expect(r.violations).toEqual([]);
      expect(r.metrics.lines.map((l) => [l.intid, l.raised, l.delivered, l.lost])).toEqual([
        [8192, 20, 20, 0],
        [8193, 13, 13, 0],
      ]);
      expect(r.metrics.exits.perIrq.total).toBe(exits);
      expect(r.metrics.counters.injections).toBe(injections);
    },
  );
});

describe("runScenario: the machine's state during a run can be copied", () => {
  /** An engine timer that lists, every `every` cycles (`left` times), what a copy of the machine could not carry. */
  class UncopyableProbe implements TimerHandler {
    readonly name = 'uncopyable-probe';
    readonly found: string[] = [];
    runs = 0;

    constructor(
      private readonly host: Host,
      private readonly every: number,
      private left: number,
    ) {
      host.engine.at(host.engine.now + every, this);
    }

    fire(): void {
      this.runs++;
      this.found.push(...findUncopyable(this.host));
      if (--this.left > 0) this.host.engine.at(this.host.engine.now + this.every, this);
    }
  }

  // sim/snapshot.ts: a closure or a suspended generator kept in the machine would still act on the original in a copy
  it('no closure or generator in it (findUncopyable): a `via: eventfd` line, and GICv4.1 MSI vectors', () => {
    for (const f of ['io-latency-in', 'check-msi-rearm']) {
      const s = loadScenario(readFileSync(`${SCENARIOS}${f}.yaml`, 'utf8'), `${f}.yaml`);
      for (const mode of ['normal', 'forwarded'] as const) {
        let probe: UncopyableProbe | null = null;
        const r = runScenario(s, { modes: [mode] }, { onHost: (h) => (probe = new UncopyableProbe(h, 250_000, 40)) });
        expect(r.runs[0]!.metrics.irqs.delivered, `${f} ${mode}`).toBeGreaterThan(0);
        expect(probe!.runs, `${f} ${mode}`).toBe(40);
        expect(probe!.found, `${f} ${mode}`).toEqual([]);
      }
    }
  });
});
