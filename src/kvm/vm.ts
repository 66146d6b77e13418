/**
 * A VM (struct kvm) and its fd (virt/kvm/kvm_main.c kvm_vm_ioctl, arm64 kvm_arch_vm_ioctl): vCPU creation, the
 * device list, KVM_IRQ_LINE, KVM_IRQFD, references (kvm_get_kvm / kvm_put_kvm) and destruction.
 *
 * Lifetime: the VM fd holds one reference; every vCPU fd and device fd holds one more. Closing the VM fd releases the
 * irqfds (kvm_vm_release → kvm_irqfd_release) and drops its reference; the last reference destroys the VM
 * (kvm_destroy_vm) in whichever task dropped it. Deviation: the kernel runs kvm_arch_destroy_vm (vGIC teardown)
 * before kvm_destroy_devices; the model destroys the devices first so that a destroy-only device (kvm-vfio without
 * .release) can still unmap its vIRQs from a live vGIC. With a .release op the order does not matter.
 */
import { errno } from '../abi/errno.js';
import {
  KVM_ARM_IRQ_CPU_FIQ,
  KVM_ARM_IRQ_TYPE_CPU,
  KVM_ARM_IRQ_TYPE_PPI,
  KVM_ARM_IRQ_TYPE_SPI,
  KVM_ARM_PREFERRED_TARGET,
  KVM_ARM_TARGET_GENERIC_V8,
  KVM_CHECK_EXTENSION,
  KVM_CREATE_DEVICE,
  KVM_CREATE_DEVICE_TEST,
  KVM_CREATE_VCPU,
  KVM_DEV_TYPE_ARM_VGIC_V2,
  KVM_IRQ_LINE,
  KVM_IRQ_LINE_STATUS,
  KVM_IRQFD,
  KVM_RUN_SIZE,
  KVM_SET_GSI_ROUTING,
  KVM_SIGNAL_MSI,
  kvmArmIrqLineDecode,
  kvmCreateDevice,
  kvmIrqLevel,
  kvmVcpuInit,
} from '../abi/kvm.js';
import { errnoFromReturn, type FileOperations, type KFile, O_CLOEXEC, O_RDWR } from '../host/file.js';
import { C_CPU_RELAX } from '../host/irq/manage.js';
import type { Kernel, UserContext } from '../host/kernel.js';
import { KObject } from '../host/kref.js';
import { ModelError } from '../sim/errors.js';
import { touch } from '../sim/footprint.js';
import { type Boundary, Frame } from '../sim/frame.js';
import { Mutex, mutexLock } from '../sim/locks.js';
import { markShared } from '../sim/snapshot.js';
import { type Call, cpuRelax, op } from '../sim/task.js';
import { C_KVM_CREATE, C_KVM_DESTROY, C_KVM_IOCTL } from './costs.js';
import { KvmDevice, type KvmDeviceOps, kvmDeviceFops } from './device.js';
import { KvmGuestMemory } from './guestMem.js';
import { KvmIrqfds, kvmIrqfd } from './irqfd.js';
import { type KvmIrqRoutingTable, kvmIrqMapGsi, kvmSetIrqRouted, kvmVgicSetupDefaultIrqRouting } from './irqRouting.js';
import { KVM_MAX_VCPU_IDS, type Kvm, type KvmTraceHooks } from './kvm.js';
import { KvmSetGsiRouting, KvmSignalMsi } from './msiIoctl.js';
import { KvmVcpu } from './vcpu.js';
import { C_VGIC_INJECT, Vgic, type VgicCpu } from './vgic/vgic.js';
import { VGIC_NR_PRIVATE_IRQS } from './vgic/vgicIrq.js';
import type { VgicIts } from './vgic/vgicIts.js';
import { vgicRegisterRedistIodev, vgicV3CheckNewVcpuRedist } from './vgic/vgicV3Redist.js';
import { VgicV4Teardown } from './vgic/vgicV4.js';

/** VGIC_ADDR_UNDEF: a vGIC base address not set yet. */
export const VGIC_ADDR_UNDEF = 0xffff_ffff_ffff_ffffn;

