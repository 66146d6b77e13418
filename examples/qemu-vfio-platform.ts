/**
 * QEMU (arm virt, `-device vfio-platform,host=fff51000.ethernet`) as an ioctl sequence against the model, in the
 * order QEMU issues it:
 *   accel/kvm/kvm-all.c kvm_init            /dev/kvm, API version, IPA size, KVM_CREATE_VM, required and optional caps
 *   target/arm/kvm.c                        scratch VM for KVM_ARM_PREFERRED_TARGET; KVM_CREATE_VCPU, KVM_ARM_VCPU_INIT
 *   hw/intc/arm_gic_kvm.c kvm_arm_gic_realize  vGIC probe (CREATE_DEVICE_TEST), create, NR_IRQS, CTRL_INIT
 *   hw/vfio/container.c (legacy backend)    group status, container, SET_CONTAINER, SET_IOMMU, GET_INFO (caps,
 *                                           argsz realloc), MAP_DMA of guest RAM, kvm-vfio FILE_ADD, GET_DEVICE_FD
 *   hw/vfio/platform.c                      device info, regions, IRQ info, eventfds (trigger + unmask)
 *   target/arm/kvm.c kvm_arm_machine_init_done  vGIC base addresses
 *   hw/vfio/platform.c vfio_start_irqfd_injection  KVM_IRQFD (RESAMPLE), SET_IRQS TRIGGER, SET_IRQS UNMASK
 *   hw/intc/arm_gic_kvm.c kvm_arm_gic_put   system reset: the distributor and CPU interface state through
 *                                           GRP_DIST_REGS / GRP_CPU_REGS (error_abort on any failure)
 *   vCPU thread                             KVM_RUN; qemu_cpu_kick: immediate_exit + SIG_IPI → EINTR / KVM_EXIT_INTR
 * KVM_SET_USER_MEMORY_REGION is left out: the model keeps no memslots (docs/ABI.md).
 *
 * Run: npx tsx examples/qemu-vfio-platform.ts
 */
import { pathToFileURL } from 'node:url';
import {
  EFD_CLOEXEC,
  EFD_NONBLOCK,
  KVM_ARM_PREFERRED_TARGET,
  KVM_ARM_VCPU_INIT,
  KVM_ARM_VCPU_PSCI_0_2,
  KVM_CAP_ARM_PSCI_0_2,
  KVM_CAP_ARM_VM_IPA_SIZE,
  KVM_CAP_DESTROY_MEMORY_REGION_WORKS,
  KVM_CAP_DEVICE_CTRL,
  KVM_CAP_IMMEDIATE_EXIT,
  KVM_CAP_IRQFD,
  KVM_CAP_IRQFD_RESAMPLE,
  KVM_CAP_MAX_VCPUS,
  KVM_CAP_MP_STATE,
  KVM_CAP_NR_VCPUS,
  KVM_CAP_USER_MEMORY,
  KVM_CHECK_EXTENSION,
  KVM_CREATE_VCPU,
  KVM_CREATE_VM,
  KVM_DEV_ARM_VGIC_CTRL_INIT,
  KVM_DEV_ARM_VGIC_GRP_ADDR,
  KVM_DEV_ARM_VGIC_GRP_CPU_REGS,
  KVM_DEV_ARM_VGIC_GRP_CTRL,
  KVM_DEV_ARM_VGIC_GRP_DIST_REGS,
  KVM_DEV_ARM_VGIC_GRP_NR_IRQS,
  KVM_DEV_TYPE_ARM_VGIC_V2,
  KVM_DEV_TYPE_ARM_VGIC_V3,
  KVM_DEV_TYPE_VFIO,
  KVM_DEV_VFIO_FILE,
  KVM_DEV_VFIO_FILE_ADD,
  KVM_GET_API_VERSION,
  KVM_GET_DEVICE_ATTR,
  KVM_IRQFD,
  KVM_IRQFD_FLAG_RESAMPLE,
  KVM_RUN,
  KVM_VGIC_V2_ADDR_TYPE_CPU,
  KVM_VGIC_V2_ADDR_TYPE_DIST,
  kvmDevArmVgicAttr,
  kvmDeviceAttr,
  kvmIrqfd,
  kvmVcpuInit,
  VFIO_API_VERSION,
  VFIO_CHECK_EXTENSION,
  VFIO_DEVICE_GET_IRQ_INFO,
  VFIO_GET_API_VERSION,
  VFIO_GROUP_GET_DEVICE_FD,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
  VFIO_IRQ_INFO_AUTOMASKED,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_ACTION_UNMASK,
  VFIO_SET_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  type VfioIovaRange,
  vfioInfoCapHeader,
  vfioIommuType1Info,
  vfioIommuType1InfoCapIovaRange,
  vfioIovaRange,
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
  hasAttr,
  IOMMU_GROUP,
  kickVcpu,
  mapGuestRam,
  raiseDeviceIrqs,
  setIrqEventfd,
  u32,
  u64,
} from './vmm.js';

