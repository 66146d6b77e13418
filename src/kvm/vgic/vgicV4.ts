/**
 * KVM's GICv4.1 glue (arch/arm64/kvm/vgic/vgic-v4.c, Linux 6.1) over the host's GICv4 API (host/irq/irqGicV4.ts):
 * - vgic_v4_init: the VM's its_vm (one its_vpe per vCPU), its_alloc_vcpu_irqs, and request_irq of each vPE's
 *   doorbell with vgic_v4_doorbell_handler (left enabled: a GICv4.1 doorbell is managed by the hardware);
 *   vgic_v4_teardown: free_irq of each doorbell, then its_free_vcpu_irqs;
 * - vgic_v4_load / vgic_v4_put / vgic_v4_commit on the vCPU's load, put and entry path (vcpuRun.ts), a vCPU in WFI
 *   descheduled with a doorbell and not made resident again until it leaves WFI;
 * - kvm_vgic_v4_set_forwarding / unset_forwarding: vgicV4Forwarding.ts.
 * vgic_supports_direct_msis = the host has GICv4(.1) and the VM a vITS. vSGIs (vgic_v4_configure_vsgis) are not
 * modelled.
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
} from '../../host/irq/irqGicV4.js';
import type { HostGicV4, ItsVpe } from '../../host/irq/its/itsVpe.js';
import { ItsVm } from '../../host/irq/its/itsVpe.js';
import { freeIrq, requestIrq } from '../../host/irq/manage.js';
import { type Boundary, Frame } from '../../sim/frame.js';
import { spinLock } from '../../sim/locks.js';
import { markShared } from '../../sim/snapshot.js';
import type { KvmVcpu } from '../vcpu.js';
import type { KvmVm } from '../vm.js';
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
    this.vcpu.vm.kvm.trace?.vgicV4Doorbell?.(this.vcpu, vpe.irq);
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