export class KvmVm extends KObject {
  readonly kernel: Kernel;
  readonly oid: number;
  /** kvm->lock. */
  readonly lock: Mutex;
  readonly vcpus: KvmVcpu[] = [];
  /** kvm->created_vcpus (counts vCPUs whose creation is under way). */
  createdVcpus = 0;
  /** kvm->max_vcpus. */
  maxVcpus: number;
  /** kvm->devices. */
  readonly devices: KvmDevice[] = [];
  /** The in-kernel vGIC (irqchip_in_kernel), set by the vGIC-v2 device's create. */
  vgic: Vgic | null = null;
  /** vgic_dist.vgic_dist_base / vgic_cpu_base (u64 IPAs, VGIC_ADDR_UNDEF until set). */
  vgicDistBase = VGIC_ADDR_UNDEF;
  vgicCpuBase = VGIC_ADDR_UNDEF;
  /** dist->ready: kvm_vgic_map_resources has run (first KVM_RUN). */
  vgicReady = false;
  /** The ITS devices (struct vgic_its), whose frames sit on the MMIO bus once their base is set. */
  readonly vgicIts: VgicIts[] = [];
  /** kvm->irq_routing: null until vgic_init installs the default table or KVM_SET_GSI_ROUTING a table. */
  irqRouting: KvmIrqRoutingTable | null = null;
  /** The guest's RAM (kvm_read_guest / kvm_write_guest). */
  readonly guestMem: KvmGuestMemory;
  readonly irqfds: KvmIrqfds;
  readonly fops: FileOperations;
  destroyed = false;

  constructor(
    readonly kvm: Kvm,
    /** kvm->mm: the process that created the VM; other processes get EIO. */
    readonly owner: UserContext,
    readonly ipaBits: number,
  ) {
    super(kvm.kernel.refs, 'kvm', `kvm-${owner.pid}`);
    this.kernel = kvm.kernel;
    this.oid = kvm.engine.newOid('kvm');
    this.lock = new Mutex(kvm.engine, 'kvm->lock');
    this.maxVcpus = kvm.checkExtension(null, 66 /* KVM_CAP_MAX_VCPUS */);
    this.irqfds = new KvmIrqfds(this);
    this.fops = KVM_VM_FOPS;
    this.guestMem = new KvmGuestMemory(ipaBits);
  }

  get trace(): KvmTraceHooks | null {
    return this.kvm.trace;
  }

  /** kvm_get_vcpu_by_id. */
  vcpuById(id: number): KvmVcpu | undefined {
    return this.vcpus.find((v) => v.id === id);
  }

  /** kvm_get_kvm. */
  kvmGetKvm(): void {
    this.get();
  }

  /** kvm_put_kvm: the last reference destroys the VM, in the calling task. */
  kvmPutKvm(): Frame {
    return new KvmPutKvm(this);
  }

  /**
   * kvm_arm_halt_guest: pause every vCPU and wait until each is out of guest mode with its list registers folded
   * back into the vGIC and asleep where it cannot touch the vGIC (kvm_vcpu_sleep or kvm_vcpu_block). Must not be
   * called holding a spinlock the vCPU exit path takes.
   */
  kvmArmHaltGuest(): Frame {
    return new KvmArmHaltGuest(this);
  }

  /** kvm_arm_resume_guest. */
  kvmArmResumeGuest(): void {
    for (const v of this.vcpus) {
      v.paused = false;
      touch(v.pauseOid);
      v.pauseWq.wakeUpAll();
    }
  }

  // ---- vGIC glue -----------------------------------------------------------------------------------------------

  /** VgicKicker: an injection's kvm_vcpu_kick of the target vCPU. */
  kickVcpu(vc: VgicCpu): void {
    this.vcpus[vc.id]?.kvmVcpuKick();
  }

