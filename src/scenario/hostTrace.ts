/**
 * The tracepoints of a traced machine (docs/TRACING.md): the kernel's (irq_handler_entry/exit, kvm_entry/exit/
 * userspace_exit/set_irq) and the irqfwd events of an interrupt's causal chain (device line, GICC_IAR/EOIR, the VFIO
 * handler and unmask, eventfd signals, irqfd inject/resample, LR loads, EOI maintenance, the guest's EOI, the
 * physical deactivation, the forwarding control events; on a GICv3 host the ITS and GICv4.1 events, gicv4Trace.ts).
 * Chain events carry the `seq` of their line's current raise, so the Chrome JSON writer links them into one flow.
 * The scenario runner calls the kernel-event methods from its own counting hooks, `installChain` for the rest and
 * `traceGuest` for the guests' tracepoints; the checker's counterexample trace uses `install` (every hook). The
 * model's hooks stay null when nobody traces.
 */
import type { GuestKernel } from '../guest/guestKernel.js';
import type { IrqDesc, IrqReturn } from '../host/irq/irqDesc.js';
import type { Process } from '../host/process.js';
import type { KvmVcpu } from '../kvm/vcpu.js';
import type { KvmVm } from '../kvm/vm.js';
import type { Host } from '../machine.js';
import type { Task } from '../sim/task.js';
import { currentOrNull } from '../sim/task.js';
import {
  ARM_EXCEPTION_IRQ,
  EV_DEVICE_ASSERT,
  EV_DEVICE_DEASSERT,
  EV_EVENTFD_SIGNAL,
  EV_GIC_DIR,
  EV_GIC_EOIR,
  EV_GIC_IAR,
  EV_GIC_LR_WRITE,
  EV_GIC_UNPREDICTABLE,
  EV_GUEST_EOI,
  EV_GUEST_IRQ_ENTRY,
  EV_IRQ_FORWARD_SET,
  EV_IRQ_HANDLER_ENTRY,
  EV_IRQ_HANDLER_EXIT,
  EV_IRQFD_INJECT,
  EV_IRQFD_RESAMPLE,
  EV_KVM_ENTRY,
  EV_KVM_EXIT,
  EV_KVM_SET_IRQ,
  EV_KVM_USERSPACE_EXIT,
  EV_KVM_VFIO_ASSIGN_IRQ,
  EV_KVM_VFIO_DEASSIGN_IRQ,
  EV_VFIO_PLATFORM_IRQ,
  EV_VFIO_UNMASK,
  EV_VGIC_HW_DEACTIVATE,
  EV_VGIC_ITS_INJECT,
  EV_VGIC_MAINTENANCE,
  EV_VGIC_V4_DOORBELL,
  VFIO_IRQ_AUTOMASKED,
  VFIO_IRQ_EDGE,
  VFIO_IRQ_FORWARDED,
} from '../trace/events.js';
import type { UnpredictableObserver } from '../trace/gicUnpredictable.js';
import { TRACE_FLAG_HARDIRQ, TRACE_FLAG_IRQS_OFF } from '../trace/ring.js';
import type { Tracer } from '../trace/tracer.js';
import { Gicv4Trace } from './gicv4Trace.js';
import { GUEST_BOOT_PC, guestEntryPc, guestExitPc, guestPcHi } from './guestPc.js';

/** What the chain events need of a traced line. */
export interface TracedLine {
  readonly device: string;
  readonly index: number;
  readonly intid: number;
  readonly seq: number;
}

const ACTION = { automasked: VFIO_IRQ_AUTOMASKED, forwarded: VFIO_IRQ_FORWARDED, edge: VFIO_IRQ_EDGE } as const;

function seqOf(l: TracedLine | undefined): number {
  return l?.seq ?? 0;
}

function cpuNow(): number {
  return currentOrNull()?.cpu ?? 0;
}

const HARDIRQ_FLAGS = TRACE_FLAG_IRQS_OFF | TRACE_FLAG_HARDIRQ;

export class HostTrace {
  private readonly byIrq = new Map<number, TracedLine>();
  private readonly byIntid = new Map<number, TracedLine>();
  /** Per VM: the line behind each GSI (the vINTID is GSI + 32). */
  private readonly byGsi = new Map<KvmVm, Map<number, TracedLine>>();
  private readonly eventfds = new Map<object, { fd: number; line: TracedLine }>();
  private readonly names = new Map<string, number>();
  /** Per vCPU: the guest PC (low half) its next kvm_entry resumes at. */
  private readonly resumePc = new Map<KvmVcpu, number>();

