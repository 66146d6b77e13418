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
import type { IrqDesc } from '../../../host/irq/irqDesc.js';
import { disableIrq, enableIrq, irqSetVcpuAffinity } from '../../../host/irq/manage.js';
import { ModelError } from '../../../sim/errors.js';
import { type Boundary, Frame, returnNow } from '../../../sim/frame.js';
import { mutexLock } from '../../../sim/locks.js';
import { markShared } from '../../../sim/snapshot.js';
import { op } from '../../../sim/task.js';
import { type VfioDevice, vfioDeviceGetExternalUser, vfioDevicePutExternalUser } from '../../../vfio/device.js';
import { VfioPlatformDevice } from '../../../vfio/platform/vfioPlatform.js';
import type { VfioPlatformIrq } from '../../../vfio/platform/vfioPlatformIrq.js';
import type { KvmDevice, KvmDeviceOps } from '../../device.js';
import type { KvmVcpu } from '../../vcpu.js';
import {
  C_KVM_VFIO_ATTR,
  groupAttr,
  KvmVfio,
  kvmVfioHasAttr,
  kvOf,
  releaseGroups,
  traceDeviceAttr,
} from '../../vfio.js';
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

/** set_fwd_state: disable_irq. */
const SF_DISABLE = 0;
/** disabled: the in-progress check, then the action. */
const SF_DISABLED = 1;
/** irqd_set_irq_forwarded / irqd_clr_irq_forwarded: irq_set_vcpu_affinity returned (see the module comment). */
const SF_IRQD_SET = 2;
/** enable_irq. */
const SF_ENABLE = 3;
/** enabled: return. */
const SF_RETURN = 4;

/** set_fwd_state as a frame: program the GIC and the vGIC; returns the vGIC map/unmap status. */
class SetFwdState extends Frame<number> {
  private ret = 0;
  private desc: IrqDesc | null = null;

  constructor(
    private readonly pfwd: KvmArchFwdIrq,
    private readonly action: number,
  ) {
    super();
  }

  protected step(): Boundary {
    const pfwd = this.pfwd;
    const g = pfwd.genirq;
    const action = this.action;
    switch (this.pc) {
      case SF_DISABLE:
        this.desc = g.desc(pfwd.hwirq);
        // seed defect: set_fwd_state uses disable_irq: synchronize_irq spins while the guest holds a forwarded INTID active
        this.pc = SF_DISABLED;
        return this.call(disableIrq(g, pfwd.hwirq));
      case SF_DISABLED:
        if (this.desc!.inprogress) {
          // seed defect: set_fwd_state refuses an IRQ in progress with -1, i.e. -EPERM, instead of waiting it out
          this.ret = -1;
          return this.enable();
        }
        if (
          action === KVM_VFIO_IRQ_SET_FORWARD ||
          action === KVM_VFIO_IRQ_SET_NORMAL ||
          action === KVM_VFIO_IRQ_CLEANUP
        ) {
          const on = action === KVM_VFIO_IRQ_SET_FORWARD;
          this.pc = SF_IRQD_SET;
          return this.call(irqSetVcpuAffinity(g, pfwd.hwirq, on ? pfwd.vcpu : null));
        }
        // seed defect: set_fwd_state's invalid-action branch calls enable_irq here and again below: unbalanced
        this.ret = -EINVAL;
        this.pc = SF_ENABLE;
        return this.call(enableIrq(g, pfwd.hwirq));
      case SF_IRQD_SET: {
        const on = action === KVM_VFIO_IRQ_SET_FORWARD;
        pfwd.platIrq.forwarded = on;
        pfwd.vm.trace?.irqForwardSet?.(pfwd.hwirq, on, on ? (pfwd.vcpu?.id ?? -1) : -1);
        if (action === KVM_VFIO_IRQ_SET_FORWARD) this.ret = vgicMapPhysIrq(pfwd);
        else if (action === KVM_VFIO_IRQ_SET_NORMAL) this.ret = vgicUnmapPhysIrq(pfwd);
        else {
          // seed defect: set_fwd_state(CLEANUP) does a blind chip->irq_eoi, whether or not the INTID is active, on any CPU
          const desc = this.desc!;
          this.ret = 0;
          this.pc = SF_ENABLE;
          return this.call(desc.chip.irqEoi(desc));
        }
        return this.enable();
      }
      case SF_ENABLE:
        return this.enable();
      default:
        return this.return_(this.ret);
    }
  }

