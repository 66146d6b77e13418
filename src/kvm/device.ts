/**
 * The KVM device API (virt/kvm/kvm_main.c kvm_ioctl_create_device, kvm_device_ioctl, kvm_device_ioctl_attr,
 * kvm_device_release, kvm_destroy_devices): one ops table per device type, registered with `Kvm.registerDeviceOps`
 * (kvm_register_device_ops); KVM_CREATE_DEVICE instantiates one under kvm->lock and gives it an fd.
 *
 * Ops are generators where the kernel's can block (they run as steps of the calling task). They refuse by throwing
 * ErrnoError (`throw errno('ENXIO', ...)`); attribute accessors return 0 (or a non-negative value) on success.
 *
 * Lifetime, as in the kernel: a device fd holds a reference on the VM (kvm_get_kvm). Closing it runs `release` if the
 * type has one (the device leaves kvm->devices at once, e.g. modern kvm-vfio); a type without `release` stays on
 * the VM's list and its `destroy` runs when the VM itself is destroyed (kvm_destroy_devices), e.g. the vGIC.
 */
import { errno } from '../abi/errno.js';
import {
  KVM_GET_DEVICE_ATTR,
  KVM_HAS_DEVICE_ATTR,
  KVM_SET_DEVICE_ATTR,
  type KvmDeviceAttr,
  kvmDeviceAttr,
} from '../abi/kvm.js';
import type { FileOperations, KFile } from '../host/file.js';
import { KObject } from '../host/kref.js';
import { ModelError } from '../sim/errors.js';
import type { Frame } from '../sim/frame.js';
import { op, type TaskGen } from '../sim/task.js';
import { C_KVM_IOCTL } from './costs.js';
import type { KvmVm } from './vm.js';

/** An attribute accessor: a generator, or a frame (sim/frame.ts) where it runs across steps. */
export type KvmAttrAccessor = (dev: KvmDevice, attr: KvmDeviceAttr) => TaskGen<number> | Frame<number>;

/** struct kvm_device_ops. */
export interface KvmDeviceOps {
  /** Also the anon inode name of the fd ('kvm-arm-vgic-v2', 'kvm-vfio'). */
  readonly name: string;
  /** ops->create, called with kvm->lock held; throw ErrnoError to refuse (the device is then freed). */
  create(dev: KvmDevice, type: number): TaskGen<void>;
  /** ops->init, after the device is on kvm->devices and before its fd exists. */
  init?(dev: KvmDevice): TaskGen<void>;
  /** ops->release: the device fd is closed (kvm->lock held); the device leaves kvm->devices. */
  release?(dev: KvmDevice): TaskGen<void>;
  /** ops->destroy: VM destruction (kvm_destroy_devices), or a failed fd install. */
  destroy?(dev: KvmDevice): TaskGen<void>;
  setAttr?: KvmAttrAccessor;
  getAttr?: KvmAttrAccessor;
  hasAttr?: KvmAttrAccessor;
  /** ops->ioctl for other requests; without it they are ENOTTY. */
  ioctl?(dev: KvmDevice, cmd: number, arg: number): TaskGen<number>;
}

/** struct kvm_device. */
export class KvmDevice extends KObject {
  /** dev->private: the type's own state. */
  private_: unknown = null;
  /** The device's fd was closed and release ran, or destroy ran. */
  gone = false;
  readonly oid: number;

  constructor(
    readonly vm: KvmVm,
    readonly ops: KvmDeviceOps,
    readonly type: number,
  ) {
    super(vm.kernel.refs, 'kvm_device', ops.name);
    this.oid = vm.kernel.engine.newOid(`kvm_device:${ops.name}`);
  }

  /** The type's state, checked against the expected class. */
  privateAs<T>(cls: abstract new (...args: never[]) => T): T {
    const p = this.private_;
    if (!(p instanceof cls)) throw new ModelError(`${this.ops.name}: private data is not a ${cls.name}`);
    return p;
  }
}

/** kvm_device_ioctl_attr: EPERM without the accessor, EFAULT reading the attr, then the accessor's answer. */
function* deviceIoctlAttr(dev: KvmDevice, accessor: KvmAttrAccessor | undefined, arg: number): TaskGen<number> {
  if (accessor === undefined) throw errno('EPERM', `${dev.ops.name} has no accessor for this attribute ioctl`);
  const mem = dev.vm.kernel.currentUser().mem;
  const attr = kvmDeviceAttr.read(mem.view(arg, kvmDeviceAttr.size));
  return yield* accessor(dev, attr);
}

/** kvm_device_fops. */
export function kvmDeviceFops(): FileOperations {
  return {
    name: 'kvm_device_fops',
    *unlockedIoctl(file: KFile, cmd: number, arg: number): TaskGen<number> {
      const dev = file.privateData as KvmDevice;
      dev.checkAlive('kvm_device_ioctl');
      yield op(C_KVM_IOCTL, dev.oid);
      // kvm_device_ioctl: only the VM's own process may use it
      if (dev.vm.kernel.currentUser() !== dev.vm.owner) throw errno('EIO', 'device fd used outside the VM process');
      switch (cmd >>> 0) {
        case KVM_SET_DEVICE_ATTR:
          return yield* deviceIoctlAttr(dev, dev.ops.setAttr, arg);
        case KVM_GET_DEVICE_ATTR:
          return yield* deviceIoctlAttr(dev, dev.ops.getAttr, arg);
        case KVM_HAS_DEVICE_ATTR:
          return yield* deviceIoctlAttr(dev, dev.ops.hasAttr, arg);
        default:
          if (dev.ops.ioctl !== undefined) return yield* dev.ops.ioctl(dev, cmd, arg);
          throw errno('ENOTTY', `${dev.ops.name} has no ioctl 0x${(cmd >>> 0).toString(16)}`);
      }
    },
    *release(file: KFile): TaskGen<void> {
      const dev = file.privateData as KvmDevice;
      yield* dev.vm.kvmDeviceRelease(dev);
    },
  };
}
