/**
 * Codecs for the include/uapi/linux/kvm.h and arch/arm64/include/uapi/asm/kvm.h structs the model passes through
 * ioctls (and the mmap'd kvm_run), plus the irqfwd extension's struct kvm_arch_forwarded_irq. `*_SIZE` is
 * sizeof(struct), which is also the size encoded in the _IOW/_IOR/_IOWR request number.
 * Layouts checked against gcc offsetof/sizeof on the uapi headers (linux-libc-dev 6.1) and upstream torvalds/linux.
 */
import { defineStruct, type StructValue, u8, u8Array, u16, u32, u32Array, u64 } from './struct.js';

/** struct kvm_irq_level { union { __u32 irq; __s32 status; }; __u32 level; } (KVM_IRQ_LINE, KVM_IRQ_LINE_STATUS). */
export const kvmIrqLevel = defineStruct('kvm_irq_level', 8, { irq: u32(0), level: u32(4) });
export type KvmIrqLevel = StructValue<typeof kvmIrqLevel.fields>;
export const KVM_IRQ_LEVEL_SIZE = kvmIrqLevel.size;

/**
 * struct kvm_irqfd { __u32 fd; __u32 gsi; __u32 flags; __u32 resamplefd; __u8 pad[16]; } (KVM_IRQFD).
 * fd and resamplefd are __u32 in the header: -1 decodes as 0xffffffff (virt/kvm/eventfd.c hands them to fdget /
 * eventfd_ctx_fdget, which fail with EBADF). virt/kvm/eventfd.c kvm_irqfd never reads pad.
 */
export const kvmIrqfd = defineStruct('kvm_irqfd', 32, {
  fd: u32(0),
  gsi: u32(4),
  flags: u32(8),
  resamplefd: u32(12),
  pad: u8Array(16, 16),
});
export type KvmIrqfd = StructValue<typeof kvmIrqfd.fields>;
export const KVM_IRQFD_SIZE = kvmIrqfd.size;

/** struct kvm_create_device { __u32 type; __u32 fd (out); __u32 flags; } (KVM_CREATE_DEVICE). */
export const kvmCreateDevice = defineStruct('kvm_create_device', 12, { type: u32(0), fd: u32(4), flags: u32(8) });
export type KvmCreateDevice = StructValue<typeof kvmCreateDevice.fields>;
export const KVM_CREATE_DEVICE_SIZE = kvmCreateDevice.size;

/**
 * struct kvm_device_attr { __u32 flags; __u32 group; __u64 attr; __u64 addr; } (KVM_{SET,GET,HAS}_DEVICE_ATTR).
 * `attr` and `addr` decode to bigint: the vGIC ignores attr bits 40..63 of GRP_DIST/CPU_REGS (vgic_v2_parse_attr), and
 * `addr` is a user pointer that faults only when the device dereferences it.
 */
export const kvmDeviceAttr = defineStruct('kvm_device_attr', 24, {
  flags: u32(0),
  group: u32(4),
  attr: u64(8),
  addr: u64(16),
});
export type KvmDeviceAttr = StructValue<typeof kvmDeviceAttr.fields>;
export const KVM_DEVICE_ATTR_SIZE = kvmDeviceAttr.size;

/**
 * struct kvm_msi { __u32 address_lo; __u32 address_hi; __u32 data; __u32 flags; __u32 devid; __u8 pad[12]; }
 * (KVM_SIGNAL_MSI). `devid` is read only with KVM_MSI_VALID_DEVID in flags.
 */
export const kvmMsi = defineStruct('kvm_msi', 32, {
  address_lo: u32(0),
  address_hi: u32(4),
  data: u32(8),
  flags: u32(12),
  devid: u32(16),
  pad: u8Array(20, 12),
});
export type KvmMsi = StructValue<typeof kvmMsi.fields>;
export const KVM_MSI_SIZE = kvmMsi.size;

/** struct kvm_irq_routing { __u32 nr; __u32 flags; struct kvm_irq_routing_entry entries[0]; } (KVM_SET_GSI_ROUTING). */
export const kvmIrqRouting = defineStruct('kvm_irq_routing', 8, { nr: u32(0), flags: u32(4) });
export type KvmIrqRouting = StructValue<typeof kvmIrqRouting.fields>;
export const KVM_IRQ_ROUTING_SIZE = kvmIrqRouting.size;

/**
 * struct kvm_irq_routing_entry { __u32 gsi; __u32 type; __u32 flags; __u32 pad; union { struct
 * kvm_irq_routing_irqchip { __u32 irqchip; __u32 pin; } irqchip; struct kvm_irq_routing_msi { __u32 address_lo;
 * __u32 address_hi; __u32 data; union { __u32 pad; __u32 devid; }; } msi; … __u32 pad[8]; } u; } — 48 bytes, the
 * array after kvm_irq_routing. The union is flattened: `u0`..`u3` are its first four words (irqchip = u0, pin = u1;
 * address_lo/hi = u0/u1, data = u2, devid = u3).
 */
