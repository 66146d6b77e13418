/**
 * The `naive` variant for the checker: the corrected kvm-vfio design (core list, the errnos, the INTID and
 * not the Linux IRQ number in the vGIC, one VFIO reference per device) MINUS the critical-section protocol of
 * arch/arm/forward.ts. The forwarded state is switched on the spot — irq_set_vcpu_affinity, kvm_vgic_map/unmap, VFIO's
 * forwarded flag — with the host IRQ neither disabled nor synchronized, the guest not halted, and no pending or
 * active state moved between the physical and the virtual side. This is what the seed's commit message leaves to
 * "the client": "Changing the forwarded state is not allowed in the critical section starting from VFIO IRQ handler
 * to LR programming".
 */
import { spinLockIrqsave, spinUnlockIrqrestore } from '../../../sim/locks.js';
import type { TaskGen } from '../../../sim/task.js';
import { type ArchFwdIrq, kvmArchSwitchFwd, vgicIrqOf } from '../../arch/arm/forward.js';
import type { KvmDeviceOps } from '../../device.js';
import { kvmVfioOpsWith } from '../../vfio.js';

/** kvm_arch_set_fwd_state without steps 1–3 and 5 of the protocol: only the switch, under the VFIO IRQ's lock. */
export function* kvmArchSetFwdStateNaive(f: ArchFwdIrq, on: boolean): TaskGen<void> {
  const flags = yield* spinLockIrqsave(f.platIrq.lock);
  try {
    yield* kvmArchSwitchFwd(f, vgicIrqOf(f), on);
  } finally {
    spinUnlockIrqrestore(f.platIrq.lock, flags);
  }
}

export const kvmVfioNaiveOps: KvmDeviceOps = kvmVfioOpsWith(kvmArchSetFwdStateNaive);