  private enable(): Boundary {
    this.pc = SF_RETURN;
    return this.call(enableIrq(this.pfwd.genirq, this.pfwd.hwirq));
  }
}

export function setFwdState(pfwd: KvmArchFwdIrq, action: number): Frame<number> {
  return new SetFwdState(pfwd, action);
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

/** remove_assigned_device as a frame: returns bool, but its error path returns the int `ret` (true). */
class RemoveAssignedDevice extends Frame<boolean> {
  private d: SeedKvmVfioDevice | null = null;
  /** The device's forwarded IRQs when the walk started, and the next one. */
  private irqs: KvmArchFwdIrq[] = [];
  private i = 0;

  constructor(
    private readonly kv: KvmVfio,
    private readonly vdev: VfioDevice,
  ) {
    super();
  }

  protected step(sent: unknown): Boundary {
    if (this.pc === 0) {
      const d = findInAssignedDevices(this.kv, this.vdev);
      if (d === null) return this.return_(false);
      this.d = d;
      this.irqs = [...d.fwdIrqList];
      this.pc = 1;
    } else {
      // set_fwd_state(f, KVM_VFIO_IRQ_SET_NORMAL) returned
      if ((sent as number) < 0) return this.return_(true); // seed defect: a negative int returned as bool (true)
      const list = this.d!.fwdIrqList;
      list.splice(list.indexOf(this.irqs[this.i++]!), 1);
    }
    if (this.i < this.irqs.length) return this.call(setFwdState(this.irqs[this.i]!, KVM_VFIO_IRQ_SET_NORMAL));
    const list = archDataOf(this.kv).assignedDeviceList;
    list.splice(list.indexOf(this.d!), 1);
    vfioDevicePutExternalUser(this.d!.vfioDevice);
    return this.return_(true);
  }
}

/** remove_fwd_irq: set_fwd_state(NORMAL). */
const RF_START = 0;
/** set_fwd_state returned: off the list. */
const RF_NORMAL = 1;
/** remove_assigned_device returned. */
const RF_RETURN = 2;

/** remove_fwd_irq as a frame. */
class RemoveFwdIrq extends Frame<number> {
  private ret = -1;
  private f: KvmArchFwdIrq | null = null;

  constructor(
    private readonly kv: KvmVfio,
    private readonly kvmVdev: SeedKvmVfioDevice,
    private readonly irqIndex: number,
  ) {
    super();
  }

  protected step(sent: unknown): Boundary {
    const list = this.kvmVdev.fwdIrqList;
    switch (this.pc) {
      case RF_START: {
        const f = list.find((x) => x.irqIndex === this.irqIndex);
        if (f === undefined) return this.removeDevice();
        this.f = f;
        this.pc = RF_NORMAL;
        return this.call(setFwdState(f, KVM_VFIO_IRQ_SET_NORMAL));
      }
      case RF_NORMAL:
        this.ret = sent as number;
        if (this.ret >= 0) {
          list.splice(list.indexOf(this.f!), 1);
          this.ret = 0;
        }
        return this.removeDevice();
      default:
        return this.return_(this.ret);
    }
  }

  private removeDevice(): Boundary {
    if (this.kvmVdev.fwdIrqList.length !== 0) return this.return_(this.ret);
    this.pc = RF_RETURN;
    return this.call(new RemoveAssignedDevice(this.kv, this.kvmVdev.vfioDevice));
  }
}

/**
 * free_all_fwd_irq as a frame: CLEANUP every forwarded IRQ (the vCPUs are gone, so the vGIC is not touched), put
 * every device.
 */
class FreeAllFwdIrq extends Frame<number> {
  /** The devices and the current device's IRQs when their walks started, and the next of each. */
  private devs: SeedKvmVfioDevice[] = [];
  private di = 0;
  private irqs: KvmArchFwdIrq[] = [];
  private fi = 0;

  constructor(private readonly kv: KvmVfio) {
    super();
  }

  protected step(): Boundary {
    const list = archDataOf(this.kv).assignedDeviceList;
    if (this.pc === 0) {
      this.devs = [...list];
      this.pc = 1;
      if (this.devs.length > 0) this.irqs = [...this.devs[0]!.fwdIrqList];
    } else {
      // seed defect: free_all_fwd_irq ignores set_fwd_state's result
      const d = this.devs[this.di]!;
      d.fwdIrqList.splice(d.fwdIrqList.indexOf(this.irqs[this.fi++]!), 1);
    }
    for (;;) {
      if (this.di === this.devs.length) return this.return_(0);
      if (this.fi < this.irqs.length) return this.call(setFwdState(this.irqs[this.fi]!, KVM_VFIO_IRQ_CLEANUP));
      const d = this.devs[this.di++]!;
      list.splice(list.indexOf(d), 1);
      vfioDevicePutExternalUser(d.vfioDevice);
      this.fi = 0;
      if (this.di < this.devs.length) this.irqs = [...this.devs[this.di]!.fwdIrqList];
    }
  }
}

export function freeAllFwdIrq(kv: KvmVfio): Frame<number> {
  return new FreeAllFwdIrq(kv);
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

/** What insert_and_forward returns: its status, and whether the caller must drop the reference it took. */
interface InsertResult {
  ret: number;
  mustPut: boolean;
}

/** insert_and_forward: validate, allocate, the attribute's step. */
const IF_START = 0;
/** set_fwd_state(SET_FORWARD). */
const IF_FORWARD = 1;
/** set_fwd_state(SET_FORWARD) returned: record, or undo. */
const IF_FORWARDED = 2;
/** The undo's set_fwd_state returned: fail with `ret`. */
const IF_UNDONE = 3;

/** insert_and_forward as a frame: validate, forward, record. */
class InsertAndForward extends Frame<InsertResult> {
  private pfwd: KvmArchFwdIrq | null = null;
  private kvmVdev: SeedKvmVfioDevice | null = null;
  private ret = 0;

  constructor(
    private readonly dev: KvmDevice,
    private readonly vdev: VfioDevice | null,
    private readonly fwdIrq: KvmArchForwardedIrq,
  ) {
    super();
  }

  protected step(sent: unknown): Boundary {
    const dev = this.dev;
    const fwdIrq = this.fwdIrq;
    switch (this.pc) {
      case IF_START: {
        const kv = kvOf(dev);
        const v = validateForward(kv, this.vdev, fwdIrq);
        if (v.ret < 0) return this.return_({ ret: -EINVAL, mustPut: true });
        const plat = v.plat!;
        if (!kzalloc(dev)) return this.return_({ ret: -ENOMEM, mustPut: true });
        const pfwd = new KvmArchFwdIrq(dev.vm, plat.genirq, plat.irqs[fwdIrq.irq_index]!);
        pfwd.irqIndex = fwdIrq.irq_index;
        pfwd.guestIrq = fwdIrq.guest_irq;
        pfwd.hwirq = v.hwirq;
        // seed defect: insert_and_forward always targets vCPU 0 (kvm_get_vcpu(kvm, 0)), not the vIRQ's vGIC routing
        pfwd.vcpu = dev.vm.vcpus[0] ?? null;
        this.pfwd = pfwd;
        this.kvmVdev = v.kvmVdev;
        this.pc = IF_FORWARD;
        return this.yield_(op(C_KVM_VFIO_ATTR, dev.oid));
      }
      case IF_FORWARD:
        this.pc = IF_FORWARDED;
        return this.call(setFwdState(this.pfwd!, KVM_VFIO_IRQ_SET_FORWARD));
      case IF_FORWARDED: {
        const ret = sent as number;
        if (ret < 0) {
          // seed defect: insert_and_forward's error path runs CLEANUP, i.e. a blind EOI of an IRQ it never forwarded
          return this.undo(ret, KVM_VFIO_IRQ_CLEANUP);
        }
        let kvmVdev = this.kvmVdev;
        let mustPut = true;
        if (kvmVdev === null) {
          // seed defect: insert_and_forward undoes with set_fwd_state(pfwd, false): false is 0, SET_FORWARD, not NORMAL
          if (!kzalloc(dev)) return this.undo(-ENOMEM, 0);
          kvmVdev = new SeedKvmVfioDevice(this.vdev!);
          kvmVdev.fd = fwdIrq.fd;
          archDataOf(kvOf(dev)).assignedDeviceList.unshift(kvmVdev);
          mustPut = false; // the only case where the reference is kept
        }
        kvmVdev.fwdIrqList.unshift(this.pfwd!);
        return this.return_({ ret: 0, mustPut });
      }
      default:
        return this.return_({ ret: this.ret, mustPut: true });
    }
  }

  private undo(ret: number, action: number): Boundary {
    this.ret = ret;
    this.pc = IF_UNDONE;
    return this.call(setFwdState(this.pfwd!, action));
  }
}

/** kvm_vfio_set_device: copy_from_user, get_vfio_device, then mutex_lock(&kv->lock). */
const SD_START = 0;
/** ASSIGN: kv->lock held: insert_and_forward. */
const SD_ASSIGN_LOCKED = 1;
/** insert_and_forward returned. */
const SD_ASSIGNED = 2;
/** DEASSIGN: kv->lock held: cancel_and_delete_forward. */
const SD_DEASSIGN_LOCKED = 3;
/** cancel_and_delete_forward's remove_fwd_irq returned. */
const SD_DEASSIGNED = 4;

/** kvm_vfio_set_device as a frame (kv->lock is held while `locked`). */
class KvmVfioSetDevice extends Frame<number> {
  private fwdIrq: KvmArchForwardedIrq | null = null;
  private vdev: VfioDevice | null = null;
  private locked = false;

  constructor(
    private readonly dev: KvmDevice,
    private readonly assign: boolean,
    private readonly addr: bigint,
  ) {
    super();
  }

  protected step(sent: unknown): Boundary {
    const dev = this.dev;
    const kv = kvOf(dev);
    switch (this.pc) {
      case SD_START: {
        const user = dev.vm.kernel.currentUser();
        const fwdIrq = kvmArchForwardedIrq.read(user.mem.view(this.addr, kvmArchForwardedIrq.size)); // copy_from_user
        this.fwdIrq = fwdIrq;
        const vdev = getVfioDevice(dev, fwdIrq.fd | 0); // IS_ERR(vdev): only a thrown ERR_PTR gets out here
        this.vdev = vdev;
        if (this.assign) {
          this.pc = SD_ASSIGN_LOCKED;
          return this.call(mutexLock(kv.lock));
        }
        if (vdev === null) {
          throw new ModelError(
            `seed defect: kvm_vfio_set_device: get_vfio_device(${fwdIrq.fd}) returned NULL (fd not open), IS_ERR missed it, ` +
              'and kvm_vfio_device_put_external_user dereferences it',
          );
        }
        vfioDevicePutExternalUser(vdev); // the seed drops its reference before using vdev
        this.pc = SD_DEASSIGN_LOCKED;
        return this.call(mutexLock(kv.lock));
      }
      case SD_ASSIGN_LOCKED:
        this.locked = true;
        this.pc = SD_ASSIGNED;
        return this.call(new InsertAndForward(dev, this.vdev, this.fwdIrq!));
      case SD_ASSIGNED: {
        const r = sent as InsertResult;
        if (r.mustPut) vfioDevicePutExternalUser(this.vdev!);
        return this.unlockAndReturn(r.ret, 'ASSIGN_IRQ');
      }
      case SD_DEASSIGN_LOCKED: {
        this.locked = true;
        // cancel_and_delete_forward
        const fwdIrq = this.fwdIrq!;
        const v = validateDeassign(kv, this.vdev!, fwdIrq);
        if (v.ret < 0) return this.unlockAndReturn(-EINVAL, 'DEASSIGN_IRQ');
        this.pc = SD_DEASSIGNED;
        return this.call(new RemoveFwdIrq(kv, v.kvmVdev!, fwdIrq.irq_index));
      }
      default:
        return this.unlockAndReturn(sent as number, 'DEASSIGN_IRQ');
    }
  }

  private unlockAndReturn(ret: number, what: string): Boundary {
    const fwdIrq = this.fwdIrq!;
    if (this.vdev !== null) traceDeviceAttr(this.dev, this.assign, this.vdev, fwdIrq.irq_index, fwdIrq.guest_irq, ret);
    const r = check(ret, `${what} fd ${fwdIrq.fd} index ${fwdIrq.irq_index}`);
    this.unwind();
    return this.return_(r);
  }

  /** mutex_unlock(&kv->lock) if held. */
  protected override unwind(): void {
    if (!this.locked) return;
    this.locked = false;
    kvOf(this.dev).lock.unlock();
  }
}

/** kvm_vfio_set_device. */
function kvmVfioSetDevice(dev: KvmDevice, attr: bigint, addr: bigint): Frame<number> {
  const assign = attr === BigInt(KVM_DEV_VFIO_DEVICE_ASSIGN_IRQ);
  if (!assign && attr !== BigInt(KVM_DEV_VFIO_DEVICE_DEASSIGN_IRQ)) {
    throw errno('ENXIO', `rfc-v1 kvm_vfio_set_device: no attribute ${attr}`);
  }
  return new KvmVfioSetDevice(dev, assign, addr);
}

/** kvm_vfio_destroy: the groups are released. */
const VD_GROUPS = 0;
/** kvm_arch_vfio_destroy's free_all_fwd_irq returned. */
const VD_FREED = 1;

/**
 * kvm_vfio_destroy (VM destruction; the series' kvm-vfio has no ->release) as a frame: the groups, then
 * kvm_arch_vfio_destroy.
 */
class KvmVfioDestroy extends Frame {
  constructor(private readonly kv: KvmVfio) {
    super();
  }

  protected step(): Boundary {
    if (this.pc !== VD_GROUPS) return this.return_(undefined);
    releaseGroups(this.kv);
    this.pc = VD_FREED;
    return this.call(freeAllFwdIrq(this.kv));
  }
}

/** The kvm-vfio device of the seed series: generic groups (the default core's), ARM forwarding as ported above. */
export const kvmVfioRfcV1Ops: KvmDeviceOps = markShared({
  name: 'kvm-vfio',
  create(dev) {
    if (dev.vm.devices.some((d) => d.ops === kvmVfioRfcV1Ops && !d.gone)) {
      throw errno('EBUSY', 'this VM already has a kvm-vfio device');
    }
    dev.private_ = new RfcV1KvmVfio(dev.vm); // kvm_vfio_create + kvm_arch_vfio_init
    return returnNow(undefined);
  },
  setAttr(dev, a: KvmDeviceAttr) {
    // seed defect: GROUP_DEL (generic code of the series) leaves the group's forwarded IRQs forwarded
    if (a.group === KVM_DEV_VFIO_GROUP) return groupAttr(dev, kvOf(dev), a.attr, a.addr);
    if (a.group === KVM_DEV_VFIO_DEVICE) return kvmVfioSetDevice(dev, a.attr, a.addr); // kvm_arch_vfio_set_attr
    throw errno('ENXIO', `kvm-vfio has no attribute group ${a.group}`);
  },
  hasAttr: kvmVfioHasAttr,
  destroy: (dev) => new KvmVfioDestroy(kvOf(dev)),
});
