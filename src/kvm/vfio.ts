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
  type KvmArchForwardedIrq,
  type KvmDeviceAttr,
  kvmArchForwardedIrq,
} from '../abi/kvm.js';
import { shouldFailslab } from '../host/failslab.js';
import { fput, type KFile } from '../host/file.js';
import type { Genirq } from '../host/irq/genirq.js';
import type { IrqDesc } from '../host/irq/irqDesc.js';
import { defineCost } from '../sim/costs.js';
import { type Boundary, Frame, returnNow } from '../sim/frame.js';
import { Mutex, mutexLock, Spinlock, spinLockIrqsave, spinUnlockIrqrestore } from '../sim/locks.js';
import { markShared } from '../sim/snapshot.js';
import { type Call, type Op, op } from '../sim/task.js';
import { type VfioDevice, vfioDeviceGetExternalUser, vfioDevicePutExternalUser } from '../vfio/device.js';
import { VfioGroup } from '../vfio/group.js';
import { VfioPlatformDevice } from '../vfio/platform/vfioPlatform.js';
import type { VfioIrqForward, VfioPlatformIrq } from '../vfio/platform/vfioPlatformIrq.js';
import { type ArchFwdIrq, ForwardedIrqInject, kvmArchSetFwdState, type SetFwdState } from './arch/arm/forward.js';
import type { KvmDevice, KvmDeviceOps } from './device.js';
import { VGIC_NR_PRIVATE_IRQS } from './vgic/vgicIrq.js';
import type { KvmVm } from './vm.js';

export const C_KVM_VFIO_ATTR = defineCost(
  'kvm_vfio_attr',
  300,
  'kvm-vfio set_attr: copy_from_user, fdget, list walk under kv->lock; estimate',
);

/**
 * One forwarded IRQ (the seed's struct __kvm_arch_fwd_irq, kept in core code). The arch part is embedded, as a C
 * struct member is: the fields VFIO's handler reads on every forwarded IRQ sit in this one object.
 */
export class KvmVfioFwdIrq implements VfioIrqForward, ArchFwdIrq {
  dead = false;

  constructor(
    readonly vm: KvmVm,
    /** The guest's INTID (32 + guest_irq). */
    readonly vintid: number,
    readonly guestIrq: number,
    readonly platIrq: VfioPlatformIrq,
    readonly genirq: Genirq,
    readonly desc: IrqDesc,
    readonly kv: KvmVfio,
    readonly kdev: KvmVfioDevice,
    readonly index: number,
  ) {}

  /** The embedded arch part. */
  get arch(): ArchFwdIrq {
    return this;
  }

  /**
   * The producer → consumer call (the IRQ bypass role): VFIO's handler, in hardirq context with the physical INTID
   * active, injects the owned HW vIRQ directly instead of signalling the trigger eventfd. The trace keeps the
   * irqfd_inject event for this step.
   */
  inject(): Call<void> {
    return new ForwardedIrqInject(this.arch, this.guestIrq, this);
  }

  /** Back to the normal path and off the lists; the last IRQ of a device drops the device reference. */
  unforward(): Call<void> {
    return new KvmVfioUnforward(this);
  }
}

/** Unforward: the arch switch back to normal. */
const UF_SWITCH = 0;
/** Switched: off VFIO; take the list lock. */
const UF_SWITCHED = 1;
/** The list lock is held: off the lists. */
const UF_LISTED = 2;

/** KvmVfioFwdIrq.unforward as a frame: set_fwd_state(normal), then off the lists (the device's last IRQ puts it). */
class KvmVfioUnforward extends Frame {
  constructor(private readonly f: KvmVfioFwdIrq) {
    super();
  }