/** hw/arm/virt.c: 256 SPIs + GIC_INTERNAL (32). */
const QEMU_VIRT_NUM_IRQ = 288;
/** The guest SPI QEMU's platform bus gives the device (virt's platform bus IRQs start at SPI 112). */
export const QEMU_GUEST_SPI = 112 + 32;
/** hw/arm/virt.c memmap: VIRT_MEM (guest RAM), VIRT_GIC_DIST and VIRT_GIC_CPU. */
const RAM_IPA = 0x4000_0000n;
const GICD_BASE = 0x0800_0000n;
const GICC_BASE = 0x0801_0000n;
/** include/qemu/osdep.h SIG_IPI = SIGUSR1 on Linux. */
const SIG_IPI = 10;

export interface QemuRun {
  readonly vmm: ExampleVmm;
  readonly vcpuFd: number;
  /** The guest driver's handled count after `irqs` raises. */
  readonly handled: number;
  /** run->exit_reason after the kick. */
  readonly kickExitReason: number;
  readonly iovaRanges: readonly VfioIovaRange[];
}

/** kvm_arm_gic_put: the reset state, distributor first (GICD_CTLR, TYPER sanity read, the per-IRQ registers), then each CPU interface. */
function kvmArmGicPut(v: ExampleVmm, gic: number): void {
  const dist = (off: number, val: number) =>
    deviceAccess(
      v,
      'KVM_SET_DEVICE_ATTR(DIST_REGS)',
      gic,
      KVM_DEV_ARM_VGIC_GRP_DIST_REGS,
      kvmDevArmVgicAttr(0, off),
      u32(v, val),
    );
  dist(0x000, 0); // s->ctlr
  const typer = v.p.mem.alloc(4);
  const ta = v.p.mem.allocBytes(
    kvmDeviceAttr.encode({
      flags: 0,
      group: KVM_DEV_ARM_VGIC_GRP_DIST_REGS,
      attr: kvmDevArmVgicAttr(0, 0x004),
      addr: BigInt(typer),
    }),
  );
  v.ioctl('KVM_GET_DEVICE_ATTR(DIST_REGS)', gic, KVM_GET_DEVICE_ATTR, ta);
  if (((v.p.mem.readU32(typer) & 0x1f) + 1) * 32 < QEMU_VIRT_NUM_IRQ) throw new Error('GICD_TYPER: too few IRQs');
  // kvm_dist_put of each per-IRQ field: clear-registers all ones, set-registers from the (reset) state
  const perIrq = (base: number, bitsPerIrq: number, val: number) => {
    for (let irq = 0; irq < QEMU_VIRT_NUM_IRQ; irq += 32 / bitsPerIrq) dist(base + (irq * bitsPerIrq) / 8, val);
  };
  perIrq(0x180, 1, 0xffff_ffff); // ICENABLER
  perIrq(0x100, 1, 0); // ISENABLER
  perIrq(0x080, 1, 0); // IGROUPR
  perIrq(0xc00, 2, 0); // ICFGR
  perIrq(0x800, 8, 0); // ITARGETSR
  perIrq(0x280, 1, 0xffff_ffff); // ICPENDR
  perIrq(0x200, 1, 0); // ISPENDR
  perIrq(0x380, 1, 0xffff_ffff); // ICACTIVER
  perIrq(0x300, 1, 0); // ISACTIVER
  perIrq(0x400, 8, 0); // IPRIORITYR
  const cpu = (off: number, val: number) =>
    deviceAccess(
      v,
      'KVM_SET_DEVICE_ATTR(CPU_REGS)',
      gic,
      KVM_DEV_ARM_VGIC_GRP_CPU_REGS,
      kvmDevArmVgicAttr(0, off),
      u32(v, val),
    );
  cpu(0x00, 0); // GICC_CTLR
  cpu(0x04, 0); // GICC_PMR
  cpu(0x08, 2); // GICC_BPR (GIC_MIN_BPR)
  cpu(0x1c, 3); // GICC_ABPR (GIC_MIN_ABPR)
  for (let n = 0; n < 4; n++) cpu(0xd0 + 4 * n, 0); // GICC_APRn
}

