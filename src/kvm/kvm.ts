/**
 * The KVM subsystem of a host (virt/kvm/kvm_main.c kvm_init + arch/arm64/kvm/arm.c kvm_arch_init): /dev/kvm, the
 * device-type registry (kvm_register_device_ops), the vGIC's host resources (the maintenance interrupt, PPI 25,
 * requested per CPU as kvm_vgic_hyp_init does; the reschedule IPI that kicks vCPUs out of guest mode) and the
 * pluggable pieces: the guest kernel (`GuestFactory`) and the tracepoints (`KvmTraceHooks`).
 *
 *   const kvm = new Kvm(kernel, hostIrq, { guestFactory, trace });
 *   kvm.registerDeviceOps(KVM_DEV_TYPE_VFIO, kvmVfioOps);      // kvm-vfio (issue 5)
 */
import { errno } from '../abi/errno.js';
import {
  KVM_API_VERSION,
  KVM_CAP_ARM_EL1_32BIT,
  KVM_CAP_ARM_IRQ_LINE_LAYOUT_2,
  KVM_CAP_ARM_VM_IPA_SIZE,
  KVM_CAP_CHECK_EXTENSION_VM,
  KVM_CAP_DESTROY_MEMORY_REGION_WORKS,
  KVM_CAP_DEVICE_CTRL,
  KVM_CAP_IMMEDIATE_EXIT,
  KVM_CAP_INTERNAL_ERROR_DATA,
  KVM_CAP_IRQ_ROUTING,
  KVM_CAP_IRQCHIP,
  KVM_CAP_IRQFD,
  KVM_CAP_IRQFD_RESAMPLE,
  KVM_CAP_JOIN_MEMORY_REGIONS_WORKS,
  KVM_CAP_MAX_VCPU_ID,
  KVM_CAP_MAX_VCPUS,
  KVM_CAP_MSI_DEVID,
  KVM_CAP_NR_VCPUS,
  KVM_CAP_SIGNAL_MSI,
  KVM_CAP_SYNC_MMU,
  KVM_CAP_USER_MEMORY,
  KVM_CAP_VCPU_ATTRIBUTES,
  KVM_CHECK_EXTENSION,
  KVM_CREATE_VM,
  KVM_DEV_TYPE_ARM_VGIC_ITS,
  KVM_DEV_TYPE_ARM_VGIC_V2,
  KVM_DEV_TYPE_ARM_VGIC_V3,
  KVM_DEV_TYPE_VFIO,
  KVM_GET_API_VERSION,
  KVM_GET_VCPU_MMAP_SIZE,
  KVM_MAX_IRQ_ROUTES,
} from '../abi/kvm.js';
import { type FileOperations, type KFile, O_CLOEXEC, O_RDWR } from '../host/file.js';
import { gicIpiSend, type HostIrq } from '../host/irq/boot.js';
import { IRQ_HANDLED, IrqAction, type IrqDesc, type IrqHandler, type IrqReturn } from '../host/irq/irqDesc.js';
import type { Kernel, ReschedIpi } from '../host/kernel.js';
import type { Workqueue } from '../host/kthread.js';
import { PAGE_SIZE } from '../host/uaccess.js';
import { MAINTENANCE_PPI } from '../hw/gic/regs.js';
import type { Engine } from '../sim/engine.js';
import { ModelError } from '../sim/errors.js';
import { type Boundary, Frame } from '../sim/frame.js';
import { markShared } from '../sim/snapshot.js';
import { op } from '../sim/task.js';
import { C_KVM_CREATE, C_KVM_IOCTL } from './costs.js';
import type { KvmDeviceOps } from './device.js';
import { defaultGuestFactory, type GuestFactory } from './guest.js';
import { KvmHostIrqOps } from './hostIrqOps.js';
import type { KvmVcpu } from './vcpu.js';
import { kvmVfioOps } from './vfio.js';
import { type LrTraceFields, VGIC_V3_MAX_CPUS, type VgicHwInterface, vgicMaintenanceHandler } from './vgic/vgic.js';
import { vgicV2DeviceOps } from './vgicDevice.js';
import { vgicItsDeviceOps } from './vgicItsDevice.js';
import { vgicV3DeviceOps } from './vgicV3Device.js';
import { KvmVm } from './vm.js';