export const kvmIrqRoutingEntry = defineStruct('kvm_irq_routing_entry', 48, {
  gsi: u32(0),
  type: u32(4),
  flags: u32(8),
  pad: u32(12),
  u0: u32(16),
  u1: u32(20),
  u2: u32(24),
  u3: u32(28),
  upad: u8Array(32, 16),
});
export type KvmIrqRoutingEntry = StructValue<typeof kvmIrqRoutingEntry.fields>;
export const KVM_IRQ_ROUTING_ENTRY_SIZE = kvmIrqRoutingEntry.size;

/** Number of __u32 words in kvm_vcpu_init.features on arm64. */
export const KVM_VCPU_INIT_FEATURE_WORDS = 7;

/** arm64 struct kvm_vcpu_init { __u32 target; __u32 features[7]; } (KVM_ARM_VCPU_INIT, KVM_ARM_PREFERRED_TARGET). */
export const kvmVcpuInit = defineStruct('kvm_vcpu_init', 32, {
  target: u32(0),
  features: u32Array(4, KVM_VCPU_INIT_FEATURE_WORDS),
});
export type KvmVcpuInit = StructValue<typeof kvmVcpuInit.fields>;
export const KVM_VCPU_INIT_SIZE = kvmVcpuInit.size;

/** Byte offset of the exit-reason union inside struct kvm_run (after cr8 and apic_base; no s390 psw on arm64). */
export const KVM_RUN_EXIT_UNION_OFFSET = 32;
/** sizeof(struct kvm_run): 32 header + 256 union + kvm_valid_regs + kvm_dirty_regs + 2048 sync-regs area. */
export const KVM_RUN_SIZE = 2352;

/**
 * struct kvm_run, the subset an arm64 VMM reads (the mmap of a vCPU fd). Members:
 * - in: `request_interrupt_window` (0, unused on arm64), `immediate_exit` (1; named immediate_exit__unsafe inside the
 *   kernel since 6.11, same byte);
 * - out: `exit_reason` (8), `ready_for_interrupt_injection` (12), `if_flag` (13), `flags` (14, __u16 arch flags; the
 *   model sets none), and from the exit union the KVM_EXIT_MMIO member, flattened: `mmio_phys_addr` (32),
 *   `mmio_data` (40, __u8[8]), `mmio_len` (48), `mmio_is_write` (52).
 * Other union members overlap these bytes; read KVM_EXIT_SYSTEM_EVENT with kvmRunSystemEvent at
 * KVM_RUN_EXIT_UNION_OFFSET. cr8/apic_base (x86), kvm_valid_regs/kvm_dirty_regs and the sync-regs area are not modelled
 * and read as whatever the bytes hold (the codec leaves them out).
 */
export const kvmRun = defineStruct('kvm_run', KVM_RUN_SIZE, {
  request_interrupt_window: u8(0),
  immediate_exit: u8(1),
  exit_reason: u32(8),
  ready_for_interrupt_injection: u8(12),
  if_flag: u8(13),
  flags: u16(14),
  mmio_phys_addr: u64(KVM_RUN_EXIT_UNION_OFFSET),
  mmio_data: u8Array(KVM_RUN_EXIT_UNION_OFFSET + 8, 8),
  mmio_len: u32(KVM_RUN_EXIT_UNION_OFFSET + 16),
  mmio_is_write: u8(KVM_RUN_EXIT_UNION_OFFSET + 20),
});
export type KvmRun = StructValue<typeof kvmRun.fields>;

/**
 * The KVM_EXIT_SYSTEM_EVENT member of the kvm_run exit union: { __u32 type; __u32 ndata; union { __u64 flags;
 * __u64 data[16]; }; } — read at KVM_RUN_EXIT_UNION_OFFSET. Only data[0] (= flags) is decoded.
 */
export const kvmRunSystemEvent = defineStruct('kvm_run.system_event', 136, {
  type: u32(0),
  ndata: u32(4),
  flags: u64(8),
});
export type KvmRunSystemEvent = StructValue<typeof kvmRunSystemEvent.fields>;

/**
 * irqfwd extension (the seed patch's never-merged ABI; not in any Linux release):
 * struct kvm_arch_forwarded_irq { __u32 fd; __u32 irq_index; __u32 guest_irq; } — 12 bytes, pointed to by
 * kvm_device_attr.addr for KVM_DEV_VFIO_DEVICE_{ASSIGN,DEASSIGN}_IRQ. Member names are the ones the seed
 * (RFC 9/9, arch/arm/kvm/kvm_vfio_arm.c) dereferences; the types and order are fixed by this project (issue 5), since
 * the header patch of the series was not found. `fd` is the caller's VFIO device fd, `irq_index` a VFIO IRQ index of
 * that device, `guest_irq` the SPI number (vINTID - 32: the seed maps guest_irq + VGIC_NR_PRIVATE_IRQS).
 */
export const kvmArchForwardedIrq = defineStruct('kvm_arch_forwarded_irq', 12, {
  fd: u32(0),
  irq_index: u32(4),
  guest_irq: u32(8),
});
export type KvmArchForwardedIrq = StructValue<typeof kvmArchForwardedIrq.fields>;
export const KVM_ARCH_FORWARDED_IRQ_SIZE = kvmArchForwardedIrq.size;
