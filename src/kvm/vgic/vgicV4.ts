/**
 * KVM's GICv4.1 glue (arch/arm64/kvm/vgic/vgic-v4.c, Linux 6.1) over the host's GICv4 API (host/irq/irqGicV4.ts):
 * - vgic_v4_init: the VM's its_vm (one its_vpe per vCPU), its_alloc_vcpu_irqs, and request_irq of each vPE's
 *   doorbell with vgic_v4_doorbell_handler (left enabled: a GICv4.1 doorbell is managed by the hardware);
 *   vgic_v4_teardown: free_irq of each doorbell, then its_free_vcpu_irqs;
 * - vgic_v4_load / vgic_v4_put / vgic_v4_commit on the vCPU's load, put and entry path (vcpuRun.ts), a vCPU in WFI
 *   descheduled with a doorbell and not made resident again until it leaves WFI;
 * - kvm_vgic_v4_set_forwarding / unset_forwarding: the irqfd's MSI routing entry → vITS → vgic_its_resolve_lpi, then
 *   its_map_vlpi / its_unmap_vlpi of the host IRQ, irq->hw and host_irq, and the pending state moved to the vPE.
 * vgic_supports_direct_msis = the host has GICv4(.1) and the VM a vITS. vSGIs (vgic_v4_configure_vsgis) are not
 * modelled. Divergence: the model's vITS runs each command in one atomic step without an its_lock object, so the
 * resolve and the mapping are not one critical section against the guest's commands (the kernel holds its_lock).
 */
import { ERRNO } from '../../abi/errno.js';
import { irqSetAffinity } from '../../host/irq/affinity.js';
import { IRQ_HANDLED, type IrqReturn } from '../../host/irq/irqDesc.js';
import {
  itsAllocVcpuIrqs,
  itsCommitVpe,
  itsFreeVcpuIrqs,
  itsMakeVpeNonResident,
  itsMakeVpeResident,
  itsMapVlpi,
  itsUnmapVlpi,
} from '../../host/irq/irqGicV4.js';
import { LPI_PROP_ENABLED, LPI_PROP_GROUP1 } from '../../host/irq/its/itsInit.js';
import type { HostGicV4, ItsVpe } from '../../host/irq/its/itsVpe.js';
import { ItsVm } from '../../host/irq/its/itsVpe.js';
import { freeIrq, irqSetIrqchipState, requestIrq } from '../../host/irq/manage.js';
import { type Boundary, Frame } from '../../sim/frame.js';
import { spinLock } from '../../sim/locks.js';
import { markShared } from '../../sim/snapshot.js';
import type { KvmKernelIrqRoutingEntry } from '../irqRouting.js';
import type { KvmVcpu } from '../vcpu.js';
import type { KvmVm } from '../vm.js';
import type { VgicIrq } from './vgicIrq.js';
import { type VgicItsTranslation, vgicItsResolveLpi, vgicMsiToIts } from './vgicIts.js';
import { vgicHasIts } from './vgicLpi.js';

/** The host's GICv4 layer, when the host GIC is a GICv4.1 (kvm_vgic_global_state.has_gicv4_1). */
export function hostGicV4(vm: KvmVm): HostGicV4 | null {
  return vm.kvm.hostIrq.version === 'v3' ? vm.kvm.hostIrq.v4 : null;
}

/** vgic_supports_direct_msis. */
export function vgicSupportsDirectMsis(vm: KvmVm): boolean {
  return hostGicV4(vm) !== null && vm.vgic !== null && vgicHasIts(vm.vgic);
}

/** vcpu->arch.vgic_cpu.vgic_v3.its_vpe, once vgic_v4_init has run. */
export function vgicV4Vpe(vcpu: KvmVcpu): ItsVpe | null {
  return vcpu.vm.vgic?.itsVm?.vpes[vcpu.id] ?? null;
}

/** vgic_v4_doorbell_handler: pending_last under vpe_lock (after any non-residency sequence), then kick. */
class VgicV4DoorbellHandler extends Frame<IrqReturn> {
  constructor(private readonly vcpu: KvmVcpu) {
    super();
  }

  protected step(): Boundary {
    const vpe = vgicV4Vpe(this.vcpu)!;
    if (this.pc === 0) {
      this.pc = 1;
      return this.call(spinLock(vpe.vpeLock));
    }
    vpe.pendingLast = true;
    vpe.vpeLock.unlock();
    this.vcpu.kvmVcpuKick(); // kvm_make_request(KVM_REQ_IRQ_PENDING) is the loop's next flush
    return this.return_(IRQ_HANDLED);
  }
}

markShared(vgicV4DoorbellHandler);
function vgicV4DoorbellHandler(_irq: number, devId: unknown): Frame<IrqReturn> {
  return new VgicV4DoorbellHandler(devId as KvmVcpu);
}

/** vgic_v4_init: 0, or the error of its_alloc_vcpu_irqs (nothing left allocated). */
export class VgicV4Init extends Frame<number> {
  private i = 0;

  constructor(private readonly vm: KvmVm) {
    super();
  }

