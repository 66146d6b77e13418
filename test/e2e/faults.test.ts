// Issue 9 part 2: fault scenarios. Each shipped scenarios/fault-*.yaml runs here in both modes, and each test asserts
// the outcome that scenario exists to show — from the metrics, and from the machine itself through the runner's
// test hooks (RunHooks) where the metrics do not say it.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { GuestKernel } from '../../src/guest/guestKernel.js';
import { decodeLr, GicVirtualInterface } from '../../src/hw/gic/virtualInterface.js';
import type { Host } from '../../src/machine.js';
import { loadScenario } from '../../src/scenario/loader.js';
import type { Metrics } from '../../src/scenario/metrics.js';
import { type RunHooks, runScenario } from '../../src/scenario/runner.js';
import type { Mode, Scenario } from '../../src/scenario/schema.js';

const MODES: readonly Mode[] = ['normal', 'forwarded'];

function scenario(name: string, seed?: number): Scenario {
  const file = new URL(`../../scenarios/${name}.yaml`, import.meta.url);
  return loadScenario(readFileSync(file, 'utf8'), `${name}.yaml`, seed === undefined ? {} : { seed });
}

interface Outcome {
  metrics: Metrics;
  violations: readonly { invariant: string; message: string }[];
  host: Host;
  guest: GuestKernel;
}

/** One mode of a scenario, with the machine and the guest kernel it ran. */
function run(s: Scenario, mode: Mode, hooks: RunHooks = {}): Outcome {
  let host: Host | undefined;
  let guest: GuestKernel | undefined;
  const r = runScenario(
    s,
    { modes: [mode] },
    {
      ...hooks,
      onHost: (h, m) => {
        host = h;
        hooks.onHost?.(h, m);
      },
      onGuest: (g, vm, m) => {
        guest = g;
        hooks.onGuest?.(g, vm, m);
      },
    },
  );
  const m = r.runs[0]!;
  return { metrics: m.metrics, violations: m.violations, host: host!, guest: guest! };
}

/** Nothing of the VMM is left in the kernel: the teardown invariants, spelled out. */
function expectReclaimed(host: Host): void {
  expect(host.checkInvariants({ teardown: true })).toEqual([]);
  const dist = host.irq.gic.distributor;
  for (const d of host.devices) {
    expect(d.vfio.refs).toBe(1);
    expect(d.vfio.openCount).toBe(0);
    d.descs.forEach((desc, i) => {
      expect(desc.action).toBeNull();
      expect(desc.forwardedToVcpu).toBe(false);
      expect(dist.isActive(desc.hwirq)).toBe(false);
      expect(dist.isEnabled(desc.hwirq)).toBe(false);
      expect(d.vdev.irqs[i]!.fwd).toBeNull();
    });
  }
  expect(host.kernel.leaks().filter((l) => !l.startsWith('vfio_device '))).toEqual([]);
}

/**
 * A vIRQ as the guest sees it: from the live list register while the vCPU is loaded (vgic_irq is only updated when
 * KVM folds the LRs at an exit), else from the vgic_irq.
 */
function vIrq(host: Host, vintid: number) {
  const irq = host.kvm.vms[0]!.vgic!.vgicGetIrq(vintid)!;
  const loaded = host.kvm.vms[0]!.vcpus[0]!.vgicCpu!.vif;
  const vif = loaded instanceof GicVirtualInterface ? loaded : null;
  for (let i = 0; vif !== null && i < vif.nrLrs; i++) {
    const lr = decodeLr(vif.readLr(i));
    if (lr.state !== 0 && lr.vintid === vintid)
      return { pending: (lr.state & 1) !== 0, active: (lr.state & 2) !== 0, hw: lr.hw };
  }
  return { pending: irq.lineLevel || irq.pendingLatch, active: irq.active, hw: irq.hw };
}