  protected step(sent: unknown): Boundary {
    const f = this.f;
    const kv = f.kv;
    switch (this.pc) {
      case UF_SWITCH:
        if (f.dead) return this.return_(undefined);
        f.dead = true;
        this.pc = UF_SWITCHED;
        return this.call(kv.setFwdState(f.arch, false));
      case UF_SWITCHED:
        f.arch.platIrq.fwd = null;
        this.pc = UF_LISTED;
        return this.call(spinLockIrqsave(kv.listLock));
      default: {
        // remove the forwarded IRQ from the lists; drop the device reference with the device's last IRQ
        let put: VfioDevice | null = null;
        const irqs = f.kdev.irqs;
        const i = irqs.indexOf(f);
        if (i >= 0) irqs.splice(i, 1);
        if (irqs.length === 0) {
          const j = kv.devices.indexOf(f.kdev);
          if (j >= 0) {
            kv.devices.splice(j, 1);
            put = f.kdev.vdev;
          }
        }
        spinUnlockIrqrestore(kv.listLock, sent as boolean);
        if (put !== null) vfioDevicePutExternalUser(put);
        return this.return_(undefined);
      }
    }
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

  /** Every forwarded IRQ of `group`'s devices (of all devices: null) back to normal (GROUP_DEL, or the release). */
  unforwardGroup(group: VfioGroup | null): Frame {
    return new KvmVfioUnforwardGroup(this, group);
  }
}

/** igate held: unforward (pc 0 is the start of the walk). */
const UG_LOCKED = 1;
/** Unforwarded: unlock igate. */
const UG_UNFORWARDED = 2;

/** KvmVfio.unforwardGroup as a frame: the devices and each device's IRQs as they were when its walk started. */
class KvmVfioUnforwardGroup extends Frame {
  private devs: KvmVfioDevice[] = [];
  private di = 0;
  private irqs: KvmVfioFwdIrq[] = [];
  private fi = 0;

  constructor(
    readonly kv: KvmVfio,
    private readonly group: VfioGroup | null,
  ) {
    super();
    this.devs = kv.devices.filter((d) => group === null || d.vdev.group === group);
    if (this.devs.length > 0) this.irqs = [...this.devs[0]!.irqs];
  }

  protected step(): Boundary {
    switch (this.pc) {
      case UG_LOCKED:
        this.pc = UG_UNFORWARDED;
        return this.call(this.irqs[this.fi]!.unforward());
      case UG_UNFORWARDED:
        this.devs[this.di]!.plat.igate.unlock();
        this.fi++;
        return this.next_();
      default: // the walk starts
        return this.next_();
    }
  }

  /** mutex_lock(&vdev->igate) for the next IRQ, or the end. */
  private next_(): Boundary {
    while (this.di < this.devs.length) {
      if (this.fi < this.irqs.length) {
        this.pc = UG_LOCKED;
        return this.call(mutexLock(this.devs[this.di]!.plat.igate));
      }
      this.di++;
      this.fi = 0;
      if (this.di < this.devs.length) this.irqs = [...this.devs[this.di]!.irqs];
    }
    return this.return_(undefined);
  }

  /** unforward threw with igate held. */
  protected override unwind(): void {
    if (this.pc === UG_UNFORWARDED) this.devs[this.di]!.plat.igate.unlock();
  }
}

export function kvOf(dev: KvmDevice): KvmVfio {
  return dev.privateAs(KvmVfio);
}

function userFd(dev: KvmDevice, addr: bigint): number {
  return dev.vm.kernel.currentUser().mem.readS32(addr);
}

/** GROUP_ADD / GROUP_DEL: the group's file, then kv->lock. */
const GA_START = 0;
/** kv->lock held. */
const GA_LOCKED = 1;
/** GROUP_DEL: the group's IRQs are back to normal. */
const GA_UNFORWARDED = 2;

/** kvm_vfio_file_add / kvm_vfio_file_del as a frame (the file reference and kv->lock are held while set). */
class KvmVfioGroupAttr extends Frame<number> {
  private file: KFile | null = null;
  private group: VfioGroup | null = null;
  private locked = false;
  /** The group's index in kv->groups. */
  private i = -1;

  constructor(
    private readonly dev: KvmDevice,
    private readonly kv: KvmVfio,
    private readonly add: boolean,
    private readonly addr: bigint,
  ) {
    super();
  }