/** arch/arm64/include/asm/kvm_asm.h: what __kvm_vcpu_run returns, as trace_kvm_exit prints it. */
export const ARM_EXCEPTION_IRQ = 0;
export const ARM_EXCEPTION_TRAP = 2;

/** irq_source_id values of include/linux/kvm_host.h. */
export const KVM_USERSPACE_IRQ_SOURCE_ID = 0;
export const KVM_IRQFD_RESAMPLE_IRQ_SOURCE_ID = 1;

/** arm64 KVM_MAX_VCPUS (= KVM_MAX_VCPU_IDS): the id space of KVM_CREATE_VCPU. */
export const KVM_MAX_VCPU_IDS = 512;
/** vgic.h VGIC_V2_MAX_CPUS: kvm_arm_default_max_vcpus on a GICv2 host (kvm_vgic_global_state.max_gic_vcpus). */
export const KVM_ARM_DEFAULT_MAX_VCPUS = 8;
/** The model host's stage-2 IPA limit (get_kvm_ipa_limit) and KVM_PHYS_SHIFT (the default). */
export const KVM_IPA_LIMIT = 40;
export const KVM_PHYS_SHIFT = 40;
/** ARM64_MIN_PARANGE_BITS. */
export const ARM64_MIN_PARANGE_BITS = 32;
/** KVM_VM_TYPE_ARM_IPA_SIZE_MASK. */
export const KVM_VM_TYPE_ARM_IPA_SIZE_MASK = 0xff;
/** arm64 IPI_RESCHEDULE: the SGI smp_send_reschedule sends, which kvm_vcpu_kick uses to force a guest exit. */
export const IPI_RESCHEDULE_SGI = 0;

/**
 * Tracepoint hooks with the kernel's event names (include/trace/events/kvm.h, arch/arm64/kvm/trace_arm.h). src/trace
 * implements them; every hook is called at the point the kernel fires the event.
 */
export interface KvmTraceHooks {
  /** trace_kvm_entry, just before the world switch into the guest. */
  kvmEntry(vcpu: KvmVcpu): void;
  /** trace_kvm_exit(ret = ARM_EXCEPTION_*, esr_ec, pc), after kvm_vgic_sync_hwstate and local_irq_enable. */
  kvmExit(vcpu: KvmVcpu, exceptionType: number, esrClass: number): void;
  /** trace_kvm_userspace_exit(reason, errno) when KVM_RUN returns to the VMM (errno 0 on success). */
  kvmUserspaceExit(vcpu: KvmVcpu, reason: number, errno: number): void;
  /**
   * trace_kvm_set_irq(gsi, level, irq_source_id) from kvm_set_irq (irqfd injection, resampler de-assert); `vm`, whose
   * routing table maps `gsi`, is the model's addition (the event does not print it).
   */
  kvmSetIrq(gsi: number, level: number, irqSourceId: number, vm: KvmVm): void;
  /** irqfd_wakeup / irqfd_inject raised (level 1) or pulsed (level -1: 1 then 0) `gsi` of `vm`. */
  irqfdInject?(vm: KvmVm, gsi: number, level: number): void;
  /** irqfd_resampler_ack: the guest completed `gsi`, the line goes down and every resamplefd is signalled. */
  irqfdResample?(vm: KvmVm, gsi: number): void;
  /** A KVM_DEV_VFIO_DEVICE ASSIGN_IRQ / DEASSIGN_IRQ attribute of `vm` completed with `ret` (0 or -errno). */
  kvmVfioIrq?(vm: KvmVm, assign: boolean, dev: string, index: number, gsi: number, hwintid: number, ret: number): void;
  /** The arch switch set host IRQ `irq` forwarded (to vCPU `vcpu`) or back to the host. */
  irqForwardSet?(irq: number, forwarded: boolean, vcpu: number): void;
  /** The vGIC loaded list register `lr` of vCPU `vcpu` at guest entry, decoded (read when the vGIC is created). */
  lrWrite?(vm: KvmVm, vcpu: number, lr: number, f: LrTraceFields): void;
  /** The fold found an EOI maintenance on GICH_LR`lr` (a level vIRQ the guest completed). */
  vgicMaintenance?(vm: KvmVm, vcpu: number, lr: number, vintid: number): void;
  /** The emulated ITS made vLPI `vintid` of `vcpu` pending for an MSI (devid, eventid), from its translation cache or not. */
  vgicItsInject?(vm: KvmVm, vcpu: number, vintid: number, devid: number, eventid: number, cached: boolean): void;
  /** vgic_v4_doorbell_handler ran for `vcpu` (host IRQ `irq`, its vPE's doorbell): pending_last set, vCPU kicked. */
  vgicV4Doorbell?(vcpu: KvmVcpu, irq: number): void;
}

