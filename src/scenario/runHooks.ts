/**
 * The hooks a scenario run installs in the machine to count and trace: classes holding plain data, not closures, so
 * a run's machine state stays copyable (src/sim/snapshot.ts findUncopyable). Each forwards to the run's trace
 * (HostTrace) when it traces; installChain adds its tracing-only hooks to the genirq and KVM ones as fields.
 */
import type { IrqTraceHooks } from '../host/irq/genirq.js';
import type { IrqDesc, IrqReturn } from '../host/irq/irqDesc.js';
import type { HostTraceHooks } from '../host/kernel.js';
import { kvmIrqMapGsi } from '../kvm/irqRouting.js';
import type { KvmTraceHooks } from '../kvm/kvm.js';
import type { KvmVcpu } from '../kvm/vcpu.js';
import type { KvmVm } from '../kvm/vm.js';
import type { HostTrace } from './hostTrace.js';
import type { LineLedger, LineState } from './lineLedger.js';
import type { MetricsWindow } from './metricsWindow.js';
import type { PlanExecutor } from './planExecutor.js';

/** Host handler entries and exits: the vGIC maintenance IRQ's are counted. */
export class RunIrqHooks implements IrqTraceHooks {
  constructor(
    private readonly window: MetricsWindow,
    private readonly maintIrq: number,
    private readonly ht: HostTrace | null,
  ) {}

  handlerEntry(desc: IrqDesc, name: string): void {
    if (desc.irq === this.maintIrq) this.window.maint++;
    this.ht?.handlerEntry(desc, name);
  }

  handlerExit(desc: IrqDesc, ret: IrqReturn): void {
    this.ht?.handlerExit(desc, ret);
  }
}

/** KVM's tracepoints: guest entries with more queued vIRQs than list registers, and wired-line injections, are counted. */
export class RunKvmHooks implements KvmTraceHooks {
  constructor(
    private readonly window: MetricsWindow,
    private readonly ht: HostTrace | null,
  ) {}

  kvmEntry(v: KvmVcpu): void {
    const vc = v.vgicCpu;
    const nrLr = v.vm.vgic?.nrLr ?? 0;
    if (vc !== null && nrLr > 0 && vc.apCount > nrLr) this.window.lrOverflows++;
    this.ht?.kvmEntry(v);
  }

  kvmExit(v: KvmVcpu, type: number, ec: number): void {
    this.ht?.kvmExit(v, type, ec);
  }

  kvmUserspaceExit(v: KvmVcpu, reason: number, err: number): void {
    this.ht?.kvmUserspaceExit(v, reason, err);
  }

  kvmSetIrq(gsi: number, level: number, src: number, vm: KvmVm): void {
    // an MSI route's injection is counted where the vITS makes the LPI pending (Vgic.lpiInjections), which the
    // irqfd's atomic path and KVM_SIGNAL_MSI reach without kvm_set_irq
    if (level !== 0 && !kvmIrqMapGsi(vm, gsi).some((e) => e.msi !== null)) this.window.injections++;
    this.ht?.kvmSetIrq(gsi, level, src);
  }
}

/**
 * vfio_platform_unmask re-enables a line the normal path masked: the ledger's re-arm of a raise already deactivated;
 * the trace's kernel hooks (`chain`, when it traces) go on being called.
 */
export class RunKernelHooks implements HostTraceHooks {
  readonly eventfdSignal?: (ctx: object) => void;
  readonly vfioIrq?: (irq: number, action: 'automasked' | 'forwarded' | 'edge') => void;

  constructor(
    private readonly chain: HostTraceHooks | null,
    private readonly ledger: LineLedger,
    private readonly byIrq: ReadonlyMap<number, LineState>,
  ) {
    if (chain?.eventfdSignal !== undefined) this.eventfdSignal = chain.eventfdSignal;
    if (chain?.vfioIrq !== undefined) this.vfioIrq = chain.vfioIrq;
  }

  vfioUnmask(irq: number): void {
    const l = this.byIrq.get(irq);
    if (l !== undefined) this.ledger.unmasked(l);
    this.chain?.vfioUnmask?.(irq);
  }
}

/**
 * A physical deactivation: every path (host EOIR/DIR, guest EOI on a HW list register) ends in the distributor's
 * deactivate, which reports it here (GicDistributor.onDeactivate).
 */
export class RunDeactivations {
  constructor(
    private readonly ledger: LineLedger,
    private readonly plan: PlanExecutor,
    private readonly ht: HostTrace | null,
  ) {}

  deactivated(intid: number, cpu: number): void {
    this.ht?.deactivate(intid, cpu); // every INTID: an SGI's or PPI's DIR too, or its active slice never ends
    if (this.ledger.deactivated(intid)) this.plan.notify();
  }
}
