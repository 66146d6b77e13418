/**
 * The VFIO subsystem of a host: /dev/vfio/vfio, one /dev/vfio/<n> per IOMMU group of the host description, and the
 * device registry. Opening a device through its group (VFIO_GROUP_GET_DEVICE_FD) follows vfio_df_group_open: the
 * group's container must have an IOMMU driver, the first open calls the driver's open_device, and the device file
 * holds a reference on the group file.
 */
import { errno } from '../abi/errno.js';
import { type FileOperations, type KFile, O_CLOEXEC, O_RDWR } from '../host/file.js';
import type { Kernel, PathResolver } from '../host/kernel.js';
import { type Boundary, Frame } from '../sim/frame.js';
import { mutexLock } from '../sim/locks.js';
import { op } from '../sim/task.js';
import { type VfioDeviceFile as DeviceFile, VfioDevice, VfioDeviceFile, type VfioDeviceOps } from './device.js';
import { C_VFIO_IOCTL, containerFops, type DeviceOpener, deviceFops, groupFops, VfioGroup } from './group.js';
import { VirqfdCore } from './virqfd.js';

export class Vfio implements PathResolver, DeviceOpener {
  readonly groups = new Map<number, VfioGroup>();
  readonly virqfd: VirqfdCore;
  private readonly devFops = deviceFops(this);

  constructor(readonly kernel: Kernel) {
    this.virqfd = new VirqfdCore(kernel);
    kernel.registerChrdev('/dev/vfio/vfio', containerFops(kernel));
    kernel.registerPathResolver('/dev/vfio/', this);
  }

  /** /dev/vfio/<n>: the group's node. */
  resolvePath(rest: string): FileOperations | undefined {
    if (!/^\d+$/.test(rest)) return undefined;
    const g = this.groups.get(Number(rest));
    if (g === undefined) return undefined;
    return groupFops(this.kernel, g, this);
  }

  /** vfio_register_group_dev: add a device (bound to a VFIO driver) to IOMMU group `iommuGroup`. */
  registerDevice(name: string, iommuGroup: number, ops: VfioDeviceOps, driverData: unknown): VfioDevice {
    let g = this.groups.get(iommuGroup);
    if (g === undefined) {
      g = new VfioGroup(this.kernel, iommuGroup);
      this.groups.set(iommuGroup, g);
    }
    if (g.devices.some((d) => d.name === name)) throw errno('EEXIST', `VFIO device ${name} is already registered`);
    const dev = new VfioDevice(this.kernel, name, g, ops);
    dev.driverData = driverData;
    g.devices.push(dev);
    return dev;
  }

  /** VFIO_GROUP_GET_DEVICE_FD. */
  openDevice(groupFile: KFile, group: VfioGroup, name: string): Frame<number> {
    return new VfioGroupGetDeviceFd(this, groupFile, group, name);
  }

  /** The device file of a device just opened through `groupFile`. */
  deviceFile(dev: VfioDevice, groupFile: KFile): KFile {
    return this.kernel.anonInodeGetfile('[vfio-device]', this.devFops, new VfioDeviceFile(dev, groupFile), O_RDWR);
  }

  /** vfio_device_fops_release → vfio_df_group_close. */
  closeDeviceFile(df: DeviceFile): Frame {
    return new VfioDfGroupClose(df);
  }
}

const DC_LOCKED = 1; // mutex_lock(&device->dev_set->lock) returned
const DC_CLOSED = 2; // the driver's close_device returned (or was not needed): unlock
const DC_UNLOCKED = 3; // drop the references

/** vfio_df_group_close: the last close of the device closes it in the driver; drop the device and group refs. */
class VfioDfGroupClose extends Frame {
  constructor(private readonly df: DeviceFile) {
    super();
  }

  protected step(): Boundary {
    const dev = this.df.device;
    switch (this.pc) {
      case 0:
        this.pc = DC_LOCKED;
        return this.call(mutexLock(dev.devSetLock));
      case DC_LOCKED:
        this.pc = DC_CLOSED;
        dev.openCount--;
        if (dev.openCount === 0) return this.call(dev.ops.closeDevice(dev));
        return this.unlockAndPut();
      default:
        return this.unlockAndPut();
    }
  }

  private unlockAndPut(): Boundary {
    const dev = this.df.device;
    dev.devSetLock.unlock();
    this.pc = DC_UNLOCKED;
    dev.group.deviceOpens--;
    dev.put();
    this.df.groupFile.put();
    return this.return_(undefined);
  }

  protected override unwind(): void {
    if (this.pc === DC_CLOSED) this.df.device.devSetLock.unlock();
  }
}

const GD_BEGIN = 0; // find the device, check the container, reserve the fd; mutex_lock(&device->dev_set->lock)
const GD_LOCKED = 1; // the first open calls the driver's open_device
const GD_OPENED = 2; // it returned: count the open, unlock
const GD_INSTALL = 3; // the file's step: references, anon_inode_getfile, fd_install

/** group.c vfio_group_ioctl_get_device_fd → vfio_df_group_open: open the device (the first open: the driver's). */
class VfioGroupGetDeviceFd extends Frame<number> {
  private dev: VfioDevice | null = null;
  private fd = -1;

  constructor(
    private readonly vfio: Vfio,
    private readonly groupFile: KFile,
    private readonly group: VfioGroup,
    private readonly name: string,
  ) {
    super();
  }

  protected step(): Boundary {
    const group = this.group;
    switch (this.pc) {
      case GD_BEGIN: {
        const dev = group.devices.find((d) => d.name === this.name);
        if (dev === undefined)
          throw errno('ENODEV', `VFIO group ${group.iommuGroup} has no device named '${this.name}'`);
        // container.c vfio_group_use_container: a device needs a container with an IOMMU driver.
        if (group.container === null || group.container.iommuType === 0) {
          throw errno(
            'EINVAL',
            `VFIO group ${group.iommuGroup}: set a container and its IOMMU type before opening devices`,
          );
        }
        this.dev = dev;
        this.fd = this.vfio.kernel.currentUser().files.getUnusedFd(O_CLOEXEC);
        this.pc = GD_LOCKED;
        return this.call(mutexLock(dev.devSetLock));
      }
      case GD_LOCKED: {
        const dev = this.dev!;
        this.pc = GD_OPENED;
        if (dev.openCount === 0) return this.call(dev.ops.openDevice(dev));
        return this.opened();
      }
      case GD_OPENED:
        return this.opened();
      default: {
        const dev = this.dev!;
        dev.get();
        this.groupFile.get();
        group.deviceOpens++;
        this.vfio.kernel.currentUser().files.installFd(this.fd, this.vfio.deviceFile(dev, this.groupFile));
        return this.return_(this.fd);
      }
    }
  }

  private opened(): Boundary {
    const dev = this.dev!;
    dev.openCount++;
    dev.devSetLock.unlock();
    this.pc = GD_INSTALL;
    return this.yield_(op(C_VFIO_IOCTL, this.groupFile.oid));
  }

  /** The open failed: unlock if the driver's open_device threw under the lock, and free the reserved fd. */
  protected override unwind(): void {
    if (this.pc === GD_OPENED) this.dev!.devSetLock.unlock();
    if (this.pc === GD_LOCKED || this.pc === GD_OPENED) this.vfio.kernel.currentUser().files.putUnusedFd(this.fd);
  }
}