  /** kvm_vgic_create's allocation: the vGIC (of vgic_model `model`) with this VM's host-IRQ ops, kicks and ack notifier. */
  createVgic(model: number = KVM_DEV_TYPE_ARM_VGIC_V2): Vgic {
    if (this.vgic !== null) throw new ModelError('vGIC created twice');
    const vgic = new Vgic(this.kvm.engine, {
      model,
      hostIrqOps: this.kvm.hostIrqOps,
      kick: this,
      memory: this.guestMem,
      routing: this,
    });
    this.vgic = vgic;
    this.traceVgic();
    for (const v of this.vcpus) v.vgicCpu = vgic.kvmVgicVcpuInit(v.id);
    return vgic;
  }

  /**
   * Hand KVM's list-register trace hooks (lrWrite, vgicMaintenance, vgicItsInject) to the vGIC: when it is created,
   * or again by a tracer installed after (the checker's counterexample trace).
   */
  traceVgic(): void {
    const tr = this.kvm.trace;
    if (this.vgic === null || tr?.lrWrite === undefined || tr.vgicMaintenance === undefined) return;
    const { lrWrite, vgicMaintenance, vgicItsInject } = tr;
    this.vgic.traceLr = {
      lrWrite: (vc, lr, f) => lrWrite(this, vc.id, lr, f),
      eoiMaintenance: (vc, lr, vintid) => vgicMaintenance(this, vc.id, lr, vintid),
      itsInject: (vc, vintid, devid, eventid, cached) =>
        vgicItsInject?.(this, vc?.id ?? -1, vintid, devid, eventid, cached),
    };
  }

  /** vgic_init's kvm_vgic_setup_default_irq_routing (VgicRoutingSetup). */
  kvmVgicSetupDefaultIrqRouting(nrSpis: number): void {
    kvmVgicSetupDefaultIrqRouting(this, nrSpis);
  }

  /** The GSI has a routing entry (kvm_irq_map_gsi finds one). */
  irqRouted(gsi: number): boolean {
    return kvmIrqMapGsi(this, gsi).length > 0;
  }

  /**
   * kvm_set_irq(kvm, irq_source_id, gsi, level) through the routing table (irqRouting.ts): an SPI entry injects
   * SPI pin + 32, an MSI entry goes to the ITS; an unrouted GSI does nothing. Synchronous: the caller charges
   * C_VGIC_INJECT on its step. Returns kvm_set_irq's value.
   */
  kvmSetIrq(gsi: number, level: number, irqSourceId: number): number {
    this.kvm.trace?.kvmSetIrq(gsi, level, irqSourceId, this);
    return kvmSetIrqRouted(this, gsi, level);
  }

  // ---- ioctls --------------------------------------------------------------------------------------------------

  /** kvm_vm_ioctl_create_vcpu (+ arm64 kvm_arch_vcpu_precreate / kvm_arch_vcpu_create). */
  createVcpu(id: number): Frame<number> {
    return new KvmVmIoctlCreateVcpu(this, id);
  }

  /** arm64 kvm_vm_ioctl_irq_line. */
  irqLine(arg: number, withStatus: boolean): Frame<number> {
    return new KvmVmIoctlIrqLine(this, arg, withStatus);
  }

  /** kvm_ioctl_create_device (+ the copy in/out of kvm_vm_ioctl). */
  createDevice(arg: number): Frame<number> {
    return new KvmIoctlCreateDevice(this, arg);
  }

  removeDevice(dev: KvmDevice): void {
    const i = this.devices.indexOf(dev);
    if (i >= 0) this.devices.splice(i, 1);
  }

  /** kvm_device_release: release (if the type has one) under kvm->lock, then drop the fd's VM reference. */
  kvmDeviceRelease(dev: KvmDevice): Frame {
    return new KvmDeviceRelease(this, dev);
  }

  /** kvm_vm_ioctl. */
  ioctl(cmd: number, arg: number): Frame<number> {
    return new KvmVmIoctl(this, cmd, arg);
  }

  /** kvm_vm_release: release the irqfds, then drop the fd's reference. */
  release(): Frame {
    return new KvmVmRelease(this);
  }
}

const KVM_VM_FOPS: FileOperations = markShared({
  name: 'kvm_vm_fops',
  unlockedIoctl(file: KFile, cmd: number, arg: number): Call<number> {
    return (file.privateData as KvmVm).ioctl(cmd, arg);
  },
  release(file: KFile): Call<void> {
    return (file.privateData as KvmVm).release();
  },
});

