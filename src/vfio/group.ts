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
import { type Boundary, Frame, returnNow } from '../sim/frame.js';
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
  return new VfioFops(kernel);
}

/** vfio_fops of /dev/vfio/vfio. */
class VfioFops implements FileOperations {
  readonly name = 'vfio_fops';
  constructor(private readonly kernel: Kernel) {}

  open(file: KFile): Call<void> {
    file.privateData = new VfioContainer(file);
    return returnNow(undefined);
  }

  unlockedIoctl(file: KFile, cmd: number, arg: number): Call<number> {
    return new VfioFopsUnlIoctl(this.kernel, file, cmd, arg);
  }

  release(file: KFile): Call<void> {
    // Groups hold a container file reference, so none is attached when the container file is released.
    const c = file.privateData as VfioContainer;
    c.iommuType = 0;
    c.iommu = null;
    return returnNow(undefined);
  }
}

const CI_BEGIN = 0; // the ioctl's step
const CI_CMD = 1; // the command
const CI_SET_IOMMU = 2; // mutex_lock(&container->group_lock) returned: vfio_ioctl_set_iommu

/** container.c vfio_fops_unl_ioctl. */
class VfioFopsUnlIoctl extends Frame<number> {
  constructor(
    private readonly kernel: Kernel,
    private readonly file: KFile,
    private readonly cmd: number,
    private readonly arg: number,
  ) {
    super();
  }

  protected step(): Boundary {
    const c = this.file.privateData as VfioContainer;
    const { cmd, arg } = this;
    switch (this.pc) {
      case CI_BEGIN:
        this.pc = CI_CMD;
        return this.yield_(op(C_VFIO_IOCTL, this.file.oid));
      case CI_CMD:
        switch (cmd) {
          case VFIO_GET_API_VERSION:
            return this.return_(VFIO_API_VERSION);
          case VFIO_CHECK_EXTENSION:
            return this.return_(type1Extension(arg) ? 1 : 0);
          case VFIO_SET_IOMMU:
            this.pc = CI_SET_IOMMU;
            return this.call(mutexLock(c.groupLock));
          default:
            // container.c vfio_fops_unl_ioctl: everything else goes to the IOMMU driver; with none it is -EINVAL
            if (c.iommu === null) {
              throw errno('EINVAL', `VFIO container ioctl 0x${(cmd >>> 0).toString(16)}: no IOMMU driver set`);
            }
            // one step: the driver's work under iommu->lock has no sleeping point in the model
            return this.return_(c.iommu.ioctl(user(this.kernel).mem, cmd >>> 0, arg));
        }
      default:
        try {
          // container.c vfio_ioctl_set_iommu: only a container with a group and no driver yet may pick one.
          if (c.groups.length === 0) throw errno('EINVAL', 'VFIO_SET_IOMMU: no group is attached to this container');
          if (c.iommuType !== 0) throw errno('EINVAL', `VFIO_SET_IOMMU: IOMMU type ${c.iommuType} is already set`);
          if (!type1Supports(arg)) throw errno('ENODEV', `VFIO_SET_IOMMU: no IOMMU backend supports type ${arg}`);
          c.iommuType = arg;
          c.iommu = new VfioIommuType1(arg);
          return this.return_(0);
        } finally {
          c.groupLock.unlock();
        }
    }
  }
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
  return new VfioGroupFops(kernel, group, opener);
}

/** vfio_group_fops of one group's character device. */
class VfioGroupFops implements FileOperations {
  readonly name = 'vfio_group_fops';
  constructor(
    private readonly kernel: Kernel,
    private readonly group: VfioGroup,
    private readonly opener: DeviceOpener,
  ) {}

  open(file: KFile): Call<void> {
    return new VfioGroupFopsOpen(this.group, file);
  }

  unlockedIoctl(file: KFile, cmd: number, arg: number): Call<number> {
    return new VfioGroupFopsUnlIoctl(this.kernel, this.group, this.opener, file, cmd, arg);
  }

  release(file: KFile): Call<void> {
    // Device fds hold a group file reference, so no device is open here.
    const group = this.group;
    if (group.container !== null) detachContainer(group);
    group.kvm = null;
    if (group.openedFile === file) group.openedFile = null;
    return returnNow(undefined);
  }
}

/** group.c vfio_group_fops_open: one open file per group. */
class VfioGroupFopsOpen extends Frame {
  constructor(
    private readonly group: VfioGroup,
    private readonly file: KFile,
  ) {
    super();
  }

  protected step(): Boundary {
    const group = this.group;
    if (this.pc === 0) {
      this.pc = 1;
      return this.call(mutexLock(group.lock));
    }
    try {
      if (group.openedFile !== null) {
        throw errno('EBUSY', `VFIO group ${group.iommuGroup} is already open (by another process or fd)`);
      }
      group.openedFile = this.file;
      this.file.privateData = group;
      return this.return_(undefined);
    } finally {
      group.lock.unlock();
    }
  }
}

