/**
 * The kvm-vfio pseudo device (virt/kvm/vfio.c) with the IRQ forwarding of the seed patch built the way its review
 * asked: the list of assigned devices, each holding exactly one VFIO device reference while it has forwarded IRQs,
 * lives here in generic code; the arch part (arch/arm/forward.ts) only switches one IRQ at the GIC and the vGIC.
 *
 * Locking: kv->lock (mutex) → the VFIO device's igate (mutex) → the list spinlock. VFIO calls back into a forwarded
 * IRQ's `unforward` with igate held (its trigger is going away), so that path never takes kv->lock.
 */
import { ErrnoError, errno } from '../abi/errno.js';
import {
  KVM_DEV_VFIO_DEVICE,
  KVM_DEV_VFIO_DEVICE_ASSIGN_IRQ,
  KVM_DEV_VFIO_DEVICE_DEASSIGN_IRQ,
  KVM_DEV_VFIO_GROUP,
  KVM_DEV_VFIO_GROUP_ADD,
  KVM_DEV_VFIO_GROUP_DEL,
  type KvmDeviceAttr,
  kvmArchForwardedIrq,
} from '../abi/kvm.js';
import { shouldFailslab } from '../host/failslab.js';
import { fput, type KFile } from '../host/file.js';
import { defineCost } from '../sim/costs.js';
import { Mutex, mutexLock, Spinlock, spinLockIrqsave, spinUnlockIrqrestore } from '../sim/locks.js';
import { op, type TaskGen } from '../sim/task.js';
import { type VfioDevice, vfioDeviceGetExternalUser, vfioDevicePutExternalUser } from '../vfio/device.js';
import { VfioGroup } from '../vfio/group.js';
import { VfioPlatformDevice } from '../vfio/platform/vfioPlatform.js';
import type { VfioIrqForward, VfioPlatformIrq } from '../vfio/platform/vfioPlatformIrq.js';
import { type ArchFwdIrq, kvmArchSetFwdState, type SetFwdState } from './arch/arm/forward.js';
import type { KvmDevice, KvmDeviceOps } from './device.js';
import { C_VGIC_INJECT } from './vgic/vgic.js';
import { VGIC_NR_PRIVATE_IRQS } from './vgic/vgicIrq.js';
import type { KvmVm } from './vm.js';

export const C_KVM_VFIO_ATTR = defineCost(
  'kvm_vfio_attr',
  300,
  'kvm-vfio set_attr: copy_from_user, fdget, list walk under kv->lock; estimate',
);

/** One forwarded IRQ (the seed's struct __kvm_arch_fwd_irq, kept in core code). */
export class KvmVfioFwdIrq implements VfioIrqForward {
  dead = false;

  constructor(
    readonly kv: KvmVfio,
    readonly kdev: KvmVfioDevice,
    readonly index: number,
    readonly guestIrq: number,
    readonly arch: ArchFwdIrq,
  ) {}

  /**
   * The producer → consumer call (the IRQ bypass role): VFIO's handler, in hardirq context with the physical INTID
   * active, injects the owned HW vIRQ directly instead of signalling the trigger eventfd. The trace keeps the
   * irqfd_inject event for this step.
   */
  *inject(): TaskGen<void> {
    const { vm, vintid } = this.arch;
    yield op(C_VGIC_INJECT, vm.oid);
    vm.vgic!.kvmVgicInjectIrq(null, vintid, true, this);
    vm.trace?.irqfdInject?.(vm, this.guestIrq, 1);
  }

  /** Back to the normal path and off the lists; the last IRQ of a device drops the device reference. */
  *unforward(): TaskGen<void> {
    if (this.dead) return;
    this.dead = true;
    yield* this.kv.setFwdState(this.arch, false);
    this.arch.platIrq.fwd = null;
    yield* this.kv.forget(this);
  }
}

/** An assigned device (the seed's struct kvm_vfio_device). */
export class KvmVfioDevice {
  readonly irqs: KvmVfioFwdIrq[] = [];

  constructor(
    readonly vdev: VfioDevice,
    readonly plat: VfioPlatformDevice,
  ) {}
}