export interface KvmOptions {
  /** The guest kernel run on every vCPU (default: `defaultGuestFactory()`, an idle guest that counts its IRQs). */
  guestFactory?: GuestFactory;
  trace?: KvmTraceHooks | null;
  /** The KVM_DEV_TYPE_VFIO ops (default: kvmVfioOps, the quiesce protocol; see kvm/variants). */
  kvmVfioOps?: KvmDeviceOps;
}

/** request_percpu_irq + enable_percpu_irq on every CPU, done at boot (kvm_vgic_hyp_init, smp IPI setup). */
function requestPercpuIrqAtBoot(host: HostIrq, desc: IrqDesc, handler: IrqHandler, name: string, devId: unknown) {
  if (desc.flow !== 'percpu_devid') throw new ModelError(`${desc} is not a per-CPU interrupt`);
  if (desc.action !== null) throw new ModelError(`${desc} is already requested by '${desc.actionName}'`);
  desc.action = new IrqAction(handler, devId, name, 0);
  desc.depth = 0;
  desc.disabled = false;
  desc.masked = false;
  desc.started = true;
  for (let cpu = 0; cpu < host.genirq.engine.cpus.length; cpu++) host.gic.distributor.enable(desc.hwirq, cpu);
}

markShared(ipiReschedule); // code an object of the model points at
/** handle_IPI(IPI_RESCHEDULE) → scheduler_ipi(): the kick's only job is to make the guest exit (no step of its own). */
function ipiReschedule(_irq: number, _dev: unknown): IrqReturn {
  return IRQ_HANDLED;
}

export class Kvm implements ReschedIpi {
  readonly engine: Engine;
  trace: KvmTraceHooks | null;
  guestFactory: GuestFactory;
  /** kvm_device_ops_table. */
  private readonly deviceOps = new Map<number, KvmDeviceOps>();
  readonly vms: KvmVm[] = [];
  readonly hostIrqOps: KvmHostIrqOps;
  /** Linux IRQ numbers of the vGIC maintenance interrupt and of the reschedule IPI. */
  readonly maintenanceIrq: number;
  readonly ipiIrq: number;
  /** irqfd_cleanup_wq. */
  readonly irqfdCleanupWq: Workqueue;
  readonly fops: FileOperations;
  /** kvm_vgic_v4_set_forwarding moves a pending_latch to the vPE (false only for the checker's variant). */
  vgicV4TransferPending = true;
  /** kvm_vgic_v4_set_forwarding invalidates the vITS translation cache once irq->hw is set (checker's fix variant). */
  vgicV4InvalidateItsCache = false;

