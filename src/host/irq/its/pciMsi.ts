/**
 * The PCI MSI core on an ITS (drivers/pci/msi, Linux 6.1): pci_alloc_irq_vectors for MSI or MSI-X —
 * msi_domain_alloc_irqs: msi_domain_prepare (its_pci_msi_prepare → its_msi_prepare with the function's DeviceID),
 * the domain allocation (one block for multi-MSI, one IRQ per MSI-X entry), every IRQ activated early
 * (MSI_FLAG_ACTIVATE_EARLY: MAPTI and the message written before the function may signal), then the capability's
 * enable bit — and pci_free_irq_vectors: the enable bit cleared (pci_msi_shutdown), every IRQ deactivated (a zeroed
 * message, DISCARD, if request_irq's free has not done it already) and freed (its_irq_domain_free: MAPD V = 0 with
 * the last LPI of the device). pci_irq_vector(k) is `descs[k].irq`.
 */
import type { MsiDevice } from '../../../hw/msiDevice.js';
import { type Boundary, Frame } from '../../../sim/frame.js';
import { op } from '../../../sim/task.js';
import type { IrqDesc } from '../irqDesc.js';
import { irqDomainActivateIrq, irqDomainDeactivateIrq } from '../irqDomainActivate.js';
import type { ItsDevice } from './itsDevice.js';
import { C_PCI_MSI_WRITE, ItsIrqDomainFree, type ItsMsiDomain, ItsMsiPrepare } from './itsMsiDomain.js';

/** The vectors pci_alloc_irq_vectors gave a function: per vector its descriptor, and the domain allocations. */
export interface PciMsiVectors {
  readonly pdev: MsiDevice;
  readonly msix: boolean;
  readonly descs: readonly IrqDesc[];
  readonly allocations: readonly (readonly IrqDesc[])[];
}

const AL_PREPARED = 1; // msi_domain_prepare returned the its_device: allocate
const AL_ACTIVATE = 2; // irq_domain_activate_irq of vector `i`
const AL_ENABLE = 3; // pci_msi_set_enable / pci_msix_clear_and_set_ctrl

class PciAllocIrqVectors extends Frame<PciMsiVectors> {
  private vectors: PciMsiVectors | null = null;
  private i = 0;

  constructor(
    private readonly domain: ItsMsiDomain,
    private readonly pdev: MsiDevice,
    private readonly nvec: number,
    private readonly msix: boolean,
  ) {
    super();
  }

  protected step(sent: unknown): Boundary {
    switch (this.pc) {
      case 0:
        this.pc = AL_PREPARED;
        return this.call(new ItsMsiPrepare(this.domain.host, this.pdev.deviceId, this.nvec));
      case AL_PREPARED: {
        const dev = sent as ItsDevice;
        const allocations = this.msix
          ? Array.from({ length: this.nvec }, (_, k) => this.domain.alloc(dev, this.pdev, k, 1))
          : [this.domain.alloc(dev, this.pdev, 0, this.nvec)];
        this.vectors = { pdev: this.pdev, msix: this.msix, descs: allocations.flat(), allocations };
        this.pc = AL_ACTIVATE;
        return this.step(undefined);
      }
      case AL_ACTIVATE: {
        const desc = this.vectors!.descs[this.i++];
        if (desc !== undefined) return this.call(irqDomainActivateIrq(desc));
        this.pc = AL_ENABLE;
        return this.yield_(op(C_PCI_MSI_WRITE, this.pdev.oid));
      }
      default: // AL_ENABLE
        this.pdev.enabled = true;
        return this.return_(this.vectors!);
    }
  }
}

/** pci_alloc_irq_vectors(pdev, nvec, nvec, PCI_IRQ_MSI or PCI_IRQ_MSIX) on the ITS MSI domain. */
export function pciAllocIrqVectors(
  domain: ItsMsiDomain,
  pdev: MsiDevice,
  nvec: number,
  msix: boolean,
): Frame<PciMsiVectors> {
  return new PciAllocIrqVectors(domain, pdev, nvec, msix);
}

const FV_DISABLED = 1; // the enable bit is clear: deactivate vector `i`
const FV_FREE = 2; // its_irq_domain_free of allocation `i`

class PciFreeIrqVectors extends Frame {
  private i = 0;

  constructor(
    private readonly domain: ItsMsiDomain,
    private readonly vectors: PciMsiVectors,
  ) {
    super();
  }

  protected step(): Boundary {
    const v = this.vectors;
    switch (this.pc) {
      case 0:
        this.pc = FV_DISABLED;
        return this.yield_(op(C_PCI_MSI_WRITE, v.pdev.oid));
      case FV_DISABLED: {
        if (this.i === 0) v.pdev.enabled = false;
        const desc = v.descs[this.i++];
        if (desc !== undefined) return this.call(irqDomainDeactivateIrq(desc));
        this.i = 0;
        this.pc = FV_FREE;
        return this.step();
      }
      default: {
        const alloc = v.allocations[this.i++];
        if (alloc === undefined) return this.return_(undefined);
        return this.call(new ItsIrqDomainFree(this.domain, alloc));
      }
    }
  }
}

/** pci_free_irq_vectors. */
export function pciFreeIrqVectors(domain: ItsMsiDomain, vectors: PciMsiVectors): Frame {
  return new PciFreeIrqVectors(domain, vectors);
}
