/**
 * drivers/vfio/platform/vfio_platform_common.c: the vfio-platform device driver — device, region and IRQ info,
 * SET_IRQS (validated by vfio_set_irqs_validate_and_prepare of drivers/vfio/vfio_main.c, then dispatched under
 * vdev->igate), reset, and open/close (IRQ state is built on the first open and torn down on the last close).
 */
import { errno } from '../../abi/errno.js';
import {
  VFIO_DEVICE_FLAGS_PLATFORM,
  VFIO_DEVICE_FLAGS_RESET,
  VFIO_DEVICE_GET_INFO,
  VFIO_DEVICE_GET_IRQ_INFO,
  VFIO_DEVICE_GET_REGION_INFO,
  VFIO_DEVICE_RESET,
  VFIO_DEVICE_SET_IRQS,
  VFIO_REGION_INFO_FLAG_MMAP,
  VFIO_REGION_INFO_FLAG_READ,
  VFIO_REGION_INFO_FLAG_WRITE,
  vfioDeviceInfo,
  vfioIrqInfo,
  vfioRegionInfo,
} from '../../abi/vfio.js';
import type { Genirq } from '../../host/irq/genirq.js';
import type { Kernel } from '../../host/kernel.js';
import { PDEV_MMIO_SIZE, type PlatformDevice } from '../../hw/platformDevice.js';
import { defineCost } from '../../sim/costs.js';
import { type Boundary, Frame } from '../../sim/frame.js';
import { Mutex, mutexLock } from '../../sim/locks.js';
import { markImmutable, markShared } from '../../sim/snapshot.js';
import type { VfioDevice, VfioDeviceOps } from '../device.js';
import { VfioDeviceIoctl, type VfioIrqSetHdr } from '../setIrqs.js';
import type { VirqfdCore } from '../virqfd.js';
import {
  VfioPlatformIrq,
  type VfioPlatformIrqHost,
  vfioPlatformIrqCleanup,
  vfioPlatformSetIrqs,
} from './vfioPlatformIrq.js';

export const C_VFIO_PLATFORM_IOCTL = defineCost(
  'vfio_platform_ioctl',
  200,
  'vfio_platform_ioctl: copy_from_user of the header, validation, copy_to_user; estimate',
);

/** VFIO_PLATFORM_OFFSET_SHIFT: a region's offset in the device fd is its index << 40. */
const VFIO_PLATFORM_OFFSET_SHIFT = 40n;

/** One interrupt line of the platform device as probe found it: the Linux IRQ number and its trigger. */
export interface VfioPlatformIrqRes {
  readonly hwirq: number;
  readonly level: boolean;
}

/** struct vfio_platform_device. */
export class VfioPlatformDevice implements VfioPlatformIrqHost {
  irqs: VfioPlatformIrq[] = [];
  /** vdev->igate: serialises SET_IRQS and IRQ init/cleanup. */
  readonly igate: Mutex;
  resets = 0;
  /** Register an IRQ bypass producer per trigger: the 2015 series' option (HostOptions.forwarding 'bypass*'). */
  irqBypassProducers = false;

  constructor(
    readonly kernel: Kernel,
    readonly genirq: Genirq,
    readonly virqfd: VirqfdCore,
    readonly pdev: PlatformDevice,
    /**
     * The device's IRQ resources (platform_get_irq's answers), fixed once it is probed: immutable, so copies of a state
     * share them and the checker's state key hashes them once.
     */
    readonly irqRes: readonly VfioPlatformIrqRes[],
    /** The device has a reset handler (VFIO_DEVICE_FLAGS_RESET). */
    readonly hasReset = true,
  ) {
    markImmutable(irqRes);
    this.igate = new Mutex(kernel.engine, 'vfio_platform_device.igate');
  }

  get name(): string {
    return this.pdev.name;
  }

  get numIrqs(): number {
    return this.irqRes.length;
  }

  /** vfio_platform_irq_init: one index per IRQ resource; level ones are MASKABLE|AUTOMASKED. */
  irqInit(): void {
    this.irqs = this.irqRes.map((r, i) => new VfioPlatformIrq(this.kernel, this.genirq, i, r.hwirq, r.level));
  }
}

function vdevOf(dev: VfioDevice): VfioPlatformDevice {
  return dev.driverData as VfioPlatformDevice;
}

/** vfio_platform_ioctl: the device info queries, and VFIO_DEVICE_SET_IRQS under vdev->igate. */
class VfioPlatformIoctl extends VfioDeviceIoctl {
  constructor(
    private readonly vdev: VfioPlatformDevice,
    dev: VfioDevice,
    cmd: number,
    arg: number,
  ) {
    super(vdev.kernel, vdev.igate, C_VFIO_PLATFORM_IOCTL, dev.oid, cmd, arg);
  }

  protected setIrqs(hdr: VfioIrqSetHdr, data: Uint8Array): Frame {
    return vfioPlatformSetIrqs(this.vdev, hdr.flags, hdr.index, hdr.start, hdr.count, data);
  }