  constructor(
    readonly kernel: Kernel,
    readonly hostIrq: HostIrq,
    opts: KvmOptions = {},
  ) {
    this.engine = kernel.engine;
    this.trace = opts.trace ?? null;
    this.guestFactory = opts.guestFactory ?? defaultGuestFactory();
    this.hostIrqOps = new KvmHostIrqOps(hostIrq);
    this.irqfdCleanupWq = kernel.createWorkqueue('kvm-irqfd-cleanup');
    // kvm_vgic_hyp_init: the maintenance interrupt is a PPI, requested per CPU with a handler that does nothing
    const maint = hostIrq.genirq.createMapping(MAINTENANCE_PPI, 'level');
    requestPercpuIrqAtBoot(hostIrq, maint, vgicMaintenanceHandler, 'vgic', this);
    this.maintenanceIrq = maint.irq;
    const ipi = hostIrq.genirq.domain.findByHwirq(IPI_RESCHEDULE_SGI) ?? hostIrq.genirq.createMapping(0, 'edge');
    if (ipi.action === null) requestPercpuIrqAtBoot(hostIrq, ipi, ipiReschedule, 'IPI_RESCHEDULE', this);
    this.ipiIrq = ipi.irq;
    kernel.reschedIpi = this;
    // vgic_v3_probe registers KVM_DEV_TYPE_ARM_VGIC_V3, and V2 only on a GICv3 with GICv2 compatibility, which this
    // model's GICv3 does not have: KVM_CREATE_DEVICE of a vGIC-v2 there fails ENODEV (kvm_ioctl_create_device).
    if (hostIrq.version === 'v2') this.registerDeviceOps(KVM_DEV_TYPE_ARM_VGIC_V2, vgicV2DeviceOps);
    else {
      this.registerDeviceOps(KVM_DEV_TYPE_ARM_VGIC_V3, vgicV3DeviceOps);
      this.registerDeviceOps(KVM_DEV_TYPE_ARM_VGIC_ITS, vgicItsDeviceOps); // kvm_vgic_register_its_device
    }
    this.registerDeviceOps(KVM_DEV_TYPE_VFIO, opts.kvmVfioOps ?? kvmVfioOps);
    this.fops = new KvmChardevOps(this);
    kernel.registerChrdev('/dev/kvm', this.fops);
  }

  /**
   * The virtual CPU interface of physical CPU `cpu` that the vGIC loads a vCPU onto (kvm_vgic_global_state's
   * GICH/ICH_* of that CPU): the GICH of a GICv2 host, the ICH_* of a GICv3 one (each host has one vGIC version).
   */
  hostVif(cpu: number): VgicHwInterface {
    return this.hostIrq.gic.vif(cpu);
  }

  /** kvm_arm_default_max_vcpus: kvm_vgic_global_state.max_gic_vcpus (VGIC_V2_MAX_CPUS or VGIC_V3_MAX_CPUS). */
  get defaultMaxVcpus(): number {
    return this.hostIrq.version === 'v3' ? VGIC_V3_MAX_CPUS : KVM_ARM_DEFAULT_MAX_VCPUS;
  }

  /** ReschedIpi: smp_send_reschedule as arm64 sends it, IPI_RESCHEDULE through the GIC. */
  smpSendReschedule(fromCpu: number, cpu: number): void {
    gicIpiSend(this.hostIrq, fromCpu, IPI_RESCHEDULE_SGI, 1 << cpu);
  }

  /** kvm_register_device_ops: one ops table per type; registering a type twice is a bug (-EEXIST in the kernel). */
  registerDeviceOps(type: number, ops: KvmDeviceOps): void {
    if (this.deviceOps.has(type)) throw new ModelError(`KVM device type ${type} is already registered`);
    this.deviceOps.set(type, ops);
  }

  /** kvm_unregister_device_ops. */
  unregisterDeviceOps(type: number): void {
    this.deviceOps.delete(type);
  }

  deviceOpsOf(type: number): KvmDeviceOps | undefined {
    return this.deviceOps.get(type);
  }

