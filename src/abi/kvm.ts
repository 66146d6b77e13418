/**
 * include/uapi/linux/kvm.h: the constants and ioctl numbers the model uses, with their Linux names, plus the irqfwd
 * extension (marked below). arm64 arch constants (kvmArm64.ts) and struct codecs (kvmStructs.ts) are re-exported.
 */
import { _IO, _IOR, _IOW, _IOWR } from './ioctl.js';
import {
  KVM_CREATE_DEVICE_SIZE,
  KVM_DEVICE_ATTR_SIZE,
  KVM_IRQ_LEVEL_SIZE,
  KVM_IRQ_ROUTING_SIZE,
  KVM_IRQFD_SIZE,
  KVM_MSI_SIZE,
  KVM_VCPU_INIT_SIZE,
} from './kvmStructs.js';

export * from './kvmArm64.js';
export * from './kvmStructs.js';

export const KVMIO = 0xae;
export const KVM_API_VERSION = 12;

// ioctls for /dev/kvm
export const KVM_GET_API_VERSION = _IO(KVMIO, 0x00);
/** Returns a VM fd; the argument is the machine type (on arm64: the IPA size, 0 = default). */
export const KVM_CREATE_VM = _IO(KVMIO, 0x01);
/** Also a VM ioctl (KVM_CAP_CHECK_EXTENSION_VM). The argument is the capability number. */
export const KVM_CHECK_EXTENSION = _IO(KVMIO, 0x03);
export const KVM_GET_VCPU_MMAP_SIZE = _IO(KVMIO, 0x04);

// ioctls for VM fds
/** The argument is the vcpu id; returns a vcpu fd. */
export const KVM_CREATE_VCPU = _IO(KVMIO, 0x41);
export const KVM_CREATE_IRQCHIP = _IO(KVMIO, 0x60);
export const KVM_IRQ_LINE = _IOW(KVMIO, 0x61, KVM_IRQ_LEVEL_SIZE);
export const KVM_IRQ_LINE_STATUS = _IOWR(KVMIO, 0x67, KVM_IRQ_LEVEL_SIZE);
export const KVM_SET_GSI_ROUTING = _IOW(KVMIO, 0x6a, KVM_IRQ_ROUTING_SIZE);
export const KVM_IRQFD = _IOW(KVMIO, 0x76, KVM_IRQFD_SIZE);
export const KVM_ARM_PREFERRED_TARGET = _IOR(KVMIO, 0xaf, KVM_VCPU_INIT_SIZE);
export const KVM_SIGNAL_MSI = _IOW(KVMIO, 0xa5, KVM_MSI_SIZE);

// ioctls for VM fds (create) and device fds / vcpu fds (attributes)
export const KVM_CREATE_DEVICE = _IOWR(KVMIO, 0xe0, KVM_CREATE_DEVICE_SIZE);
export const KVM_SET_DEVICE_ATTR = _IOW(KVMIO, 0xe1, KVM_DEVICE_ATTR_SIZE);
export const KVM_GET_DEVICE_ATTR = _IOW(KVMIO, 0xe2, KVM_DEVICE_ATTR_SIZE);
export const KVM_HAS_DEVICE_ATTR = _IOW(KVMIO, 0xe3, KVM_DEVICE_ATTR_SIZE);

// ioctls for vcpu fds
export const KVM_RUN = _IO(KVMIO, 0x80);
export const KVM_ARM_VCPU_INIT = _IOW(KVMIO, 0xae, KVM_VCPU_INIT_SIZE);

// Capabilities (KVM_CHECK_EXTENSION arguments)
export const KVM_CAP_IRQCHIP = 0;
export const KVM_CAP_USER_MEMORY = 3;
export const KVM_CAP_NR_VCPUS = 9;
export const KVM_CAP_NR_MEMSLOTS = 10;
export const KVM_CAP_MP_STATE = 14;
export const KVM_CAP_COALESCED_MMIO = 15;
export const KVM_CAP_SYNC_MMU = 16;
export const KVM_CAP_DESTROY_MEMORY_REGION_WORKS = 21;
export const KVM_CAP_IRQ_ROUTING = 25;
export const KVM_CAP_IRQ_INJECT_STATUS = 26;
export const KVM_CAP_JOIN_MEMORY_REGIONS_WORKS = 30;
export const KVM_CAP_IRQFD = 32;
export const KVM_CAP_IOEVENTFD = 36;
export const KVM_CAP_INTERNAL_ERROR_DATA = 40;
export const KVM_CAP_ENABLE_CAP = 54;
export const KVM_CAP_MAX_VCPUS = 66;
export const KVM_CAP_ONE_REG = 70;
export const KVM_CAP_SIGNAL_MSI = 77;
export const KVM_CAP_IRQFD_RESAMPLE = 82;
export const KVM_CAP_ARM_PSCI = 87;
export const KVM_CAP_DEVICE_CTRL = 89;
export const KVM_CAP_ARM_EL1_32BIT = 93;
export const KVM_CAP_ARM_PSCI_0_2 = 102;
export const KVM_CAP_CHECK_EXTENSION_VM = 105;
export const KVM_CAP_ARM_PMU_V3 = 126;
export const KVM_CAP_VCPU_ATTRIBUTES = 127;
export const KVM_CAP_MAX_VCPU_ID = 128;
export const KVM_CAP_MSI_DEVID = 131;
export const KVM_CAP_IMMEDIATE_EXIT = 136;
export const KVM_CAP_ARM_USER_IRQ = 144;
export const KVM_CAP_IOEVENTFD_ANY_LENGTH = 153;
export const KVM_CAP_ARM_VM_IPA_SIZE = 165;
export const KVM_CAP_ARM_IRQ_LINE_LAYOUT_2 = 174;

