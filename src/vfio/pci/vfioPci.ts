/**
 * The IRQ side of vfio-pci (drivers/vfio/pci/vfio_pci_core.c, Linux 6.1) for an MSI-capable function behind a
 * GICv3 ITS: VFIO_DEVICE_GET_INFO (VFIO_DEVICE_FLAGS_PCI, VFIO_PCI_NUM_REGIONS, VFIO_PCI_NUM_IRQS),
 * VFIO_DEVICE_GET_IRQ_INFO (vfio_pci_get_irq_count: no INTx pin → 0, MSI and MSI-X → the function's vectors, REQ →
 * 1; a conventional PCI function has no ERR index: EINVAL; INTx is MASKABLE|AUTOMASKED, the others NORESIZE),
 * VFIO_DEVICE_SET_IRQS (vfio_set_irqs_validate_and_prepare against the index's count, then under vdev->igate
 * vfio_pci_set_irqs_ioctl: MSI/MSI-X TRIGGER (vfioPciIntrs.ts), REQ TRIGGER (vfioPciReq.ts), anything else
 * ENOTTY), VFIO_DEVICE_RESET (reset_works is false: EINVAL), and close (vfio_pci_core_disable turns the enabled
 * index off; the REQ eventfd is dropped). Not modelled: config space, BARs and regions (GET_REGION_INFO is ENOTTY
 * here, see docs/ABI.md), INTx, DMA.
 */
import { errno } from '../../abi/errno.js';
import {
  VFIO_DEVICE_FLAGS_PCI,
  VFIO_DEVICE_GET_INFO,
  VFIO_DEVICE_GET_IRQ_INFO,
  VFIO_DEVICE_RESET,
  VFIO_DEVICE_SET_IRQS,
  VFIO_IRQ_INFO_AUTOMASKED,
  VFIO_IRQ_INFO_EVENTFD,
  VFIO_IRQ_INFO_MASKABLE,
  VFIO_IRQ_INFO_NORESIZE,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_ACTION_TYPE_MASK,
  VFIO_PCI_ERR_IRQ_INDEX,
  VFIO_PCI_INTX_IRQ_INDEX,
  VFIO_PCI_MSI_IRQ_INDEX,
  VFIO_PCI_MSIX_IRQ_INDEX,
  VFIO_PCI_NUM_IRQS,
  VFIO_PCI_NUM_REGIONS,
  VFIO_PCI_REQ_IRQ_INDEX,
  vfioDeviceInfo,
  vfioIrqInfo,
} from '../../abi/vfio.js';
import type { EventfdCtx } from '../../host/eventfd.js';
import type { Genirq } from '../../host/irq/genirq.js';
import type { ItsMsiDomain } from '../../host/irq/its/itsMsiDomain.js';
import type { PciMsiVectors } from '../../host/irq/its/pciMsi.js';
import type { Kernel } from '../../host/kernel.js';
import type { MsiDevice } from '../../hw/msiDevice.js';
import { defineCost } from '../../sim/costs.js';
import { type Boundary, Frame } from '../../sim/frame.js';
import { Mutex, mutexLock } from '../../sim/locks.js';
import { markShared } from '../../sim/snapshot.js';
import type { Call } from '../../sim/task.js';
import type { VfioDevice, VfioDeviceOps } from '../device.js';
import { VfioDeviceIoctl, type VfioIrqSetHdr } from '../setIrqs.js';
import { type VfioPciIrqCtx, vfioMsiDisable, vfioPciSetMsiTrigger } from './vfioPciIntrs.js';
import { vfioPciSetReqTrigger } from './vfioPciReq.js';

export const C_VFIO_PCI_IOCTL = defineCost(
  'vfio_pci_ioctl',
  200,
  'vfio_pci_core_ioctl: copy_from_user of the header, validation, copy_to_user; estimate (as vfio_platform_ioctl)',
);

/** struct vfio_pci_core_device, reduced to its interrupt state. */
export class VfioPciDevice {
  /** vdev->irq_type: the enabled index (MSI or MSI-X), or null for VFIO_PCI_NUM_IRQS (none). */
  irqType: number | null = null;
  /** vdev->ctx (num_ctx = length) and the vectors pci_alloc_irq_vectors gave. */
  ctx: VfioPciIrqCtx[] = [];
  vectors: PciMsiVectors | null = null;
  reqTrigger: EventfdCtx | null = null;
  readonly igate: Mutex;

  constructor(
    readonly kernel: Kernel,
    readonly genirq: Genirq,
    readonly msiDomain: ItsMsiDomain,
    readonly pdev: MsiDevice,
  ) {
    this.igate = new Mutex(kernel.engine, 'vfio_pci_core_device.igate');
  }

  get name(): string {
    return this.pdev.name;
  }

  /** vfio_pci_get_irq_count. */
  irqCount(index: number): number {
    switch (index) {
      case VFIO_PCI_MSI_IRQ_INDEX: // 1 << Multiple Message Capable
      case VFIO_PCI_MSIX_IRQ_INDEX: // Table Size + 1
        return this.pdev.nrVectors;
      case VFIO_PCI_REQ_IRQ_INDEX:
        return 1;
      default: // INTx: no interrupt pin; ERR: not a PCIe function
        return 0;
    }
  }
}

function vdevOf(dev: VfioDevice): VfioPciDevice {
  return dev.driverData as VfioPciDevice;
}