/** struct kvm_vfio: the groups added to this VM and the assigned devices. */
export class KvmVfio {
  readonly groups: { file: KFile; group: VfioGroup }[] = [];
  readonly devices: KvmVfioDevice[] = [];
  /** kv->lock. */
  readonly lock: Mutex;
  /** Protects `devices` and each device's `irqs` against VFIO's unforward callback. */
  readonly listLock: Spinlock;

  constructor(
    readonly vm: KvmVm,
    /** The arch switch: the quiesce protocol by default; a variant may pass its own (variants/naive). */
    readonly setFwdState: SetFwdState = kvmArchSetFwdState,
  ) {
    this.lock = new Mutex(vm.kernel.engine, 'kvm_vfio.lock');
    this.listLock = new Spinlock(vm.kernel.engine, 'kvm_vfio.list_lock');
  }

  find(vdev: VfioDevice, index: number): KvmVfioFwdIrq | undefined {
    return this.devices.find((d) => d.vdev === vdev)?.irqs.find((i) => i.index === index);
  }

  /** Remove a forwarded IRQ from the lists; drop the device reference with the device's last IRQ. */
  *forget(f: KvmVfioFwdIrq): TaskGen<void> {
    const flags = yield* spinLockIrqsave(this.listLock);
    let put: VfioDevice | null = null;
    const irqs = f.kdev.irqs;
    const i = irqs.indexOf(f);
    if (i >= 0) irqs.splice(i, 1);
    if (irqs.length === 0) {
      const j = this.devices.indexOf(f.kdev);
      if (j >= 0) {
        this.devices.splice(j, 1);
        put = f.kdev.vdev;
      }
    }
    spinUnlockIrqrestore(this.listLock, flags);
    if (put !== null) vfioDevicePutExternalUser(put);
  }

  /** Every forwarded IRQ back to normal (GROUP_DEL of its group, or the device's release). */
  *unforwardWhere(pred: (d: KvmVfioDevice) => boolean): TaskGen<void> {
    for (const d of this.devices.filter(pred)) {
      for (const f of [...d.irqs]) {
        yield* mutexLock(d.plat.igate);
        try {
          yield* f.unforward();
        } finally {
          d.plat.igate.unlock();
        }
      }
    }
  }
}

export function kvOf(dev: KvmDevice): KvmVfio {
  return dev.privateAs(KvmVfio);
}

function userFd(dev: KvmDevice, addr: bigint): number {
  return dev.vm.kernel.currentUser().mem.readS32(addr);
}

/** kvm_vfio_file_add / kvm_vfio_file_del (KVM_DEV_VFIO_GROUP_ADD / _DEL). */
export function* groupAttr(dev: KvmDevice, kv: KvmVfio, attr: bigint, addr: bigint): TaskGen<number> {
  if (attr !== BigInt(KVM_DEV_VFIO_GROUP_ADD) && attr !== BigInt(KVM_DEV_VFIO_GROUP_DEL)) {
    throw errno('ENXIO', `kvm-vfio: KVM_DEV_VFIO_GROUP has no attribute ${attr}`);
  }
  const fd = userFd(dev, addr);
  const file = dev.vm.kernel.currentUser().files.fget(fd);
  try {
    const group = file.privateData;
    if (!(group instanceof VfioGroup)) throw errno('EINVAL', `fd ${fd} is not a VFIO group`);
    yield* mutexLock(kv.lock);
    try {
      const i = kv.groups.findIndex((g) => g.group === group);
      if (attr === BigInt(KVM_DEV_VFIO_GROUP_ADD)) {
        if (i >= 0) throw errno('EEXIST', `VFIO group ${group.iommuGroup} is already added to this VM`);
        kv.groups.push({ file: file.get(), group });
        group.kvm = dev.vm; // vfio_file_set_kvm
        return 0;
      }
      if (i < 0) throw errno('ENOENT', `VFIO group ${group.iommuGroup} was not added to this VM`);
      // The VM no longer owns the group: nothing of it may stay forwarded.
      yield* kv.unforwardWhere((d) => d.vdev.group === group);
      const [g] = kv.groups.splice(i, 1);
      group.kvm = null;
      fput(g!.file);
      return 0;
    } finally {
      kv.lock.unlock();
    }
  } finally {
    fput(file);
  }
}

