/**
 * The KVM device API (virt/kvm/kvm_main.c kvm_ioctl_create_device, kvm_device_ioctl, kvm_device_ioctl_attr,
 * kvm_device_release, kvm_destroy_devices): one ops table per device type, registered with `Kvm.registerDeviceOps`
 * (kvm_register_device_ops); KVM_CREATE_DEVICE instantiates one under kvm->lock and gives it an fd.
 *
 * Ops return a Call (a frame, sim/frame.ts; `returnNow` where the kernel's cannot block): they run as steps of the
 * calling task. They refuse by throwing ErrnoError (`throw errno('ENXIO', ...)`); attribute accessors return 0 (or a
 * non-negative value) on success.
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
import { type Boundary, Frame } from '../sim/frame.js';
import { markShared } from '../sim/snapshot.js';
import { type Call, op } from '../sim/task.js';
import { C_KVM_IOCTL } from './costs.js';
import type { KvmVm } from './vm.js';

/** An attribute accessor (a frame, sim/frame.ts). */
export type KvmAttrAccessor = (dev: KvmDevice, attr: KvmDeviceAttr) => Call<number>;

/** struct kvm_device_ops. */
export interface KvmDeviceOps {
  /** Also the anon inode name of the fd ('kvm-arm-vgic-v2', 'kvm-vfio'). */
  readonly name: string;
  /** ops->create, called with kvm->lock held; throw ErrnoError to refuse (the device is then freed). */
  create(dev: KvmDevice, type: number): Call<void>;
  /** ops->init, after the device is on kvm->devices and before its fd exists. */
  init?(dev: KvmDevice): Call<void>;
  /** ops->release: the device fd is closed (kvm->lock held); the device leaves kvm->devices. */
  release?(dev: KvmDevice): Call<void>;
  /** ops->destroy: VM destruction (kvm_destroy_devices), or a failed fd install. */
  destroy?(dev: KvmDevice): Call<void>;
  setAttr?: KvmAttrAccessor;
  getAttr?: KvmAttrAccessor;
  hasAttr?: KvmAttrAccessor;
  /** ops->ioctl for other requests; without it they are ENOTTY. */
  ioctl?(dev: KvmDevice, cmd: number, arg: number): Call<number>;
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

/** kvm_device_ioctl's own step. */
const PC_IOCTL = 0;
/** The request: kvm_device_ioctl_attr or ops->ioctl. */
const PC_DISPATCH = 1;
/** The accessor (or ops->ioctl) returned. */
const PC_RETURN = 2;

/** kvm_device_ioctl → kvm_device_ioctl_attr, as a frame: the device's accessor runs as its child. */
class KvmDeviceIoctl extends Frame<number> {
  constructor(
    private readonly dev: KvmDevice,
    private readonly cmd: number,
    private readonly arg: number,
  ) {
    super();
  }

  protected step(sent: unknown): Boundary {
    const dev = this.dev;
    switch (this.pc) {
      case PC_IOCTL:
        dev.checkAlive('kvm_device_ioctl');
        this.pc = PC_DISPATCH;
        return this.yield_(op(C_KVM_IOCTL, dev.oid));
      case PC_DISPATCH: {
        // kvm_device_ioctl: only the VM's own process may use it
        if (dev.vm.kernel.currentUser() !== dev.vm.owner) throw errno('EIO', 'device fd used outside the VM process');
        const cmd = this.cmd >>> 0;
        this.pc = PC_RETURN;
        switch (cmd) {
          case KVM_SET_DEVICE_ATTR:
            return this.call(this.attr(dev.ops.setAttr));
          case KVM_GET_DEVICE_ATTR:
            return this.call(this.attr(dev.ops.getAttr));
          case KVM_HAS_DEVICE_ATTR:
            return this.call(this.attr(dev.ops.hasAttr));
          default:
            if (dev.ops.ioctl !== undefined) return this.call(dev.ops.ioctl(dev, cmd, this.arg));
            throw errno('ENOTTY', `${dev.ops.name} has no ioctl 0x${cmd.toString(16)}`);
        }
      }
      default:
        return this.return_(sent as number);
    }
  }

  /** kvm_device_ioctl_attr: EPERM without the accessor, EFAULT reading the attr, then the accessor's answer. */
  private attr(accessor: KvmAttrAccessor | undefined): Call<number> {
    const dev = this.dev;
    if (accessor === undefined) throw errno('EPERM', `${dev.ops.name} has no accessor for this attribute ioctl`);
    const mem = dev.vm.kernel.currentUser().mem;
    const attr = kvmDeviceAttr.read(mem.view(this.arg, kvmDeviceAttr.size));
    return accessor(dev, attr);
  }
}

/** kvm_device_fops. */
const KVM_DEVICE_FOPS: FileOperations = markShared({
  name: 'kvm_device_fops',
  unlockedIoctl(file: KFile, cmd: number, arg: number): Call<number> {
    return new KvmDeviceIoctl(file.privateData as KvmDevice, cmd, arg);
  },
  release(file: KFile): Call<void> {
    const dev = file.privateData as KvmDevice;
    return dev.vm.kvmDeviceRelease(dev);
  },
});

export function kvmDeviceFops(): FileOperations {
  return KVM_DEVICE_FOPS;
}