  constructor(
    readonly tr: Tracer,
    private readonly host: Host,
  ) {}

  /** The trace pid of a task (its comm registered on first use); 0 for the idle task and host context. */
  pid(t: Task | null): number {
    if (t === null || t.pid === 0) return 0;
    const pid = 100 + t.id;
    if (!this.tr.comms.has(pid)) this.tr.comms.set(pid, t.comm);
    return pid;
  }

  /**
   * The context of an event about to be emitted on `cpu` by the running task: its pid, with the CPU's latency
   * flags set (kernel/trace/trace.c tracing_gen_ctx). In the host IRQ vector the task is the thread the IRQ
   * interrupted (what `current` is in hardirq context) and the flags are irqs-off + hardirq (`d.h..`); in a host
   * thread, irqs-off follows the CPU's PSTATE.I; guest code runs with the host's flags clear.
   */
  private ctx(cpu: number, t: Task | null = currentOrNull()): number {
    const c = this.host.engine.cpus[cpu];
    let flags = 0;
    let task = t;
    if (t !== null && t.kind === 'hardirq' && c !== undefined) {
      task = c.current;
      flags = HARDIRQ_FLAGS;
    } else if (t !== null && t.kind === 'thread' && c?.irqMasked === true) flags = TRACE_FLAG_IRQS_OFF;
    this.tr.ring.cpuFlags[cpu] = flags;
    return this.pid(task);
  }

  /** A line and the Linux IRQ number / INTID it arrives on. */
  addLine(l: TracedLine, linuxIrq: number): void {
    this.byIrq.set(linuxIrq, l);
    this.byIntid.set(l.intid, l);
  }

  /** An irqfd wiring of the line into `vm` at `gsi`, with its trigger and resample eventfds (-1: none) in `p`. */
  wire(l: TracedLine, vm: KvmVm, gsi: number, p: Process, triggerFd: number, resampleFd: number): void {
    let m = this.byGsi.get(vm);
    if (m === undefined) {
      m = new Map();
      this.byGsi.set(vm, m);
    }
    m.set(gsi, l);
    for (const fd of [triggerFd, resampleFd]) {
      const ctx = fd >= 0 ? p.files.lookup(fd)?.privateData : undefined;
      if (typeof ctx === 'object' && ctx !== null) this.eventfds.set(ctx, { fd, line: l });
    }
  }

  // ---- kernel tracepoints and the line/deactivation events (the runner calls these from its counting hooks) ----

  /** irq_handler_entry, on the CPU taking it with the interrupted thread as the task. */
  handlerEntry(desc: IrqDesc, name: string): void {
    const cpu = cpuNow();
    this.tr.emit(EV_IRQ_HANDLER_ENTRY, cpu, this.ctx(cpu), desc.irq, this.name(name));
  }

  handlerExit(desc: IrqDesc, ret: IrqReturn): void {
    const cpu = cpuNow();
    this.tr.emit(EV_IRQ_HANDLER_EXIT, cpu, this.ctx(cpu), desc.irq, ret);
  }

  kvmEntry(v: KvmVcpu): void {
    const pid = this.pid(v.runTask);
    this.tr.comms.setVcpu(pid, v.idx);
    const cpu = v.runTask?.cpu ?? 0;
    const pc = this.resumePc.get(v) ?? GUEST_BOOT_PC;
    this.tr.emit(EV_KVM_ENTRY, cpu, this.ctx(cpu, v.runTask), pc, guestPcHi(pc));
  }

  kvmExit(v: KvmVcpu, type: number, ec: number): void {
    const cpu = v.runTask?.cpu ?? 0;
    const isIrq = type === ARM_EXCEPTION_IRQ;
    const pc = v.guest === null ? GUEST_BOOT_PC : guestExitPc(v.guest, isIrq, ec, Number(v.vm.vgicDistBase));
    this.resumePc.set(v, guestEntryPc(pc, isIrq, ec));
    this.tr.emit(EV_KVM_EXIT, cpu, this.ctx(cpu, v.runTask), type, ec, pc, guestPcHi(pc));
  }

