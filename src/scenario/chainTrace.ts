/**
 * The irqfwd events of an interrupt's causal chain that sit between the device line and the guest (docs/TRACING.md):
 * host GICC_IAR/EOIR, the VFIO platform handler and unmask, eventfd signals, irqfd inject/resample, the guest's EOI,
 * and the forwarding control events. Each carries the `seq` of the line's current raise, so the Chrome JSON writer
 * links them into one flow. Installed by the scenario runner only when it traces; the model's hooks are null
 * otherwise.
 */
import type { Process } from '../host/process.js';
import {
  GICH_LR_EOI,
  GICH_LR_HW,
  GICH_LR_PHYSID_CPUID,
  GICH_LR_PHYSID_CPUID_SHIFT,
  GICH_LR_STATE,
  GICH_LR_STATE_SHIFT,
  GICH_LR_VIRTUALID,
} from '../hw/gic/regs.js';
import type { Host } from '../machine.js';
import type { Task } from '../sim/task.js';
import { currentOrNull } from '../sim/task.js';
import {
  EV_EVENTFD_SIGNAL,
  EV_GIC_EOIR,
  EV_GIC_IAR,
  EV_GIC_LR_WRITE,
  EV_GUEST_EOI,
  EV_IRQ_FORWARD_SET,
  EV_IRQFD_INJECT,
  EV_IRQFD_RESAMPLE,
  EV_KVM_VFIO_ASSIGN_IRQ,
  EV_KVM_VFIO_DEASSIGN_IRQ,
  EV_VFIO_PLATFORM_IRQ,
  EV_VFIO_UNMASK,
  EV_VGIC_MAINTENANCE,
  VFIO_IRQ_AUTOMASKED,
  VFIO_IRQ_EDGE,
  VFIO_IRQ_FORWARDED,
} from '../trace/events.js';
import type { Tracer } from '../trace/tracer.js';

/** What the chain events need of a traced line. */
export interface TracedLine {
  readonly device: string;
  readonly index: number;
  readonly intid: number;
  readonly seq: number;
}

/** VMs are told apart by their position in the run; GSIs are below this. */
const GSI_SPACE = 4096;

const ACTION = { automasked: VFIO_IRQ_AUTOMASKED, forwarded: VFIO_IRQ_FORWARDED, edge: VFIO_IRQ_EDGE } as const;

export class ChainTrace {
  private readonly byIrq = new Map<number, TracedLine>();
  private readonly byIntid = new Map<number, TracedLine>();
  private readonly byGsi = new Map<number, TracedLine>();
  private readonly byVintid = new Map<number, TracedLine>();
  private readonly eventfds = new Map<object, { fd: number; line: TracedLine }>();
  private readonly names = new Map<string, number>();

  constructor(
    private readonly tr: Tracer,
    private readonly host: Host,
    private readonly pidOf: (t: Task | null) => number,
    private readonly vmIndexOf: (vm: object) => number,
  ) {}

  /** A line and the Linux IRQ number / INTID it arrives on. */
  addLine(l: TracedLine, linuxIrq: number): void {
    this.byIrq.set(linuxIrq, l);
    this.byIntid.set(l.intid, l);
  }

  /** An irqfd wiring of the line into VM `vmIndex` at `gsi`, with its trigger and resample eventfds (-1: none) in `p`. */
  wire(l: TracedLine, vmIndex: number, gsi: number, p: Process, triggerFd: number, resampleFd: number): void {
    this.byGsi.set(vmIndex * GSI_SPACE + gsi, l);
    this.byVintid.set(vmIndex * GSI_SPACE + gsi + 32, l);
    for (const fd of [triggerFd, resampleFd]) {
      const ctx = fd >= 0 ? p.files.lookup(fd)?.privateData : undefined;
      if (typeof ctx === 'object' && ctx !== null) this.eventfds.set(ctx, { fd, line: l });
    }
  }