/**
 * kvm_arm_halt_guest as a frame: request the pause and kick every vCPU, then poll (cpu_relax) until each is halted;
 * the poll reads the run state of the vCPU it waits for (KvmVcpu.modeOid).
 */
class KvmArmHaltGuest extends Frame {
  constructor(private readonly vm: KvmVm) {
    super();
  }

  protected step(): Boundary {
    const vcpus = this.vm.vcpus;
    if (this.pc === 0) {
      this.pc = 1;
      for (const v of vcpus) {
        v.paused = true;
        touch(v.pauseOid);
        v.kvmVcpuKick();
      }
    }
    const busy = vcpus.find((v) => !v.halted);
    if (busy === undefined) return this.return_(undefined);
    return this.yield_(cpuRelax(C_CPU_RELAX, busy.modeOid));
  }
}

/** kvm_vm_ioctl's own step. */
const PC_VM_IOCTL = 0;
/** The request. */
const PC_VM_DISPATCH = 1;
/** The request's function returned. */
const PC_VM_RETURN = 2;

/** kvm_vm_ioctl as a frame. */
class KvmVmIoctl extends Frame<number> {
  constructor(
    private readonly vm: KvmVm,
    private readonly cmd: number,
    private readonly arg: number,
  ) {
    super();
  }

  protected step(sent: unknown): Boundary {
    const vm = this.vm;
    const arg = this.arg;
    switch (this.pc) {
      case PC_VM_IOCTL:
        this.pc = PC_VM_DISPATCH;
        return this.yield_(op(C_KVM_IOCTL, vm.oid));
      case PC_VM_DISPATCH:
        if (vm.kernel.currentUser() !== vm.owner) throw errno('EIO', 'VM fd used outside the process that created it');
        this.pc = PC_VM_RETURN;
        switch (this.cmd >>> 0) {
          case KVM_CREATE_VCPU:
            return this.call(vm.createVcpu(arg));
          case KVM_IRQ_LINE:
            return this.call(vm.irqLine(arg, false));
          case KVM_IRQ_LINE_STATUS:
            return this.call(vm.irqLine(arg, true));
          case KVM_IRQFD:
            return this.call(kvmIrqfd(vm, arg));
          case KVM_SET_GSI_ROUTING:
            return this.call(new KvmSetGsiRouting(vm, arg));
          case KVM_SIGNAL_MSI:
            return this.call(new KvmSignalMsi(vm, arg));
          case KVM_CREATE_DEVICE:
            return this.call(vm.createDevice(arg));
          case KVM_CHECK_EXTENSION:
            return this.return_(vm.kvm.checkExtension(vm, arg));
          case KVM_ARM_PREFERRED_TARGET: {
            // kvm_vcpu_preferred_target: target + all-zero features
            const mem = vm.kernel.currentUser().mem;
            kvmVcpuInit.write(mem.view(arg, kvmVcpuInit.size), { target: KVM_ARM_TARGET_GENERIC_V8 });
            return this.return_(0);
          }
          default:
            throw errno('EINVAL', `VM fd has no ioctl 0x${(this.cmd >>> 0).toString(16)} (kvm_arch_vm_ioctl)`);
        }
      default:
        return this.return_(sent as number);
    }
  }
}

/** kvm_vm_ioctl_create_vcpu: the id's check, then kvm->lock for kvm_arch_vcpu_precreate. */
const CV_START = 0;
/** kvm->lock held: the vCPU counted in kvm->created_vcpus. */
const CV_PRECREATE = 1;
/** The creation's step (kvm_vcpu_init, kvm_arch_vcpu_create), then kvm->lock again. */
const CV_CREATE = 2;
/** kvm->lock held: the id's uniqueness, the fd, onto kvm->vcpus. */
const CV_CREATED = 3;

/** kvm_vm_ioctl_create_vcpu as a frame (kvm->lock is held at CV_PRECREATE and CV_CREATED, released in the step). */
class KvmVmIoctlCreateVcpu extends Frame<number> {
  constructor(
    private readonly vm: KvmVm,
    private readonly id: number,
  ) {
    super();
  }

