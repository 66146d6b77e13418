/**
 * Request numbers and constants pinned to the values gcc computes from the uapi headers (linux-libc-dev 6.1,
 * include/uapi/linux/{kvm,vfio}.h with asm-generic/ioctl.h; arm64 kvm_vcpu_init is 32 bytes).
 */
import { describe, expect, it } from 'vitest';
import * as abi from './index.js';

/** The barrel as a plain record, so the table below can look names up. */
const exported: Readonly<Record<string, unknown>> = abi;

const pinned: ReadonlyArray<readonly [keyof typeof abi, number]> = [
  ['KVM_GET_API_VERSION', 0xae00],
  ['KVM_CREATE_VM', 0xae01],
  ['KVM_CHECK_EXTENSION', 0xae03],
  ['KVM_GET_VCPU_MMAP_SIZE', 0xae04],
  ['KVM_CREATE_VCPU', 0xae41],
  ['KVM_CREATE_IRQCHIP', 0xae60],
  ['KVM_IRQ_LINE', 0x4008ae61],
  ['KVM_IRQ_LINE_STATUS', 0xc008ae67],
  ['KVM_IRQFD', 0x4020ae76],
  ['KVM_SET_GSI_ROUTING', 0x4008ae6a],
  ['KVM_SIGNAL_MSI', 0x4020aea5],
  ['KVM_RUN', 0xae80],
  ['KVM_ARM_VCPU_INIT', 0x4020aeae],
  ['KVM_ARM_PREFERRED_TARGET', 0x8020aeaf],
  ['KVM_CREATE_DEVICE', 0xc00caee0],
  ['KVM_SET_DEVICE_ATTR', 0x4018aee1],
  ['KVM_GET_DEVICE_ATTR', 0x4018aee2],
  ['KVM_HAS_DEVICE_ATTR', 0x4018aee3],
  ['VFIO_GET_API_VERSION', 0x3b64],
  ['VFIO_CHECK_EXTENSION', 0x3b65],
  ['VFIO_SET_IOMMU', 0x3b66],
  ['VFIO_GROUP_GET_STATUS', 0x3b67],
  ['VFIO_GROUP_SET_CONTAINER', 0x3b68],
  ['VFIO_GROUP_UNSET_CONTAINER', 0x3b69],
  ['VFIO_GROUP_GET_DEVICE_FD', 0x3b6a],
  ['VFIO_DEVICE_GET_INFO', 0x3b6b],
  ['VFIO_DEVICE_GET_REGION_INFO', 0x3b6c],
  ['VFIO_DEVICE_GET_IRQ_INFO', 0x3b6d],
  ['VFIO_DEVICE_SET_IRQS', 0x3b6e],
  ['VFIO_DEVICE_RESET', 0x3b6f],
  ['VFIO_IOMMU_GET_INFO', 0x3b70],
  ['VFIO_IOMMU_MAP_DMA', 0x3b71],
  ['VFIO_IOMMU_UNMAP_DMA', 0x3b72],
  ['KVM_CAP_DESTROY_MEMORY_REGION_WORKS', 21],
  ['KVM_CAP_JOIN_MEMORY_REGIONS_WORKS', 30],
  ['KVM_CAP_INTERNAL_ERROR_DATA', 40],
  ['KVM_CAP_IOEVENTFD_ANY_LENGTH', 153],
];

describe('ioctl request numbers', () => {
  it.each(pinned)('%s is %d', (name, value) => {
    expect(exported[name]).toBe(value);
  });

  it('are all distinct', () => {
    expect(new Set(pinned.map(([name]) => exported[name])).size).toBe(pinned.length);
  });

  it('encode the struct sizes the kernel checks', () => {
    expect(abi._IOC_SIZE(abi.KVM_IRQFD)).toBe(abi.KVM_IRQFD_SIZE);
    expect(abi._IOC_SIZE(abi.KVM_SET_DEVICE_ATTR)).toBe(abi.KVM_DEVICE_ATTR_SIZE);
    expect(abi._IOC_SIZE(abi.KVM_CREATE_DEVICE)).toBe(abi.KVM_CREATE_DEVICE_SIZE);
    expect(abi._IOC_SIZE(abi.KVM_ARM_VCPU_INIT)).toBe(abi.KVM_VCPU_INIT_SIZE);
    expect(abi._IOC_SIZE(abi.VFIO_DEVICE_SET_IRQS)).toBe(0);
  });
});