  kvmUserspaceExit(v: KvmVcpu, reason: number, err: number): void {
    const cpu = v.runTask?.cpu ?? 0;
    this.tr.emit(EV_KVM_USERSPACE_EXIT, cpu, this.ctx(cpu, v.runTask), reason, err);
  }

  kvmSetIrq(gsi: number, level: number, src: number): void {
    const cpu = cpuNow();
    this.tr.emit(EV_KVM_SET_IRQ, cpu, this.ctx(cpu), gsi, level, src);
  }

  /** device_assert / device_deassert of `intid` on device `dev`. */
  lineChange(dev: string, intid: number, level: boolean): void {
    const cpu = cpuNow();
    const seq = seqOf(this.byIntid.get(intid));
    this.tr.emit(level ? EV_DEVICE_ASSERT : EV_DEVICE_DEASSERT, cpu, this.ctx(cpu), this.name(dev), intid, seq);
  }

  /**
   * A physical deactivation of `intid` (GicDistributor.onDeactivate): the guest's EOI through a HW list register
   * when a guest task made it (vgic_hw_deactivate), else a host GICC_DIR (gic_dir).
   */
  deactivate(intid: number, cpu: number): void {
    const seq = seqOf(this.byIntid.get(intid));
    const t = currentOrNull();
    if (t !== null && (t.kind === 'guest' || t.kind === 'guest-irq')) this.hwDeactivate(t.cpu, intid, seq);
    else this.tr.emit(EV_GIC_DIR, cpu, this.ctx(cpu), intid, seq);
  }

  private hwDeactivate(cpu: number, pintid: number, seq: number): void {
    for (const vm of this.host.kvm.vms) {
      const vcpu = vm.vcpus.find((x) => x.guest?.loadedOn === cpu);
      if (vcpu === undefined) continue;
      const vgic = vm.vgic;
      let vintid = 0;
      for (let i = 0; vgic !== null && i < vgic.nrSpis; i++) {
        const irq = vgic.vgicGetIrq(32 + i);
        if (irq?.hw === true && irq.hwintid === pintid) vintid = irq.intid;
      }
      this.tr.emit(EV_VGIC_HW_DEACTIVATE, cpu, this.ctx(cpu, vcpu.guest!.irqTask), vcpu.idx, vintid, pintid, seq);
      return;
    }
  }

  /** guest_irq_entry: the guest driver's handler of the line `intid` (raise `seq`) runs on `vcpu` (its vCPU thread `task`). */
  guestIrqEntry(task: Task | null, vcpu: number, intid: number, seq: number): void {
    const cpu = task?.cpu ?? 0;
    this.tr.emit(EV_GUEST_IRQ_ENTRY, cpu, this.ctx(cpu, task), vcpu, intid, seq);
  }

  /** guest_eoi: the guest of `vm` completed `vintid` on `vcpu` (EOIR in EOImode 0, DIR in EOImode 1). */
  guestEoi(vm: KvmVm | undefined, vcpu: number, vintid: number, task: Task | null): void {
    const cpu = task?.cpu ?? 0;
    const seq = vm === undefined ? 0 : seqOf(this.lineOf(vm, vintid - 32));
    this.tr.emit(EV_GUEST_EOI, cpu, this.ctx(cpu, task), vcpu, vintid, seq);
  }

  /**
   * The guest's tracepoints (guestTrace.ts): guest_irq_entry when a device driver finds its line's condition set —
   * under the host line's INTID and raise, on the vCPU's thread — or an LPI's handler is called (under the raise of
   * the MSI vector `lpis` names for it), and guest_eoi.
   */
  traceGuest(g: GuestKernel, lpis: ReadonlyMap<number, TracedLine> = new Map()): void {
    let vm: KvmVm | undefined;
    // the guest's VM: the one whose vCPUs run its guest contexts (known once it ran: before its first tracepoint)
    const vmOf = (): KvmVm | undefined => {
      vm ??= this.host.kvm.vms.find((x) =>
        x.vcpus.some((v) => v.guest !== null && v.guest === g.vcpus[v.idx]?.guestCpu),
      );
      return vm;
    };
    const entry = (vcpu: number, intid: number, l: TracedLine | undefined) =>
      this.guestIrqEntry(vmOf()?.vcpus[vcpu]?.runTask ?? null, vcpu, intid, seqOf(l));
    g.setTrace({
      deviceIrq: (vcpu, drv) => {
        const intid = drv.device.lines[drv.line]!.intid;
        entry(vcpu, intid, this.byIntid.get(intid));
      },
      lpiIrq: (vcpu, intid) => entry(vcpu, intid, lpis.get(intid)),
      eoi: (vcpu, intid) => this.guestEoi(vmOf(), vcpu, intid, currentOrNull()),
    });
  }

