/**
 * The `rfc-v1` variant for the checker: a port of the seed patch, arch/arm/kvm/kvm_vfio_arm.c of "[RFC,9/9] KVM:
 * KVM_VFIO: ARM: implement irq forwarding control" (/work/shared/design/seed-rfc-9-9.txt), defects included,
 * nothing fixed. Its lists live in the arch part (struct kvm_vfio_arch_data); the generic kvm-vfio core (groups,
 * kv->lock) is the default's, whose own assigned-device list simply stays empty here. Every place where the port
 * reproduces a defect carries a `// seed defect:` comment naming the seed function. Where the seed would crash the
 * kernel (a NULL dereference), the port throws a ModelError that says which defect fired.
 *
 * Deliberate model choices (not defects of the seed):
 *  - irqd_set_irq_forwarded / irqd_clr_irq_forwarded are the model's irq_set_vcpu_affinity (the GIC's EOImode=1
 *    "forwarded to a vCPU" state) plus VFIO's forwarded flag, which the series' VFIO patch read from the irqd bit;
 *  - kzalloc fails only under fail-nth (host/failslab.ts), which reaches the seed's -ENOMEM paths;
 *  - 2014's kvm-vfio had no ->release: the device is torn down by ->destroy at VM destruction (kvm_destroy_devices).
 */
import { errno, errnoName } from '../../../abi/errno.js';
import {
  KVM_DEV_VFIO_DEVICE,
  KVM_DEV_VFIO_DEVICE_ASSIGN_IRQ,
  KVM_DEV_VFIO_DEVICE_DEASSIGN_IRQ,
  KVM_DEV_VFIO_GROUP,
  type KvmArchForwardedIrq,
  type KvmDeviceAttr,
  kvmArchForwardedIrq,
} from '../../../abi/kvm.js';
import { shouldFailslab } from '../../../host/failslab.js';
import type { Genirq } from '../../../host/irq/genirq.js';
import { disableIrq, enableIrq, irqSetVcpuAffinity } from '../../../host/irq/manage.js';
import { ModelError } from '../../../sim/errors.js';
import { mutexLock } from '../../../sim/locks.js';
import { op, type TaskGen } from '../../../sim/task.js';
import { type VfioDevice, vfioDeviceGetExternalUser, vfioDevicePutExternalUser } from '../../../vfio/device.js';
import { VfioPlatformDevice } from '../../../vfio/platform/vfioPlatform.js';
import type { VfioPlatformIrq } from '../../../vfio/platform/vfioPlatformIrq.js';
import type { KvmDevice, KvmDeviceOps } from '../../device.js';
import type { KvmVcpu } from '../../vcpu.js';
import { C_KVM_VFIO_ATTR, groupAttr, KvmVfio, kvmVfioHasAttr, kvOf, releaseGroups } from '../../vfio.js';
import { VGIC_NR_PRIVATE_IRQS } from '../../vgic/vgicIrq.js';
import type { KvmVm } from '../../vm.js';

/** enum kvm_irq_fwd_action. */
export const KVM_VFIO_IRQ_SET_FORWARD = 0;
export const KVM_VFIO_IRQ_SET_NORMAL = 1;
export const KVM_VFIO_IRQ_CLEANUP = 2;

const EINVAL = 22;
const ENXIO = 6;
const ENOMEM = 12;

/** struct __kvm_arch_fwd_irq, plus the kernel objects the model reaches through globals (irq_to_desc, the vGIC). */
export class KvmArchFwdIrq {
  irqIndex = 0;
  /** "physical IRQ": what platform_get_irq returns, i.e. the Linux IRQ number, not the GIC INTID. */
  hwirq = 0;
  guestIrq = 0;
  vcpu: KvmVcpu | null = null;

  constructor(
    readonly vm: KvmVm,
    readonly genirq: Genirq,
    readonly platIrq: VfioPlatformIrq,
  ) {}
}

/** struct kvm_vfio_device. */
export class SeedKvmVfioDevice {
  readonly fwdIrqList: KvmArchFwdIrq[] = [];
  fd = 0;

  constructor(readonly vfioDevice: VfioDevice) {}
}

/** struct kvm_vfio_arch_data. */
export class KvmVfioArchData {
  /** Devices with forwarded IRQs; list_add puts new ones at the head. */
  readonly assignedDeviceList: SeedKvmVfioDevice[] = [];
}

/** struct kvm_vfio with the arch data set by kvm_arch_vfio_init. */
export class RfcV1KvmVfio extends KvmVfio {
  readonly archData = new KvmVfioArchData();
}

