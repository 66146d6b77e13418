/**
 * kernel/irq/irqdomain.c irq_domain_activate_irq / irq_domain_deactivate_irq: run the allocating domain's activate
 * (deactivate) callback once, tracked by IRQD_ACTIVATED, so that activating an active IRQ (request_irq of an MSI
 * the PCI layer activated early) or deactivating an inactive one does nothing.
 */
import { type Boundary, Frame } from '../../sim/frame.js';
import type { IrqDesc } from './irqDesc.js';

class IrqDomainSetActive extends Frame {
  constructor(
    private readonly desc: IrqDesc,
    private readonly on: boolean,
  ) {
    super();
  }

  protected step(): Boundary {
    const desc = this.desc;
    const ops = desc.domainOps;
    if (this.pc === 1) {
      desc.activated = this.on; // irqd_set_activated / irqd_clr_activated once the callback returned
      return this.return_(undefined);
    }
    if (ops === null || desc.activated === this.on) return this.return_(undefined);
    this.pc = 1;
    return this.call(this.on ? ops.activate(desc) : ops.deactivate(desc));
  }
}

export function irqDomainActivateIrq(desc: IrqDesc): Frame {
  return new IrqDomainSetActive(desc, true);
}

export function irqDomainDeactivateIrq(desc: IrqDesc): Frame {
  return new IrqDomainSetActive(desc, false);
}