  protected step(): Boundary {
    const vm = this.vm;
    const id = this.id;
    switch (this.pc) {
      case CV_START:
        if (!Number.isInteger(id) || id < 0 || id >= KVM_MAX_VCPU_IDS) {
          throw errno('EINVAL', `vcpu id ${id} outside 0..${KVM_MAX_VCPU_IDS - 1}`);
        }
        this.pc = CV_PRECREATE;
        return this.call(mutexLock(vm.lock));
      case CV_PRECREATE:
        try {
          if (vm.createdVcpus >= vm.maxVcpus) {
            throw errno('EINVAL', `the VM already has its maximum of ${vm.maxVcpus} vCPUs`);
          }
          // arm.c kvm_arch_vcpu_precreate: no new vCPU once the vGIC is initialised
          if (vm.vgic?.initialized === true) throw errno('EBUSY', 'the vGIC is already initialized');
          if (id >= vm.maxVcpus) throw errno('EINVAL', `vcpu id ${id} ≥ kvm->max_vcpus ${vm.maxVcpus}`);
          vm.createdVcpus++;
        } finally {
          vm.lock.unlock();
        }
        this.pc = CV_CREATE;
        return this.yield_(op(C_KVM_CREATE, vm.oid));
      case CV_CREATE:
        this.pc = CV_CREATED;
        return this.call(mutexLock(vm.lock));
      default: {
        let fd: number;
        try {
          fd = this.created();
        } finally {
          vm.lock.unlock();
        }
        return this.return_(fd);
      }
    }
  }

  /** Under kvm->lock: the new vCPU, its fd and vGIC state; a failure un-counts it. */
  private created(): number {
    const vm = this.vm;
    const id = this.id;
    if (vm.vgic?.isV3 === true) {
      // kvm_arch_vcpu_create → kvm_vgic_vcpu_init → vgic_register_redist_iodev: EINVAL if its frames would not fit
      try {
        vgicV3CheckNewVcpuRedist(vm, vm.vgic);
      } catch (e) {
        vm.createdVcpus--;
        throw e;
      }
    }
    if (vm.vcpuById(id) !== undefined) {
      vm.createdVcpus--;
      throw errno('EEXIST', `vcpu id ${id} already exists`);
    }
    const vcpu = new KvmVcpu(vm, id, vm.vcpus.length);
    const mem = vm.kernel.currentUser().mem;
    // The kvm_run page, as if the VMM mmapped the vCPU fd right away (see KvmVcpu.runAddr).
    vcpu.runAddr = mem.alloc(KVM_RUN_SIZE, 4096);
    vm.kvmGetKvm();
    let fd: number;
    try {
      fd = vm.kernel.anonInodeGetfd(`kvm-vcpu:${id}`, vcpu.fops, vcpu, O_RDWR | O_CLOEXEC);
    } catch (e) {
      vm.krefPut();
      vm.createdVcpus--;
      throw e;
    }
    // kvm_vgic_vcpu_init: the vGIC's vCPU index is the vCPU's creation index (vcpu_idx)
    if (vm.vgic !== null) {
      vcpu.vgicCpu = vm.vgic.kvmVgicVcpuInit(id);
      if (vm.vgic.isV3) vgicRegisterRedistIodev(vm, vm.vgic, vcpu.vgicCpu); // fits: checked in this step
    }
    vm.vcpus.push(vcpu);
    return fd;
  }
}

/** kvm_ioctl_create_device: copy in, the type's ops (ENODEV), the TEST flag; then the creation's step. */
const CD_START = 0;
/** The device is allocated; kvm->lock. */
const CD_ALLOC = 1;
/** kvm->lock held: ops->create. */
const CD_LOCKED = 2;
/** ops->create returned (kvm->lock held until the step ends): onto kvm->devices, then ops->init. */
const CD_CREATED = 3;
/** ops->init returned: the fd. */
const CD_INITIALIZED = 4;
/** The fd failed: kvm->lock held, off kvm->devices, ops->release. */
const CD_FD_FAILED = 5;
/** ops->release returned: unlock, ops->destroy. */
const CD_FD_RELEASED = 6;
/** ops->destroy returned: free the device, rethrow the fd's error. */
const CD_FD_DESTROYED = 7;