function archDataOf(kv: KvmVfio): KvmVfioArchData {
  if (!(kv instanceof RfcV1KvmVfio))
    throw new ModelError('rfc-v1: kvm_vfio_device_get_arch_data on a non-rfc-v1 kvm-vfio');
  return kv.archData;
}

/** kzalloc(sizeof(...), GFP_KERNEL) != NULL. */
function kzalloc(dev: KvmDevice): boolean {
  return !shouldFailslab(dev.vm.kernel);
}

/** The seed returns C ints; the model's ioctl layer wants ErrnoError. */
function check(ret: number, why: string): number {
  if (ret >= 0) return ret;
  const name = errnoName(-ret);
  if (name === undefined) throw new ModelError(`rfc-v1: ${why} returned ${ret}, not an errno`);
  throw errno(name, `${why} (rfc-v1 returned ${ret})`);
}

/** irqd_set_irq_forwarded / irqd_clr_irq_forwarded (see the module comment). */
function* irqdSetForwarded(pfwd: KvmArchFwdIrq, on: boolean): TaskGen<void> {
  yield* irqSetVcpuAffinity(pfwd.genirq, pfwd.hwirq, on ? pfwd.vcpu : null);
  pfwd.platIrq.forwarded = on;
}

function vgicOf(pfwd: KvmArchFwdIrq, fn: string) {
  if (pfwd.vcpu === null) {
    // seed defect: insert_and_forward takes kvm_get_vcpu(kvm, 0) without checking it exists; the vGIC's map/unmap
    // start from vcpu->kvm (v4.3 virt/kvm/arm/vgic.c kvm_vgic_map_phys_irq: &vcpu->kvm->arch.vgic, first statement)
    throw new ModelError(`seed defect: insert_and_forward: kvm_get_vcpu(kvm, 0) is NULL; ${fn} dereferences it`);
  }
  const vgic = pfwd.vm.vgic;
  if (vgic === null) throw new ModelError(`seed defect: ${fn} with no vGIC — set_fwd_state dereferences NULL`);
  const vintid = pfwd.guestIrq + VGIC_NR_PRIVATE_IRQS;
  if (vgic.vgicGetIrq(vintid) === null) {
    // seed defect: validate_forward never checks guest_irq against the vGIC's SPIs
    throw new ModelError(
      `seed defect: validate_forward accepted guest_irq ${pfwd.guestIrq}; ${fn}(${vintid}) has no vIRQ`,
    );
  }
  return { vgic, vintid, target: vgic.vcpu(pfwd.vcpu.id) };
}

/** vgic_map_phys_irq(vcpu, guest_irq + VGIC_NR_PRIVATE_IRQS, hwirq) of the 2014 vGIC, which took the INTID. */
function vgicMapPhysIrq(pfwd: KvmArchFwdIrq): number {
  const { vgic, vintid, target } = vgicOf(pfwd, 'vgic_map_phys_irq');
  const ret = vgic.kvmVgicMapPhysIrq(target, pfwd.hwirq, vintid);
  // seed defect: set_fwd_state passes the Linux IRQ number as vgic_map_phys_irq's physical INTID: it goes in the LR
  if (ret === 0) vgic.vgicGetIrq(vintid)!.hwintid = pfwd.hwirq;
  return ret;
}

function vgicUnmapPhysIrq(pfwd: KvmArchFwdIrq): number {
  const { vgic, vintid, target } = vgicOf(pfwd, 'vgic_unmap_phys_irq');
  return vgic.kvmVgicUnmapPhysIrq(target, vintid);
}

