/**
 * vfio_set_irqs_validate_and_prepare (drivers/vfio/vfio_main.c): the checks every VFIO bus driver runs on a
 * VFIO_DEVICE_SET_IRQS header before dispatching it — vfio-platform with its IRQ count, vfio-pci with the count of
 * the index named (vfio_pci_get_irq_count). Every failure is EINVAL. Returns the size of the data after the header.
 */
import { errno } from '../abi/errno.js';
import {
  VFIO_IRQ_SET_ACTION_TYPE_MASK,
  VFIO_IRQ_SET_DATA_BOOL,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_IRQ_SET_DATA_NONE,
  VFIO_IRQ_SET_DATA_TYPE_MASK,
  vfioIrqSet,
} from '../abi/vfio.js';

const U32_MAX = 0xffff_ffff;

/** struct vfio_irq_set's header fields. */
export interface VfioIrqSetHdr {
  argsz: number;
  flags: number;
  index: number;
  start: number;
  count: number;
}

export function vfioSetIrqsValidateAndPrepare(hdr: VfioIrqSetHdr, numIrqs: number, maxIrqType: number): number {
  const minsz = vfioIrqSet.minsz;
  if (hdr.argsz < minsz) throw errno('EINVAL', `vfio_irq_set.argsz ${hdr.argsz} < ${minsz}`);
  if (hdr.index >= maxIrqType) throw errno('EINVAL', `vfio_irq_set.index ${hdr.index} >= ${maxIrqType}`);
  if (hdr.count >= U32_MAX - hdr.start) {
    throw errno('EINVAL', `vfio_irq_set.start ${hdr.start} + count ${hdr.count} overflows`);
  }
  if ((hdr.flags & ~(VFIO_IRQ_SET_DATA_TYPE_MASK | VFIO_IRQ_SET_ACTION_TYPE_MASK)) !== 0) {
    throw errno('EINVAL', `vfio_irq_set.flags 0x${hdr.flags.toString(16)} has unknown bits`);
  }
  if (hdr.start >= numIrqs || hdr.start + hdr.count > numIrqs) {
    throw errno('EINVAL', `vfio_irq_set start ${hdr.start} count ${hdr.count} exceed the ${numIrqs} IRQ(s)`);
  }
  let size: number;
  switch (hdr.flags & VFIO_IRQ_SET_DATA_TYPE_MASK) {
    case VFIO_IRQ_SET_DATA_NONE:
      size = 0;
      break;
    case VFIO_IRQ_SET_DATA_BOOL:
      size = 1;
      break;
    case VFIO_IRQ_SET_DATA_EVENTFD:
      size = 4;
      break;
    default:
      throw errno('EINVAL', 'vfio_irq_set.flags must carry exactly one of DATA_NONE, DATA_BOOL, DATA_EVENTFD');
  }
  if (size !== 0 && hdr.argsz - minsz < hdr.count * size) {
    throw errno('EINVAL', `vfio_irq_set.argsz ${hdr.argsz} leaves no room for ${hdr.count} x ${size} data bytes`);
  }
  return hdr.count * size;
}