/**
 * kvm_ioctl_create_device as a frame. An errno from ops->create frees the device (kvm->lock held: unwind at
 * CD_CREATED); a failed fd install undoes the creation across steps (release, destroy) and then rethrows its error.
 */
class KvmIoctlCreateDevice extends Frame<number> {
  /** The request's type and flags. */
  private type = 0;
  private flags = 0;
  private ops: KvmDeviceOps | null = null;
  private dev: KvmDevice | null = null;
  /** What the fd install threw, rethrown once the device is undone. */
  private error: unknown = null;

  constructor(
    private readonly vm: KvmVm,
    private readonly arg: number,
  ) {
    super();
  }

  protected step(): Boundary {
    const vm = this.vm;
    switch (this.pc) {
      case CD_START: {
        const cd = kvmCreateDevice.read(vm.kernel.currentUser().mem.view(this.arg, kvmCreateDevice.size));
        const ops = vm.kvm.deviceOpsOf(cd.type);
        if (ops === undefined) throw errno('ENODEV', `KVM device type ${cd.type} is not registered`);
        if ((cd.flags & KVM_CREATE_DEVICE_TEST) !== 0) return this.return_(0);
        this.type = cd.type;
        this.flags = cd.flags;
        this.ops = ops;
        this.pc = CD_ALLOC;
        return this.yield_(op(C_KVM_CREATE, vm.oid));
      }
      case CD_ALLOC:
        this.dev = new KvmDevice(vm, this.ops!, this.type);
        this.pc = CD_LOCKED;
        return this.call(mutexLock(vm.lock));
      case CD_LOCKED:
        this.pc = CD_CREATED;
        return this.call(this.ops!.create(this.dev!, this.type));
      case CD_CREATED:
        this.pc = CD_INITIALIZED;
        vm.devices.push(this.dev!);
        vm.lock.unlock();
        if (this.ops!.init !== undefined) return this.call(this.ops!.init(this.dev!));
        return this.install();
      case CD_INITIALIZED:
        return this.install();
      case CD_FD_FAILED:
        vm.removeDevice(this.dev!);
        this.pc = CD_FD_RELEASED;
        if (this.ops!.release !== undefined) return this.call(this.ops!.release(this.dev!));
        return this.fdReleased();
      case CD_FD_RELEASED:
        return this.fdReleased();
      default: // CD_FD_DESTROYED
        return this.fdDestroyed();
    }
  }

  /** The fd (kvm_get_kvm first); a failure undoes the creation under kvm->lock. */
  private install(): Boundary {
    const vm = this.vm;
    const dev = this.dev!;
    vm.kvmGetKvm();
    let fd: number;
    try {
      fd = vm.kernel.anonInodeGetfd(this.ops!.name, kvmDeviceFops(), dev, O_RDWR | O_CLOEXEC);
    } catch (e) {
      vm.krefPut(); // kvm_put_kvm_no_destroy
      this.error = e;
      this.pc = CD_FD_FAILED;
      return this.call(mutexLock(vm.lock));
    }
    // copy_to_user of cd: a fault leaves the device and its fd in place
    const mem = vm.kernel.currentUser().mem;
    kvmCreateDevice.write(mem.view(this.arg, kvmCreateDevice.size), { type: this.type, fd, flags: this.flags });
    return this.return_(0);
  }

  private fdReleased(): Boundary {
    this.vm.lock.unlock();
    this.pc = CD_FD_DESTROYED;
    if (this.ops!.destroy !== undefined) return this.call(this.ops!.destroy(this.dev!));
    return this.fdDestroyed();
  }

  private fdDestroyed(): never {
    const dev = this.dev!;
    dev.gone = true;
    dev.markFreed();
    throw this.error;
  }

  /** ops->create refused: unlock, free the device. */
  protected override unwind(): void {
    if (this.pc !== CD_CREATED) return;
    this.vm.lock.unlock();
    this.dev!.markFreed();
  }
}

