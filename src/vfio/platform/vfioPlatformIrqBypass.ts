/**
 * An IRQ bypass producer per vfio-platform trigger — NOT Linux 6.1: upstream vfio-platform registers no producer
 * (only vfio-pci's MSI vectors do, vfio_msi_set_vector_signal). This is what Eric Auger's 2015 "KVM-VFIO IRQ forward
 * control" series proposed for platform IRQs, modelled only under the 'bypass' forwarding variants
 * (VfioPlatformDevice.irqBypassProducers). What the stored archives show of the series:
 * - kvm@vger.kernel.org msg117254 (vfio_platform_irq.c): a producer is registered with the trigger, "stop/resume
 *   producer simply consist in disabling/enabling the host irq", add/del consumer switch the automasked flag off/on;
 * - msg118718 (v3): "v2 -> v3: rename vfio_platform_irq_bypass_resume into *_start" (callbacks still empty there);
 * - the 2017 DEOI follow-up (vfio_platform_irq_bypass.c, kvmarm msg12143): token = the trigger eventfd ctx, irq = the
 *   host Linux IRQ, stop = disable_irq, start = enable_irq.
 * The model's producer has stop/start only: the automask switch of add/del_consumer is VfioPlatformIrq.forwarded,
 * which the arch switch sets (kvm/arch/arm/forward.ts kvmArchSwitchFwd), so a separate callback would do nothing.
 * The series' exact registration point is not in the stored text; the model registers after request_irq and
 * unregisters before free_irq, as vfio-pci's vfio_msi_set_vector_signal does.
 */
import type { EventfdCtx } from '../../host/eventfd.js';
import type { Genirq } from '../../host/irq/genirq.js';
import { disableIrqNosync, enableIrq, synchronizeHardirq } from '../../host/irq/manage.js';
import {
  type IrqBypassProducer,
  irqBypassRegisterProducer,
  irqBypassUnregisterProducer,
} from '../../host/irqbypass.js';
import { type Boundary, Frame } from '../../sim/frame.js';
import type { VfioPlatformIrq } from './vfioPlatformIrq.js';

/** irq->producer of the 2015 series. */
export class VfioPlatformIrqProducer implements IrqBypassProducer {
  constructor(
    readonly platIrq: VfioPlatformIrq,
    readonly genirq: Genirq,
    readonly token: EventfdCtx,
  ) {}

  get irq(): number {
    return this.platIrq.hwirq;
  }

  /** disable_irq (2015's synchronize_irq had no irqchip check: a guest holding the INTID active must not stall it). */
  stop(): Frame {
    return new VfioPlatformIrqBypassStop(this.genirq, this.platIrq.hwirq);
  }

  start(): Frame {
    return enableIrq(this.genirq, this.platIrq.hwirq);
  }
}

const STOP_DISABLE = 0;
const STOP_SYNC = 1;
const STOP_RETURN = 2;

class VfioPlatformIrqBypassStop extends Frame {
  constructor(
    private readonly g: Genirq,
    private readonly irq: number,
  ) {
    super();
  }

  protected step(): Boundary {
    switch (this.pc) {
      case STOP_DISABLE:
        this.pc = STOP_SYNC;
        return this.call(disableIrqNosync(this.g, this.irq));
      case STOP_SYNC:
        this.pc = STOP_RETURN;
        return this.call(synchronizeHardirq(this.g.desc(this.irq), false));
      default:
        return this.return_(undefined);
    }
  }
}

const REG_CALL = 0;
const REG_DONE = 1;

/**
 * Register a producer for `irq`'s new trigger (connecting it to a KVM irqfd on the same eventfd, if any). A failure
 * is only logged by the kernel ("irq bypass producer (token %p) registration fails"); the IRQ keeps its eventfd path.
 */
class VfioPlatformRegisterProducer extends Frame {
  constructor(
    private readonly irq: VfioPlatformIrq,
    private readonly prod: VfioPlatformIrqProducer,
  ) {
    super();
  }

  protected step(sent: unknown): Boundary {
    if (this.pc === REG_CALL) {
      this.irq.producer = this.prod;
      this.pc = REG_DONE;
      return this.call(irqBypassRegisterProducer(this.irq.kernel.irqBypass, this.prod));
    }
    if (sent !== 0) this.irq.producer = null;
    return this.return_(undefined);
  }
}

export function vfioPlatformRegisterProducer(irq: VfioPlatformIrq, g: Genirq, trigger: EventfdCtx): Frame {
  return new VfioPlatformRegisterProducer(irq, new VfioPlatformIrqProducer(irq, g, trigger));
}

/** Unregister `irq`'s producer (disconnecting it from its consumer first); before its trigger is released. */
class VfioPlatformUnregisterProducer extends Frame {
  constructor(
    private readonly irq: VfioPlatformIrq,
    private readonly prod: VfioPlatformIrqProducer,
  ) {
    super();
  }

  protected step(): Boundary {
    if (this.pc === REG_CALL) {
      this.pc = REG_DONE;
      return this.call(irqBypassUnregisterProducer(this.irq.kernel.irqBypass, this.prod));
    }
    if (this.irq.producer === this.prod) this.irq.producer = null;
    return this.return_(undefined);
  }
}

export function vfioPlatformUnregisterProducer(irq: VfioPlatformIrq, prod: VfioPlatformIrqProducer): Frame {
  return new VfioPlatformUnregisterProducer(irq, prod);
}