/** vfio_get_iommu_info: GET_INFO with sizeof(info), realloc to the argsz the kernel asks for, again; the IOVA ranges. */
function vfioGetIommuInfo(v: ExampleVmm, container: number): VfioIovaRange[] {
  let argsz = vfioIommuType1Info.size;
  let a = 0;
  for (;;) {
    a = v.p.mem.alloc(argsz);
    v.p.mem.copyToUser(a, vfioIommuType1Info.encode({ argsz, flags: 0, iova_pgsizes: 0, cap_offset: 0 }));
    v.ioctl('VFIO_IOMMU_GET_INFO', container, VFIO_IOMMU_GET_INFO, a);
    const info = vfioIommuType1Info.read(v.p.mem.view(a, vfioIommuType1Info.size));
    if (info.argsz <= argsz) break;
    argsz = info.argsz;
  }
  // vfio_get_info_iova_range: walk the chain for VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE
  const ranges: VfioIovaRange[] = [];
  for (let at = vfioIommuType1Info.read(v.p.mem.view(a, 24)).cap_offset; at !== 0; ) {
    const h = vfioInfoCapHeader.read(v.p.mem.view(a + at, 8));
    if (h.id === VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) {
      const cap = vfioIommuType1InfoCapIovaRange.read(v.p.mem.view(a + at, 16));
      for (let i = 0; i < cap.nr_iovas; i++) ranges.push(vfioIovaRange.read(v.p.mem.view(a + at + 16 + 16 * i, 16)));
    }
    at = h.next;
  }
  return ranges;
}

