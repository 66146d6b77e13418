/**
 * The arch part of IRQ forwarding (GICv2): switch one physical IRQ between the normal (irqfd) path and the
 * forwarded path, at any instant of its life, without losing it, leaving it active or masked, or delivering it
 * twice. The protocol (docs/ARCHITECTURE.md, "Switching the forwarded state"):
 *   1. quiesce the host side: disable_irq_nosync + synchronize_hardirq without the chip check — no handler runs
 *      after this, and none can inject; a forwarded INTID the guest holds active would make the chip check spin;
 *   2. quiesce the guest side: kvm_arm_halt_guest — every vCPU out of guest mode, its list registers folded back into
 *      the vGIC, asleep where it cannot touch the vGIC (the irqfd resample → VFIO unmask path runs before that);
 *   3. move the interrupt's state across (below), under the VFIO IRQ's lock;
 *   4. switch: irq_set_vcpu_affinity, kvm_vgic_map_phys_irq / unmap, VFIO's forwarded flag;
 *   5. enable_irq, kvm_arm_resume_guest.
 */
import type { Genirq } from '../../../host/irq/genirq.js';
import type { IrqDesc } from '../../../host/irq/irqDesc.js';
import {
  disableIrqNosync,
  enableIrq,
  irqGetIrqchipState,
  irqSetIrqchipState,
  irqSetVcpuAffinity,
  synchronizeHardirq,
} from '../../../host/irq/manage.js';
import { type Boundary, Frame } from '../../../sim/frame.js';
import { spinLockIrqsave, spinUnlockIrqrestore } from '../../../sim/locks.js';
import { markShared } from '../../../sim/snapshot.js';
import { type Call, type Op, op } from '../../../sim/task.js';
import type { VfioPlatformIrq } from '../../../vfio/platform/vfioPlatformIrq.js';
import { C_VGIC_INJECT, C_VGIC_MAP, type VgicCpu } from '../../vgic/vgic.js';
import { VGIC_CONFIG_LEVEL, type VgicIrq } from '../../vgic/vgicIrq.js';
import type { KvmVm } from '../../vm.js';

/** One IRQ as the arch code switches it. */
export interface ArchFwdIrq {
  readonly vm: KvmVm;
  readonly genirq: Genirq;
  readonly desc: IrqDesc;
  readonly platIrq: VfioPlatformIrq;
  /** The guest's INTID (32 + guest_irq). */
  readonly vintid: number;
}

/** What a switch found and did, for tests and traces. */
export interface FwdTransfer {
  virtPending: boolean;
  virtActive: boolean;
  physActive: boolean;
  vfioMasked: boolean;
}

export function vgicIrqOf(f: ArchFwdIrq): VgicIrq {
  const irq = f.vm.vgic!.vgicGetIrq(f.vintid);
  if (irq === null) throw new Error(`vIRQ ${f.vintid} vanished`);
  return irq;
}

/** ToForwarded: a vIRQ the guest holds active needs the physical INTID active too. */
const TF_ACTIVE = 0;
/** The pending state: a level vIRQ's is re-sampled from the line, an edge's is posted at the GIC. */
const TF_PENDING = 1;
/** VFIO's automask is not used while forwarded. */
const TF_UNMASK = 2;
const TF_DONE = 3;

/** Normal → forwarded: the interrupt's pending state moves to the physical side, an active one stays virtual + physical. */
class ToForwarded extends Frame {
  constructor(
    private readonly f: ArchFwdIrq,
    private readonly v: VgicIrq,
    private readonly t: FwdTransfer,
  ) {
    super();
  }

  protected step(): Boundary {
    switch (this.pc) {
      case TF_ACTIVE:
        // The guest will deactivate through the HW bit: a vIRQ it holds active needs the physical INTID active too.
        this.pc = TF_PENDING;
        if (this.t.virtActive) return this.call(irqSetIrqchipState(this.f.genirq, this.f.desc.irq, 'ACTIVE', true));
        return this.pending();
      case TF_PENDING:
        return this.pending();
      case TF_UNMASK:
        return this.unmask();
      default:
        return this.return_(undefined);
    }
  }