const GI_BEGIN = 0; // the ioctl's step
const GI_CMD = 1; // the command
const GI_SET_CONTAINER = 2; // mutex_lock(&group->group_lock) returned, the container file held
const GI_UNSET_CONTAINER = 3; // mutex_lock(&group->group_lock) returned
const GI_GOT_DEVICE_FD = 4; // vfio_group_ioctl_get_device_fd returned

/** group.c vfio_group_fops_unl_ioctl. */
class VfioGroupFopsUnlIoctl extends Frame<number> {
  /** VFIO_GROUP_SET_CONTAINER's container file, held until the ioctl ends. */
  private cfile: KFile | null = null;
  private fd = -1;

  constructor(
    private readonly kernel: Kernel,
    private readonly group: VfioGroup,
    private readonly opener: DeviceOpener,
    private readonly file: KFile,
    private readonly cmd: number,
    private readonly arg: number,
  ) {
    super();
  }

  protected step(sent: unknown): Boundary {
    const group = this.group;
    switch (this.pc) {
      case GI_BEGIN:
        this.pc = GI_CMD;
        return this.yield_(op(C_VFIO_IOCTL, this.file.oid));
      case GI_CMD:
        return this.command();
      case GI_SET_CONTAINER: {
        const cfile = this.cfile!;
        try {
          if (group.container !== null) {
            throw errno('EINVAL', `VFIO group ${group.iommuGroup} already has a container`);
          }
          const c = cfile.privateData;
          if (!(c instanceof VfioContainer)) throw errno('EBADFD', `fd ${this.fd} is not a VFIO container`);
          if (c.iommuType !== 0 && !type1Supports(c.iommuType)) throw errno('EINVAL', 'IOMMU type mismatch');
          cfile.get();
          c.groups.push(group);
          group.container = c;
        } finally {
          group.lock.unlock();
        }
        this.cfile = null;
        fput(cfile);
        return this.return_(0);
      }
      case GI_UNSET_CONTAINER:
        try {
          if (group.container === null) throw errno('EINVAL', `VFIO group ${group.iommuGroup} has no container`);
          if (group.deviceOpens > 0) {
            throw errno('EBUSY', `VFIO group ${group.iommuGroup} has ${group.deviceOpens} device fd(s) open`);
          }
          detachContainer(group);
          return this.return_(0);
        } finally {
          group.lock.unlock();
        }
      default: // GI_GOT_DEVICE_FD
        return this.return_(sent as number);
    }
  }

  private command(): Boundary {
    const group = this.group;
    const mem = user(this.kernel).mem;
    const arg = this.arg;
    switch (this.cmd) {
      case VFIO_GROUP_GET_STATUS: {
        const st = vfioGroupStatus.read(mem.view(arg, vfioGroupStatus.minsz));
        if (st.argsz < vfioGroupStatus.minsz) {
          throw errno('EINVAL', `vfio_group_status.argsz ${st.argsz} < ${vfioGroupStatus.minsz}`);
        }
        let flags = 0;
        if (group.container !== null) flags |= VFIO_GROUP_FLAGS_CONTAINER_SET | VFIO_GROUP_FLAGS_VIABLE;
        else if (group.viable) flags |= VFIO_GROUP_FLAGS_VIABLE;
        vfioGroupStatus.write(mem.view(arg, vfioGroupStatus.minsz), { argsz: st.argsz, flags });
        return this.return_(0);
      }
      case VFIO_GROUP_SET_CONTAINER:
        this.fd = mem.readS32(arg);
        this.cfile = user(this.kernel).files.fget(this.fd);
        this.pc = GI_SET_CONTAINER;
        return this.call(mutexLock(group.lock));
      case VFIO_GROUP_UNSET_CONTAINER:
        this.pc = GI_UNSET_CONTAINER;
        return this.call(mutexLock(group.lock));
      case VFIO_GROUP_GET_DEVICE_FD: {
        const name = mem.readCString(arg, PAGE_SIZE);
        this.pc = GI_GOT_DEVICE_FD;
        return this.call(this.opener.openDevice(this.file, group, name));
      }
      default:
        throw errno('ENOTTY', `unknown VFIO group ioctl 0x${(this.cmd >>> 0).toString(16)}`);
    }
  }

  /** fdput of the container file, whatever happened under the group lock. */
  protected override unwind(): void {
    if (this.cfile !== null) {
      fput(this.cfile);
      this.cfile = null;
    }
  }
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
  return new VfioDeviceFops(opener);
}

/** vfio_device_fops. */
class VfioDeviceFops implements FileOperations {
  readonly name = 'vfio_device_fops';
  constructor(private readonly opener: DeviceOpener) {}

  unlockedIoctl(file: KFile, cmd: number, arg: number): Call<number> {
    const df = file.privateData as VfioDeviceFile;
    df.device.checkAlive('vfio device ioctl');
    return df.device.ops.ioctl(df.device, cmd, arg);
  }

  release(file: KFile): Call<void> {
    return this.opener.closeDeviceFile(file.privateData as VfioDeviceFile);
  }
}
