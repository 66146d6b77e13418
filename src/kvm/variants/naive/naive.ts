/**
 * The `naive` variant for the checker: the corrected kvm-vfio design (core list, the errnos, the INTID and
 * not the Linux IRQ number in the vGIC, one VFIO reference per device) MINUS the critical-section protocol of
 * arch/arm/forward.ts. The forwarded state is switched on the spot — irq_set_vcpu_affinity, kvm_vgic_map/unmap, VFIO's
 * forwarded flag — with the host IRQ neither disabled nor synchronized, the guest not halted, and no pending or
 * active state moved between the physical and the virtual side. This is what the seed's commit message leaves to
 * "the client": "Changing the forwarded state is not allowed in the critical section starting from VFIO IRQ handler
 * to LR programming".
 */

import { type Boundary, Frame } from '../../../sim/frame.js';
import { spinLockIrqsave, spinUnlockIrqrestore } from '../../../sim/locks.js';
import { markShared } from '../../../sim/snapshot.js';
import { type ArchFwdIrq, kvmArchSwitchFwd, vgicIrqOf } from '../../arch/arm/forward.js';
import type { KvmDeviceOps } from '../../device.js';
import { kvmVfioOpsWith } from '../../vfio.js';

/** spin_lock_irqsave of the VFIO IRQ's lock. */
const PC_LOCK = 0;
/** The lock is held: the switch. */
const PC_LOCKED = 1;
/** Switched: unlock. */
const PC_SWITCHED = 2;

/** kvm_arch_set_fwd_state without steps 1–3 and 5 of the protocol: only the switch, under the VFIO IRQ's lock. */
class KvmArchSetFwdStateNaive extends Frame {
  private flags = false;

  constructor(
    private readonly f: ArchFwdIrq,
    private readonly on: boolean,
  ) {
    super();
  }

  protected step(sent: unknown): Boundary {
    const f = this.f;
    switch (this.pc) {
      case PC_LOCK:
        this.pc = PC_LOCKED;
        return this.call(spinLockIrqsave(f.platIrq.lock));
      case PC_LOCKED:
        this.flags = sent as boolean;
        this.pc = PC_SWITCHED;
        return this.call(kvmArchSwitchFwd(f, vgicIrqOf(f), this.on));
      default:
        spinUnlockIrqrestore(f.platIrq.lock, this.flags);
        return this.return_(undefined);
    }
  }

  /** The switch threw with the lock held. */
  protected override unwind(): void {
    if (this.pc === PC_SWITCHED) spinUnlockIrqrestore(this.f.platIrq.lock, this.flags);
  }
}

markShared(kvmArchSetFwdStateNaive); // code an object of the model points at
export function kvmArchSetFwdStateNaive(f: ArchFwdIrq, on: boolean): Frame {
  return new KvmArchSetFwdStateNaive(f, on);
}

export const kvmVfioNaiveOps: KvmDeviceOps = kvmVfioOpsWith(kvmArchSetFwdStateNaive);