/** kvm_vm_ioctl_irq_line as a frame: the checks, then (PPI/SPI) the injection step. */
class KvmVmIoctlIrqLine extends Frame<number> {
  /** The INTID and level of a PPI or SPI injection, and the vGIC vCPU index of a PPI (null for an SPI). */
  private num = 0;
  private level = false;
  private vcpuIdx: number | null = null;

  constructor(
    private readonly vm: KvmVm,
    private readonly arg: number,
    private readonly withStatus: boolean,
  ) {
    super();
  }

  protected step(): Boundary {
    const vm = this.vm;
    if (this.pc === 1) {
      const ret = vm.vgic!.kvmVgicInjectIrq(this.vcpuIdx, this.num, this.level);
      return this.finish(ret);
    }
    const mem = vm.kernel.currentUser().mem;
    const lvl = kvmIrqLevel.read(mem.view(this.arg, kvmIrqLevel.size));
    const { type, vcpu: vcpuId, num } = kvmArmIrqLineDecode(lvl.irq);
    const level = lvl.level !== 0;
    const vgic = vm.vgic;
    switch (type) {
      case KVM_ARM_IRQ_TYPE_CPU: {
        if (vgic !== null) throw errno('ENXIO', 'KVM_ARM_IRQ_TYPE_CPU with an in-kernel vGIC');
        const v = vm.vcpuById(vcpuId);
        if (v === undefined) throw errno('EINVAL', `no vcpu ${vcpuId}`);
        if (num > KVM_ARM_IRQ_CPU_FIQ) throw errno('EINVAL', `CPU line ${num} is neither IRQ nor FIQ`);
        // vcpu_interrupt_line: a userspace irqchip drives the vCPU's IRQ/FIQ input (recorded, not delivered)
        v.irqLines[num] = level;
        if (level) v.kvmVcpuKick();
        return this.finish(0);
      }
      case KVM_ARM_IRQ_TYPE_PPI: {
        if (vgic === null) throw errno('ENXIO', 'PPI injection needs an in-kernel vGIC');
        const v = vm.vcpuById(vcpuId);
        if (v === undefined) throw errno('EINVAL', `no vcpu ${vcpuId}`);
        if (num < 16 || num >= VGIC_NR_PRIVATE_IRQS) throw errno('EINVAL', `INTID ${num} is not a PPI`);
        return this.inject(v.idx, num, level);
      }
      case KVM_ARM_IRQ_TYPE_SPI:
        if (vgic === null) throw errno('ENXIO', 'SPI injection needs an in-kernel vGIC');
        if (num < VGIC_NR_PRIVATE_IRQS) throw errno('EINVAL', `INTID ${num} is not an SPI`);
        return this.inject(null, num, level);
      default:
        throw errno('EINVAL', `KVM_IRQ_LINE type ${type} unknown`);
    }
  }

  /** kvm_vgic_inject_irq's step. */
  private inject(vcpuIdx: number | null, num: number, level: boolean): Boundary {
    this.vcpuIdx = vcpuIdx;
    this.num = num;
    this.level = level;
    this.pc = 1;
    return this.yield_(op(C_VGIC_INJECT, this.vm.oid));
  }

  private finish(ret: number): Boundary {
    if (ret < 0) throw errnoFromReturn(ret, 'kvm_vgic_inject_irq');
    // KVM_IRQ_LINE_STATUS: status = 0 (kvm_vm_ioctl_irq_line's return)
    if (this.withStatus) this.vm.kernel.currentUser().mem.writeS32(this.arg, 0);
    return this.return_(0);
  }
}

/** kvm_put_kvm: the reference goes; the last one runs kvm_destroy_vm's step. */
const PD_PUT = 0;
/** kvm_destroy_devices, newest first. */
const PD_DEVICES = 1;
/** A device's ops->destroy returned. */
const PD_DESTROYED = 2;
/** kvm_vgic_destroy's vgic_v4_teardown returned. */
const PD_V4_TORN_DOWN = 3;

/** kvm_put_kvm → kvm_destroy_vm as a frame (see the module comment for the order). */
class KvmPutKvm extends Frame {
  /** The device whose ops->destroy runs. */
  private dev: KvmDevice | null = null;

