/**
 * The ITS MSI irq domain (irq-gic-v3-its.c, Linux 6.1, with the generic MSI domain above it, kernel/irq/msi.c):
 * - its_msi_prepare: under its->dev_alloc_lock, find the DeviceID's its_device (another alias: shared) or create it —
 *   its_create_device: an ITT of max(2, nvecs) entries (ITS_ITT_ALIGN), a block of LPIs (its_lpi_alloc), MAPD;
 * - its_irq_domain_alloc: a naturally aligned region of the device's LPI block (its_alloc_device_irq, -ENOSPC), one
 *   descriptor per IRQ whose hwirq is the LPI, with the fasteoi flow of the parent GIC domain;
 * - activate (its_irq_domain_activate, then msi_domain_activate): the least-loaded CPU (its_select_cpu), MAPTI on its
 *   collection, then the composed message (GITS_TRANSLATER, EventID) written into the function's vector;
 * - deactivate (msi_domain_deactivate, then its_irq_domain_deactivate): the vector's message cleared, DISCARD;
 * - free (its_irq_domain_free): the region released; when the device has no LPI left and is not shared, its LPIs
 *   freed, MAPD with V = 0 and the ITT freed (its_free_device).
 */
import { errno } from '../../../abi/errno.js';
import { GITS_TRANSLATER } from '../../../hw/gicv3/its.js';
import type { MsiDevice } from '../../../hw/msiDevice.js';
import { defineCost } from '../../../sim/costs.js';
import { type Boundary, Frame } from '../../../sim/frame.js';
import { mutexLock } from '../../../sim/locks.js';
import { op } from '../../../sim/task.js';
import type { Genirq } from '../genirq.js';
import type { IrqDesc, IrqDomainActivation } from '../irqDesc.js';
import { itsSendDiscard, itsSendMapd, itsSendMapti } from './itsCommands.js';
import { ItsDevice } from './itsDevice.js';
import type { HostIts } from './itsInit.js';
import { ItsMsiIrqChip, itsGetEventId, itsIrqData, pickLeastLoaded } from './itsIrqChip.js';

export const C_PCI_MSI_WRITE = defineCost(
  'pci_msi_write_msg',
  300,
  'pci_write_msi_msg: address and data into the MSI capability or MSI-X table entry (config/MMIO writes); estimate',
);

/** ITS_ITT_ALIGN, and GITS_TYPER.ITT_entry_size + 1 of the model's ITS. */
const ITS_ITT_ALIGN = 256;
const ITE_SIZE = 8;

const roundupPowOfTwo = (n: number): number => 2 ** Math.ceil(Math.log2(Math.max(n, 1)));

export class ItsMsiDomain implements IrqDomainActivation {
  readonly chip: ItsMsiIrqChip;

  constructor(
    readonly host: HostIts,
    readonly genirq: Genirq,
  ) {
    this.chip = new ItsMsiIrqChip(host);
  }

  /** its_irq_domain_alloc for `nr` vectors of `pdev` from `first` on: their descriptors. */
  alloc(dev: ItsDevice, pdev: MsiDevice, first: number, nr: number): IrqDesc[] {
    const order = Math.ceil(Math.log2(nr));
    const span = 2 ** order;
    let idx = -1;
    for (let i = 0; i + span <= dev.nrLpis && idx < 0; i += span) {
      if (dev.lpiMap.subarray(i, i + span).every((b) => b === 0)) idx = i;
    }
    if (idx < 0)
      throw errno('ENOSPC', `its_alloc_device_irq: no free region of ${span} LPI(s) on DeviceID ${dev.deviceId}`);
    dev.lpiMap.fill(1, idx, idx + span);
    const descs: IrqDesc[] = [];
    for (let i = 0; i < nr; i++) {
      const desc = this.genirq.allocHierarchyDesc(dev.lpiBase + idx + i, 'edge', this.chip);
      desc.chipData = { dev, pdev, vector: first + i };
      desc.domainOps = this;
      descs.push(desc);
    }
    return descs;
  }

  activate(desc: IrqDesc): Frame {
    return new ItsIrqDomainActivate(this.host, desc);
  }

  deactivate(desc: IrqDesc): Frame {
    return new ItsIrqDomainDeactivate(this.host, desc);
  }
}

const PR_LOCKED = 1; // mutex_lock(&its->dev_alloc_lock) returned
const PR_MAPPED = 2; // its_send_mapd returned: unlock

/** its_msi_prepare → its_find_device / its_create_device. */
export class ItsMsiPrepare extends Frame<ItsDevice> {
  private dev: ItsDevice | null = null;

  constructor(
    private readonly host: HostIts,
    private readonly devId: number,
    private readonly nvec: number,
  ) {
    super();
  }

  protected step(): Boundary {
    const its = this.host.its;
    switch (this.pc) {
      case 0:
        this.pc = PR_LOCKED;
        return this.call(mutexLock(its.devAllocLock));
      case PR_LOCKED: {
        const found = its.findDevice(this.devId);
        if (found !== undefined) {
          found.shared = true; // "We already have seen this ID, probably through another alias"
          its.devAllocLock.unlock();
          return this.return_(found);
        }
        this.dev = this.create();
        this.pc = PR_MAPPED;
        return this.call(itsSendMapd(this.dev, true));
      }
      default:
        its.devAllocLock.unlock();
        return this.return_(this.dev!);
    }
  }