  private pending(): Boundary {
    const v = this.v;
    this.pc = TF_UNMASK;
    if (v.config === VGIC_CONFIG_LEVEL) {
      // A pending level vIRQ is re-sampled from the line itself once the host side is enabled again.
      v.lineLevel = false;
      v.pendingLatch = false;
    } else if (v.pendingLatch) {
      // An edge waiting in the vGIC becomes pending at the GIC: the host will take and forward it.
      v.pendingLatch = false;
      return this.call(irqSetIrqchipState(this.f.genirq, this.f.desc.irq, 'PENDING', true));
    }
    return this.unmask();
  }

  /** VFIO's automask is not used while forwarded: the active state holds the line off instead. */
  private unmask(): Boundary {
    const f = this.f;
    this.pc = TF_DONE;
    if (!f.platIrq.masked) return this.return_(undefined);
    f.platIrq.masked = false;
    return this.call(enableIrq(f.genirq, f.desc.irq));
  }
}

/** ToNormal: a level interrupt the guest still owes an EOI for is left masked, as VFIO's automask would have. */
const TN_MASK = 0;
/** disable_irq_nosync done: VFIO's masked flag. */
const TN_MASKED = 1;
/** The physical active state went (irq_set_irqchip_state(ACTIVE, false) returned). */
const TN_DONE = 2;

/** Forwarded → normal: a physical active state becomes the normal path's "handled, masked, injected". */
class ToNormal extends Frame {
  constructor(
    private readonly f: ArchFwdIrq,
    private readonly v: VgicIrq,
    private readonly t: FwdTransfer,
  ) {
    super();
  }

  protected step(): Boundary {
    const f = this.f;
    const t = this.t;
    switch (this.pc) {
      case TN_MASK:
        if (!t.physActive) return this.return_(undefined);
        if (this.v.config === VGIC_CONFIG_LEVEL && (t.virtActive || t.virtPending)) {
          // As vfio_automasked_irq_handler would have left it: masked until the guest's EOI is resampled.
          if (!f.platIrq.masked) {
            this.pc = TN_MASKED;
            return this.call(disableIrqNosync(f.genirq, f.desc.irq));
          }
          this.v.lineLevel = true;
        }
        return this.deactivate();
      case TN_MASKED:
        f.platIrq.masked = true;
        this.v.lineLevel = true;
        return this.deactivate();
      default:
        return this.return_(undefined);
    }
  }

  /** Not a blind EOI: deactivate through the irqchip state, as the normal path's host EOI would have. */
  private deactivate(): Boundary {
    this.pc = TN_DONE;
    return this.call(irqSetIrqchipState(this.f.genirq, this.f.desc.irq, 'ACTIVE', false));
  }
}

/** How a kvm-vfio flavour switches one IRQ (the protocol below, or a variant's). */
export type SetFwdState = (f: ArchFwdIrq, on: boolean) => Call<unknown>;

/** kvm_arch_switch_fwd: irq_set_vcpu_affinity. */
const SW_AFFINITY = 0;
/** The vGIC map step. */
const SW_MAP = 1;
/** kvm_vgic_map_phys_irq + kvm_vgic_set_owner, or unmap + release. */
const SW_MAPPED = 2;

/**
 * Step 4, the switch itself: irq_set_vcpu_affinity, kvm_vgic_map_phys_irq with the Linux IRQ number (the vGIC finds
 * the INTID behind it) and kvm_vgic_set_owner for VFIO's consumer of the IRQ (so that only it injects the vIRQ; other
 * injections are re-posted at the GIC), or unmap and release, VFIO's forwarded flag; the vIRQ is (re-)queued if it
 * is pending or active. Called with the VFIO IRQ's lock held.
 */
class KvmArchSwitchFwd extends Frame {
  private target: VgicCpu | null = null;

  constructor(
    private readonly f: ArchFwdIrq,
    private readonly v: VgicIrq,
    private readonly on: boolean,
  ) {
    super();
  }