describe('uapi constants', () => {
  it('kvm.h', () => {
    expect(abi.KVMIO).toBe(0xae);
    expect(abi.KVM_API_VERSION).toBe(12);
    expect(abi.KVM_CAP_IRQFD).toBe(32);
    expect(abi.KVM_CAP_IRQFD_RESAMPLE).toBe(82);
    expect(abi.KVM_CAP_DEVICE_CTRL).toBe(89);
    expect(abi.KVM_CAP_ARM_IRQ_LINE_LAYOUT_2).toBe(174);
    expect(abi.KVM_IRQFD_FLAG_DEASSIGN).toBe(1);
    expect(abi.KVM_IRQFD_FLAG_RESAMPLE).toBe(2);
    expect(abi.KVM_CREATE_DEVICE_TEST).toBe(1);
    expect(abi.KVM_DEV_TYPE_VFIO).toBe(4);
    expect(abi.KVM_DEV_TYPE_ARM_VGIC_V2).toBe(5);
    expect(abi.KVM_DEV_TYPE_ARM_VGIC_V3).toBe(7);
    expect([abi.KVM_EXIT_UNKNOWN, abi.KVM_EXIT_MMIO, abi.KVM_EXIT_INTR, abi.KVM_EXIT_SYSTEM_EVENT]).toEqual([
      0, 6, 10, 24,
    ]);
    expect([abi.KVM_EXIT_ARM_NISV, abi.KVM_EXIT_NOTIFY]).toEqual([28, 37]);
    expect(abi.kvmExitReasonName(6)).toBe('KVM_EXIT_MMIO');
    expect(abi.kvmExitReasonName(1000)).toBe('0x3e8');
  });

  it('kvm-vfio groups, upstream and the irqfwd extension', () => {
    expect([abi.KVM_DEV_VFIO_GROUP, abi.KVM_DEV_VFIO_GROUP_ADD, abi.KVM_DEV_VFIO_GROUP_DEL]).toEqual([1, 1, 2]);
    expect([abi.KVM_DEV_VFIO_FILE, abi.KVM_DEV_VFIO_FILE_ADD, abi.KVM_DEV_VFIO_FILE_DEL]).toEqual([1, 1, 2]);
    expect(abi.KVM_DEV_VFIO_GROUP_SET_SPAPR_TCE).toBe(3);
    expect(abi.KVM_DEV_VFIO_DEVICE).toBe(2);
    expect(abi.KVM_DEV_VFIO_DEVICE_ASSIGN_IRQ).toBe(1);
    expect(abi.KVM_DEV_VFIO_DEVICE_DEASSIGN_IRQ).toBe(2);
  });

  it('arm64 asm/kvm.h vGIC and targets', () => {
    expect([
      abi.KVM_DEV_ARM_VGIC_GRP_ADDR,
      abi.KVM_DEV_ARM_VGIC_GRP_DIST_REGS,
      abi.KVM_DEV_ARM_VGIC_GRP_CPU_REGS,
      abi.KVM_DEV_ARM_VGIC_GRP_NR_IRQS,
      abi.KVM_DEV_ARM_VGIC_GRP_CTRL,
    ]).toEqual([0, 1, 2, 3, 4]);
    expect(abi.KVM_DEV_ARM_VGIC_CTRL_INIT).toBe(0);
    expect([abi.KVM_VGIC_V2_ADDR_TYPE_DIST, abi.KVM_VGIC_V2_ADDR_TYPE_CPU]).toEqual([0, 1]);
    expect([abi.KVM_VGIC_V2_DIST_SIZE, abi.KVM_VGIC_V2_CPU_SIZE]).toEqual([0x1000, 0x2000]);
    expect(abi.KVM_DEV_ARM_VGIC_CPUID_MASK).toBe(0xff_0000_0000n);
    expect(abi.KVM_DEV_ARM_VGIC_OFFSET_MASK).toBe(0xffff_ffffn);
    expect(abi.KVM_ARM_TARGET_GENERIC_V8).toBe(5);
    expect(abi.KVM_ARM_VCPU_PSCI_0_2).toBe(2);
    expect([abi.KVM_ARM_IRQ_TYPE_CPU, abi.KVM_ARM_IRQ_TYPE_SPI, abi.KVM_ARM_IRQ_TYPE_PPI]).toEqual([0, 1, 2]);
    expect(abi.VGIC_NR_PRIVATE_IRQS).toBe(32);
  });

  it('vgic register attrs split into cpuid and offset, ignoring bits 40..63 as vgic_v2_parse_attr does', () => {
    const attr = abi.kvmDevArmVgicAttr(3, 0x800);
    expect(attr).toBe(0x3_0000_0800n);
    expect(abi.kvmDevArmVgicAttrCpuid(attr | (0xabn << 48n))).toBe(3);
    expect(abi.kvmDevArmVgicAttrOffset(attr | (0xabn << 48n))).toBe(0x800);
  });

  it('vfio.h', () => {
    expect(abi.VFIO_TYPE).toBe(0x3b);
    expect(abi.VFIO_BASE).toBe(100);
    expect(abi.VFIO_API_VERSION).toBe(0);
    expect(abi.VFIO_TYPE1_IOMMU).toBe(1);
    expect(abi.VFIO_TYPE1v2_IOMMU).toBe(3);
    expect(abi.VFIO_NOIOMMU_IOMMU).toBe(8);
    expect([abi.VFIO_GROUP_FLAGS_VIABLE, abi.VFIO_GROUP_FLAGS_CONTAINER_SET]).toEqual([1, 2]);
    expect(abi.VFIO_DEVICE_FLAGS_PLATFORM).toBe(4);
    expect([abi.VFIO_IRQ_INFO_EVENTFD, abi.VFIO_IRQ_INFO_MASKABLE, abi.VFIO_IRQ_INFO_AUTOMASKED]).toEqual([1, 2, 4]);
    expect(abi.VFIO_IRQ_INFO_NORESIZE).toBe(8);
    expect([abi.VFIO_IRQ_SET_DATA_NONE, abi.VFIO_IRQ_SET_DATA_BOOL, abi.VFIO_IRQ_SET_DATA_EVENTFD]).toEqual([1, 2, 4]);
    expect([abi.VFIO_IRQ_SET_ACTION_MASK, abi.VFIO_IRQ_SET_ACTION_UNMASK, abi.VFIO_IRQ_SET_ACTION_TRIGGER]).toEqual([
      8, 16, 32,
    ]);
    expect(abi.VFIO_IRQ_SET_DATA_TYPE_MASK).toBe(0x7);
    expect(abi.VFIO_IRQ_SET_ACTION_TYPE_MASK).toBe(0x38);
  });

  it('eventfd.h and fcntl.h', () => {
    expect(abi.EFD_SEMAPHORE).toBe(1);
    expect(abi.EFD_CLOEXEC).toBe(0o2000000);
    expect(abi.EFD_NONBLOCK).toBe(0o4000);
    expect(abi.EFD_FLAGS_SET).toBe(0o2004001);
    expect(abi.EVENTFD_MAX).toBe((1n << 64n) - 2n);
    expect(abi.O_RDWR).toBe(2);
  });
});