/** vfio_pci_set_irqs_ioctl: the index's handler for the action, or ENOTTY. */
function vfioPciSetIrqsIoctl(vdev: VfioPciDevice, hdr: VfioIrqSetHdr, data: Uint8Array): Call<void> | null {
  const { flags, index, start, count } = hdr;
  const trigger = (flags & VFIO_IRQ_SET_ACTION_TYPE_MASK) === VFIO_IRQ_SET_ACTION_TRIGGER;
  if (trigger && (index === VFIO_PCI_MSI_IRQ_INDEX || index === VFIO_PCI_MSIX_IRQ_INDEX)) {
    return vfioPciSetMsiTrigger(vdev, index, start, count, flags, data);
  }
  if (trigger && index === VFIO_PCI_REQ_IRQ_INDEX) return vfioPciSetReqTrigger(vdev, start, count, flags, data);
  // MSI/MSI-X MASK and UNMASK have no handler in vfio_pci_set_irqs_ioctl (the kernel does not export MSI masking to
  // VFIO); INTx and ERR are not modelled
  throw errno('ENOTTY', `VFIO_DEVICE_SET_IRQS: no handler for index ${index} flags 0x${flags.toString(16)}`);
}

/** vfio_pci_core_ioctl for the commands the model has. */
class VfioPciIoctl extends VfioDeviceIoctl {
  constructor(
    private readonly vdev: VfioPciDevice,
    dev: VfioDevice,
    cmd: number,
    arg: number,
  ) {
    super(vdev.kernel, vdev.igate, C_VFIO_PCI_IOCTL, dev.oid, cmd, arg);
  }

  protected setIrqs(hdr: VfioIrqSetHdr, data: Uint8Array): Call<void> | null {
    return vfioPciSetIrqsIoctl(this.vdev, hdr, data);
  }

  protected command(): Boundary {
    const { vdev, arg } = this;
    const mem = this.mem!;
    switch (this.cmd) {
      case VFIO_DEVICE_GET_INFO: {
        const info = vfioDeviceInfo.read(mem.view(arg, vfioDeviceInfo.minsz));
        if (info.argsz < vfioDeviceInfo.minsz) throw errno('EINVAL', `vfio_device_info.argsz ${info.argsz} < 16`);
        vfioDeviceInfo.write(mem.view(arg, vfioDeviceInfo.minsz), {
          argsz: info.argsz,
          flags: VFIO_DEVICE_FLAGS_PCI, // reset_works is false: no VFIO_DEVICE_FLAGS_RESET
          num_regions: VFIO_PCI_NUM_REGIONS,
          num_irqs: VFIO_PCI_NUM_IRQS,
          cap_offset: 0,
        });
        return this.return_(0);
      }
      case VFIO_DEVICE_GET_IRQ_INFO: {
        const info = vfioIrqInfo.read(mem.view(arg, vfioIrqInfo.minsz));
        if (info.argsz < vfioIrqInfo.minsz || info.index >= VFIO_PCI_NUM_IRQS) {
          throw errno('EINVAL', `vfio_irq_info argsz ${info.argsz} index ${info.index} (${VFIO_PCI_NUM_IRQS} indexes)`);
        }
        if (info.index === VFIO_PCI_ERR_IRQ_INDEX) throw errno('EINVAL', 'no ERR index: not a PCI Express function');
        const intx = info.index === VFIO_PCI_INTX_IRQ_INDEX;
        vfioIrqInfo.write(mem.view(arg, vfioIrqInfo.minsz), {
          argsz: info.argsz,
          flags:
            VFIO_IRQ_INFO_EVENTFD | (intx ? VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED : VFIO_IRQ_INFO_NORESIZE),
          index: info.index,
          count: vdev.irqCount(info.index),
        });
        return this.return_(0);
      }
      case VFIO_DEVICE_SET_IRQS:
        return this.setIrqsBegin((index) => vdev.irqCount(index), VFIO_PCI_NUM_IRQS);
      case VFIO_DEVICE_RESET:
        throw errno('EINVAL', `${vdev.name}: no reset method (reset_works is false)`);
      default:
        throw errno('ENOTTY', `VFIO device ioctl 0x${(this.cmd >>> 0).toString(16)} is not modelled for vfio-pci`);
    }
  }
}

/** vfio_pci_core_close_device: vfio_pci_core_disable turns the enabled index off, then the REQ eventfd goes. */
class VfioPciCloseDevice extends Frame {
  constructor(private readonly vdev: VfioPciDevice) {
    super();
  }

  protected step(): Boundary {
    const vdev = this.vdev;
    switch (this.pc) {
      case 0:
        this.pc = 1;
        // vfio_pci_set_irqs_ioctl(DATA_NONE | ACTION_TRIGGER, irq_type, 0, 0): without an index, ENOTTY (ignored)
        if (vdev.irqType !== null) return this.call(vfioMsiDisable(vdev));
        return this.step();
      case 1:
        this.pc = 2;
        return this.call(mutexLock(vdev.igate));
      default:
        if (vdev.reqTrigger !== null) {
          vdev.reqTrigger.put();
          vdev.reqTrigger = null;
        }
        vdev.igate.unlock();
        return this.return_(undefined);
    }
  }
}

/** vfio_pci_core_open_device → vfio_pci_core_enable: nothing of the interrupt state survives a close. */
class VfioPciOpenDevice extends Frame {
  constructor(private readonly vdev: VfioPciDevice) {
    super();
  }

  protected step(): Boundary {
    this.vdev.irqType = null;
    return this.return_(undefined);
  }
}

export const vfioPciOps: VfioDeviceOps = markShared({
  name: 'vfio-pci',
  openDevice(dev) {
    return new VfioPciOpenDevice(vdevOf(dev));
  },
  closeDevice(dev) {
    return new VfioPciCloseDevice(vdevOf(dev));
  },
  ioctl(dev, cmd, arg) {
    return new VfioPciIoctl(vdevOf(dev), dev, cmd, arg);
  },
});