/** Boot the VM as QEMU does, raise the device line `irqs` times (each handled by the guest), then kick the vCPU. */
export function runQemu(irqs = 10): QemuRun {
  const v = exampleVmm(QEMU_GUEST_SPI, GICD_BASE);
  const { p } = v;

  // kvm_init
  const kvm = p.open('/dev/kvm');
  if (v.ioctl('KVM_GET_API_VERSION', kvm, KVM_GET_API_VERSION) !== 12) throw new Error('KVM API version');
  const ipa = v.ioctl('KVM_CHECK_EXTENSION(ARM_VM_IPA_SIZE)', kvm, KVM_CHECK_EXTENSION, KVM_CAP_ARM_VM_IPA_SIZE);
  const vm = v.ioctl('KVM_CREATE_VM', kvm, KVM_CREATE_VM, ipa);
  for (const [name, cap] of [
    ['USER_MEMORY', KVM_CAP_USER_MEMORY],
    ['DESTROY_MEMORY_REGION_WORKS', KVM_CAP_DESTROY_MEMORY_REGION_WORKS],
  ] as const) {
    if (v.ioctl(`KVM_CHECK_EXTENSION(${name})`, kvm, KVM_CHECK_EXTENSION, cap) === 0) throw new Error(`need ${name}`);
  }
  v.ioctl('KVM_CHECK_EXTENSION(NR_VCPUS)', kvm, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
  v.ioctl('KVM_CHECK_EXTENSION(MAX_VCPUS)', kvm, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
  const immediateExit = v.ioctl(
    'KVM_CHECK_EXTENSION(IMMEDIATE_EXIT)',
    kvm,
    KVM_CHECK_EXTENSION,
    KVM_CAP_IMMEDIATE_EXIT,
  );
  const irqfds = v.ioctl('KVM_CHECK_EXTENSION(IRQFD)', vm, KVM_CHECK_EXTENSION, KVM_CAP_IRQFD);
  const resamplefds = v.ioctl('KVM_CHECK_EXTENSION(IRQFD_RESAMPLE)', kvm, KVM_CHECK_EXTENSION, KVM_CAP_IRQFD_RESAMPLE);
  if (irqfds === 0 || resamplefds === 0)
    throw new Error('vfio-platform irqfd injection needs IRQFD and IRQFD_RESAMPLE');
  // cap_has_mp_state: 0 here, so QEMU never issues KVM_{GET,SET}_MP_STATE
  v.ioctl('KVM_CHECK_EXTENSION(MP_STATE)', kvm, KVM_CHECK_EXTENSION, KVM_CAP_MP_STATE);
  // kvm_arch_irqchip_create: the vGIC comes through the device API
  if (v.ioctl('KVM_CHECK_EXTENSION(DEVICE_CTRL)', kvm, KVM_CHECK_EXTENSION, KVM_CAP_DEVICE_CTRL) === 0) {
    throw new Error('need KVM_CAP_DEVICE_CTRL');
  }

  // kvm_arm_create_scratch_host_vcpu: the preferred target from a throw-away VM
  const scratch = v.ioctl('KVM_CREATE_VM(scratch)', kvm, KVM_CREATE_VM, ipa);
  const init = p.mem.allocBytes(kvmVcpuInit.encode({ target: 0 }));
  v.ioctl('KVM_ARM_PREFERRED_TARGET', scratch, KVM_ARM_PREFERRED_TARGET, init);
  const target = kvmVcpuInit.read(p.mem.view(init, kvmVcpuInit.size)).target;
  p.close(scratch);

  // kvm_init_vcpu + kvm_arch_init_vcpu
  const vcpu = v.ioctl('KVM_CREATE_VCPU', vm, KVM_CREATE_VCPU, 0);
  const psci02 = v.ioctl('KVM_CHECK_EXTENSION(ARM_PSCI_0_2)', kvm, KVM_CHECK_EXTENSION, KVM_CAP_ARM_PSCI_0_2);
  const features = [psci02 > 0 ? 1 << KVM_ARM_VCPU_PSCI_0_2 : 0, 0, 0, 0, 0, 0, 0];
  v.ioctl('KVM_ARM_VCPU_INIT', vcpu, KVM_ARM_VCPU_INIT, p.mem.allocBytes(kvmVcpuInit.encode({ target, features })));

  // virt.c finalize_gic_version → kvm_arm_vgic_probe; then kvm_arm_gic_realize
  const hasV3 = createDevice(v, vm, KVM_DEV_TYPE_ARM_VGIC_V3, true) === 0;
  const hasV2 = createDevice(v, vm, KVM_DEV_TYPE_ARM_VGIC_V2, true) === 0;
  if (hasV3 || !hasV2) throw new Error('this replay drives a GICv2 host');
  const gic = createDevice(v, vm, KVM_DEV_TYPE_ARM_VGIC_V2, false) as number;
  if (hasAttr(v, gic, KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0n)) {
    deviceAccess(v, 'KVM_SET_DEVICE_ATTR(NR_IRQS)', gic, KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0n, u32(v, QEMU_VIRT_NUM_IRQ));
  }
  if (hasAttr(v, gic, KVM_DEV_ARM_VGIC_GRP_CTRL, BigInt(KVM_DEV_ARM_VGIC_CTRL_INIT))) {
    deviceAccess(
      v,
      'KVM_SET_DEVICE_ATTR(CTRL_INIT)',
      gic,
      KVM_DEV_ARM_VGIC_GRP_CTRL,
      BigInt(KVM_DEV_ARM_VGIC_CTRL_INIT),
      0,
    );
  }

  // vfio_attach_device (legacy container): group, container, IOMMU, DMA mappings, kvm-vfio, device
  const group = p.open(`/dev/vfio/${IOMMU_GROUP}`);
  checkGroupViable(v, group);
  const container = p.open('/dev/vfio/vfio');
  if (v.ioctl('VFIO_GET_API_VERSION', container, VFIO_GET_API_VERSION) !== VFIO_API_VERSION)
    throw new Error('VFIO API');
  if (v.ioctl('VFIO_CHECK_EXTENSION(TYPE1v2)', container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) !== 1) {
    throw new Error('need type1v2');
  }
  const cfd = p.mem.alloc(4);
  p.mem.writeS32(cfd, container);
  v.ioctl('VFIO_GROUP_SET_CONTAINER', group, VFIO_GROUP_SET_CONTAINER, cfd);
  v.ioctl('VFIO_SET_IOMMU', container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU);
  const iovaRanges = vfioGetIommuInfo(v, container);
  // vfio_listener_region_add → vfio_legacy_dma_map: guest RAM at IOVA = GPA
  mapGuestRam(v, container, RAM_IPA);
  // vfio_kvm_device_add_group
  const kvfio = createDevice(v, vm, KVM_DEV_TYPE_VFIO, false) as number;
  const gfd = p.mem.alloc(4);
  p.mem.writeS32(gfd, group);
  deviceAccess(v, 'KVM_SET_DEVICE_ATTR(VFIO_FILE_ADD)', kvfio, KVM_DEV_VFIO_FILE, BigInt(KVM_DEV_VFIO_FILE_ADD), gfd);
  const device = v.ioctl('VFIO_GROUP_GET_DEVICE_FD', group, VFIO_GROUP_GET_DEVICE_FD, p.mem.writeString(DEV));

  // vfio_populate_device
  const numIrqs = deviceInfoAndRegions(v, device);
  const intps: { index: number; interrupt: number; unmask: number }[] = [];
  for (let index = 0; index < numIrqs; index++) {
    const ii = p.mem.allocBytes(vfioIrqInfo.encode({ argsz: vfioIrqInfo.size, flags: 0, index, count: 0 }));
    v.ioctl('VFIO_DEVICE_GET_IRQ_INFO', device, VFIO_DEVICE_GET_IRQ_INFO, ii);
    const irq = vfioIrqInfo.read(p.mem.view(ii, vfioIrqInfo.size));
    // vfio_init_intp: event_notifier_init → eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)
    const interrupt = p.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    const automasked = (irq.flags & VFIO_IRQ_INFO_AUTOMASKED) !== 0;
    const unmask = automasked ? p.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC) : -1;
    intps.push({ index, interrupt, unmask });
  }

  // kvm_arm_machine_init_done → kvm_arm_set_device_addr
  deviceAccess(
    v,
    'KVM_SET_DEVICE_ATTR(ADDR DIST)',
    gic,
    KVM_DEV_ARM_VGIC_GRP_ADDR,
    BigInt(KVM_VGIC_V2_ADDR_TYPE_DIST),
    u64(v, GICD_BASE),
  );
  deviceAccess(
    v,
    'KVM_SET_DEVICE_ATTR(ADDR CPU)',
    gic,
    KVM_DEV_ARM_VGIC_GRP_ADDR,
    BigInt(KVM_VGIC_V2_ADDR_TYPE_CPU),
    u64(v, GICC_BASE),
  );

  // vfio_start_irqfd_injection: irqfd with the unmask eventfd as resamplefd, then VFIO's trigger and unmask eventfds
  for (const intp of intps) {
    const resample = intp.unmask >= 0;
    const irqfd = kvmIrqfd.encode({
      fd: intp.interrupt,
      gsi: QEMU_GUEST_SPI - 32,
      flags: resample ? KVM_IRQFD_FLAG_RESAMPLE : 0,
      resamplefd: resample ? intp.unmask : 0,
    });
    v.ioctl('KVM_IRQFD', vm, KVM_IRQFD, p.mem.allocBytes(irqfd));
    setIrqEventfd(v, 'VFIO_DEVICE_SET_IRQS(TRIGGER)', device, intp.index, VFIO_IRQ_SET_ACTION_TRIGGER, intp.interrupt);
    if (resample)
      setIrqEventfd(v, 'VFIO_DEVICE_SET_IRQS(UNMASK)', device, intp.index, VFIO_IRQ_SET_ACTION_UNMASK, intp.unmask);
  }

  // qemu_system_reset → kvm_arm_gic_reset → kvm_arm_gic_put
  kvmArmGicPut(v, gic);

  // the vCPU thread: KVM_RUN until kicked
  const th = p.thread('CPU 0/KVM', 1);
  const run = th.ioctlAsync(vcpu, KVM_RUN, 0);
  const handled = raiseDeviceIrqs(v, irqs);

  // pause_all_vcpus → qemu_cpu_kick: immediate_exit (KVM_CAP_IMMEDIATE_EXIT) and SIG_IPI; kvm_cpu_exec clears it after
  const kickExitReason = kickVcpu(v, th, run, vcpu, SIG_IPI, immediateExit > 0);
  return { vmm: v, vcpuFd: vcpu, handled, kickExitReason, iovaRanges };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const r = runQemu(Number(process.argv[2] ?? 10));
  const stats = r.vmm.host.vcpuStats(r.vmm.p, r.vcpuFd);
  console.log(`${r.vmm.log.length} ioctls; the guest handled ${r.handled} device IRQs`);
  console.log('vCPU 0 exits:', stats.exits, 'returns to QEMU:', stats.userspaceExits);
  r.vmm.p.exit();
  const bad = r.vmm.host.checkInvariants({ teardown: true });
  console.log(bad.length === 0 ? 'teardown clean' : bad.join('\n'));
}