/** set_fwd_state: program the GIC and the vGIC; returns the vGIC map/unmap status. */
export function* setFwdState(pfwd: KvmArchFwdIrq, action: number): TaskGen<number> {
  const g = pfwd.genirq;
  const desc = g.desc(pfwd.hwirq);
  // seed defect: set_fwd_state uses disable_irq: synchronize_irq spins while the guest holds a forwarded INTID active
  yield* disableIrq(g, pfwd.hwirq);
  if (desc.inprogress) {
    // seed defect: set_fwd_state refuses an IRQ in progress with -1, i.e. -EPERM, instead of waiting it out
    yield* enableIrq(g, pfwd.hwirq);
    return -1;
  }
  let ret: number;
  if (action === KVM_VFIO_IRQ_SET_FORWARD) {
    yield* irqdSetForwarded(pfwd, true);
    ret = vgicMapPhysIrq(pfwd);
  } else if (action === KVM_VFIO_IRQ_SET_NORMAL) {
    yield* irqdSetForwarded(pfwd, false);
    ret = vgicUnmapPhysIrq(pfwd);
  } else if (action === KVM_VFIO_IRQ_CLEANUP) {
    yield* irqdSetForwarded(pfwd, false);
    // seed defect: set_fwd_state(CLEANUP) does a blind chip->irq_eoi, whether or not the INTID is active, on any CPU
    yield* desc.chip.irqEoi(desc);
    ret = 0;
  } else {
    // seed defect: set_fwd_state's invalid-action branch calls enable_irq here and again below: unbalanced
    yield* enableIrq(g, pfwd.hwirq);
    ret = -EINVAL;
  }
  yield* enableIrq(g, pfwd.hwirq);
  return ret;
}

/** find_in_assigned_devices. */
function findInAssignedDevices(kv: KvmVfio, vdev: VfioDevice): SeedKvmVfioDevice | null {
  return archDataOf(kv).assignedDeviceList.find((d) => d.vfioDevice === vdev) ?? null;
}

/** find_in_fwd_irq: walks kvm_vdev->fwd_irq_list, so a NULL kvm_vdev is a NULL dereference. */
function findInFwdIrq(kvmVdev: SeedKvmVfioDevice | null, irqIndex: number, who: string): KvmArchFwdIrq | null {
  if (kvmVdev === null) throw new ModelError(`seed defect: ${who} passed a NULL kvm_vdev to find_in_fwd_irq`);
  return kvmVdev.fwdIrqList.find((f) => f.irqIndex === irqIndex) ?? null;
}

/** remove_assigned_device: returns bool, but its error path returns the int `ret` (true). */
function* removeAssignedDevice(kv: KvmVfio, vdev: VfioDevice): TaskGen<boolean> {
  const list = archDataOf(kv).assignedDeviceList;
  for (const d of [...list]) {
    if (d.vfioDevice !== vdev) continue;
    for (const f of [...d.fwdIrqList]) {
      const ret = yield* setFwdState(f, KVM_VFIO_IRQ_SET_NORMAL);
      if (ret < 0) return true; // seed defect: remove_assigned_device returns a negative int as bool (true)
      d.fwdIrqList.splice(d.fwdIrqList.indexOf(f), 1);
    }
    list.splice(list.indexOf(d), 1);
    vfioDevicePutExternalUser(d.vfioDevice);
    return true;
  }
  return false;
}

/** remove_fwd_irq. */
function* removeFwdIrq(kv: KvmVfio, kvmVdev: SeedKvmVfioDevice, irqIndex: number): TaskGen<number> {
  let ret = -1;
  for (const f of [...kvmVdev.fwdIrqList]) {
    if (f.irqIndex !== irqIndex) continue;
    ret = yield* setFwdState(f, KVM_VFIO_IRQ_SET_NORMAL);
    if (ret < 0) break;
    kvmVdev.fwdIrqList.splice(kvmVdev.fwdIrqList.indexOf(f), 1);
    ret = 0;
    break;
  }
  if (kvmVdev.fwdIrqList.length === 0) yield* removeAssignedDevice(kv, kvmVdev.vfioDevice);
  return ret;
}

/** free_all_fwd_irq: CLEANUP every forwarded IRQ (the vCPUs are gone, so the vGIC is not touched), put every device. */
export function* freeAllFwdIrq(kv: KvmVfio): TaskGen<number> {
  const list = archDataOf(kv).assignedDeviceList;
  for (const d of [...list]) {
    for (const f of [...d.fwdIrqList]) {
      yield* setFwdState(f, KVM_VFIO_IRQ_CLEANUP); // seed defect: free_all_fwd_irq ignores the result
      d.fwdIrqList.splice(d.fwdIrqList.indexOf(f), 1);
    }
    list.splice(list.indexOf(d), 1);
    vfioDevicePutExternalUser(d.vfioDevice);
  }
  return 0;
}

/** get_vfio_device: NULL for an fd that is not open, ERR_PTR(-EINVAL) (thrown) for one that is not a VFIO device. */
function getVfioDevice(dev: KvmDevice, fd: number): VfioDevice | null {
  const file = dev.vm.kernel.currentUser().files.lookup(fd);
  if (file === undefined) return null; // seed defect: get_vfio_device returns NULL, which its callers' IS_ERR misses
  return vfioDeviceGetExternalUser(file);
}

