/**
 * kvm_vgic_v4_set_forwarding / kvm_vgic_v4_unset_forwarding (arch/arm64/kvm/vgic/vgic-v4.c, Linux 6.1), called from
 * the irqfd consumer's add/del_producer (arch/arm/irqBypass.ts): the irqfd's MSI routing entry → vITS (vgic_get_its)
 * → vgic_its_resolve_lpi, then its_map_vlpi / its_unmap_vlpi of the producer's host IRQ. Divergence: the model's vITS
 * has no its_lock object (each command is one atomic step), so the resolve and the mapping are not one critical
 * section against the guest's commands.
 */
import { ERRNO } from '../../abi/errno.js';
import { itsMapVlpi, itsUnmapVlpi } from '../../host/irq/irqGicV4.js';
import { LPI_PROP_ENABLED, LPI_PROP_GROUP1 } from '../../host/irq/its/itsInit.js';
import { irqSetIrqchipState } from '../../host/irq/manage.js';
import { touch } from '../../sim/footprint.js';
import { type Boundary, Frame } from '../../sim/frame.js';
import type { KvmKernelIrqRoutingEntry } from '../irqRouting.js';
import type { KvmVm } from '../vm.js';
import type { VgicIrq } from './vgicIrq.js';
import { type VgicItsTranslation, vgicItsResolveLpi, vgicMsiToIts } from './vgicIts.js';
import { vgicItsInvalidateCache } from './vgicLpi.js';
import { vgicSupportsDirectMsis } from './vgicV4.js';

/**
 * kvm_vgic_v4_{set,unset}_forwarding's common start: 0 unless direct MSIs are supported and the entry is an MSI of one
 * of the VM's vITSs (vgic_get_its); then vgic_its_resolve_lpi's translation, or its -errno / E_ITS_* (`failed`).
 */
abstract class KvmVgicV4Forwarding extends Frame<number> {
  /** What a failed resolve returns (0: not ours). */
  protected failed = 0;

  constructor(
    protected readonly vm: KvmVm,
    protected readonly hostIrq: number,
    private readonly entry: KvmKernelIrqRoutingEntry,
  ) {
    super();
  }

  /** The translation, or null after return_ (not ours, or the resolve's error). */
  protected resolve(): VgicItsTranslation | null {
    const msi = this.entry.msi;
    if (!vgicSupportsDirectMsis(this.vm) || msi === null) return null;
    const its = vgicMsiToIts(this.vm, msi);
    if (typeof its === 'number') return null;
    const t = vgicItsResolveLpi(its, msi.devid, msi.data);
    if (typeof t !== 'number') return t;
    this.failed = t;
    return null;
  }
}

/**
 * kvm_vgic_v4_set_forwarding: the LPI the guest's vITS maps (DeviceID, EventID) to becomes a vLPI of its target
 * vCPU's vPE for host IRQ `hostIrq`; a pending_latch already set moves to the vPE (irq_set_irqchip_state). 0 when
 * direct MSIs are not supported or the entry is not a doorbell of the VM's vITS; the -errno / E_ITS_* of the
 * resolve otherwise.
 */
export class KvmVgicV4SetForwarding extends KvmVgicV4Forwarding {
  private irq: VgicIrq | null = null;

  protected step(): Boundary {
    const vm = this.vm;
    switch (this.pc) {
      case 0: {
        const t = this.resolve();
        if (t === null) return this.return_(this.failed);
        const vpe = vm.vgic!.itsVm?.vpes[t.vcpu.id];
        if (vpe === undefined) return this.return_(-ERRNO.EINVAL);
        this.irq = t.irq;
        const properties = (t.irq.priority & 0xfc) | (t.irq.enabled ? LPI_PROP_ENABLED : 0) | LPI_PROP_GROUP1;
        this.pc = 1;
        const map = { vm: vpe.vm, vpe, vintid: t.irq.intid, properties, dbEnabled: true };
        return this.call(itsMapVlpi(vm.kvm.hostIrq.genirq, this.hostIrq, map));
      }
      case 1: {
        const irq = this.irq!;
        irq.hw = true;
        irq.hostIrq = this.hostIrq;
        // The fix variant: the resolve above ran with irq->hw clear, so vgic_its_cache_translation cached this LPI, and
        // vgic_its_inject_cached_translation (no irq->hw test) would set the emulated latch of the forwarded vLPI.
        if (vm.kvm.vgicV4InvalidateItsCache) {
          touch(vm.oid); // the cache is read by the VM's injections, which declare the VM
          vgicItsInvalidateCache(vm.vgic!);
        }
        if (!irq.pendingLatch || !vm.kvm.vgicV4TransferPending) return this.return_(0);
        // Transfer pending state: the vGIC's latch drops (vgic_queue_irq_unlock prunes it), the vPE's table takes it.
        // The kernel does both under irq_lock; dropping first means never both pending, at worst neither for a step.
        irq.pendingLatch = false;
        vm.vgic!.vgicQueueIrqUnlock(irq);
        this.pc = 2;
        return this.call(irqSetIrqchipState(vm.kvm.hostIrq.genirq, this.hostIrq, 'PENDING', true));
      }
      default:
        return this.return_(0);
    }
  }
}

/** kvm_vgic_v4_unset_forwarding: irq->hw cleared and its_unmap_vlpi of the host IRQ. */
export class KvmVgicV4UnsetForwarding extends KvmVgicV4Forwarding {
  protected step(): Boundary {
    if (this.pc !== 0) return this.return_(0);
    const t = this.resolve();
    if (t === null) return this.return_(this.failed);
    if (!t.irq.hw) return this.return_(0);
    t.irq.hw = false;
    this.pc = 1;
    return this.call(itsUnmapVlpi(this.vm.kvm.hostIrq.genirq, this.hostIrq));
  }
}
