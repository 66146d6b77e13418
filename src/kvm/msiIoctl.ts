/**
 * The VM ioctls of GSI routing and MSIs (virt/kvm/kvm_main.c kvm_vm_ioctl, Linux 6.1): KVM_SET_GSI_ROUTING (struct
 * kvm_irq_routing and its entries) and KVM_SIGNAL_MSI (struct kvm_msi), as frames: the copy-in and checks, then the
 * routing switch or the injection as one step. The work itself is irqRouting.ts.
 */
import { errno } from '../abi/errno.js';
import { KVM_MAX_IRQ_ROUTES, type KvmIrqRoutingEntry, kvmIrqRouting, kvmIrqRoutingEntry, kvmMsi } from '../abi/kvm.js';
import { errnoFromReturn } from '../host/file.js';
import { type Boundary, Frame } from '../sim/frame.js';
import { op } from '../sim/task.js';
import { C_KVM_IOCTL } from './costs.js';
import { type KvmMsiRoute, kvmSendUserspaceMsi, kvmSetIrqRouting } from './irqRouting.js';
import { C_VGIC_INJECT } from './vgic/vgic.js';
import { vgicV4FlushOps } from './vgic/vgicV4Ops.js';
import type { KvmVm } from './vm.js';

/**
 * KVM_SET_GSI_ROUTING: EFAULT copying the header, EINVAL for more than KVM_MAX_IRQ_ROUTES entries or any flags, EFAULT
 * copying the entries (vmemdup_user), then kvm_set_irq_routing's own checks; the switch is one step (kvm->irq_lock,
 * synchronize_srcu_expedited).
 */
export class KvmSetGsiRouting extends Frame<number> {
  private entries: KvmIrqRoutingEntry[] = [];

  constructor(
    private readonly vm: KvmVm,
    private readonly arg: number,
  ) {
    super();
  }

  protected step(): Boundary {
    if (this.pc === 1) {
      kvmSetIrqRouting(this.vm, this.entries);
      return this.return_(0);
    }
    const mem = this.vm.kernel.currentUser().mem;
    const routing = kvmIrqRouting.read(mem.view(this.arg, kvmIrqRouting.size));
    if (routing.nr > KVM_MAX_IRQ_ROUTES)
      throw errno('EINVAL', `kvm_irq_routing.nr ${routing.nr} > ${KVM_MAX_IRQ_ROUTES}`);
    if (routing.flags !== 0) throw errno('EINVAL', `kvm_irq_routing.flags 0x${routing.flags.toString(16)}`);
    if (routing.nr > 0) mem.view(this.arg + kvmIrqRouting.size, routing.nr * kvmIrqRoutingEntry.size); // EFAULT first
    for (let i = 0; i < routing.nr; i++) {
      const at = this.arg + kvmIrqRouting.size + i * kvmIrqRoutingEntry.size;
      this.entries.push(kvmIrqRoutingEntry.read(mem.view(at, kvmIrqRoutingEntry.size)));
    }
    this.pc = 1;
    return this.yield_(op(C_KVM_IOCTL, this.vm.oid));
  }
}

/** KVM_SIGNAL_MSI: EFAULT copying struct kvm_msi, then kvm_send_userspace_msi as one step: 1, 0, or its errno. */
export class KvmSignalMsi extends Frame<number> {
  private msi: KvmMsiRoute | null = null;

  constructor(
    private readonly vm: KvmVm,
    private readonly arg: number,
  ) {
    super();
  }

  private ret = 0;

  protected step(): Boundary {
    if (this.pc === 2) return this.return_(this.ret);
    if (this.pc === 1) {
      const r = kvmSendUserspaceMsi(this.vm, this.msi!);
      if (r < 0) throw errnoFromReturn(r, 'KVM_SIGNAL_MSI');
      // a forwarded vLPI is made pending at the hardware (vgic_its_trigger_msi: irq_set_irqchip_state)
      const ops = vgicV4FlushOps(this.vm);
      if (ops === null) return this.return_(r);
      this.ret = r;
      this.pc = 2;
      return this.call(ops);
    }
    const m = kvmMsi.read(this.vm.kernel.currentUser().mem.view(this.arg, kvmMsi.size));
    this.msi = { addressLo: m.address_lo, addressHi: m.address_hi, data: m.data, flags: m.flags, devid: m.devid };
    this.pc = 1;
    return this.yield_(op(C_VGIC_INJECT, this.vm.oid));
  }
}