  constructor(private readonly vm: KvmVm) {
    super();
  }

  protected step(): Boundary {
    const vm = this.vm;
    switch (this.pc) {
      case PD_PUT:
        vm.checkAlive('kvm_put_kvm');
        if (!vm.krefPut()) return this.return_(undefined);
        this.pc = PD_DEVICES;
        return this.yield_(op(C_KVM_DESTROY, vm.oid));
      case PD_DESTROYED:
        this.freeDevice(this.dev!);
        return this.destroyDevices();
      case PD_V4_TORN_DOWN:
        return this.archDestroyed();
      default:
        return this.destroyDevices();
    }
  }

  /** kvm_destroy_devices walks kvm->devices from its head; list_add puts new devices there: newest first. */
  private destroyDevices(): Boundary {
    const vm = this.vm;
    while (vm.devices.length > 0) {
      const dev = vm.devices.pop()!;
      if (dev.ops.destroy !== undefined) {
        this.dev = dev;
        this.pc = PD_DESTROYED;
        return this.call(dev.ops.destroy(dev));
      }
      this.freeDevice(dev);
    }
    // kvm_arch_destroy_vm: kvm_vgic_destroy (vgic_v4_teardown first), kvm_destroy_vcpus
    if (vm.vgic !== null && vm.vgic.itsVm !== null) {
      this.pc = PD_V4_TORN_DOWN;
      return this.call(new VgicV4Teardown(vm));
    }
    return this.archDestroyed();
  }

  private archDestroyed(): Boundary {
    const vm = this.vm;
    vm.destroyed = true;
    for (const v of vm.vcpus) v.destroyed = true;
    vm.kvm.forgetVm(vm);
    vm.markFreed();
    return this.return_(undefined);
  }

  private freeDevice(dev: KvmDevice): void {
    dev.gone = true;
    dev.markFreed();
  }
}

/** kvm_device_release: kvm->lock (with a release op). */
const DR_LOCK = 0;
/** kvm->lock held: off kvm->devices, ops->release. */
const DR_LOCKED = 1;
/** ops->release returned: unlock, free. */
const DR_RELEASED = 2;
/** kvm_put_kvm returned. */
const DR_PUT = 3;

/** kvm_device_release as a frame (kvm->lock is held at DR_RELEASED). */
class KvmDeviceRelease extends Frame {
  constructor(
    private readonly vm: KvmVm,
    private readonly dev: KvmDevice,
  ) {
    super();
  }

  protected step(): Boundary {
    const vm = this.vm;
    const dev = this.dev;
    switch (this.pc) {
      case DR_LOCK:
        if (dev.ops.release === undefined) return this.put();
        this.pc = DR_LOCKED;
        return this.call(mutexLock(vm.lock));
      case DR_LOCKED:
        vm.removeDevice(dev);
        this.pc = DR_RELEASED;
        return this.call(dev.ops.release!(dev));
      case DR_RELEASED:
        vm.lock.unlock();
        dev.gone = true;
        dev.markFreed();
        return this.put();
      default:
        return this.return_(undefined);
    }
  }

  private put(): Boundary {
    this.pc = DR_PUT;
    return this.call(this.vm.kvmPutKvm());
  }

  /** ops->release threw with kvm->lock held. */
  protected override unwind(): void {
    if (this.pc === DR_RELEASED) this.vm.lock.unlock();
  }
}

/** kvm_vm_release: kvm_irqfd_release. */
const VR_IRQFDS = 0;
/** kvm_put_kvm. */
const VR_PUT = 1;
const VR_DONE = 2;

/** kvm_vm_release as a frame. */
class KvmVmRelease extends Frame {
  constructor(private readonly vm: KvmVm) {
    super();
  }

  protected step(): Boundary {
    switch (this.pc) {
      case VR_IRQFDS:
        this.pc = VR_PUT;
        return this.call(this.vm.irqfds.kvmIrqfdRelease());
      case VR_PUT:
        this.pc = VR_DONE;
        return this.call(this.vm.kvmPutKvm());
      default:
        return this.return_(undefined);
    }
  }
}
