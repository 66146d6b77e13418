/**
 * VFIO containers and groups (drivers/vfio/container.c, drivers/vfio/group.c): the order rules between them and
 * their errnos. A group is opened by one file at a time; it joins one container; device fds come from the group
 * once its container has an IOMMU driver.
 */
import { errno } from '../abi/errno.js';
import {
  VFIO_API_VERSION,
  VFIO_CHECK_EXTENSION,
  VFIO_GET_API_VERSION,
  VFIO_GROUP_FLAGS_CONTAINER_SET,
  VFIO_GROUP_FLAGS_VIABLE,
  VFIO_GROUP_GET_DEVICE_FD,
  VFIO_GROUP_GET_STATUS,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_GROUP_UNSET_CONTAINER,
  VFIO_SET_IOMMU,
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  VFIO_UNMAP_ALL,
  vfioGroupStatus,
} from '../abi/vfio.js';
import { type FileOperations, fput, type KFile } from '../host/file.js';
import type { Kernel } from '../host/kernel.js';
import { PAGE_SIZE } from '../host/uaccess.js';
import { defineCost } from '../sim/costs.js';
import { Mutex, mutexLock } from '../sim/locks.js';
import { type Call, op } from '../sim/task.js';
import { VfioIommuType1 } from './containerType1.js';
import type { VfioDevice, VfioDeviceFile } from './device.js';

export const C_VFIO_IOCTL = defineCost(
  'vfio_ioctl',
  150,
  'VFIO container/group ioctl body (locks, list walks); estimate',
);

/** The model's only IOMMU backend: vfio_iommu_type1 (DMA mappings as bookkeeping, containerType1.ts). */
function type1Supports(type: number): boolean {
  return type === VFIO_TYPE1_IOMMU || type === VFIO_TYPE1v2_IOMMU;
}

/** vfio_iommu_type1_check_extension: the IOMMU types and VFIO_UNMAP_ALL (UPDATE_VADDR and DMA_CC are not offered). */
function type1Extension(ext: number): boolean {
  return type1Supports(ext) || ext === VFIO_UNMAP_ALL;
}

export class VfioContainer {
  readonly groups: VfioGroup[] = [];
  iommuType = 0;
  /** container->iommu_data: the type1 backend once VFIO_SET_IOMMU picked it; its release drops every mapping. */
  iommu: VfioIommuType1 | null = null;
  /** container->group_lock. */
  readonly groupLock: Mutex;

  constructor(readonly file: KFile) {
    this.groupLock = new Mutex(file.host.engine, 'vfio_container.group_lock');
  }
}

export class VfioGroup {
  readonly devices: VfioDevice[] = [];
  openedFile: KFile | null = null;
  container: VfioContainer | null = null;
  /** Device fds open through this group (the kernel's container_users - 1). */
  deviceOpens = 0;
  /** The VM this group was added to via kvm-vfio (vfio_file_set_kvm), or null. */
  kvm: unknown = null;
  readonly lock: Mutex;

  constructor(
    readonly kernel: Kernel,
    readonly iommuGroup: number,
  ) {
    this.lock = new Mutex(kernel.engine, 'vfio_group.group_lock');
  }

  get viable(): boolean {
    return true; // every device of a modelled group is bound to vfio-platform
  }
}

function user(kernel: Kernel) {
  return kernel.currentUser();
}

/** /dev/vfio/vfio: one container per open. */
export function containerFops(kernel: Kernel): FileOperations {
  return {
    name: 'vfio_fops',
    *open(file) {
      file.privateData = new VfioContainer(file);
    },
    *unlockedIoctl(file, cmd, arg) {
      const c = file.privateData as VfioContainer;
      yield op(C_VFIO_IOCTL, file.oid);
      switch (cmd) {
        case VFIO_GET_API_VERSION:
          return VFIO_API_VERSION;
        case VFIO_CHECK_EXTENSION:
          return type1Extension(arg) ? 1 : 0;
        case VFIO_SET_IOMMU: {
          yield* mutexLock(c.groupLock);
          try {
            // container.c vfio_ioctl_set_iommu: only a container with a group and no driver yet may pick one.
            if (c.groups.length === 0) throw errno('EINVAL', 'VFIO_SET_IOMMU: no group is attached to this container');
            if (c.iommuType !== 0) throw errno('EINVAL', `VFIO_SET_IOMMU: IOMMU type ${c.iommuType} is already set`);
            if (!type1Supports(arg)) throw errno('ENODEV', `VFIO_SET_IOMMU: no IOMMU backend supports type ${arg}`);
            c.iommuType = arg;
            c.iommu = new VfioIommuType1(arg);
            return 0;
          } finally {
            c.groupLock.unlock();
          }
        }
        default: {
          // container.c vfio_fops_unl_ioctl: everything else goes to the IOMMU driver; with none it is -EINVAL
          if (c.iommu === null) {
            throw errno('EINVAL', `VFIO container ioctl 0x${(cmd >>> 0).toString(16)}: no IOMMU driver set`);
          }
          // one step: the driver's work under iommu->lock has no sleeping point in the model
          return c.iommu.ioctl(user(kernel).mem, cmd >>> 0, arg);
        }
      }
    },
    *release(file) {
      // Groups hold a container file reference, so none is attached when the container file is released.
      const c = file.privateData as VfioContainer;
      c.iommuType = 0;
      c.iommu = null;
    },
  };
}