/** validate_forward: platform device, valid index, not already forwarded; returns hwirq and the kvm_vfio_device. */
function validateForward(
  kv: KvmVfio,
  vdev: VfioDevice | null,
  fwdIrq: KvmArchForwardedIrq,
): { ret: number; kvmVdev: SeedKvmVfioDevice | null; hwirq: number; plat: VfioPlatformDevice | null } {
  if (vdev === null) {
    throw new ModelError(
      `seed defect: kvm_vfio_set_device: get_vfio_device(${fwdIrq.fd}) returned NULL (fd not open), IS_ERR missed it, ` +
        'and validate_forward dereferences it in kvm_vfio_external_get_type',
    );
  }
  const plat = vdev.driverData;
  if (!(plat instanceof VfioPlatformDevice)) return { ret: -EINVAL, kvmVdev: null, hwirq: -1, plat: null };
  // platform_get_irq: the Linux IRQ number of the index, -ENXIO past the last one
  const hwirq = plat.irqs[fwdIrq.irq_index]?.hwirq ?? -ENXIO;
  if (hwirq < 0) return { ret: -EINVAL, kvmVdev: null, hwirq, plat };
  // seed defect: validate_forward checks neither guest_irq, nor that the VM owns the device's group (no EPERM)
  const kvmVdev = findInAssignedDevices(kv, vdev);
  if (kvmVdev !== null && findInFwdIrq(kvmVdev, fwdIrq.irq_index, 'validate_forward') !== null) {
    return { ret: -EINVAL, kvmVdev, hwirq, plat }; // seed defect: validate_forward: already forwarded is EINVAL
  }
  return { ret: 0, kvmVdev, hwirq, plat };
}

/** validate_deassign. */
function validateDeassign(
  kv: KvmVfio,
  vdev: VfioDevice,
  fwdIrq: KvmArchForwardedIrq,
): { ret: number; kvmVdev: SeedKvmVfioDevice | null } {
  const kvmVdev = findInAssignedDevices(kv, vdev);
  // seed defect: validate_deassign tests `!kvm_vdev` (the out-parameter, never NULL) instead of `!*kvm_vdev`
  const pfwd = findInFwdIrq(kvmVdev, fwdIrq.irq_index, 'validate_deassign (`!kvm_vdev` for `!*kvm_vdev`)');
  if (pfwd === null) return { ret: -EINVAL, kvmVdev }; // seed defect: validate_deassign: not forwarded is EINVAL
  return { ret: 0, kvmVdev };
}

/** insert_and_forward: validate, forward, record; `mustPut` tells the caller to drop the reference it took. */
function* insertAndForward(
  dev: KvmDevice,
  vdev: VfioDevice | null,
  fwdIrq: KvmArchForwardedIrq,
): TaskGen<{ ret: number; mustPut: boolean }> {
  const kv = kvOf(dev);
  const arch = archDataOf(kv);
  const v = validateForward(kv, vdev, fwdIrq);
  if (v.ret < 0) return { ret: -EINVAL, mustPut: true };
  const plat = v.plat!;
  if (!kzalloc(dev)) return { ret: -ENOMEM, mustPut: true };
  const pfwd = new KvmArchFwdIrq(dev.vm, plat.genirq, plat.irqs[fwdIrq.irq_index]!);
  pfwd.irqIndex = fwdIrq.irq_index;
  pfwd.guestIrq = fwdIrq.guest_irq;
  pfwd.hwirq = v.hwirq;
  // seed defect: insert_and_forward always targets vCPU 0 (kvm_get_vcpu(kvm, 0)), not the vIRQ's vGIC routing
  pfwd.vcpu = dev.vm.vcpus[0] ?? null;
  yield op(C_KVM_VFIO_ATTR, dev.oid);
  const ret = yield* setFwdState(pfwd, KVM_VFIO_IRQ_SET_FORWARD);
  if (ret < 0) {
    // seed defect: insert_and_forward's error path runs CLEANUP, i.e. a blind EOI of an IRQ it never forwarded
    yield* setFwdState(pfwd, KVM_VFIO_IRQ_CLEANUP);
    return { ret, mustPut: true };
  }
  let kvmVdev = v.kvmVdev;
  let mustPut = true;
  if (kvmVdev === null) {
    if (!kzalloc(dev)) {
      // seed defect: insert_and_forward undoes with set_fwd_state(pfwd, false): false is 0, SET_FORWARD, not NORMAL
      yield* setFwdState(pfwd, 0);
      return { ret: -ENOMEM, mustPut: true };
    }
    kvmVdev = new SeedKvmVfioDevice(vdev!);
    kvmVdev.fd = fwdIrq.fd;
    arch.assignedDeviceList.unshift(kvmVdev);
    mustPut = false; // the only case where the reference is kept
  }
  kvmVdev.fwdIrqList.unshift(pfwd);
  return { ret: 0, mustPut };
}