  /** its_create_device; its_msi_prepare turns any failure into -ENOMEM. */
  private create(): ItsDevice {
    const { its, pages, lpiRanges } = this.host;
    if (this.devId >= 2 ** its.hw.deviceBits) {
      throw errno('ENOMEM', `its_create_device: DeviceID ${this.devId} exceeds the ITS's ${its.hw.deviceBits} bits`);
    }
    const nvecs = roundupPowOfTwo(this.nvec);
    const nrItes = Math.max(2, nvecs);
    const lpis = lpiRanges.alloc(nvecs);
    if (lpis === null) throw errno('ENOMEM', `its_create_device: no LPI left for DeviceID ${this.devId}`);
    const itt = pages.alloc(Math.max(nrItes * ITE_SIZE, ITS_ITT_ALIGN), ITS_ITT_ALIGN);
    const dev = new ItsDevice(its, this.devId, itt, nrItes, lpis.base, lpis.nr);
    its.devices.push(dev);
    return dev;
  }

  protected override unwind(): void {
    if (this.pc === PR_LOCKED || this.pc === PR_MAPPED) this.host.its.devAllocLock.unlock();
  }
}

const AC_MAPTI = 1; // its_send_mapti returned: msi_domain_activate writes the message
const AC_WRITTEN = 2;

/** __irq_domain_activate_irq: the ITS level (its_irq_domain_activate), then the MSI level (msi_domain_activate). */
class ItsIrqDomainActivate extends Frame {
  constructor(
    private readonly host: HostIts,
    private readonly desc: IrqDesc,
  ) {
    super();
  }

  protected step(): Boundary {
    const data = itsIrqData(this.desc);
    const ev = itsGetEventId(this.desc);
    switch (this.pc) {
      case 0: {
        const count = this.host.cpuLpiCount;
        const cpu = pickLeastLoaded(count, (1 << count.length) - 1);
        count[cpu]!++;
        data.dev.colMap[ev] = cpu;
        this.pc = AC_MAPTI;
        return this.call(itsSendMapti(data.dev, this.desc.hwirq, ev));
      }
      case AC_MAPTI:
        this.pc = AC_WRITTEN;
        return this.yield_(op(C_PCI_MSI_WRITE, data.pdev.oid));
      default:
        // its_irq_compose_msi_msg: GITS_TRANSLATER's physical address, the EventID as data
        data.pdev.writeMsg(data.vector, this.host.its.physBase + GITS_TRANSLATER, ev);
        return this.return_(undefined);
    }
  }
}

const DE_WRITTEN = 1; // msi_domain_deactivate wrote the zeroed message: its_irq_domain_deactivate
const DE_DONE = 2;

/** __irq_domain_deactivate_irq: the MSI level (a zeroed message), then the ITS level (DISCARD). */
class ItsIrqDomainDeactivate extends Frame {
  constructor(
    private readonly host: HostIts,
    private readonly desc: IrqDesc,
  ) {
    super();
  }

  protected step(): Boundary {
    const data = itsIrqData(this.desc);
    const ev = itsGetEventId(this.desc);
    switch (this.pc) {
      case 0:
        this.pc = DE_WRITTEN;
        return this.yield_(op(C_PCI_MSI_WRITE, data.pdev.oid));
      case DE_WRITTEN:
        data.pdev.writeMsg(data.vector, 0, 0);
        this.host.cpuLpiCount[data.dev.colMap[ev]!]!--;
        this.pc = DE_DONE;
        return this.call(itsSendDiscard(data.dev, ev)); // "Stop the delivery of interrupts"
      default:
        return this.return_(undefined);
    }
  }
}

const FR_LOCKED = 1; // mutex_lock(&its->dev_alloc_lock) returned
const FR_UNMAPPED = 2; // its_send_mapd(its_dev, 0) returned: its_free_device, unlock

/** its_irq_domain_free of one allocation (`descs`, one region of the device's LPI block). */
export class ItsIrqDomainFree extends Frame {
  private dev: ItsDevice | null = null;

  constructor(
    private readonly domain: ItsMsiDomain,
    private readonly descs: readonly IrqDesc[],
  ) {
    super();
  }

  protected step(): Boundary {
    const its = this.domain.host.its;
    switch (this.pc) {
      case 0: {
        const dev = itsIrqData(this.descs[0]!).dev;
        this.dev = dev;
        const idx = itsGetEventId(this.descs[0]!);
        dev.lpiMap.fill(0, idx, idx + 2 ** Math.ceil(Math.log2(this.descs.length))); // bitmap_release_region
        for (const d of this.descs) this.domain.genirq.domain.remove(d); // irq_domain_reset_irq_data
        this.pc = FR_LOCKED;
        return this.call(mutexLock(its.devAllocLock));
      }
      case FR_LOCKED: {
        const dev = this.dev!;
        if (dev.shared || !dev.lpiMapEmpty) {
          its.devAllocLock.unlock();
          return this.return_(undefined);
        }
        this.domain.host.lpiRanges.free(dev.lpiBase, dev.nrLpis); // its_lpi_free
        this.pc = FR_UNMAPPED;
        return this.call(itsSendMapd(dev, false));
      }
      default: {
        const dev = this.dev!;
        its.devices.splice(its.devices.indexOf(dev), 1); // its_free_device
        this.domain.host.pages.free(dev.itt);
        its.devAllocLock.unlock();
        return this.return_(undefined);
      }
    }
  }

  protected override unwind(): void {
    if (this.pc === FR_LOCKED || this.pc === FR_UNMAPPED) this.domain.host.its.devAllocLock.unlock();
  }
}