  protected step(): Boundary {
    const kv = this.kv;
    switch (this.pc) {
      case GA_START: {
        const fd = userFd(this.dev, this.addr);
        const file = this.dev.vm.kernel.currentUser().files.fget(fd);
        this.file = file;
        const group = file.privateData;
        if (!(group instanceof VfioGroup)) throw errno('EINVAL', `fd ${fd} is not a VFIO group`);
        this.group = group;
        this.pc = GA_LOCKED;
        return this.call(mutexLock(kv.lock));
      }
      case GA_LOCKED: {
        this.locked = true;
        const group = this.group!;
        this.i = kv.groups.findIndex((g) => g.group === group);
        if (this.add) {
          if (this.i >= 0) throw errno('EEXIST', `VFIO group ${group.iommuGroup} is already added to this VM`);
          kv.groups.push({ file: this.file!.get(), group });
          group.kvm = this.dev.vm; // vfio_file_set_kvm
          return this.finish();
        }
        if (this.i < 0) throw errno('ENOENT', `VFIO group ${group.iommuGroup} was not added to this VM`);
        // The VM no longer owns the group: nothing of it may stay forwarded.
        this.pc = GA_UNFORWARDED;
        return this.call(kv.unforwardGroup(group));
      }
      default: {
        const [g] = kv.groups.splice(this.i, 1);
        this.group!.kvm = null;
        fput(g!.file);
        return this.finish();
      }
    }
  }

  private finish(): Boundary {
    this.unwind();
    return this.return_(0);
  }

  /** mutex_unlock(&kv->lock), then fput of the group's file: what is held. */
  protected override unwind(): void {
    if (this.locked) {
      this.locked = false;
      this.kv.lock.unlock();
    }
    if (this.file !== null) {
      fput(this.file);
      this.file = null;
    }
  }
}

/** kvm_vfio_file_add / kvm_vfio_file_del (KVM_DEV_VFIO_GROUP_ADD / _DEL). */
export function groupAttr(dev: KvmDevice, kv: KvmVfio, attr: bigint, addr: bigint): Frame<number> {
  if (attr !== BigInt(KVM_DEV_VFIO_GROUP_ADD) && attr !== BigInt(KVM_DEV_VFIO_GROUP_DEL)) {
    throw errno('ENXIO', `kvm-vfio: KVM_DEV_VFIO_GROUP has no attribute ${attr}`);
  }
  return new KvmVfioGroupAttr(dev, kv, attr === BigInt(KVM_DEV_VFIO_GROUP_ADD), addr);
}

/** KVM_DEV_VFIO_DEVICE_ASSIGN_IRQ / _DEASSIGN_IRQ: the request, the device reference, the checks; then kv->lock. */
const DA_START = 0;
/** kv->lock held: the VM-side checks. */
const DA_KV_LOCKED = 1;
/** DEASSIGN: igate held: unforward. */
const DA_DEASSIGN_IGATE = 2;
/** DEASSIGN: unforwarded. */
const DA_DEASSIGNED = 3;
/** ASSIGN: the attribute's step is done: take igate. */
const DA_ASSIGN_STEP = 4;
/** ASSIGN: igate held: record the IRQ and forward it. */
const DA_ASSIGN_IGATE = 5;
/** ASSIGN: forwarded. */
const DA_ASSIGNED = 6;

/**
 * KVM_DEV_VFIO_DEVICE_ASSIGN_IRQ / _DEASSIGN_IRQ as a frame. Its locals are the request and the VFIO device
 * reference; `kvLocked`/`igateLocked` say what an exception must release, and once the reference is held every exit
 * traces the result and drops the reference unless a newly assigned device keeps it.
 */
class KvmVfioDeviceAttr extends Frame<number> {
  private req: KvmArchForwardedIrq | null = null;
  private vdev: VfioDevice | null = null;
  private plat: VfioPlatformDevice | null = null;
  private existing: KvmVfioFwdIrq | undefined = undefined;
  private kvLocked = false;
  private igateLocked = false;
  /** The new kvm_vfio_device holds the reference. */
  private keepRef = false;

  constructor(
    private readonly dev: KvmDevice,
    private readonly kv: KvmVfio,
    private readonly assign: boolean,
    private readonly addr: bigint,
  ) {
    super();
  }

  /** Every exit once the reference is held: the trace (with the errno), and the reference dropped. */
  override next(sent?: unknown): IteratorResult<Op, number> {
    try {
      const r = super.next(sent);
      if (this.done) this.finish(0);
      return r;
    } catch (e) {
      if (this.vdev !== null) this.finish(e instanceof ErrnoError ? -e.code : -1);
      throw e;
    }
  }

