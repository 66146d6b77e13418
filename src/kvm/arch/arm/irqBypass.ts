/**
 * KVM's irqfd as an IRQ bypass consumer (virt/kvm/eventfd.c: kvm_irqfd_assign registers irqfd->consumer with token =
 * the irqfd's eventfd when kvm_arch_has_irq_bypass(), true on arm64; irqfd_shutdown unregisters it) and the arm64
 * callbacks of arch/arm64/kvm/arm.c (Linux 6.1):
 * - stop: kvm_arm_halt_guest, start: kvm_arm_resume_guest;
 * - add_producer: kvm_vgic_v4_set_forwarding(kvm, prod->irq, &irqfd->irq_entry) (vgic/vgicV4.ts): on a GICv4.1
 *   host with a vITS, an irqfd routed to an MSI the guest's vITS maps turns the producer's LPI into a vLPI; anything
 *   else (no GICv4, an SPI route, a doorbell of no vITS) returns 0 with nothing forwarded;
 *   del_producer: kvm_vgic_v4_unset_forwarding with the irqfd's routing entry then.
 * Under the 2015 "KVM-VFIO IRQ forward control" option (a vfio-platform producer exists only there:
 * vfio/platform/vfioPlatformIrqBypass.ts), add_producer forwards the platform SPI as that series intended —
 * kvm_vgic_map_phys_irq with the HW bit — through the model's forwarding switch (forward.ts, steps 3 and 4; the
 * manager's stop/start bracket is steps 1, 2 and 5), and del_producer switches it back. The stored archives hold the
 * series' generic hooks (linux-kernel msg923375: kvm_arch_add_producer/del_producer/stop_consumer/resume_consumer)
 * but not its arm add_producer body, so the forwarding done here is the model's protocol, not a port of it.
 */
import { ERRNO } from '../../../abi/errno.js';
import type { IrqBypassConsumer, IrqBypassProducer } from '../../../host/irqbypass.js';
import { type Boundary, Frame } from '../../../sim/frame.js';
import type { Call } from '../../../sim/task.js';
import type { VfioIrqForward } from '../../../vfio/platform/vfioPlatformIrq.js';
import {
  VfioPlatformIrqProducer,
  vfioPlatformUnregisterProducer,
} from '../../../vfio/platform/vfioPlatformIrqBypass.js';
import type { Irqfd } from '../../irqfd.js';
import { VGIC_NR_PRIVATE_IRQS } from '../../vgic/vgicIrq.js';
import { KvmVgicV4SetForwarding, KvmVgicV4UnsetForwarding } from '../../vgic/vgicV4Forwarding.js';
import { type ArchFwdIrq, ForwardedIrqInject, kvmArchTransferFwd } from './forward.js';

/** irqfd->consumer. */
export class IrqfdConsumer implements IrqBypassConsumer {
  /** The platform SPI forwarded while connected to a 2015-series producer. */
  fwd: IrqfdSpiForward | null = null;

  constructor(readonly irqfd: Irqfd) {}

  get token(): object {
    return this.irqfd.eventfd;
  }

  addProducer(prod: IrqBypassProducer): Frame<number> {
    return new KvmArchIrqBypassAddProducer(this, prod);
  }

  delProducer(prod: IrqBypassProducer): Frame {
    return new KvmArchIrqBypassDelProducer(this, prod);
  }

  /** kvm_arch_irq_bypass_stop. */
  stop(): Frame {
    return this.irqfd.vm.kvmArmHaltGuest();
  }

  /** kvm_arch_irq_bypass_start. */
  start(): undefined {
    this.irqfd.vm.kvmArmResumeGuest();
    return undefined;
  }
}

/**
 * A platform SPI forwarded through the bypass (2015 option): VFIO's handler hands the IRQ to it directly with the
 * physical INTID active, as to a kvm-vfio ASSIGN; it owns the HW-mapped vIRQ, so ASSIGN of the same IRQ fails EEXIST.
 */
export class IrqfdSpiForward implements VfioIrqForward {
  constructor(
    readonly cons: IrqfdConsumer,
    readonly prod: VfioPlatformIrqProducer,
    readonly arch: ArchFwdIrq,
  ) {}

  inject(): Call<void> {
    return new ForwardedIrqInject(this.arch, this.cons.irqfd.gsi, this);
  }

  /** VFIO drops the trigger: its producer goes, which disconnects (and so unforwards) through the manager. */
  unforward(): Frame {
    return vfioPlatformUnregisterProducer(this.arch.platIrq, this.prod);
  }
}

const PRODUCER_CALL = 0;
const PRODUCER_DONE = 1;
/** kvm_vgic_v4_unset_forwarding returned. */
const PRODUCER_UNSET = 2;

/** kvm_arch_irq_bypass_add_producer. */
class KvmArchIrqBypassAddProducer extends Frame<number> {
  constructor(
    private readonly cons: IrqfdConsumer,
    private readonly prod: IrqBypassProducer,
  ) {
    super();
  }

  protected step(sent: unknown): Boundary {
    if (this.pc !== PRODUCER_CALL)
      return this.return_(this.prod instanceof VfioPlatformIrqProducer ? 0 : (sent as number));
    const prod = this.prod;
    const { vm, gsi, irqEntry } = this.cons.irqfd;
    if (!(prod instanceof VfioPlatformIrqProducer)) {
      if (irqEntry === null) return this.return_(0);
      this.pc = PRODUCER_DONE;
      return this.call(new KvmVgicV4SetForwarding(vm, prod.irq, irqEntry));
    }
    const vintid = VGIC_NR_PRIVATE_IRQS + gsi;
    const vgic = vm.vgic;
    if (vgic === null || !vgic.vgicValidSpi(vintid)) return this.return_(-ERRNO.EINVAL);
    const virq = vgic.vgicGetIrq(vintid)!;
    const platIrq = prod.platIrq;
    // as kvm-vfio's ASSIGN: a vIRQ already HW-mapped or owned, or an IRQ already forwarded, is not taken over
    if (virq.hw || virq.owner !== null || platIrq.fwd !== null) return this.return_(-ERRNO.EEXIST);
    const desc = prod.genirq.desc(platIrq.hwirq);
    const f = new IrqfdSpiForward(this.cons, prod, { vm, genirq: prod.genirq, desc, platIrq, vintid });
    platIrq.fwd = f;
    this.cons.fwd = f;
    this.pc = PRODUCER_DONE;
    return this.call(kvmArchTransferFwd(f.arch, true));
  }
}

/** kvm_arch_irq_bypass_del_producer. */
class KvmArchIrqBypassDelProducer extends Frame {
  constructor(
    private readonly cons: IrqfdConsumer,
    private readonly prod: IrqBypassProducer,
  ) {
    super();
  }

  protected step(): Boundary {
    const f = this.cons.fwd;
    if (this.pc === PRODUCER_UNSET) return this.return_(undefined);
    if (this.pc !== PRODUCER_CALL) {
      f!.arch.platIrq.fwd = null;
      this.cons.fwd = null;
      return this.return_(undefined);
    }
    if (!(this.prod instanceof VfioPlatformIrqProducer)) {
      const { vm, irqEntry } = this.cons.irqfd;
      if (irqEntry === null) return this.return_(undefined);
      this.pc = PRODUCER_UNSET;
      return this.call(new KvmVgicV4UnsetForwarding(vm, this.prod.irq, irqEntry));
    }
    // the 2015 option: nothing was forwarded
    if (f === null || f.prod !== this.prod) return this.return_(undefined);
    this.pc = PRODUCER_DONE;
    return this.call(kvmArchTransferFwd(f.arch, false));
  }
}