  // ---- installation ------------------------------------------------------------------------------------------

  /**
   * Every hook, tracing only, on a machine built without a tracer (the checker's counterexample trace, installed
   * after the set-up): each device line is traced under a `seq` that a new assertion of it takes (the runner's ledger
   * numbers its raises so), each irqfd of a VM is traced as the line whose VFIO trigger is its eventfd, under the
   * fds a process holds its eventfds at, and the VMs' vGICs and `guests` get their hooks.
   */
  install(guests: readonly GuestKernel[] = []): void {
    const host = this.host;
    let raises = 0;
    const lines = host.devices.map((d) =>
      d.spec.irqs.map((irq, index) => {
        const l = { device: d.spec.name, index, intid: irq.intid, seq: 0 };
        this.addLine(l, d.descs[index]!.irq);
        return l;
      }),
    );
    for (const [k, d] of host.devices.entries()) {
      d.hw.onLineChange = (_hw, index, level) => {
        if (level) lines[k]![index]!.seq = ++raises;
        this.lineChange(d.spec.name, d.spec.irqs[index]!.intid, level);
      };
    }
    this.wireIrqfds(lines);
    host.irq.genirq.trace = {
      handlerEntry: (d, n) => this.handlerEntry(d, n),
      handlerExit: (d, r) => this.handlerExit(d, r),
    };
    host.kvm.trace = {
      kvmEntry: (v) => this.kvmEntry(v),
      kvmExit: (v, type, ec) => this.kvmExit(v, type, ec),
      kvmUserspaceExit: (v, reason, err) => this.kvmUserspaceExit(v, reason, err),
      kvmSetIrq: (gsi, level, src) => this.kvmSetIrq(gsi, level, src),
    };
    host.irq.gic.distributor.onDeactivate = { deactivated: (intid, cpu) => this.deactivate(intid, cpu) };
    const unpredictable: UnpredictableObserver = (cpu, reg, why, intid) =>
      this.tr.emit(EV_GIC_UNPREDICTABLE, cpu, this.ctx(cpu), reg, why, intid);
    host.irq.gic.distributor.onUnpredictable = unpredictable;
    if (host.irq.version === 'v3') {
      const lpis = host.irq.gic.distributor.lpis;
      if (lpis !== null) lpis.onUnpredictable = unpredictable;
      if (host.irq.gic.vlpis !== null) host.irq.gic.vlpis.onUnpredictable = unpredictable;
    }
    this.installChain();
    for (const vm of host.kvm.vms) vm.traceVgic();
    for (const g of guests) this.traceGuest(g);
  }

  /** The irqfds the VMs hold now, each as the device line whose VFIO trigger is its eventfd (see `install`). */
  private wireIrqfds(lines: readonly (readonly TracedLine[])[]): void {
    const host = this.host;
    const fdOf = (p: Process, ctx: object | null) =>
      p.files.openFds().find((fd) => p.files.lookup(fd)?.privateData === ctx) ?? -1;
    for (const vm of host.kvm.vms)
      for (const irqfd of vm.irqfds.items)
        for (const [k, d] of host.devices.entries())
          for (const [index, irq] of d.vdev.irqs.entries()) {
            if (irq.trigger !== irqfd.eventfd) continue;
            const p = host.kernel.processes.find((x) => fdOf(x, irqfd.eventfd) >= 0) ?? host.kernel.processes[0]!;
            this.wire(lines[k]![index]!, vm, irqfd.gsi, p, fdOf(p, irqfd.eventfd), fdOf(p, irqfd.resamplefd));
          }
  }

