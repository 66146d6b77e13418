/**
 * Costs of the KVM steps (cycles). The world switch is ISCA 2016 Table II's ARM KVM hypercall round trip, 6,500
 * cycles [R] (perf-anchors §1.1), split so that nothing is counted twice:
 *   6,500 = kvm_entry half + kvm_exit half + guest_exit (30, charged by the engine on the exception to EL2)
 *           + VGIC save 3,250 (C_VGIC_SYNC, charged by the sync step) + VGIC restore 181 (inside C_VGIC_FLUSH).
 * So entry + exit = 6,500 − 3,250 − 181 − 30 = 3,039: entry 1,520, exit 1,519. C_VGIC_FLUSH adds ~200 cycles of
 * LR population on top of the restore (an estimate), so a VGIC-enabled round trip costs ≈ 6,720 cycles in the model.
 * A VM without an in-kernel vGIC pays entry + exit + guest_exit only (≈ ASPLOS 2014 "no VGIC" hypercall, 2,270).
 */
import { defineCost } from '../sim/costs.js';

export const C_KVM_ENTRY = defineCost(
  'kvm_entry',
  1520,
  'world switch into the guest (EL1 sysregs, GP/FP regs, timer, stage 2, eret): half of ISCA 2016 Table II hypercall 6,500 [R] after removing the VGIC save 3,250 / restore 181 (Table III [R]) and guest_exit 30 (src/kvm/costs.ts)',
);
export const C_KVM_EXIT = defineCost(
  'kvm_exit',
  1519,
  'world switch out of the guest back to the host: the other half of ISCA 2016 Table II hypercall 6,500 [R] minus VGIC save/restore and guest_exit (src/kvm/costs.ts)',
);
export const C_KVM_HANDLE_EXIT = defineCost(
  'kvm_handle_exit',
  100,
  'handle_exit dispatch on the exception class (kvm_get_exit_handler); estimate',
);
export const C_KVM_RUN_CHECK = defineCost(
  'kvm_run_check',
  50,
  'top of the run loop: signal_pending / xfer_to_guest_mode_handle_work, check_vcpu_requests; estimate',
);
export const C_KVM_IOCTL = defineCost(
  'kvm_ioctl',
  150,
  'a KVM ioctl body: copy_from_user of its struct, kvm->lock, bookkeeping; estimate',
);
export const C_KVM_CREATE = defineCost(
  'kvm_create',
  5000,
  'KVM_CREATE_VM / KVM_CREATE_VCPU / KVM_CREATE_DEVICE: allocations, stage-2 pgd, anon_inode_getfd; estimate',
);
export const C_KVM_DESTROY = defineCost(
  'kvm_destroy',
  2000,
  'kvm_destroy_vm / device destroy bookkeeping (stage-2 teardown not modelled); estimate',
);
export const C_KVM_MMIO_USER = defineCost(
  'kvm_mmio_user',
  300,
  "io_mem_abort decoding + filling kvm_run for a KVM_EXIT_MMIO (the VMM round trip itself is the VMM's); estimate",
);
export const C_IRQFD_WAKEUP = defineCost(
  'irqfd_wakeup',
  100,
  'irqfd_wakeup: eventfd_ctx_do_read + irq_entry seqcount read + kvm_arch_set_irq_inatomic dispatch (the vGIC inject is charged by vgic_inject_irq); estimate',
);
export const C_IRQFD_ASSIGN = defineCost(
  'irqfd_assign',
  1500,
  'kvm_irqfd_assign: kzalloc, fdget, eventfd_ctx_fileget, resampler lookup, irqfds.lock, vfs_poll; estimate',
);
export const C_IRQFD_SHUTDOWN = defineCost(
  'irqfd_shutdown',
  400,
  'irqfd_shutdown work: synchronize_srcu_expedited (not modelled as a wait) + unhook + kfree; estimate',
);