/** Detach a group from its container (vfio_group_detach_container); the last group leaving drops the driver. */
function detachContainer(g: VfioGroup): void {
  const c = g.container!;
  c.groups.splice(c.groups.indexOf(g), 1);
  if (c.groups.length === 0) {
    c.iommuType = 0;
    c.iommu = null; // the driver's release: vfio_iommu_type1_release unmaps everything
  }
  g.container = null;
  fput(c.file);
}

/** /dev/vfio/<group>. */
export function groupFops(kernel: Kernel, group: VfioGroup, opener: DeviceOpener): FileOperations {
  return {
    name: 'vfio_group_fops',
    *open(file) {
      yield* mutexLock(group.lock);
      try {
        // group.c vfio_group_fops_open: one open file per group.
        if (group.openedFile !== null) {
          throw errno('EBUSY', `VFIO group ${group.iommuGroup} is already open (by another process or fd)`);
        }
        group.openedFile = file;
        file.privateData = group;
      } finally {
        group.lock.unlock();
      }
    },
    *unlockedIoctl(file, cmd, arg) {
      yield op(C_VFIO_IOCTL, file.oid);
      const mem = user(kernel).mem;
      switch (cmd) {
        case VFIO_GROUP_GET_STATUS: {
          const st = vfioGroupStatus.read(mem.view(arg, vfioGroupStatus.minsz));
          if (st.argsz < vfioGroupStatus.minsz) {
            throw errno('EINVAL', `vfio_group_status.argsz ${st.argsz} < ${vfioGroupStatus.minsz}`);
          }
          let flags = 0;
          if (group.container !== null) flags |= VFIO_GROUP_FLAGS_CONTAINER_SET | VFIO_GROUP_FLAGS_VIABLE;
          else if (group.viable) flags |= VFIO_GROUP_FLAGS_VIABLE;
          vfioGroupStatus.write(mem.view(arg, vfioGroupStatus.minsz), { argsz: st.argsz, flags });
          return 0;
        }
        case VFIO_GROUP_SET_CONTAINER: {
          const fd = mem.readS32(arg);
          const cfile = user(kernel).files.fget(fd);
          try {
            yield* mutexLock(group.lock);
            try {
              if (group.container !== null) {
                throw errno('EINVAL', `VFIO group ${group.iommuGroup} already has a container`);
              }
              const c = cfile.privateData;
              if (!(c instanceof VfioContainer)) throw errno('EBADFD', `fd ${fd} is not a VFIO container`);
              if (c.iommuType !== 0 && !type1Supports(c.iommuType)) throw errno('EINVAL', 'IOMMU type mismatch');
              cfile.get();
              c.groups.push(group);
              group.container = c;
              return 0;
            } finally {
              group.lock.unlock();
            }
          } finally {
            fput(cfile);
          }
        }
        case VFIO_GROUP_UNSET_CONTAINER: {
          yield* mutexLock(group.lock);
          try {
            if (group.container === null) throw errno('EINVAL', `VFIO group ${group.iommuGroup} has no container`);
            if (group.deviceOpens > 0) {
              throw errno('EBUSY', `VFIO group ${group.iommuGroup} has ${group.deviceOpens} device fd(s) open`);
            }
            detachContainer(group);
            return 0;
          } finally {
            group.lock.unlock();
          }
        }
        case VFIO_GROUP_GET_DEVICE_FD: {
          const name = mem.readCString(arg, PAGE_SIZE);
          return yield* opener.openDevice(file, group, name);
        }
        default:
          throw errno('ENOTTY', `unknown VFIO group ioctl 0x${(cmd >>> 0).toString(16)}`);
      }
    },
    *release(file) {
      // Device fds hold a group file reference, so no device is open here.
      if (group.container !== null) detachContainer(group);
      group.kvm = null;
      if (group.openedFile === file) group.openedFile = null;
    },
  };
}

/** What opens and closes device files (the VFIO core): objects with methods, so fops hold no closure. */
export interface DeviceOpener {
  /** VFIO_GROUP_GET_DEVICE_FD. */
  openDevice(groupFile: KFile, group: VfioGroup, name: string): Call<number>;
  /** vfio_device_fops_release. */
  closeDeviceFile(df: VfioDeviceFile): Call<void>;
}

/** The device fd's fops: everything goes to the driver; release closes the device (vfio_device_fops_release). */
export function deviceFops(opener: DeviceOpener): FileOperations {
  return {
    name: 'vfio_device_fops',
    unlockedIoctl(file, cmd, arg) {
      const df = file.privateData as VfioDeviceFile;
      df.device.checkAlive('vfio device ioctl');
      return df.device.ops.ioctl(df.device, cmd, arg);
    },
    release(file) {
      return opener.closeDeviceFile(file.privateData as VfioDeviceFile);
    },
  };
}
