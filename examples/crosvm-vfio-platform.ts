/**
 * crosvm (aarch64, `--vfio-platform /sys/bus/platform/devices/fff51000.ethernet`) as an ioctl sequence against the
 * model, in crosvm's order:
 *   hypervisor/src/kvm: Kvm::new, KvmVm::new      /dev/kvm, API version, IPA size, KVM_CREATE_VM
 *   devices/src/irqchip/kvm/aarch64.rs KvmKernelIrqChip::new  KVM_CREATE_DEVICE(VGIC_V3), on failure VGIC_V2; DIST and
 *                                                 CPU addresses; NR_IRQS = AARCH64_GIC_NR_IRQS
 *   devices/src/vfio.rs VfioContainer / VfioGroup  container, API version, TYPE1v2 extension, group status,
 *                                                 SET_CONTAINER, kvm-vfio GROUP_ADD, SET_IOMMU, MAP_DMA of guest memory
 *   VfioDevice::new / VfioPlatformDevice          GET_DEVICE_FD, device info, regions, IRQ info
 *   aarch64/src/lib.rs build_vm                   KVM_CREATE_VCPU, vcpu.init (KVM_ARM_PREFERRED_TARGET,
 *                                                 KVM_ARM_VCPU_INIT), irq_chip.finalize (CTRL_INIT), then
 *   arch/src/lib.rs generate_platform_bus         per level IRQ: KVM_IRQFD (RESAMPLE) via register_level_irq_event,
 *                                                 then VFIO SET_IRQS TRIGGER and UNMASK (assign_level_platform_irq)
 *   vCPU thread                                   KVM_RUN; the kick: set_immediate_exit + SIGRTMIN → EINTR /
 *                                                 KVM_EXIT_INTR
 * KVM_SET_USER_MEMORY_REGION is left out: the model keeps no memslots (docs/ABI.md).
 *
 * Run: npx tsx examples/crosvm-vfio-platform.ts
 */
import { pathToFileURL } from 'node:url';
import {
  EFD_CLOEXEC,
  KVM_ARM_PREFERRED_TARGET,
  KVM_ARM_VCPU_INIT,
  KVM_ARM_VCPU_PSCI_0_2,
  KVM_CAP_ARM_PSCI_0_2,
  KVM_CAP_ARM_VM_IPA_SIZE,
  KVM_CAP_IMMEDIATE_EXIT,
  KVM_CHECK_EXTENSION,
  KVM_CREATE_VCPU,
  KVM_CREATE_VM,
  KVM_DEV_ARM_VGIC_CTRL_INIT,
  KVM_DEV_ARM_VGIC_GRP_ADDR,
  KVM_DEV_ARM_VGIC_GRP_CTRL,
  KVM_DEV_ARM_VGIC_GRP_NR_IRQS,
  KVM_DEV_TYPE_ARM_VGIC_V2,
  KVM_DEV_TYPE_ARM_VGIC_V3,
  KVM_DEV_TYPE_VFIO,
  KVM_DEV_VFIO_GROUP,
  KVM_DEV_VFIO_GROUP_ADD,
  KVM_GET_API_VERSION,
  KVM_IRQFD,
  KVM_IRQFD_FLAG_RESAMPLE,
  KVM_RUN,
  KVM_VGIC_V2_ADDR_TYPE_CPU,
  KVM_VGIC_V2_ADDR_TYPE_DIST,
  kvmIrqfd,
  kvmVcpuInit,
  VFIO_API_VERSION,
  VFIO_CHECK_EXTENSION,
  VFIO_DEVICE_GET_IRQ_INFO,
  VFIO_GET_API_VERSION,
  VFIO_GROUP_GET_DEVICE_FD,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_IRQ_INFO_AUTOMASKED,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_ACTION_UNMASK,
  VFIO_SET_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  vfioIrqInfo,
} from '../src/index.js';
import {
  checkGroupViable,
  createDevice,
  DEV,
  deviceAccess,
  deviceInfoAndRegions,
  type ExampleVmm,
  exampleVmm,
  IOMMU_GROUP,
  kickVcpu,
  mapGuestRam,
  raiseDeviceIrqs,
  setIrqEventfd,
  u32,
  u64,
} from './vmm.js';