describe('fault-guest-no-eoi: the guest never deactivates its interrupts', () => {
  const s = scenario('fault-guest-no-eoi');

  it('after DEASSIGN the physical INTIDs are inactive; the level IRQ is VFIO-masked as the normal path holds it, the edge IRQ is taken again', () => {
    let atDeassign: Record<string, unknown> | undefined;
    const o = run(s, 'forwarded', {
      afterStep: (st, host) => {
        if (st.id !== 'off1') return;
        const dist = host.irq.gic.distributor;
        const d = host.devices[0]!;
        const signals1 = d.vdev.irqs[1]!.deliveries;
        // the edge line fires again: unforwarded and unmasked, the host must take it (VFIO signals the irqfd)
        host.device('fff57000.dma').pulse(1);
        host.run(20_000);
        atDeassign = {
          active: [dist.isActive(100), dist.isActive(101)],
          depth: d.descs.map((x) => x.depth),
          masked: d.vdev.irqs.map((x) => x.masked),
          forwarded: d.descs.map((x) => x.forwardedToVcpu),
          edgeTakenAgain: d.vdev.irqs[1]!.deliveries - signals1,
          vIrqs: [vIrq(host, 100), vIrq(host, 101)],
        };
      },
    });
    // forward.ts kvmArchSetFwdState to normal: the guest holds both vIRQs active, so the host deactivates the
    // physical INTIDs through the irqchip state and gives the level IRQ the normal path's automask (depth 1, VFIO
    // masked) — it waits for the guest's EOI and the resample that never come; an edge IRQ has no automask.
    expect(atDeassign).toEqual({
      active: [false, false],
      depth: [1, 0],
      masked: [true, false],
      forwarded: [false, false],
      edgeTakenAgain: 1,
      // live LRs: the level vIRQ active (its held line re-pends it at the next flush, as on the normal path); the
      // edge vIRQ active and pending again from the pulse the host just took
      vIrqs: [
        { pending: false, active: true, hw: false },
        { pending: true, active: true, hw: false },
      ],
    });
    expect(o.guest.driver.cpuStats[0]!.leftActive).toBe(2);
    expect(o.violations).toEqual([]);
    expect(o.metrics.irqs).toMatchObject({ raised: 2, delivered: 2, lost: 0, leftActive: 0, leftMasked: 0 });
    expectReclaimed(o.host);
  });

  it('the normal run ends in the same host state as the deassigned forwarded one: level masked (depth 1), edge not', () => {
    const noTeardown = { ...s, teardown: false };
    const states = MODES.map((mode) => {
      const o = run(noTeardown, mode);
      const d = o.host.devices[0]!;
      return {
        depth: d.descs.map((x) => x.depth),
        masked: d.vdev.irqs.map((x) => x.masked),
        active: [100, 101].map((i) => o.host.irq.gic.distributor.isActive(i)),
        vActive: [vIrq(o.host, 100).active, vIrq(o.host, 101).active],
      };
    });
    expect(states[0]).toEqual({ depth: [1, 0], masked: [true, false], active: [false, false], vActive: [true, true] });
    expect(states[1]).toEqual(states[0]);
  });

  it('teardown without DEASSIGN (the guest still holding both forwarded INTIDs active) reclaims them too', () => {
    const noDeassign: Scenario = { ...s, vmm: s.vmm.filter((x) => x.step !== 'deassign') };
    let activeBefore: boolean[] = [];
    const o = run(noDeassign, 'forwarded', {
      onHost: (host) => {
        // sample the physical state just before teardown: the end of the workloads' duration
        host.engine.at(2_000_000, {
          name: 'probe',
          fire: () => {
            activeBefore = [100, 101].map((i) => host.irq.gic.distributor.isActive(i));
          },
        });
      },
    });
    expect(activeBefore).toEqual([true, true]);
    expect(o.violations).toEqual([]);
    expectReclaimed(o.host);
  });
});