  /**
   * The chain hooks nobody counts on: added to genirq's and KVM's hook objects already in place, and the host
   * kernel's (eventfd, VFIO). Call after those objects are set.
   */
  installChain(): void {
    const tr = this.tr;
    const host = this.host;
    const pid = (cpu: number) => this.ctx(cpu);
    if (host.irq.version === 'v3') {
      const hooks = new Gicv4Trace(tr, host, host.irq.gic.vlpis, (cpu, t) => this.ctx(cpu, t));
      if (host.irq.gic.its !== null) host.irq.gic.its.trace = hooks;
      if (host.irq.gic.vlpis !== null) host.irq.gic.vlpis.trace = hooks;
    }
    const g = host.irq.genirq.trace;
    if (g !== null) {
      g.gicIar = (cpu, intid) => tr.emit(EV_GIC_IAR, cpu, pid(cpu), intid, seqOf(this.byIntid.get(intid)));
      g.gicEoir = (cpu, intid) => tr.emit(EV_GIC_EOIR, cpu, pid(cpu), intid, 1, seqOf(this.byIntid.get(intid)));
    }
    host.kernel.trace = {
      eventfdSignal: (ctx) => {
        const e = this.eventfds.get(ctx);
        tr.emit(EV_EVENTFD_SIGNAL, cpuNow(), pid(cpuNow()), e?.fd ?? -1, 1, seqOf(e?.line));
      },
      vfioIrq: (irq, action) => {
        const l = this.byIrq.get(irq);
        tr.emit(
          EV_VFIO_PLATFORM_IRQ,
          cpuNow(),
          pid(cpuNow()),
          this.name(l?.device),
          l?.index ?? 0,
          irq,
          ACTION[action],
          seqOf(l),
        );
      },
      vfioUnmask: (irq) => {
        const l = this.byIrq.get(irq);
        tr.emit(EV_VFIO_UNMASK, cpuNow(), pid(cpuNow()), this.name(l?.device), l?.index ?? 0, irq, seqOf(l));
      },
    };
    const kt = host.kvm.trace;
    if (kt === null) return;
    kt.irqfdInject = (vm, gsi, level) =>
      tr.emit(EV_IRQFD_INJECT, cpuNow(), pid(cpuNow()), gsi, gsi + 32, level, seqOf(this.lineOf(vm, gsi)));
    kt.irqfdResample = (vm, gsi) =>
      tr.emit(EV_IRQFD_RESAMPLE, cpuNow(), pid(cpuNow()), gsi, gsi + 32, seqOf(this.lineOf(vm, gsi)));
    kt.lrWrite = (vm, vcpu, lr, f) => {
      const seq = seqOf(this.lineOf(vm, f.vintid - 32));
      const ev = EV_GIC_LR_WRITE;
      tr.emit(ev, cpuNow(), pid(cpuNow()), vcpu, lr, f.vintid, f.pintid, f.hw ? 1 : 0, f.eoi ? 1 : 0, f.state, seq);
    };
    kt.vgicMaintenance = (vm, vcpu, lr, vintid) =>
      tr.emit(EV_VGIC_MAINTENANCE, cpuNow(), pid(cpuNow()), vcpu, lr, vintid, seqOf(this.lineOf(vm, vintid - 32)));
    kt.kvmVfioIrq = (_vm, assign, dev, index, gsi, hwintid, ret) => {
      if (assign) tr.emit(EV_KVM_VFIO_ASSIGN_IRQ, cpuNow(), pid(cpuNow()), this.name(dev), index, gsi, hwintid, ret);
      else tr.emit(EV_KVM_VFIO_DEASSIGN_IRQ, cpuNow(), pid(cpuNow()), this.name(dev), index, gsi, ret);
    };
    kt.irqForwardSet = (irq, on, vcpu) => tr.emit(EV_IRQ_FORWARD_SET, cpuNow(), pid(cpuNow()), irq, on ? 1 : 0, vcpu);
    kt.vgicItsInject = (_vm, vcpu, vintid, devid, eventid, cached) =>
      tr.emit(EV_VGIC_ITS_INJECT, cpuNow(), pid(cpuNow()), devid, eventid, vintid, vcpu, cached ? 1 : 0);
    kt.vgicV4Doorbell = (vcpu, irq) => tr.emit(EV_VGIC_V4_DOORBELL, cpuNow(), pid(cpuNow()), vcpu.idx, irq);
  }

  private lineOf(vm: KvmVm, gsi: number): TracedLine | undefined {
    return this.byGsi.get(vm)?.get(gsi);
  }

  private name(s: string | undefined): number {
    const key = s ?? '?';
    let id = this.names.get(key);
    if (id === undefined) {
      id = this.tr.intern(key);
      this.names.set(key, id);
    }
    return id;
  }
}