  protected step(sent: unknown): Boundary {
    const vm = this.vm;
    const vgic = vm.vgic!;
    const v4 = hostGicV4(vm);
    switch (this.pc) {
      case 0:
        if (v4 === null || vgic.itsVm !== null) return this.return_(0);
        vgic.itsVm = new ItsVm(vm.kvm.engine, vm.vcpus.length);
        this.pc = 1;
        return this.call(itsAllocVcpuIrqs(v4, vgic.itsVm));
      case 1:
        if ((sent as number) < 0) {
          vgic.itsVm = null;
          return this.return_(-ERRNO.ENOMEM); // its_alloc_vcpu_irqs: no vPEID or doorbell LPIs left
        }
        return this.requestNext();
      default:
        this.i++;
        return this.requestNext();
    }
  }

  /** request_irq of the next vCPU's doorbell (IRQ_DISABLE_UNLAZY and IRQ_NO_BALANCING: the model has neither). */
  private requestNext(): Boundary {
    const vm = this.vm;
    if (this.i === vm.vcpus.length) return this.return_(0);
    const vcpu = vm.vcpus[this.i]!;
    this.pc = 2;
    return this.call(requestIrq(vm.kvm.hostIrq.genirq, vgicV4Vpe(vcpu)!.irq, vgicV4DoorbellHandler, 0, 'vcpu', vcpu));
  }
}

/** vgic_v4_teardown (kvm_vgic_destroy): each doorbell freed, then its_free_vcpu_irqs. */
export class VgicV4Teardown extends Frame {
  private i = 0;

  constructor(private readonly vm: KvmVm) {
    super();
  }

  protected step(): Boundary {
    const vm = this.vm;
    const vgic = vm.vgic!;
    const itsVm = vgic.itsVm;
    if (itsVm === null) return this.return_(undefined);
    if (this.pc === 2) {
      vgic.itsVm = null;
      return this.return_(undefined);
    }
    if (this.i === itsVm.vpes.length) {
      this.pc = 2;
      return this.call(itsFreeVcpuIrqs(hostGicV4(vm)!, itsVm));
    }
    const vcpu = vm.vcpus[this.i]!;
    this.pc = 1;
    this.i++;
    return this.call(freeIrq(vm.kvm.hostIrq.genirq, itsVm.vpes[this.i - 1]!.irq, vcpu));
  }
}

/** vgic_v4_load on the calling CPU: VMOVP there (irq_set_affinity), then resident with the guest's Group 1 enable. */
export class VgicV4Load extends Frame<number> {
  constructor(
    private readonly vcpu: KvmVcpu,
    private readonly cpu: number,
  ) {
    super();
  }

  protected step(sent: unknown): Boundary {
    const vcpu = this.vcpu;
    const vpe = vgicV4Vpe(vcpu);
    const v4 = hostGicV4(vcpu.vm);
    switch (this.pc) {
      case 0:
        if (!vgicSupportsDirectMsis(vcpu.vm) || vpe === null || vpe.resident || vcpu.inWfi) return this.return_(0);
        this.pc = 1;
        return this.call(irqSetAffinity(vcpu.vm.kvm.hostIrq.genirq, vpe.irq, 1 << this.cpu));
      case 1:
        if ((sent as number) < 0) return this.return_(sent as number);
        this.pc = 2;
        return this.call(itsMakeVpeResident(v4!, vpe!, false, vcpu.vm.vgic!.enabled));
      default:
        vpe!.resident = true; // its_make_vpe_resident
        return this.return_(0);
    }
  }
}

/** vgic_v4_put: non-resident, asking for the doorbell when the vCPU is in WFI. */
export class VgicV4Put extends Frame<number> {
  constructor(private readonly vcpu: KvmVcpu) {
    super();
  }

  protected step(): Boundary {
    const vcpu = this.vcpu;
    const vpe = vgicV4Vpe(vcpu);
    if (this.pc === 0) {
      if (!vgicSupportsDirectMsis(vcpu.vm) || vpe === null || !vpe.resident) return this.return_(0);
      this.pc = 1;
      return this.call(itsMakeVpeNonResident(hostGicV4(vcpu.vm)!, vpe, vcpu.inWfi));
    }
    // its_make_vpe_non_resident
    vpe!.resident = false;
    vpe!.ready = false;
    return this.return_(0);
  }
}

/** vgic_v4_commit (end of kvm_vgic_flush_hwstate): wait for the VPT parse once per residency. */
export class VgicV4Commit extends Frame {
  constructor(private readonly vcpu: KvmVcpu) {
    super();
  }

  protected step(): Boundary {
    const vpe = vgicV4Vpe(this.vcpu)!;
    if (this.pc === 0) {
      if (vpe.ready) return this.return_(undefined);
      this.pc = 1;
      return this.call(itsCommitVpe(hostGicV4(this.vcpu.vm)!, vpe));
    }
    vpe.ready = true; // its_commit_vpe
    return this.return_(undefined);
  }
}

/** Does the vCPU's load/put path have GICv4 work (vgic_supports_direct_msis with the vPEs allocated)? */
export function vgicV4Active(vcpu: KvmVcpu): boolean {
  return vgicV4Vpe(vcpu) !== null && vgicSupportsDirectMsis(vcpu.vm);
}

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
        if (!irq.pendingLatch) return this.return_(0);
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