/** arch: AARCH64_AXI_BASE - AARCH64_GIC_DIST_SIZE, and the CPU interface below it (AARCH64_GIC_CPUI_SIZE 0x20000). */
const AARCH64_GIC_DIST_BASE = 0x4000_0000n - 0x1_0000n;
const AARCH64_GIC_CPUI_BASE = AARCH64_GIC_DIST_BASE - 0x2_0000n;
/** devices: AARCH64_GIC_NR_IRQS, 32 private + 32 SPIs. */
const AARCH64_GIC_NR_IRQS = 64;
/** The GSI crosvm's SystemAllocator hands the device's IRQ (resources.allocate_irq), and the guest SPI it is. */
export const CROSVM_GSI = 8;
export const CROSVM_GUEST_SPI = CROSVM_GSI + 32;
/** crosvm kicks vCPU threads with SIGRTMIN + 0 (glibc SIGRTMIN = 34). */
const SIGRTMIN = 34;
/** crosvm's guest memory starts at AARCH64_PHYS_MEM_START = 0x8000_0000. */
const AARCH64_PHYS_MEM_START = 0x8000_0000n;

export interface CrosvmRun {
  readonly vmm: ExampleVmm;
  readonly vcpuFd: number;
  readonly handled: number;
  readonly kickExitReason: number;
}

