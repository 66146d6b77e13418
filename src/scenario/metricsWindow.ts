/**
 * The metrics window of a scenario run: from the moment every guest has booted until the workloads stop. Exits, host
 * cycles and kernel counters are the differences between the snapshots at its two ends, so boot MMIO exits and
 * teardown do not pollute the per-IRQ figures; probes record only while it is open.
 */

import type { KvmVm } from '../kvm/vm.js';
import type { Host } from '../machine.js';
import type { HostCycleObserver } from './hostCycles.js';
import type { ExitReason, Metrics, MetricsCollector } from './metrics.js';

/** The counters at one instant. */
export interface Snapshot {
  /** Simulated time of the snapshot. */
  at: number;
  exits: Record<ExitReason, number>;
  host: number;
  hostByCpu: number[];
  signals: number;
  unmasks: number;
  resamples: number;
  maint: number;
  inject: number;
  lrOverflows: number;
}

function zeroExits(): Record<ExitReason, number> {
  return { irq: 0, maintenance: 0, ipi: 0, wfx: 0, hvc: 0, dabt: 0, sysreg: 0, other: 0 };
}

/** The VMs whose vGICs the window reads (the run's VMM). */
export interface WindowVms {
  kvmVms(): readonly KvmVm[];
}

export class MetricsWindow {
  /** Host handler entries of the vGIC maintenance IRQ. */
  maint = 0;
  /** KVM injections of a rising level on a wired line's route (kvm_set_irq; an MSI route's are the vITS's). */
  injections = 0;
  /** Guest entries with more queued vIRQs than list registers. */
  lrOverflows = 0;
  private start: Snapshot | null = null;
  private end: Snapshot | null = null;

  constructor(
    private readonly host: Host,
    private readonly vms: WindowVms,
    private readonly cycles: HostCycleObserver,
  ) {}

  /** Inside the window (guests booted, workloads not yet stopped): probes record only here. */
  get open(): boolean {
    return this.start !== null && this.end === null;
  }

  openNow(): void {
    this.start = this.snapshot();
  }

  closeNow(): void {
    this.end = this.snapshot();
  }

  snapshot(): Snapshot {
    const exits = zeroExits();
    for (const vm of this.vms.kvmVms()) {
      for (const vc of vm.vcpus) {
        const st = vc.stat;
        const physical = st.irqExits - st.maintenanceExits;
        const ipi = Math.min(st.kickIpis, physical);
        exits.irq += physical - ipi;
        exits.maintenance += st.maintenanceExits;
        exits.ipi += ipi;
        exits.wfx += st.wfxExits;
        exits.hvc += st.hvcExits;
        exits.dabt += st.dabtExits;
        exits.sysreg += st.sysExits;
        exits.other += st.exits - st.irqExits - st.wfxExits - st.hvcExits - st.dabtExits - st.sysExits;
      }
    }
    let signals = 0;
    let unmasks = 0;
    for (const d of this.host.devices) {
      for (const irq of d.vdev.irqs) {
        signals += irq.signals;
        unmasks += irq.unmasks;
      }
    }
    for (const d of this.host.msiDevices) for (const ctx of d.vdev.ctx) signals += ctx.signals; // vfio_msihandler
    let resamples = 0;
    for (const vm of this.vms.kvmVms()) {
      for (const r of vm.irqfds.resamplers) {
        resamples += r.acks;
        signals += r.acks * r.irqfds.filter((x) => x.resamplefd !== null).length;
      }
    }
    return {
      at: this.host.engine.now,
      exits,
      host: this.cycles.total,
      hostByCpu: [...this.cycles.byCpu],
      signals,
      unmasks,
      resamples,
      maint: this.maint,
      inject: this.injections + this.vms.kvmVms().reduce((n, vm) => n + (vm.vgic?.lpiInjections ?? 0), 0),
      lrOverflows: this.lrOverflows,
    };
  }

  /** The run's metrics: the collector's, with the window's differences and what the machine was left in. */
  finish(c: MetricsCollector, simCycles: number): Metrics {
    const a = this.start ?? this.zeroSnapshot();
    const b = this.end ?? this.snapshot();
    for (const r of Object.keys(b.exits) as ExitReason[]) {
      const n = b.exits[r] - a.exits[r];
      for (let i = 0; i < n; i++) c.exit(r);
    }
    const k = c.counters;
    k.eventfdSignals = b.signals - a.signals;
    k.unmasks = b.unmasks - a.unmasks;
    k.resamples = b.resamples - a.resamples;
    // the maintenance interrupt that made a vCPU exit (its line usually falls at the fold, before the host takes
    // it), or one the host took outside guest mode — whichever counted more
    k.maintenanceIrqs = Math.max(b.maint - a.maint, b.exits.maintenance - a.exits.maintenance);
    k.injections = b.inject - a.inject;
    k.lrOverflows = b.lrOverflows - a.lrOverflows;
    const dist = this.host.irq.gic.distributor;
    let leftActive = 0;
    let leftMasked = 0;
    for (const d of this.host.devices) {
      d.descs.forEach((desc, i) => {
        if (dist.isActive(desc.hwirq)) leftActive++;
        const irq = d.vdev.irqs[i];
        if (irq?.masked === true && desc.action !== null) leftMasked++;
      });
    }
    return c.finish({
      simCycles,
      hostCycles: b.host - a.host,
      hostByCpu: b.hostByCpu.map((x, i) => x - a.hostByCpu[i]!),
      windowCycles: b.at - a.at,
      leftActive,
      leftMasked,
    });
  }

  private zeroSnapshot(): Snapshot {
    return {
      at: 0,
      exits: zeroExits(),
      host: 0,
      hostByCpu: this.host.engine.cpus.map(() => 0),
      signals: 0,
      unmasks: 0,
      resamples: 0,
      maint: 0,
      inject: 0,
      lrOverflows: 0,
    };
  }
}