/** KVM_DEV_VFIO_DEVICE_ASSIGN_IRQ / _DEASSIGN_IRQ. */
function* deviceAttr(dev: KvmDevice, kv: KvmVfio, attr: bigint, addr: bigint): TaskGen<number> {
  const assign = attr === BigInt(KVM_DEV_VFIO_DEVICE_ASSIGN_IRQ);
  if (!assign && attr !== BigInt(KVM_DEV_VFIO_DEVICE_DEASSIGN_IRQ)) {
    throw errno('ENXIO', `kvm-vfio: KVM_DEV_VFIO_DEVICE has no attribute ${attr}`);
  }
  const kernel = dev.vm.kernel;
  const req = kvmArchForwardedIrq.read(kernel.currentUser().mem.view(addr, kvmArchForwardedIrq.size));
  const file = kernel.currentUser().files.fget(req.fd | 0);
  let vdev: VfioDevice;
  try {
    vdev = vfioDeviceGetExternalUser(file);
  } finally {
    fput(file);
  }
  // From here on `vdev` holds a reference: kept only by a newly assigned device.
  let keepRef = false;
  let ret = 0;
  try {
    const plat = vdev.driverData;
    if (!(plat instanceof VfioPlatformDevice)) throw errno('EINVAL', `${vdev.name} is not a VFIO platform device`);
    if (req.irq_index >= plat.numIrqs) {
      throw errno('EINVAL', `irq_index ${req.irq_index} out of range (${vdev.name} has ${plat.numIrqs})`);
    }
    const vm = dev.vm;
    const vintid = req.guest_irq + VGIC_NR_PRIVATE_IRQS;
    yield* mutexLock(kv.lock);
    try {
      const vgic = vm.vgic;
      if (vgic === null || !vgic.vgicValidSpi(vintid)) {
        throw errno(
          'EINVAL',
          `guest_irq ${req.guest_irq} is not an SPI of this VM (vGIC not created/initialised, or ≥ nr_spis)`,
        );
      }
      if (!kv.groups.some((g) => g.group === vdev.group)) {
        throw errno(
          'EPERM',
          `the VFIO group ${vdev.group.iommuGroup} of ${vdev.name} was not added to this kvm-vfio device`,
        );
      }
      const existing = kv.find(vdev, req.irq_index);
      if (!assign) {
        if (existing === undefined) throw errno('ENOENT', `${vdev.name} IRQ ${req.irq_index} is not forwarded`);
        yield* mutexLock(plat.igate);
        try {
          yield* existing.unforward();
        } finally {
          plat.igate.unlock();
        }
        return 0;
      }
      if (existing !== undefined) throw errno('EEXIST', `${vdev.name} IRQ ${req.irq_index} is already forwarded`);
      const virq = vgic.vgicGetIrq(vintid)!;
      if (virq.hw) throw errno('EEXIST', `vIRQ ${vintid} is already mapped to a physical IRQ`);
      // kvm_vgic_set_owner's -EEXIST: another in-kernel device already drives the vIRQ
      if (virq.owner !== null) throw errno('EEXIST', `vIRQ ${vintid} is owned by another in-kernel device`);
      yield op(C_KVM_VFIO_ATTR, dev.oid);
      yield* mutexLock(plat.igate);
      try {
        const platIrq: VfioPlatformIrq = plat.irqs[req.irq_index]!;
        if (platIrq.trigger === null) {
          throw errno(
            'EINVAL',
            `${vdev.name} IRQ ${req.irq_index} has no trigger eventfd (VFIO_DEVICE_SET_IRQS first)`,
          );
        }
        if (platIrq.fwd !== null) throw errno('EEXIST', `${vdev.name} IRQ ${req.irq_index} is already forwarded`);
        const desc = plat.genirq.desc(platIrq.hwirq);
        if (shouldFailslab(kernel)) throw errno('ENOMEM', 'kzalloc of the forwarded IRQ record failed');
        let kdev = kv.devices.find((d) => d.vdev === vdev);
        if (kdev === undefined) {
          if (shouldFailslab(kernel)) throw errno('ENOMEM', 'kzalloc of the kvm_vfio_device record failed');
          kdev = new KvmVfioDevice(vdev, plat);
          kv.devices.push(kdev);
          keepRef = true;
        }
        const f = new KvmVfioFwdIrq(kv, kdev, req.irq_index, req.guest_irq, {
          vm,
          genirq: plat.genirq,
          desc,
          platIrq,
          vintid,
        });
        kdev.irqs.push(f);
        platIrq.fwd = f;
        yield* kv.setFwdState(f.arch, true);
        return 0;
      } finally {
        plat.igate.unlock();
      }
    } finally {
      kv.lock.unlock();
    }
  } catch (e) {
    ret = e instanceof ErrnoError ? -e.code : -1;
    throw e;
  } finally {
    traceDeviceAttr(dev, assign, vdev, req.irq_index, req.guest_irq, ret);
    if (!keepRef) vfioDevicePutExternalUser(vdev);
  }
}