  protected command(): Boundary {
    const vdev = this.vdev;
    const cmd = this.cmd;
    const arg = this.arg;
    const mem = this.mem!;
    switch (cmd) {
      case VFIO_DEVICE_GET_INFO: {
        const info = vfioDeviceInfo.read(mem.view(arg, vfioDeviceInfo.minsz));
        if (info.argsz < vfioDeviceInfo.minsz) throw errno('EINVAL', `vfio_device_info.argsz ${info.argsz} < 16`);
        vfioDeviceInfo.write(mem.view(arg, vfioDeviceInfo.minsz), {
          argsz: info.argsz,
          flags: VFIO_DEVICE_FLAGS_PLATFORM | (vdev.hasReset ? VFIO_DEVICE_FLAGS_RESET : 0),
          num_regions: 1,
          num_irqs: vdev.numIrqs,
          cap_offset: 0, // past minsz: not copied back
        });
        return this.return_(0);
      }
      case VFIO_DEVICE_GET_REGION_INFO: {
        const info = vfioRegionInfo.read(mem.view(arg, vfioRegionInfo.minsz));
        if (info.argsz < vfioRegionInfo.minsz) throw errno('EINVAL', `vfio_region_info.argsz ${info.argsz} < 32`);
        if (info.index >= 1) throw errno('EINVAL', `region index ${info.index} >= 1 region`);
        vfioRegionInfo.write(mem.view(arg, vfioRegionInfo.minsz), {
          argsz: info.argsz,
          flags: VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE | VFIO_REGION_INFO_FLAG_MMAP,
          index: info.index,
          cap_offset: 0,
          size: BigInt(PDEV_MMIO_SIZE),
          offset: BigInt(info.index) << VFIO_PLATFORM_OFFSET_SHIFT,
        });
        return this.return_(0);
      }
      case VFIO_DEVICE_GET_IRQ_INFO: {
        const info = vfioIrqInfo.read(mem.view(arg, vfioIrqInfo.minsz));
        if (info.argsz < vfioIrqInfo.minsz) throw errno('EINVAL', `vfio_irq_info.argsz ${info.argsz} < 16`);
        if (info.index >= vdev.numIrqs) throw errno('EINVAL', `IRQ index ${info.index} >= ${vdev.numIrqs}`);
        const irq = vdev.irqs[info.index]!;
        vfioIrqInfo.write(mem.view(arg, vfioIrqInfo.minsz), {
          argsz: info.argsz,
          flags: irq.flags,
          index: info.index,
          count: irq.count,
        });
        return this.return_(0);
      }
      case VFIO_DEVICE_SET_IRQS:
        return this.setIrqsBegin(() => vdev.numIrqs, vdev.numIrqs);
      case VFIO_DEVICE_RESET:
        if (!vdev.hasReset) throw errno('EINVAL', `${vdev.name} has no reset handler`);
        vdev.resets++;
        return this.return_(0);
      default:
        throw errno('ENOTTY', `unknown VFIO device ioctl 0x${(cmd >>> 0).toString(16)}`);
    }
  }
}

function platformIoctl(dev: VfioDevice, cmd: number, arg: number): Frame<number> {
  return new VfioPlatformIoctl(vdevOf(dev), dev, cmd, arg);
}

/** vfio_platform_open_device: vfio_platform_irq_init under igate, then the reset. */
class VfioPlatformOpenDevice extends Frame {
  constructor(private readonly vdev: VfioPlatformDevice) {
    super();
  }

  protected step(): Boundary {
    const vdev = this.vdev;
    if (this.pc === 0) {
      this.pc = 1;
      return this.call(mutexLock(vdev.igate));
    }
    vdev.irqInit();
    vdev.igate.unlock();
    if (vdev.hasReset) vdev.resets++;
    return this.return_(undefined);
  }
}

const CD_LOCK = 0; // the reset, then mutex_lock(&vdev->igate)
const CD_CLEANUP = 1; // vfio_platform_irq_cleanup
const CD_UNLOCK = 2; // it returned: mutex_unlock

/** vfio_platform_close_device: reset, then every IRQ's virqfds and trigger off under igate. */
class VfioPlatformCloseDevice extends Frame {
  constructor(private readonly vdev: VfioPlatformDevice) {
    super();
  }

  protected step(): Boundary {
    const vdev = this.vdev;
    switch (this.pc) {
      case CD_LOCK:
        if (vdev.hasReset) vdev.resets++;
        this.pc = CD_CLEANUP;
        return this.call(mutexLock(vdev.igate));
      case CD_CLEANUP:
        this.pc = CD_UNLOCK;
        return this.call(vfioPlatformIrqCleanup(vdev));
      default:
        vdev.igate.unlock();
        return this.return_(undefined);
    }
  }

  protected override unwind(): void {
    if (this.pc === CD_UNLOCK) this.vdev.igate.unlock();
  }
}

export const vfioPlatformOps: VfioDeviceOps = markShared({
  name: 'vfio-platform',
  openDevice(dev) {
    return new VfioPlatformOpenDevice(vdevOf(dev));
  },
  closeDevice(dev) {
    return new VfioPlatformCloseDevice(vdevOf(dev));
  },
  ioctl: platformIoctl,
});