// KVM_IRQFD flags
export const KVM_IRQFD_FLAG_DEASSIGN = 1 << 0;
/** resamplefd is valid: level-triggered emulation (KVM_CAP_IRQFD_RESAMPLE). */
export const KVM_IRQFD_FLAG_RESAMPLE = 1 << 1;

// GSI routing (KVM_SET_GSI_ROUTING) and MSIs (KVM_SIGNAL_MSI)
export const KVM_IRQ_ROUTING_IRQCHIP = 1;
export const KVM_IRQ_ROUTING_MSI = 2;
/** kvm_msi.flags / kvm_irq_routing_entry.flags of an MSI entry: devid is valid. */
export const KVM_MSI_VALID_DEVID = 1 << 0;
/** include/linux/kvm_host.h KVM_MAX_IRQ_ROUTES (generic; arm64 does not override it). */
export const KVM_MAX_IRQ_ROUTES = 4096;

// Device control API (KVM_CAP_DEVICE_CTRL)
export const KVM_CREATE_DEVICE_TEST = 1;

/** enum kvm_device_type (KVM_DEV_TYPE_MAX moves with every new type, so it is left out). */
export const KVM_DEV_TYPE_FSL_MPIC_20 = 1;
export const KVM_DEV_TYPE_FSL_MPIC_42 = 2;
export const KVM_DEV_TYPE_XICS = 3;
export const KVM_DEV_TYPE_VFIO = 4;
export const KVM_DEV_TYPE_ARM_VGIC_V2 = 5;
export const KVM_DEV_TYPE_FLIC = 6;
export const KVM_DEV_TYPE_ARM_VGIC_V3 = 7;
export const KVM_DEV_TYPE_ARM_VGIC_ITS = 8;
export const KVM_DEV_TYPE_XIVE = 9;
export const KVM_DEV_TYPE_ARM_PV_TIME = 10;
export const KVM_DEV_TYPE_RISCV_AIA = 11;
export const KVM_DEV_TYPE_LOONGARCH_IPI = 12;
export const KVM_DEV_TYPE_LOONGARCH_EIOINTC = 13;
export const KVM_DEV_TYPE_LOONGARCH_PCHPIC = 14;

// kvm-vfio device (virt/kvm/vfio.c) attribute groups
export const KVM_DEV_VFIO_FILE = 1;
/** kvm_device_attr.addr points to an __s32 VFIO file (group or device) fd. */
export const KVM_DEV_VFIO_FILE_ADD = 1;
export const KVM_DEV_VFIO_FILE_DEL = 2;
/** Compile-time uapi compatibility aliases of the FILE names. */
export const KVM_DEV_VFIO_GROUP = KVM_DEV_VFIO_FILE;
export const KVM_DEV_VFIO_GROUP_ADD = KVM_DEV_VFIO_FILE_ADD;
export const KVM_DEV_VFIO_GROUP_DEL = KVM_DEV_VFIO_FILE_DEL;
export const KVM_DEV_VFIO_GROUP_SET_SPAPR_TCE = 3;
/** Not a uapi name (the header only has KVM_DEV_VFIO_GROUP_SET_SPAPR_TCE); a project alias for symmetry. */
export const KVM_DEV_VFIO_FILE_SET_SPAPR_TCE = KVM_DEV_VFIO_GROUP_SET_SPAPR_TCE;

// ---- irqfwd extension: the seed patch's never-merged ABI. Numbers are fixed by this project, not by Linux. ----
/** kvm-vfio attribute group for VFIO device IRQ forwarding; addr points to a struct kvm_arch_forwarded_irq. */
export const KVM_DEV_VFIO_DEVICE = 2;
/** Start forwarding VFIO device IRQ (fd, irq_index) to the guest as SPI guest_irq. */
export const KVM_DEV_VFIO_DEVICE_ASSIGN_IRQ = 1;
/** Stop forwarding that IRQ. */
export const KVM_DEV_VFIO_DEVICE_DEASSIGN_IRQ = 2;
// ---- end of the irqfwd extension ----