  /**
   * kvm_vm_ioctl_check_extension_generic + arm64 kvm_vm_ioctl_check_extension; `vm` is null on /dev/kvm. The generic
   * answers (virt/kvm/kvm_main.c) are the kernel's, including the memory-region ones QEMU's kvm_init requires
   * (kvm_required_capabilites) although the model keeps no memslots. An arch capability is answered 1 only when the
   * model serves what it promises: MP_STATE (KVM_{GET,SET}_MP_STATE), ONE_REG (KVM_{GET,SET}_ONE_REG), IOEVENTFD
   * (KVM_IOEVENTFD), PSCI (guest HVCs answer NOT_SUPPORTED) and ARM_USER_IRQ (kvm_run device_irq_level) are not, so
   * they answer 0 and a VMM takes its fallback instead of failing on the ioctl.
   */
  checkExtension(vm: KvmVm | null, cap: number): number {
    switch (cap) {
      // kvm_vm_ioctl_check_extension_generic
      case KVM_CAP_USER_MEMORY:
      case KVM_CAP_DESTROY_MEMORY_REGION_WORKS:
      case KVM_CAP_JOIN_MEMORY_REGIONS_WORKS:
      case KVM_CAP_INTERNAL_ERROR_DATA:
      case KVM_CAP_IRQFD:
      case KVM_CAP_CHECK_EXTENSION_VM:
      case KVM_CAP_DEVICE_CTRL:
      case KVM_CAP_IRQFD_RESAMPLE:
      case KVM_CAP_SIGNAL_MSI:
        return 1;
      case KVM_CAP_IRQ_ROUTING:
        return KVM_MAX_IRQ_ROUTES;
      // arm64 kvm_vm_ioctl_check_extension, where the model serves the feature
      case KVM_CAP_SYNC_MMU:
      case KVM_CAP_IMMEDIATE_EXIT:
      case KVM_CAP_ARM_IRQ_LINE_LAYOUT_2:
      case KVM_CAP_VCPU_ATTRIBUTES:
        return 1;
      case KVM_CAP_IRQCHIP:
        return 1; // vgic_present
      case KVM_CAP_MSI_DEVID:
        // arm64: EINVAL on /dev/kvm; on a VM, whether an ITS made MSIs need a DeviceID
        if (vm === null) throw errno('EINVAL', 'KVM_CAP_MSI_DEVID is a VM capability');
        return vm.vgic?.msisRequireDevid === true ? 1 : 0;
      case KVM_CAP_ARM_EL1_32BIT:
        return 0; // the model host has no AArch32 EL1
      case KVM_CAP_NR_VCPUS:
        // arm.c: "ARM64 treats KVM_CAP_NR_CPUS differently": min(online CPUs, default max)
        return Math.min(this.engine.cpus.length, this.defaultMaxVcpus);
      case KVM_CAP_MAX_VCPUS:
      case KVM_CAP_MAX_VCPU_ID:
        return vm !== null ? vm.maxVcpus : this.defaultMaxVcpus;
      case KVM_CAP_ARM_VM_IPA_SIZE:
        return KVM_IPA_LIMIT;
      default:
        return 0;
    }
  }

  /**
   * kvm_dev_ioctl_create_vm: an fd first (EMFILE), then kvm_create_vm → kvm_arch_init_vm → kvm_init_stage2_mmu
   * (kvm_init_ipa_range in later kernels): EINVAL for a bit of the unsigned long type outside the IPA size, or an
   * IPA size beyond the host's limit or below ARM64_MIN_PARANGE_BITS.
   */
  createVm(type: number): Frame<number> {
    return new KvmDevIoctlCreateVm(this, type);
  }

  /** Drop a destroyed VM from the list. */
  forgetVm(vm: KvmVm): void {
    const i = this.vms.indexOf(vm);
    if (i >= 0) this.vms.splice(i, 1);
  }
}

/** kvm_dev_ioctl_create_vm: the fd reserved and the type checked, then the creation's step. */
const CVM_START = 0;
/** kvm_create_vm: the VM, its file in the reserved fd. */
const CVM_CREATE = 1;

/** kvm_dev_ioctl_create_vm as a frame. */
class KvmDevIoctlCreateVm extends Frame<number> {
  private fd = -1;
  private ipaBits = 0;