  protected step(): Boundary {
    const f = this.f;
    const v = this.v;
    const on = this.on;
    const hostIrq = f.desc.irq;
    const vgic = f.vm.vgic!;
    switch (this.pc) {
      case SW_AFFINITY: {
        const target = vgic.targetVcpuOf(v) ?? vgic.vcpu(0);
        this.target = target;
        this.pc = SW_MAP;
        return this.call(irqSetVcpuAffinity(f.genirq, hostIrq, on ? f.vm.vcpus[target.id] : null));
      }
      case SW_MAP:
        this.pc = SW_MAPPED;
        return this.yield_(op(C_VGIC_MAP, v.oid));
      default: {
        const target = this.target!;
        const owner = f.platIrq.fwd;
        if (on) {
          const r = vgic.kvmVgicMapPhysIrq(target, hostIrq, f.vintid);
          if (r < 0) throw new Error(`kvm_vgic_map_phys_irq(${hostIrq}, ${f.vintid}) = ${r}`);
          const o = vgic.kvmVgicSetOwner(target, f.vintid, owner);
          if (o < 0) throw new Error(`kvm_vgic_set_owner(${f.vintid}) = ${o}`);
        } else {
          vgic.kvmVgicUnmapPhysIrq(target, f.vintid);
          vgic.kvmVgicReleaseOwner(target, f.vintid, owner);
        }
        f.platIrq.forwarded = on;
        f.vm.trace?.irqForwardSet?.(hostIrq, on, on ? target.id : -1);
        // A vIRQ that is (still or now) pending or active must sit on an ap-list.
        vgic.vgicQueueIrqUnlock(v);
        return this.return_(undefined);
      }
    }
  }
}

export function kvmArchSwitchFwd(f: ArchFwdIrq, v: VgicIrq, on: boolean): Frame {
  return new KvmArchSwitchFwd(f, v, on);
}

/** 1. host side quiet: disable_irq_nosync. */
const PC_DISABLE = 0;
/** synchronize_hardirq without the chip check. */
const PC_SYNC = 1;
/** 2. guest side quiet: kvm_arm_halt_guest. */
const PC_HALT = 2;
/** 3. the guest is halted (from here on, step 5 runs whatever happens): read the state across. */
const PC_HALTED = 3;
/** The physical active state is known: take the VFIO IRQ's lock. */
const PC_PHYS_ACTIVE = 4;
/** The VFIO IRQ's lock is held: move the state. */
const PC_LOCKED = 5;
/** 4. switch. */
const PC_MOVED = 6;
/** Switched (or an exception passed after the halt): drop the lock; 5. enable_irq. */
const PC_SWITCHED = 7;
/** enable_irq done: kvm_arm_resume_guest. */
const PC_RESUMED = 8;

/**
 * kvm_arch_set_fwd_state (the module comment's protocol) as a frame. Step 5 is a `finally` made of steps
 * (enable_irq writes the GIC): an exception after the guest was halted is held in `pending` while it runs.
 */
class KvmArchSetFwdState extends Frame<FwdTransfer> {
  private v: VgicIrq | null = null;
  private t: FwdTransfer | null = null;
  /** spin_lock_irqsave's flags, and whether the lock is held. */
  private flags = false;
  private locked = false;
  /** The guest was halted (step 5 must run), and step 5 has started. */
  private halted = false;
  private resuming = false;
  /** An exception that passed while step 5 runs; rethrown after it. */
  private pending: { error: unknown } | null = null;

  constructor(
    private readonly f: ArchFwdIrq,
    private readonly on: boolean,
    /** Steps 1, 2 and 5 too; false: only steps 3 and 4 (kvmArchTransferFwd, the caller quiesced). */
    private readonly quiesce: boolean,
  ) {
    super();
    if (!quiesce) this.pc = PC_HALTED;
  }

  override next(sent?: unknown): IteratorResult<Op, FwdTransfer> {
    try {
      return super.next(sent);
    } catch (e) {
      if (!this.halted || this.resuming) throw e;
      // the generator's `finally`: enable_irq and kvm_arm_resume_guest before the exception goes on
      this.pending = { error: e };
      this.pc = PC_SWITCHED;
      return super.next(undefined);
    }
  }

