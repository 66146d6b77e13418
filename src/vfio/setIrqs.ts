/**
 * VFIO_DEVICE_SET_IRQS as every VFIO bus driver receives it: vfio_set_irqs_validate_and_prepare
 * (drivers/vfio/vfio_main.c) — vfio-platform passes its IRQ count, vfio-pci the count of the index named
 * (vfio_pci_get_irq_count); every failure is EINVAL; it returns the size of the data after the header — and the
 * ioctl frame both drivers share (VfioDeviceIoctl).
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
import type { Kernel } from '../host/kernel.js';
import type { UserMemory } from '../host/uaccess.js';
import { type Boundary, Frame } from '../sim/frame.js';
import { type Mutex, mutexLock } from '../sim/locks.js';
import { type Call, op } from '../sim/task.js';

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

const PI_BEGIN = 0; // the ioctl's step
const PI_CMD = 1; // the command
const PI_IGATE = 2; // mutex_lock(&vdev->igate) returned: the driver's set_irqs
const PI_SET_IRQS = 3; // it returned: mutex_unlock(&vdev->igate)

/**
 * A bus driver's device ioctl (vfio_platform_ioctl, vfio_pci_core_ioctl): one step for the call, the driver's
 * command; VFIO_DEVICE_SET_IRQS validated (vfio_set_irqs_validate_and_prepare against the index's count), its data
 * copied in, then the driver's set_irqs under vdev->igate, which an errno releases.
 */
export abstract class VfioDeviceIoctl extends Frame<number> {
  protected mem: UserMemory | null = null;
  private hdr: VfioIrqSetHdr | null = null;
  private data: Uint8Array | null = null;

  constructor(
    private readonly kernel: Kernel,
    private readonly igate: Mutex,
    private readonly cost: number,
    private readonly oid: number,
    protected readonly cmd: number,
    protected readonly arg: number,
  ) {
    super();
  }

  /** Every command but VFIO_DEVICE_SET_IRQS (which `setIrqsBegin` starts). */
  protected abstract command(): Boundary;
  /** The driver's set_irqs with igate held: what to call, or null for nothing to do. */
  protected abstract setIrqs(hdr: VfioIrqSetHdr, data: Uint8Array): Call<unknown> | null;

  protected step(): Boundary {
    switch (this.pc) {
      case PI_BEGIN:
        this.mem = this.kernel.currentUser().mem;
        this.pc = PI_CMD;
        return this.yield_(op(this.cost, this.oid));
      case PI_CMD:
        return this.command();
      case PI_IGATE: {
        this.pc = PI_SET_IRQS; // igate is held: an errno from here on must release it (unwind)
        const next = this.setIrqs(this.hdr!, this.data!);
        if (next !== null) return this.call(next);
        return this.step();
      }
      default: // PI_SET_IRQS
        this.igate.unlock();
        return this.return_(0);
    }
  }

  /** VFIO_DEVICE_SET_IRQS: validate against `numIrqs` sub-IRQs and `maxIrqType` indexes, copy the data, take igate. */
  protected setIrqsBegin(numIrqs: (index: number) => number, maxIrqType: number): Boundary {
    const mem = this.mem!;
    const hdr = vfioIrqSet.read(mem.view(this.arg, vfioIrqSet.minsz));
    const size = vfioSetIrqsValidateAndPrepare(hdr, numIrqs(hdr.index), maxIrqType);
    this.data = size > 0 ? mem.copyFromUser(this.arg + vfioIrqSet.minsz, size) : new Uint8Array(0);
    this.hdr = hdr;
    this.pc = PI_IGATE;
    return this.call(mutexLock(this.igate));
  }

  protected override unwind(): void {
    if (this.pc === PI_SET_IRQS) this.igate.unlock();
  }
}