  constructor(
    private readonly kvm: Kvm,
    private readonly type: number,
  ) {
    super();
  }

  protected step(): Boundary {
    const kernel = this.kvm.kernel;
    const files = kernel.currentUser().files;
    if (this.pc === CVM_START) {
      const type = this.type;
      const fd = files.getUnusedFd(O_CLOEXEC);
      try {
        // a negative arg is a huge unsigned long: bits outside the mask too
        if (type < 0 || type > KVM_VM_TYPE_ARM_IPA_SIZE_MASK) {
          throw errno('EINVAL', `KVM_CREATE_VM: machine type 0x${type.toString(16)} has bits outside the IPA size`);
        }
        const ipaBits = type === 0 ? KVM_PHYS_SHIFT : type;
        if (ipaBits > KVM_IPA_LIMIT || ipaBits < ARM64_MIN_PARANGE_BITS) {
          throw errno(
            'EINVAL',
            `KVM_CREATE_VM: IPA size ${ipaBits} outside ${ARM64_MIN_PARANGE_BITS}..${KVM_IPA_LIMIT}`,
          );
        }
        this.ipaBits = ipaBits;
      } catch (e) {
        files.putUnusedFd(fd);
        throw e;
      }
      this.fd = fd;
      this.pc = CVM_CREATE;
      return this.yield_(op(C_KVM_CREATE));
    }
    const vm = new KvmVm(this.kvm, kernel.currentUser(), this.ipaBits);
    files.installFd(this.fd, kernel.anonInodeGetfile('kvm-vm', vm.fops, vm, O_RDWR));
    this.kvm.vms.push(vm);
    return this.return_(this.fd);
  }
}

/** kvm_dev_ioctl's own step. */
const DEV_IOCTL = 0;
/** The request. */
const DEV_DISPATCH = 1;
/** kvm_dev_ioctl_create_vm returned. */
const DEV_RETURN = 2;

/** kvm_dev_ioctl as a frame. */
class KvmDevIoctl extends Frame<number> {
  constructor(
    private readonly kvm: Kvm,
    private readonly cmd: number,
    private readonly arg: number,
  ) {
    super();
  }

  protected step(sent: unknown): Boundary {
    const arg = this.arg;
    switch (this.pc) {
      case DEV_IOCTL:
        this.pc = DEV_DISPATCH;
        return this.yield_(op(C_KVM_IOCTL));
      case DEV_DISPATCH:
        switch (this.cmd >>> 0) {
          case KVM_GET_API_VERSION:
            if (arg !== 0) throw errno('EINVAL', 'KVM_GET_API_VERSION takes no argument');
            return this.return_(KVM_API_VERSION);
          case KVM_CREATE_VM:
            this.pc = DEV_RETURN;
            return this.call(this.kvm.createVm(arg));
          case KVM_CHECK_EXTENSION:
            return this.return_(this.kvm.checkExtension(null, arg));
          case KVM_GET_VCPU_MMAP_SIZE:
            if (arg !== 0) throw errno('EINVAL', 'KVM_GET_VCPU_MMAP_SIZE takes no argument');
            // kvm_run page + the coalesced-MMIO ring page (CONFIG_KVM_MMIO on arm64)
            return this.return_(2 * PAGE_SIZE);
          default:
            throw errno('EINVAL', `/dev/kvm has no ioctl 0x${(this.cmd >>> 0).toString(16)} (kvm_arch_dev_ioctl)`);
        }
      default:
        return this.return_(sent as number);
    }
  }
}

/** kvm_chardev_ops: kvm_dev_ioctl. */
class KvmChardevOps implements FileOperations {
  readonly name = 'kvm_chardev_ops';
  constructor(private readonly kvm: Kvm) {}

  unlockedIoctl(_file: KFile, cmd: number, arg: number): Frame<number> {
    return new KvmDevIoctl(this.kvm, cmd, arg);
  }
}
