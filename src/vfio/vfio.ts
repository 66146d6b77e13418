/**
 * The VFIO subsystem of a host: /dev/vfio/vfio, one /dev/vfio/<n> per IOMMU group of the host description, and the
 * device registry. Opening a device through its group (VFIO_GROUP_GET_DEVICE_FD) follows vfio_df_group_open: the
 * group's container must have an IOMMU driver, the first open calls the driver's open_device, and the device file
 * holds a reference on the group file.
 */
import { errno } from '../abi/errno.js';
import { type KFile, O_CLOEXEC, O_RDWR } from '../host/file.js';
import type { Kernel } from '../host/kernel.js';
import { mutexLock } from '../sim/locks.js';
import { op, type TaskGen } from '../sim/task.js';
import { type VfioDeviceFile as DeviceFile, VfioDevice, VfioDeviceFile, type VfioDeviceOps } from './device.js';
import { C_VFIO_IOCTL, containerFops, deviceFops, groupFops, VfioGroup } from './group.js';
import { VirqfdCore } from './virqfd.js';

export class Vfio {
  readonly groups = new Map<number, VfioGroup>();
  readonly virqfd: VirqfdCore;
  private readonly devFops = deviceFops((df) => this.closeDeviceFile(df));

  constructor(readonly kernel: Kernel) {
    this.virqfd = new VirqfdCore(kernel);
    kernel.registerChrdev('/dev/vfio/vfio', containerFops(kernel));
    kernel.registerPathResolver('/dev/vfio/', (rest) => {
      if (!/^\d+$/.test(rest)) return undefined;
      const g = this.groups.get(Number(rest));
      if (g === undefined) return undefined;
      return groupFops(kernel, g, (file, group, name) => this.openDevice(file, group, name));
    });
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
  private *openDevice(groupFile: KFile, group: VfioGroup, name: string): TaskGen<number> {
    const dev = group.devices.find((d) => d.name === name);
    if (dev === undefined) throw errno('ENODEV', `VFIO group ${group.iommuGroup} has no device named '${name}'`);
    // container.c vfio_group_use_container: a device needs a container with an IOMMU driver.
    if (group.container === null || group.container.iommuType === 0) {
      throw errno(
        'EINVAL',
        `VFIO group ${group.iommuGroup}: set a container and its IOMMU type before opening devices`,
      );
    }
    const files = this.kernel.currentUser().files;
    const fd = files.getUnusedFd(O_CLOEXEC);
    try {
      yield* mutexLock(dev.devSetLock);
      try {
        if (dev.openCount === 0) yield* dev.ops.openDevice(dev);
        dev.openCount++;
      } finally {
        dev.devSetLock.unlock();
      }
    } catch (e) {
      files.putUnusedFd(fd);
      throw e;
    }
    yield op(C_VFIO_IOCTL, groupFile.oid);
    dev.get();
    groupFile.get();
    group.deviceOpens++;
    const file = this.kernel.anonInodeGetfile(
      '[vfio-device]',
      this.devFops,
      new VfioDeviceFile(dev, groupFile),
      O_RDWR,
    );
    files.installFd(fd, file);
    return fd;
  }

  /** vfio_device_fops_release → vfio_df_group_close. */
  private *closeDeviceFile(df: DeviceFile): TaskGen<void> {
    const dev = df.device;
    yield* mutexLock(dev.devSetLock);
    try {
      dev.openCount--;
      if (dev.openCount === 0) yield* dev.ops.closeDevice(dev);
    } finally {
      dev.devSetLock.unlock();
    }
    dev.group.deviceOpens--;
    dev.put();
    df.groupFile.put();
  }
}