describe('fault-vmm-dies: the VMM is killed, its fds closed in a random order at a random instant', () => {
  it('for 4 seeds × both close orders × both modes, everything is reclaimed and nothing is lost', () => {
    const delivered = new Set<number>();
    for (const seed of [1, 2, 3, 4]) {
      for (const order of ['random', 'fd'] as const) {
        const base = scenario('fault-vmm-dies', seed);
        const s: Scenario = {
          ...base,
          vmm: base.vmm.map((st) => (st.step === 'die' ? { ...st, order } : st)),
        };
        for (const mode of MODES) {
          const o = run(s, mode);
          expect(o.violations, `seed ${seed} ${order} ${mode}`).toEqual([]);
          expect(o.metrics.irqs).toMatchObject({ lost: 0, duplicates: 0, leftActive: 0, leftMasked: 0 });
          expect(o.metrics.irqs.orphaned + o.metrics.irqs.coalesced).toBeGreaterThan(0);
          expectReclaimed(o.host);
          if (mode === 'forwarded') delivered.add(o.metrics.irqs.delivered);
        }
      }
    }
    // the seeds put the death at different instants
    expect(delivered.size).toBeGreaterThan(2);
  });
});

describe('fault-vm-destroy-inflight: QEMU shutdown while IRQs fly', () => {
  it('both modes: raises after the shutdown are orphaned, nothing lost, left active or masked, everything released', () => {
    const s = scenario('fault-vm-destroy-inflight');
    for (const mode of MODES) {
      const o = run(s, mode);
      expect(o.violations).toEqual([]);
      expect(o.metrics.irqs).toMatchObject({ lost: 0, duplicates: 0, leftActive: 0, leftMasked: 0 });
      expect(o.metrics.irqs.orphaned).toBeGreaterThan(0);
      expect(o.metrics.irqs.raised).toBeGreaterThan(o.metrics.irqs.delivered + o.metrics.irqs.orphaned);
      expectReclaimed(o.host);
    }
  });
});

describe('fault-irq-storm: raises ~100× faster than the service rate', () => {
  it('raised ≫ delivered, every raise delivered or merged, and the queues stay bounded by constants', () => {
    const s = scenario('fault-irq-storm');
    const byMode = new Map<Mode, Metrics>();
    for (const mode of MODES) {
      const max = { apList: 0, eventfd: 0n, heap: 0 };
      const o = run(s, mode, {
        onHost: (host) => {
          const engine = host.engine;
          const inner = engine.observer!;
          const irqs = host.devices[0]!.vdev.irqs;
          engine.observer = {
            onStep(e, agent) {
              inner.onStep(e, agent);
              const ap = host.kvm.vms[0]?.vcpus[0]?.vgicCpu?.apCount ?? 0;
              if (ap > max.apList) max.apList = ap;
              for (const irq of irqs) {
                const c = irq.trigger?.count ?? 0n;
                if (c > max.eventfd) max.eventfd = c;
              }
              if (e.heap.size > max.heap) max.heap = e.heap.size;
            },
          };
        },
      });
      const m = o.metrics;
      expect(o.violations).toEqual([]);
      expect(m.irqs.raised).toBeGreaterThan(39_000);
      expect(m.irqs.raised).toBeGreaterThan(100 * m.irqs.delivered);
      // "merged" (irqs.coalesced): a raise while the device's condition was still set — one pending state per line
      expect(m.irqs.delivered + m.irqs.coalesced).toBe(m.irqs.raised);
      expect(m.irqs).toMatchObject({ lost: 0, duplicates: 0, orphaned: 0, leftActive: 0, leftMasked: 0 });
      // two vIRQs can be on the ap-list at most; irqfd_wakeup consumes the eventfd count at each signal; the engine
      // holds the CPUs, the two workload timers and a few kernel timers — none of it grows with the raise count
      expect(max.apList).toBeLessThanOrEqual(2);
      expect(max.eventfd).toBeLessThanOrEqual(1n);
      expect(max.heap).toBeLessThanOrEqual(8);
      byMode.set(mode, m);
    }
    // the edge line on the irqfd path has no automask: every pulse is a host IRQ on the vCPU's CPU, which livelocks
    // in hardirq and starves the vCPU; forwarded, the INTID stays active until the guest deactivates it, so the
    // storm throttles itself at the guest's service rate
    const edge = (mode: Mode) => byMode.get(mode)!.lines[1]!.delivered;
    expect(edge('forwarded')).toBeGreaterThan(10 * Math.max(1, edge('normal')));
  });
});