/** cancel_and_delete_forward. */
function* cancelAndDeleteForward(dev: KvmDevice, vdev: VfioDevice, fwdIrq: KvmArchForwardedIrq): TaskGen<number> {
  const kv = kvOf(dev);
  const v = validateDeassign(kv, vdev, fwdIrq);
  if (v.ret < 0) return -EINVAL;
  return yield* removeFwdIrq(kv, v.kvmVdev!, fwdIrq.irq_index);
}

/** kvm_vfio_set_device. */
function* kvmVfioSetDevice(dev: KvmDevice, attr: bigint, addr: bigint): TaskGen<number> {
  const kv = kvOf(dev);
  const assign = attr === BigInt(KVM_DEV_VFIO_DEVICE_ASSIGN_IRQ);
  if (!assign && attr !== BigInt(KVM_DEV_VFIO_DEVICE_DEASSIGN_IRQ)) {
    throw errno('ENXIO', `rfc-v1 kvm_vfio_set_device: no attribute ${attr}`);
  }
  const user = dev.vm.kernel.currentUser();
  const fwdIrq = kvmArchForwardedIrq.read(user.mem.view(addr, kvmArchForwardedIrq.size)); // copy_from_user
  const vdev = getVfioDevice(dev, fwdIrq.fd | 0); // IS_ERR(vdev): only a thrown ERR_PTR gets out here
  if (assign) {
    yield* mutexLock(kv.lock);
    try {
      const r = yield* insertAndForward(dev, vdev, fwdIrq);
      if (r.mustPut) vfioDevicePutExternalUser(vdev!);
      return check(r.ret, `ASSIGN_IRQ fd ${fwdIrq.fd} index ${fwdIrq.irq_index}`);
    } finally {
      kv.lock.unlock();
    }
  }
  if (vdev === null) {
    throw new ModelError(
      `seed defect: kvm_vfio_set_device: get_vfio_device(${fwdIrq.fd}) returned NULL (fd not open), IS_ERR missed it, ` +
        'and kvm_vfio_device_put_external_user dereferences it',
    );
  }
  vfioDevicePutExternalUser(vdev); // the seed drops its reference before using vdev
  yield* mutexLock(kv.lock);
  try {
    const ret = yield* cancelAndDeleteForward(dev, vdev, fwdIrq);
    return check(ret, `DEASSIGN_IRQ fd ${fwdIrq.fd} index ${fwdIrq.irq_index}`);
  } finally {
    kv.lock.unlock();
  }
}

/** The kvm-vfio device of the seed series: generic groups (the default core's), ARM forwarding as ported above. */
export const kvmVfioRfcV1Ops: KvmDeviceOps = {
  name: 'kvm-vfio',
  *create(dev) {
    if (dev.vm.devices.some((d) => d.ops === kvmVfioRfcV1Ops && !d.gone)) {
      throw errno('EBUSY', 'this VM already has a kvm-vfio device');
    }
    dev.private_ = new RfcV1KvmVfio(dev.vm); // kvm_vfio_create + kvm_arch_vfio_init
  },
  *setAttr(dev, a: KvmDeviceAttr) {
    // seed defect: GROUP_DEL (generic code of the series) leaves the group's forwarded IRQs forwarded
    if (a.group === KVM_DEV_VFIO_GROUP) return yield* groupAttr(dev, kvOf(dev), a.attr, a.addr);
    if (a.group === KVM_DEV_VFIO_DEVICE) return yield* kvmVfioSetDevice(dev, a.attr, a.addr); // kvm_arch_vfio_set_attr
    throw errno('ENXIO', `kvm-vfio has no attribute group ${a.group}`);
  },
  hasAttr: kvmVfioHasAttr,
  /** kvm_vfio_destroy (VM destruction; the series' kvm-vfio has no ->release): groups, then kvm_arch_vfio_destroy. */
  *destroy(dev) {
    const kv = kvOf(dev);
    releaseGroups(kv);
    yield* freeAllFwdIrq(kv);
  },
};
