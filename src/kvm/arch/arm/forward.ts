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
import { spinLockIrqsave, spinUnlockIrqrestore } from '../../../sim/locks.js';
import { op, type TaskGen } from '../../../sim/task.js';
import type { VfioPlatformIrq } from '../../../vfio/platform/vfioPlatformIrq.js';
import { C_VGIC_MAP } from '../../vgic/vgic.js';
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

/** Normal → forwarded: the interrupt's pending state moves to the physical side, an active one stays virtual + physical. */
function* toForwarded(f: ArchFwdIrq, v: VgicIrq, t: FwdTransfer): TaskGen<void> {
  const g = f.genirq;
  const irq = f.desc.irq;
  const level = v.config === VGIC_CONFIG_LEVEL;
  // The guest will deactivate through the HW bit: a vIRQ it holds active needs the physical INTID active too.
  if (t.virtActive) yield* irqSetIrqchipState(g, irq, 'ACTIVE', true);
  if (level) {
    // A pending level vIRQ is re-sampled from the line itself once the host side is enabled again.
    v.lineLevel = false;
    v.pendingLatch = false;
  } else if (v.pendingLatch) {
    // An edge waiting in the vGIC becomes pending at the GIC: the host will take and forward it.
    v.pendingLatch = false;
    yield* irqSetIrqchipState(g, irq, 'PENDING', true);
  }
  // VFIO's automask is not used while forwarded: the active state holds the line off instead.
  if (f.platIrq.masked) {
    f.platIrq.masked = false;
    yield* enableIrq(g, irq);
  }
}

/** Forwarded → normal: a physical active state becomes the normal path's "handled, masked, injected". */
function* toNormal(f: ArchFwdIrq, v: VgicIrq, t: FwdTransfer): TaskGen<void> {
  const g = f.genirq;
  const irq = f.desc.irq;
  const level = v.config === VGIC_CONFIG_LEVEL;
  if (!t.physActive) return;
  if (level && (t.virtActive || t.virtPending)) {
    // As vfio_automasked_irq_handler would have left it: masked until the guest's EOI is resampled.
    if (!f.platIrq.masked) {
      yield* disableIrqNosync(g, irq);
      f.platIrq.masked = true;
    }
    v.lineLevel = true;
  }
  // Not a blind EOI: deactivate through the irqchip state, as the normal path's host EOI would have.
  yield* irqSetIrqchipState(g, irq, 'ACTIVE', false);
}

/** How a kvm-vfio flavour switches one IRQ (the protocol below, or a variant's). */
export type SetFwdState = (f: ArchFwdIrq, on: boolean) => TaskGen<unknown>;

/**
 * Step 4, the switch itself: irq_set_vcpu_affinity, kvm_vgic_map_phys_irq with the Linux IRQ number (the vGIC finds
 * the INTID behind it) and kvm_vgic_set_owner for VFIO's consumer of the IRQ (so that only it injects the vIRQ; other
 * injections are re-posted at the GIC), or unmap and release, VFIO's forwarded flag; the vIRQ is (re-)queued if it
 * is pending or active. Called with the VFIO IRQ's lock held.
 */
export function* kvmArchSwitchFwd(f: ArchFwdIrq, v: VgicIrq, on: boolean): TaskGen<void> {
  const g = f.genirq;
  const hostIrq = f.desc.irq;
  const vgic = f.vm.vgic!;
  const target = v.targetVcpu ?? vgic.vcpu(0);
  yield* irqSetVcpuAffinity(g, hostIrq, on ? f.vm.vcpus[target.id] : null);
  yield op(C_VGIC_MAP, v.oid);
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
}

/**
 * kvm_arch_set_fwd_state: switch `f` to forwarded (`on`) or back. Must be called without spinlocks held (it waits
 * for vCPUs) and with the VFIO device's igate held (no SET_IRQS changes the trigger meanwhile).
 */
export function* kvmArchSetFwdState(f: ArchFwdIrq, on: boolean): TaskGen<FwdTransfer> {
  const g = f.genirq;
  const hostIrq = f.desc.irq;
  // 1. host side quiet
  yield* disableIrqNosync(g, hostIrq);
  yield* synchronizeHardirq(f.desc, false);
  // 2. guest side quiet
  yield* f.vm.kvmArmHaltGuest();
  try {
    // 3. move the state across
    const v = vgicIrqOf(f);
    const t: FwdTransfer = {
      virtPending: v.pendingLatch || v.lineLevel,
      virtActive: v.active,
      physActive: yield* irqGetIrqchipState(g, hostIrq, 'ACTIVE'),
      vfioMasked: f.platIrq.masked,
    };
    const flags = yield* spinLockIrqsave(f.platIrq.lock);
    try {
      if (on) yield* toForwarded(f, v, t);
      else yield* toNormal(f, v, t);
      // 4. switch
      yield* kvmArchSwitchFwd(f, v, on);
    } finally {
      spinUnlockIrqrestore(f.platIrq.lock, flags);
    }
    return t;
  } finally {
    // 5. resume
    yield* enableIrq(g, hostIrq);
    f.vm.kvmArmResumeGuest();
  }
}