  protected step(sent: unknown): Boundary {
    const f = this.f;
    const g = f.genirq;
    const hostIrq = f.desc.irq;
    switch (this.pc) {
      case PC_DISABLE:
        this.pc = PC_SYNC;
        return this.call(disableIrqNosync(g, hostIrq));
      case PC_SYNC:
        this.pc = PC_HALT;
        return this.call(synchronizeHardirq(f.desc, false));
      case PC_HALT:
        this.pc = PC_HALTED;
        return this.call(f.vm.kvmArmHaltGuest());
      case PC_HALTED: {
        this.halted = this.quiesce;
        const v = vgicIrqOf(f);
        this.v = v;
        this.t = {
          virtPending: v.pendingLatch || v.lineLevel,
          virtActive: v.active,
          physActive: false,
          vfioMasked: false,
        };
        this.pc = PC_PHYS_ACTIVE;
        return this.call(irqGetIrqchipState(g, hostIrq, 'ACTIVE'));
      }
      case PC_PHYS_ACTIVE:
        this.t!.physActive = sent as boolean;
        this.t!.vfioMasked = f.platIrq.masked;
        this.pc = PC_LOCKED;
        return this.call(spinLockIrqsave(f.platIrq.lock));
      case PC_LOCKED:
        this.flags = sent as boolean;
        this.locked = true;
        this.pc = PC_MOVED;
        return this.call(this.on ? new ToForwarded(f, this.v!, this.t!) : new ToNormal(f, this.v!, this.t!));
      case PC_MOVED:
        this.pc = PC_SWITCHED;
        return this.call(kvmArchSwitchFwd(f, this.v!, this.on));
      case PC_SWITCHED:
        this.resuming = true;
        this.unlock();
        if (!this.quiesce) return this.return_(this.t!);
        this.pc = PC_RESUMED;
        return this.call(enableIrq(g, hostIrq));
      default: {
        // PC_RESUMED
        f.vm.kvmArmResumeGuest();
        const p = this.pending;
        if (p !== null) {
          this.pending = null;
          throw p.error;
        }
        return this.return_(this.t!);
      }
    }
  }

  private unlock(): void {
    if (!this.locked) return;
    this.locked = false;
    spinUnlockIrqrestore(this.f.platIrq.lock, this.flags);
  }

  /** An exception under the VFIO IRQ's lock releases it first (the inner `finally`). */
  protected override unwind(): void {
    this.unlock();
  }
}

markShared(kvmArchSetFwdState); // code an object of the model points at
/**
 * kvm_arch_set_fwd_state: switch `f` to forwarded (`on`) or back. Must be called without spinlocks held (it waits
 * for vCPUs) and with the VFIO device's igate held (no SET_IRQS changes the trigger meanwhile).
 */
export function kvmArchSetFwdState(f: ArchFwdIrq, on: boolean): Frame<FwdTransfer> {
  return new KvmArchSetFwdState(f, on, true);
}

/**
 * Steps 3 and 4 alone: move the interrupt's state across and switch, under the VFIO IRQ's lock. The caller has
 * quiesced the host side and the guest side (steps 1 and 2) and resumes them after (step 5): the IRQ bypass manager's
 * stop/start bracket around add_producer/del_producer (arch/arm/irqBypass.ts).
 */
export function kvmArchTransferFwd(f: ArchFwdIrq, on: boolean): Frame<FwdTransfer> {
  return new KvmArchSetFwdState(f, on, false);
}

/**
 * A forwarded IRQ handed over by VFIO's handler (kvm-vfio ASSIGN, or the bypass producer): in hardirq context with the
 * physical INTID active, its step, then kvm_vgic_inject_irq of the HW vIRQ `owner` owns. The trace keeps the
 * irqfd_inject event for this step.
 */
export class ForwardedIrqInject extends Frame {
  constructor(
    private readonly arch: ArchFwdIrq,
    private readonly gsi: number,
    private readonly owner: unknown,
  ) {
    super();
  }

  protected step(): Boundary {
    const { vm, vintid } = this.arch;
    if (this.pc === 0) {
      this.pc = 1;
      return this.yield_(op(C_VGIC_INJECT, vm.oid));
    }
    vm.vgic!.kvmVgicInjectIrq(null, vintid, true, this.owner);
    vm.trace?.irqfdInject?.(vm, this.gsi, 1);
    return this.return_(undefined);
  }
}