/** Boot the VM as crosvm does, raise the device line `irqs` times (each handled by the guest), then kick the vCPU. */
export function runCrosvm(irqs = 10): CrosvmRun {
  const v = exampleVmm(CROSVM_GUEST_SPI, AARCH64_GIC_DIST_BASE);
  const { p } = v;

  // Kvm::new, KvmVm::new (get_guest_phys_addr_bits → the VM type)
  const kvm = p.open('/dev/kvm');
  if (v.ioctl('KVM_GET_API_VERSION', kvm, KVM_GET_API_VERSION) !== 12) throw new Error('KVM API version');
  const ipa = v.ioctl('KVM_CHECK_EXTENSION(ARM_VM_IPA_SIZE)', kvm, KVM_CHECK_EXTENSION, KVM_CAP_ARM_VM_IPA_SIZE);
  const vm = v.ioctl('KVM_CREATE_VM', kvm, KVM_CREATE_VM, ipa);

  // KvmKernelIrqChip::new: GICv3 first, then GICv2; addresses and the IRQ count
  if (createDevice(v, vm, KVM_DEV_TYPE_ARM_VGIC_V3, false) !== 'ENODEV') throw new Error('this replay drives GICv2');
  const gic = createDevice(v, vm, KVM_DEV_TYPE_ARM_VGIC_V2, false) as number;
  const dist = BigInt(KVM_VGIC_V2_ADDR_TYPE_DIST);
  const cpu = BigInt(KVM_VGIC_V2_ADDR_TYPE_CPU);
  deviceAccess(
    v,
    'KVM_SET_DEVICE_ATTR(ADDR DIST)',
    gic,
    KVM_DEV_ARM_VGIC_GRP_ADDR,
    dist,
    u64(v, AARCH64_GIC_DIST_BASE),
  );
  deviceAccess(v, 'KVM_SET_DEVICE_ATTR(ADDR CPU)', gic, KVM_DEV_ARM_VGIC_GRP_ADDR, cpu, u64(v, AARCH64_GIC_CPUI_BASE));
  deviceAccess(v, 'KVM_SET_DEVICE_ATTR(NR_IRQS)', gic, KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0n, u32(v, AARCH64_GIC_NR_IRQS));

  // VfioContainer::new, VfioGroup::new (with kvm_device_set_group), container init (SET_IOMMU + guest memory)
  const container = p.open('/dev/vfio/vfio');
  if (v.ioctl('VFIO_GET_API_VERSION', container, VFIO_GET_API_VERSION) !== VFIO_API_VERSION)
    throw new Error('VFIO API');
  if (v.ioctl('VFIO_CHECK_EXTENSION(TYPE1v2)', container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) !== 1) {
    throw new Error('need type1v2');
  }
  const group = p.open(`/dev/vfio/${IOMMU_GROUP}`);
  checkGroupViable(v, group);
  const cfd = p.mem.alloc(4);
  p.mem.writeS32(cfd, container);
  v.ioctl('VFIO_GROUP_SET_CONTAINER', group, VFIO_GROUP_SET_CONTAINER, cfd);
  const kvfio = createDevice(v, vm, KVM_DEV_TYPE_VFIO, false) as number;
  const gfd = p.mem.alloc(4);
  p.mem.writeS32(gfd, group);
  deviceAccess(
    v,
    'KVM_SET_DEVICE_ATTR(VFIO_GROUP_ADD)',
    kvfio,
    KVM_DEV_VFIO_GROUP,
    BigInt(KVM_DEV_VFIO_GROUP_ADD),
    gfd,
  );
  v.ioctl('VFIO_SET_IOMMU', container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU);
  mapGuestRam(v, container, AARCH64_PHYS_MEM_START);

  // VfioDevice::new, VfioPlatformDevice::get_platform_irqs
  const device = v.ioctl('VFIO_GROUP_GET_DEVICE_FD', group, VFIO_GROUP_GET_DEVICE_FD, p.mem.writeString(DEV));
  const numIrqs = deviceInfoAndRegions(v, device);
  // build_vm: the vCPUs, their init once all exist (vcpu.init asks the VM for the preferred target), the irqchip's
  // finalize — before any irqfd: KVM_IRQFD is EAGAIN until the vGIC is initialised (kvm_arch_intc_initialized)
  const vcpu = v.ioctl('KVM_CREATE_VCPU', vm, KVM_CREATE_VCPU, 0);
  const vi = p.mem.allocBytes(kvmVcpuInit.encode({ target: 0 }));
  v.ioctl('KVM_ARM_PREFERRED_TARGET', vm, KVM_ARM_PREFERRED_TARGET, vi);
  const target = kvmVcpuInit.read(p.mem.view(vi, kvmVcpuInit.size)).target;
  const psci02 = v.ioctl('KVM_CHECK_EXTENSION(ARM_PSCI_0_2)', vm, KVM_CHECK_EXTENSION, KVM_CAP_ARM_PSCI_0_2);
  const features = [psci02 > 0 ? 1 << KVM_ARM_VCPU_PSCI_0_2 : 0, 0, 0, 0, 0, 0, 0];
  v.ioctl('KVM_ARM_VCPU_INIT', vcpu, KVM_ARM_VCPU_INIT, p.mem.allocBytes(kvmVcpuInit.encode({ target, features })));
  const init = BigInt(KVM_DEV_ARM_VGIC_CTRL_INIT);
  deviceAccess(v, 'KVM_SET_DEVICE_ATTR(CTRL_INIT)', gic, KVM_DEV_ARM_VGIC_GRP_CTRL, init, 0);

  // generate_platform_bus: an IrqLevelEvent (trigger + resample eventfds) per automasked IRQ, registered with the
  // irqchip first, then handed to VFIO
  for (let index = 0; index < numIrqs; index++) {
    const ii = p.mem.allocBytes(vfioIrqInfo.encode({ argsz: vfioIrqInfo.size, flags: 0, index, count: 0 }));
    v.ioctl('VFIO_DEVICE_GET_IRQ_INFO', device, VFIO_DEVICE_GET_IRQ_INFO, ii);
    const irq = vfioIrqInfo.read(p.mem.view(ii, vfioIrqInfo.size));
    if ((irq.flags & VFIO_IRQ_INFO_AUTOMASKED) === 0) throw new Error('this replay wires a level (automasked) IRQ');
    const trigger = p.eventfd(0, EFD_CLOEXEC);
    const resample = p.eventfd(0, EFD_CLOEXEC);
    const irqfd = kvmIrqfd.encode({
      fd: trigger,
      gsi: CROSVM_GSI,
      flags: KVM_IRQFD_FLAG_RESAMPLE,
      resamplefd: resample,
    });
    v.ioctl('KVM_IRQFD', vm, KVM_IRQFD, p.mem.allocBytes(irqfd));
    setIrqEventfd(v, 'VFIO_DEVICE_SET_IRQS(TRIGGER)', device, index, VFIO_IRQ_SET_ACTION_TRIGGER, trigger);
    setIrqEventfd(v, 'VFIO_DEVICE_SET_IRQS(UNMASK)', device, index, VFIO_IRQ_SET_ACTION_UNMASK, resample);
  }

  // the vCPU thread's run loop, with immediate_exit for kicks
  const immediateExit = v.ioctl(
    'KVM_CHECK_EXTENSION(IMMEDIATE_EXIT)',
    kvm,
    KVM_CHECK_EXTENSION,
    KVM_CAP_IMMEDIATE_EXIT,
  );
  const th = p.thread('crosvm_vcpu0', 1);
  const run = th.ioctlAsync(vcpu, KVM_RUN, 0);
  const handled = raiseDeviceIrqs(v, irqs);
  const kickExitReason = kickVcpu(v, th, run, vcpu, SIGRTMIN, immediateExit > 0);
  return { vmm: v, vcpuFd: vcpu, handled, kickExitReason };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const r = runCrosvm(Number(process.argv[2] ?? 10));
  const stats = r.vmm.host.vcpuStats(r.vmm.p, r.vcpuFd);
  console.log(`${r.vmm.log.length} ioctls; the guest handled ${r.handled} device IRQs`);
  console.log('vCPU 0 exits:', stats.exits, 'returns to crosvm:', stats.userspaceExits);
  r.vmm.p.exit();
  const bad = r.vmm.host.checkInvariants({ teardown: true });
  console.log(bad.length === 0 ? 'teardown clean' : bad.join('\n'));
}