describe('fault-spurious: GICC_IAR finds nothing (1-of-N SPI, a glitching line)', () => {
  it('the host counts spurious IRQs; line 0 is delivered exactly once per raise, line 1 never reaches the guest', () => {
    const s = scenario('fault-spurious');
    for (const mode of MODES) {
      const o = run(s, mode);
      expect(o.violations).toEqual([]);
      const spurious = o.host.irq.chip.spurious.reduce((a, b) => a + b, 0);
      expect(spurious).toBeGreaterThanOrEqual(50);
      const [l0, l1] = o.metrics.lines;
      expect(l0).toMatchObject({ raised: 50, delivered: 50, lost: 0 });
      expect(l1).toMatchObject({ raised: 50, delivered: 0, coalesced: 50, lost: 0 });
      expect(o.metrics.irqs.duplicates).toBe(0);
      const [drv0, drv1] = o.guest.devices;
      expect(drv0!.handled).toBe(50);
      expect(drv1!.handled + drv1!.noStatus).toBe(0);
      expect(o.host.devices[0]!.vdev.irqs[1]!.deliveries).toBe(0);
      expect(o.guest.stats().spurious).toBe(0);
    }
  });
});

describe('fault-deassert-before-ack: the device drops its level line before it is acknowledged', () => {
  it('dropped before the host acks: nothing reaches the guest; dropped after: the guest may see it, IRQ_NONE, and nothing stays pending', () => {
    const s: Scenario = { ...scenario('fault-deassert-before-ack'), teardown: false };
    for (const mode of MODES) {
      const o = run(s, mode);
      o.host.run(200_000);
      expect(o.violations).toEqual([]);
      expect(o.metrics.irqs).toMatchObject({ raised: 100, delivered: 0, coalesced: 100, lost: 0, duplicates: 0 });
      const irqs = o.host.devices[0]!.vdev.irqs;
      const [drv0, drv1] = o.guest.devices;
      // line 0 fell during the world switch, before the host CPU could take the exception: never acknowledged,
      // never signalled, no guest handler run
      expect(irqs[0]!.deliveries).toBe(0);
      expect(drv0!.handled + drv0!.noStatus).toBe(0);
      // line 1: the host took it and delivered it each time (irqfd signal, or forwarded the direct call); the guest's handler then found the device
      // quiet (IRQ_NONE). Forwarded, the HW list register stays pending until the guest acknowledges it (the line
      // level is only resampled when KVM folds the LR, virt/kvm/arm/vgic/vgic.c vgic_irq_is_mapped_level), so the
      // guest sees it here too; its EOI deactivates the physical INTID.
      expect(irqs[1]!.deliveries).toBe(50);
      expect(drv1!.handled).toBe(0);
      expect(drv1!.noStatus).toBeGreaterThan(0);
      expect(drv1!.noStatus).toBeLessThanOrEqual(50);
      for (const vintid of [116, 117]) {
        expect(vIrq(o.host, vintid), `${mode} vINTID ${vintid}`).toMatchObject({ pending: false, active: false });
        expect(o.host.irq.gic.distributor.isActive(vintid)).toBe(false);
      }
      expect(o.host.devices[0]!.descs.map((d) => d.depth)).toEqual([0, 0]);
      expect(o.host.checkInvariants()).toEqual([]);
    }
  });
});