/** The kvm_vfio_assign_irq / kvm_vfio_deassign_irq irqfwd events (hwintid 0 when the index has no IRQ). */
function traceDeviceAttr(dev: KvmDevice, assign: boolean, vdev: VfioDevice, index: number, gsi: number, ret: number) {
  const tr = dev.vm.trace;
  if (tr?.kvmVfioIrq === undefined) return;
  const plat = vdev.driverData instanceof VfioPlatformDevice ? vdev.driverData : null;
  const platIrq = plat?.irqs[index];
  const hwintid = plat !== null && platIrq !== undefined ? plat.genirq.desc(platIrq.hwirq).hwirq : 0;
  tr.kvmVfioIrq(dev.vm, assign, vdev.name, index, gsi, hwintid, ret);
}

/** kvm_vfio_release's group half: every group added to this VM is released. */
export function releaseGroups(kv: KvmVfio): void {
  for (const g of kv.groups.splice(0)) {
    g.group.kvm = null;
    fput(g.file);
  }
}

/** kvm_vfio_has_attr, with the two forwarding attributes. */
export function* kvmVfioHasAttr(_dev: KvmDevice, a: KvmDeviceAttr): TaskGen<number> {
  if (a.group === KVM_DEV_VFIO_GROUP && (a.attr === 1n || a.attr === 2n)) return 0;
  if (a.group === KVM_DEV_VFIO_DEVICE && (a.attr === 1n || a.attr === 2n)) return 0;
  throw errno('ENXIO', `kvm-vfio has no attribute ${a.group}/${a.attr}`);
}

/** The kvm-vfio ops with a given arch switch (the default's quiesce protocol, or variants/naive's). */
export function kvmVfioOpsWith(setFwdState: SetFwdState): KvmDeviceOps {
  const ops: KvmDeviceOps = {
    name: 'kvm-vfio',
    *create(dev) {
      // virt/kvm/vfio.c kvm_vfio_create: only one VFIO "device" per VM
      if (dev.vm.devices.some((d) => d.ops === ops && !d.gone)) {
        throw errno('EBUSY', 'this VM already has a kvm-vfio device');
      }
      dev.private_ = new KvmVfio(dev.vm, setFwdState);
    },
    *setAttr(dev, a: KvmDeviceAttr) {
      const kv = kvOf(dev);
      if (a.group === KVM_DEV_VFIO_GROUP) return yield* groupAttr(dev, kv, a.attr, a.addr);
      if (a.group === KVM_DEV_VFIO_DEVICE) return yield* deviceAttr(dev, kv, a.attr, a.addr);
      throw errno('ENXIO', `kvm-vfio has no attribute group ${a.group}`);
    },
    hasAttr: kvmVfioHasAttr,
    /** kvm_vfio_release: everything forwarded goes back to normal, every group is released. */
    *release(dev) {
      const kv = kvOf(dev);
      yield* mutexLock(kv.lock);
      try {
        yield* kv.unforwardWhere(() => true);
        releaseGroups(kv);
      } finally {
        kv.lock.unlock();
      }
    },
  };
  return ops;
}

export const kvmVfioOps: KvmDeviceOps = kvmVfioOpsWith(kvmArchSetFwdState);