  install(): void {
    const tr = this.tr;
    const host = this.host;
    const here = () => {
      const t = currentOrNull();
      return { cpu: t?.cpu ?? 0, pid: this.pidOf(t) };
    };
    const g = host.irq.genirq;
    const prev = g.trace;
    g.trace = {
      handlerEntry: (d, n) => prev?.handlerEntry(d, n),
      handlerExit: (d, r) => prev?.handlerExit(d, r),
      gicIar: (cpu, intid) => tr.emit(EV_GIC_IAR, cpu, here().pid, intid, seqOf(this.byIntid.get(intid))),
      gicEoir: (cpu, intid) => tr.emit(EV_GIC_EOIR, cpu, here().pid, intid, 1, seqOf(this.byIntid.get(intid))),
    };
    host.kernel.trace = {
      eventfdSignal: (ctx) => {
        const e = this.eventfds.get(ctx);
        const h = here();
        tr.emit(EV_EVENTFD_SIGNAL, h.cpu, h.pid, e?.fd ?? -1, 1, seqOf(e?.line));
      },
      vfioIrq: (irq, action) => {
        const l = this.byIrq.get(irq);
        const h = here();
        tr.emit(EV_VFIO_PLATFORM_IRQ, h.cpu, h.pid, this.name(l?.device), l?.index ?? 0, irq, ACTION[action], seqOf(l));
      },
      vfioUnmask: (irq) => {
        const l = this.byIrq.get(irq);
        const h = here();
        tr.emit(EV_VFIO_UNMASK, h.cpu, h.pid, this.name(l?.device), l?.index ?? 0, irq, seqOf(l));
      },
    };
    const kt = host.kvm.trace;
    if (kt === null) return;
    kt.irqfdInject = (vm, gsi, level) => {
      const h = here();
      const l = this.byGsi.get(this.vmIndexOf(vm) * GSI_SPACE + gsi);
      tr.emit(EV_IRQFD_INJECT, h.cpu, h.pid, gsi, gsi + 32, level, seqOf(l));
    };
    kt.irqfdResample = (vm, gsi) => {
      const h = here();
      const l = this.byGsi.get(this.vmIndexOf(vm) * GSI_SPACE + gsi);
      tr.emit(EV_IRQFD_RESAMPLE, h.cpu, h.pid, gsi, gsi + 32, seqOf(l));
    };
    kt.kvmVfioIrq = (_vm, assign, dev, index, gsi, hwintid, ret) => {
      const h = here();
      if (assign) tr.emit(EV_KVM_VFIO_ASSIGN_IRQ, h.cpu, h.pid, this.name(dev), index, gsi, hwintid, ret);
      else tr.emit(EV_KVM_VFIO_DEASSIGN_IRQ, h.cpu, h.pid, this.name(dev), index, gsi, ret);
    };
    kt.lrWrite = (vm, vcpu, lr, val) => {
      const vintid = val & GICH_LR_VIRTUALID;
      const hw = (val & GICH_LR_HW) !== 0;
      const pintid = hw ? (val & GICH_LR_PHYSID_CPUID) >>> GICH_LR_PHYSID_CPUID_SHIFT : 0;
      const state = (val & GICH_LR_STATE) >>> GICH_LR_STATE_SHIFT;
      const eoi = (val & GICH_LR_EOI) !== 0 ? 1 : 0;
      const l = this.byVintid.get(this.vmIndexOf(vm) * GSI_SPACE + vintid);
      const h = here();
      tr.emit(EV_GIC_LR_WRITE, h.cpu, h.pid, vcpu, lr, vintid, pintid, hw ? 1 : 0, eoi, state, seqOf(l));
    };
    kt.vgicMaintenance = (vm, vcpu, lr, vintid) => {
      const l = this.byVintid.get(this.vmIndexOf(vm) * GSI_SPACE + vintid);
      const h = here();
      tr.emit(EV_VGIC_MAINTENANCE, h.cpu, h.pid, vcpu, lr, vintid, seqOf(l));
    };
    kt.irqForwardSet = (irq, on, vcpu) => {
      const h = here();
      tr.emit(EV_IRQ_FORWARD_SET, h.cpu, h.pid, irq, on ? 1 : 0, vcpu);
    };
  }

  /** guest_eoi: the guest of VM `vmIndex` completed `vintid` on `vcpu` (EOIR in EOImode 0, DIR in EOImode 1). */
  guestEoi(vmIndex: number, vcpu: number, vintid: number, task: Task | null): void {
    const l = this.byVintid.get(vmIndex * GSI_SPACE + vintid);
    this.tr.emit(EV_GUEST_EOI, task?.cpu ?? 0, this.pidOf(task), vcpu, vintid, seqOf(l));
  }

  private name(s: string | undefined): number {
    if (s === undefined) return this.tr.intern('?');
    let id = this.names.get(s);
    if (id === undefined) {
      id = this.tr.intern(s);
      this.names.set(s, id);
    }
    return id;
  }
}

function seqOf(l: TracedLine | undefined): number {
  return l?.seq ?? 0;
}