  protected step(): Boundary {
    const kv = this.kv;
    switch (this.pc) {
      case DA_START:
        return this.start();
      case DA_KV_LOCKED:
        this.kvLocked = true;
        return this.kvLockedChecks();
      case DA_DEASSIGN_IGATE:
        this.igateLocked = true;
        this.pc = DA_DEASSIGNED;
        return this.call(this.existing!.unforward());
      case DA_DEASSIGNED:
      case DA_ASSIGNED:
        this.unlock();
        return this.return_(0);
      case DA_ASSIGN_STEP:
        this.pc = DA_ASSIGN_IGATE;
        return this.call(mutexLock(this.plat!.igate));
      default: {
        // DA_ASSIGN_IGATE
        this.igateLocked = true;
        const vdev = this.vdev!;
        const plat = this.plat!;
        const req = this.req!;
        const kernel = this.dev.vm.kernel;
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
          this.keepRef = true;
        }
        const vintid = req.guest_irq + VGIC_NR_PRIVATE_IRQS;
        const f = new KvmVfioFwdIrq(
          this.dev.vm,
          vintid,
          req.guest_irq,
          platIrq,
          plat.genirq,
          desc,
          kv,
          kdev,
          req.irq_index,
        );
        kdev.irqs.push(f);
        platIrq.fwd = f;
        this.pc = DA_ASSIGNED;
        return this.call(kv.setFwdState(f.arch, true));
      }
    }
  }

  /** The request, the VFIO device reference (held from here on), the device checks; then mutex_lock(&kv->lock). */
  private start(): Boundary {
    const kernel = this.dev.vm.kernel;
    const req = kvmArchForwardedIrq.read(kernel.currentUser().mem.view(this.addr, kvmArchForwardedIrq.size));
    this.req = req;
    const file = kernel.currentUser().files.fget(req.fd | 0);
    try {
      this.vdev = vfioDeviceGetExternalUser(file);
    } finally {
      fput(file);
    }
    const vdev = this.vdev;
    const plat = vdev.driverData;
    if (!(plat instanceof VfioPlatformDevice)) throw errno('EINVAL', `${vdev.name} is not a VFIO platform device`);
    if (req.irq_index >= plat.numIrqs) {
      throw errno('EINVAL', `irq_index ${req.irq_index} out of range (${vdev.name} has ${plat.numIrqs})`);
    }
    this.plat = plat;
    this.pc = DA_KV_LOCKED;
    return this.call(mutexLock(this.kv.lock));
  }

  /** Under kv->lock: the vIRQ is an SPI, the group was added; DEASSIGN unforwards, ASSIGN checks the vIRQ is free. */
  private kvLockedChecks(): Boundary {
    const kv = this.kv;
    const vdev = this.vdev!;
    const req = this.req!;
    const vintid = req.guest_irq + VGIC_NR_PRIVATE_IRQS;
    const vgic = this.dev.vm.vgic;
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
    if (!this.assign) {
      if (existing === undefined) throw errno('ENOENT', `${vdev.name} IRQ ${req.irq_index} is not forwarded`);
      this.existing = existing;
      this.pc = DA_DEASSIGN_IGATE;
      return this.call(mutexLock(this.plat!.igate));
    }
    if (existing !== undefined) throw errno('EEXIST', `${vdev.name} IRQ ${req.irq_index} is already forwarded`);
    const virq = vgic.vgicGetIrq(vintid)!;
    if (virq.hw) throw errno('EEXIST', `vIRQ ${vintid} is already mapped to a physical IRQ`);
    // kvm_vgic_set_owner's -EEXIST: another in-kernel device already drives the vIRQ
    if (virq.owner !== null) throw errno('EEXIST', `vIRQ ${vintid} is owned by another in-kernel device`);
    this.pc = DA_ASSIGN_STEP;
    return this.yield_(op(C_KVM_VFIO_ATTR, this.dev.oid));
  }

  /** mutex_unlock(&vdev->igate), mutex_unlock(&kv->lock): what is held. */
  private unlock(): void {
    if (this.igateLocked) {
      this.igateLocked = false;
      this.plat!.igate.unlock();
    }
    if (this.kvLocked) {
      this.kvLocked = false;
      this.kv.lock.unlock();
    }
  }

  protected override unwind(): void {
    this.unlock();
  }

  private finish(ret: number): void {
    const vdev = this.vdev!;
    this.vdev = null;
    traceDeviceAttr(this.dev, this.assign, vdev, this.req!.irq_index, this.req!.guest_irq, ret);
    if (!this.keepRef) vfioDevicePutExternalUser(vdev);
  }
}