// KVM_EXIT_SYSTEM_EVENT types
export const KVM_SYSTEM_EVENT_SHUTDOWN = 1;
export const KVM_SYSTEM_EVENT_RESET = 2;
export const KVM_SYSTEM_EVENT_CRASH = 3;

// kvm_run.exit_reason
export const KVM_EXIT_UNKNOWN = 0;
export const KVM_EXIT_EXCEPTION = 1;
export const KVM_EXIT_IO = 2;
export const KVM_EXIT_HYPERCALL = 3;
export const KVM_EXIT_DEBUG = 4;
export const KVM_EXIT_HLT = 5;
export const KVM_EXIT_MMIO = 6;
export const KVM_EXIT_IRQ_WINDOW_OPEN = 7;
export const KVM_EXIT_SHUTDOWN = 8;
export const KVM_EXIT_FAIL_ENTRY = 9;
export const KVM_EXIT_INTR = 10;
export const KVM_EXIT_SET_TPR = 11;
export const KVM_EXIT_TPR_ACCESS = 12;
export const KVM_EXIT_S390_SIEIC = 13;
export const KVM_EXIT_S390_RESET = 14;
export const KVM_EXIT_DCR = 15;
export const KVM_EXIT_NMI = 16;
export const KVM_EXIT_INTERNAL_ERROR = 17;
export const KVM_EXIT_OSI = 18;
export const KVM_EXIT_PAPR_HCALL = 19;
export const KVM_EXIT_S390_UCONTROL = 20;
export const KVM_EXIT_WATCHDOG = 21;
export const KVM_EXIT_S390_TSCH = 22;
export const KVM_EXIT_EPR = 23;
export const KVM_EXIT_SYSTEM_EVENT = 24;
export const KVM_EXIT_S390_STSI = 25;
export const KVM_EXIT_IOAPIC_EOI = 26;
export const KVM_EXIT_HYPERV = 27;
export const KVM_EXIT_ARM_NISV = 28;
export const KVM_EXIT_X86_RDMSR = 29;
export const KVM_EXIT_X86_WRMSR = 30;
export const KVM_EXIT_DIRTY_RING_FULL = 31;
export const KVM_EXIT_AP_RESET_HOLD = 32;
export const KVM_EXIT_X86_BUS_LOCK = 33;
export const KVM_EXIT_XEN = 34;
export const KVM_EXIT_RISCV_SBI = 35;
export const KVM_EXIT_RISCV_CSR = 36;
export const KVM_EXIT_NOTIFY = 37;
export const KVM_EXIT_LOONGARCH_IOCSR = 38;
export const KVM_EXIT_MEMORY_FAULT = 39;

/** exit_reason → 'KVM_EXIT_<X>', the strings include/trace/events/kvm.h prints for kvm_userspace_exit. */
export const KVM_EXIT_REASON_NAMES: ReadonlyMap<number, string> = new Map(
  (
    [
      'UNKNOWN',
      'EXCEPTION',
      'IO',
      'HYPERCALL',
      'DEBUG',
      'HLT',
      'MMIO',
      'IRQ_WINDOW_OPEN',
      'SHUTDOWN',
      'FAIL_ENTRY',
      'INTR',
      'SET_TPR',
      'TPR_ACCESS',
      'S390_SIEIC',
      'S390_RESET',
      'DCR',
      'NMI',
      'INTERNAL_ERROR',
      'OSI',
      'PAPR_HCALL',
      'S390_UCONTROL',
      'WATCHDOG',
      'S390_TSCH',
      'EPR',
      'SYSTEM_EVENT',
      'S390_STSI',
      'IOAPIC_EOI',
      'HYPERV',
      'ARM_NISV',
      'X86_RDMSR',
      'X86_WRMSR',
      'DIRTY_RING_FULL',
      'AP_RESET_HOLD',
      'X86_BUS_LOCK',
      'XEN',
      'RISCV_SBI',
      'RISCV_CSR',
      'NOTIFY',
      'LOONGARCH_IOCSR',
      'MEMORY_FAULT',
    ] as const
  ).map((name, reason) => [reason, `KVM_EXIT_${name}`] as const),
);

/** The symbolic name of an exit reason, or `0x<hex>` for an unknown one (as __print_symbolic renders it). */
export function kvmExitReasonName(reason: number): string {
  return KVM_EXIT_REASON_NAMES.get(reason) ?? `0x${(reason >>> 0).toString(16)}`;
}
