/**
 * struct vfio_device and its file (drivers/vfio/vfio_main.c): a registered device with a driver ops table, an
 * open count (the first open calls open_device, the last close close_device), and the external-user references
 * kvm-vfio takes on it.
 */
import { errno } from '../abi/errno.js';
import type { KFile } from '../host/file.js';
import type { Kernel } from '../host/kernel.js';
import { KObject } from '../host/kref.js';
import { Mutex } from '../sim/locks.js';
import type { Call } from '../sim/task.js';
import type { VfioGroup } from './group.js';

/** struct vfio_device_ops. */
export interface VfioDeviceOps {
  readonly name: string;
  openDevice(dev: VfioDevice): Call<void>;
  closeDevice(dev: VfioDevice): Call<void>;
  ioctl(dev: VfioDevice, cmd: number, arg: number): Call<number>;
}

export class VfioDevice extends KObject {
  openCount = 0;
  /** dev_set->lock, serialising open/close (vfio_df_open / vfio_df_close). */
  readonly devSetLock: Mutex;
  /** The driver's per-device data (vfio-platform's struct vfio_platform_device). */
  driverData: unknown = null;
  readonly oid: number;

  constructor(
    readonly kernel: Kernel,
    name: string,
    readonly group: VfioGroup,
    readonly ops: VfioDeviceOps,
  ) {
    super(kernel.refs, 'vfio_device', name);
    this.devSetLock = new Mutex(kernel.engine, 'vfio_device_set.lock');
    this.oid = kernel.engine.newOid(`vfio_device:${name}`);
  }
}

/** The private data of a device fd (struct vfio_device_file). */
export class VfioDeviceFile {
  constructor(
    readonly device: VfioDevice,
    /** The group file this device file keeps open (device fds hold a group file reference). */
    readonly groupFile: KFile,
  ) {}
}

/**
 * vfio_device_get_external_user (the seed patch's API for kvm-vfio): a device reference from a VFIO device file;
 * EINVAL when the file is not one.
 */
export function vfioDeviceGetExternalUser(file: KFile): VfioDevice {
  file.checkAlive('vfio_device_get_external_user');
  const df = file.privateData;
  if (!(df instanceof VfioDeviceFile)) throw errno('EINVAL', `${file.name} is not a VFIO device file`);
  return df.device.get();
}

/** vfio_device_put_external_user. */
export function vfioDevicePutExternalUser(dev: VfioDevice): void {
  dev.put();
}