/** KVM_DEV_VFIO_DEVICE_ASSIGN_IRQ / _DEASSIGN_IRQ. */
function deviceAttr(dev: KvmDevice, kv: KvmVfio, attr: bigint, addr: bigint): Frame<number> {
  const assign = attr === BigInt(KVM_DEV_VFIO_DEVICE_ASSIGN_IRQ);
  if (!assign && attr !== BigInt(KVM_DEV_VFIO_DEVICE_DEASSIGN_IRQ)) {
    throw errno('ENXIO', `kvm-vfio: KVM_DEV_VFIO_DEVICE has no attribute ${attr}`);
  }
  return new KvmVfioDeviceAttr(dev, kv, assign, addr);
}

/** The kvm_vfio_assign_irq / kvm_vfio_deassign_irq irqfwd events (hwintid 0 when the index has no IRQ). */
export function traceDeviceAttr(
  dev: KvmDevice,
  assign: boolean,
  vdev: VfioDevice,
  index: number,
  gsi: number,
  ret: number,
) {
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
export function kvmVfioHasAttr(_dev: KvmDevice, a: KvmDeviceAttr): Frame<number> {
  if (a.group === KVM_DEV_VFIO_GROUP && (a.attr === 1n || a.attr === 2n)) return returnNow(0);
  if (a.group === KVM_DEV_VFIO_DEVICE && (a.attr === 1n || a.attr === 2n)) return returnNow(0);
  throw errno('ENXIO', `kvm-vfio has no attribute ${a.group}/${a.attr}`);
}

/**
 * The kvm-vfio ops with a given arch switch (the default's quiesce protocol, or variants/naive's): a table of code,
 * made once per switch at module level, whose switch is code too.
 */
export function kvmVfioOpsWith(setFwdState: SetFwdState): KvmDeviceOps {
  const ops: KvmDeviceOps = {
    name: 'kvm-vfio',
    create(dev) {
      // virt/kvm/vfio.c kvm_vfio_create: only one VFIO "device" per VM
      if (dev.vm.devices.some((d) => d.ops === ops && !d.gone)) {
        throw errno('EBUSY', 'this VM already has a kvm-vfio device');
      }
      dev.private_ = new KvmVfio(dev.vm, setFwdState);
      return returnNow(undefined);
    },
    setAttr(dev, a: KvmDeviceAttr) {
      const kv = kvOf(dev);
      if (a.group === KVM_DEV_VFIO_GROUP) return groupAttr(dev, kv, a.attr, a.addr);
      if (a.group === KVM_DEV_VFIO_DEVICE) return deviceAttr(dev, kv, a.attr, a.addr);
      throw errno('ENXIO', `kvm-vfio has no attribute group ${a.group}`);
    },
    hasAttr: kvmVfioHasAttr,
    /** kvm_vfio_release: everything forwarded goes back to normal, every group is released. */
    release(dev) {
      return new KvmVfioRelease(kvOf(dev));
    },
  };
  return markShared(ops);
}

export const kvmVfioOps: KvmDeviceOps = kvmVfioOpsWith(kvmArchSetFwdState);

/** kvm_vfio_release: kv->lock. */
const RL_LOCK = 0;
/** kv->lock held: everything back to normal. */
const RL_LOCKED = 1;
/** Unforwarded: the groups go, unlock. */
const RL_UNFORWARDED = 2;

/** kvm_vfio_release as a frame: everything forwarded goes back to normal, every group is released. */
class KvmVfioRelease extends Frame {
  constructor(private readonly kv: KvmVfio) {
    super();
  }

  protected step(): Boundary {
    const kv = this.kv;
    switch (this.pc) {
      case RL_LOCK:
        this.pc = RL_LOCKED;
        return this.call(mutexLock(kv.lock));
      case RL_LOCKED:
        this.pc = RL_UNFORWARDED;
        return this.call(kv.unforwardGroup(null));
      default:
        releaseGroups(kv);
        kv.lock.unlock();
        return this.return_(undefined);
    }
  }

  /** An unforward threw with kv->lock held. */
  protected override unwind(): void {
    if (this.pc === RL_UNFORWARDED) this.kv.lock.unlock();
  }
}
