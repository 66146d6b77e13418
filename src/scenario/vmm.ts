/**
 * A VMM's side of the ABI, written the way QEMU's hw/vfio code drives it: every call is a real ioctl with its
 * struct laid out byte by byte in the process's memory. Scenarios and tests use it; nothing here reaches into the
 * kernel model except through the process's syscalls.
 */

import { ErrnoError } from '../abi/errno.js';
import { EFD_CLOEXEC, EFD_NONBLOCK } from '../abi/eventfd.js';
import * as abi from '../abi/index.js';
import {
  KVM_API_VERSION,
  KVM_ARM_PREFERRED_TARGET,
  KVM_ARM_VCPU_INIT,
  KVM_CREATE_DEVICE,
  KVM_CREATE_DEVICE_TEST,
  KVM_CREATE_VCPU,
  KVM_CREATE_VM,
  KVM_DEV_ARM_VGIC_CTRL_INIT,
  KVM_DEV_ARM_VGIC_GRP_ADDR,
  KVM_DEV_ARM_VGIC_GRP_CTRL,
  KVM_DEV_ARM_VGIC_GRP_NR_IRQS,
  KVM_DEV_TYPE_ARM_VGIC_ITS,
  KVM_DEV_TYPE_ARM_VGIC_V2,
  KVM_DEV_TYPE_ARM_VGIC_V3,
  KVM_DEV_TYPE_VFIO,
  KVM_DEV_VFIO_DEVICE,
  KVM_DEV_VFIO_DEVICE_ASSIGN_IRQ,
  KVM_DEV_VFIO_DEVICE_DEASSIGN_IRQ,
  KVM_DEV_VFIO_GROUP,
  KVM_DEV_VFIO_GROUP_ADD,
  KVM_DEV_VFIO_GROUP_DEL,
  KVM_GET_API_VERSION,
  KVM_GET_VCPU_MMAP_SIZE,
  KVM_IRQ_ROUTING_IRQCHIP,
  KVM_IRQ_ROUTING_MSI,
  KVM_IRQFD,
  KVM_IRQFD_FLAG_DEASSIGN,
  KVM_IRQFD_FLAG_RESAMPLE,
  KVM_MSI_VALID_DEVID,
  KVM_SET_DEVICE_ATTR,
  KVM_SET_GSI_ROUTING,
  KVM_VGIC_ITS_ADDR_TYPE,
  KVM_VGIC_V2_ADDR_TYPE_CPU,
  KVM_VGIC_V2_ADDR_TYPE_DIST,
  KVM_VGIC_V3_ADDR_TYPE_DIST,
  KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION,
  kvmArchForwardedIrq,
  kvmCreateDevice as kvmCreateDeviceStruct,
  kvmDeviceAttr,
  kvmIrqfd as kvmIrqfdStruct,
  kvmIrqRouting,
  kvmIrqRoutingEntry,
  kvmVcpuInit,
  kvmVgicV3RdistRegionAttr,
  type StructCodec,
  type StructInit,
} from '../abi/index.js';
import {
  VFIO_DEVICE_GET_INFO,
  VFIO_DEVICE_GET_IRQ_INFO,
  VFIO_DEVICE_SET_IRQS,
  VFIO_GROUP_GET_DEVICE_FD,
  VFIO_GROUP_GET_STATUS,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_IRQ_SET_ACTION_MASK,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_ACTION_UNMASK,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_IRQ_SET_DATA_NONE,
  VFIO_PCI_MSI_IRQ_INDEX,
  VFIO_PCI_MSIX_IRQ_INDEX,
  VFIO_SET_IOMMU,
  VFIO_TYPE1_IOMMU,
  vfioDeviceInfo,
  vfioGroupStatus,
  vfioIrqInfo,
  vfioIrqSetEventfdData,
  vfioIrqSetWithData,
} from '../abi/vfio.js';
import { VIRT_GIC_ITS } from '../guest/itsDriver.js';
import { gicIpiSend } from '../host/irq/boot.js';
import type { Process, UThread } from '../host/process.js';
import { IPI_RESCHEDULE_SGI } from '../kvm/kvm.js';
import type { Host } from '../machine.js';
import { TASK_BLOCKED, TASK_IN_GUEST } from '../sim/task.js';
import { createdFdAt } from './createdFd.js';

export interface VfioDeviceHandle {
  readonly container: number;
  readonly group: number;
  readonly device: number;
}

/** Bytes placed in user memory; returns the address. */
export function place(p: Process, bytes: Uint8Array): number {
  return p.mem.allocBytes(bytes);
}

/** Open container, group, set the container and type1, and get the device fd (QEMU vfio_get_device). */
export function openVfioDevice(p: Process, iommuGroup: number, name: string): VfioDeviceHandle {
  const container = p.open('/dev/vfio/vfio');
  const group = p.open(`/dev/vfio/${iommuGroup}`);
  const st = place(p, vfioGroupStatus.encode({ argsz: vfioGroupStatus.size, flags: 0 }));
  p.ioctl(group, VFIO_GROUP_GET_STATUS, st);
  const cfd = p.mem.alloc(4);
  p.mem.writeS32(cfd, container);
  p.ioctl(group, VFIO_GROUP_SET_CONTAINER, cfd);
  p.ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU);
  const nameAddr = p.mem.writeString(name);
  const device = p.ioctl(group, VFIO_GROUP_GET_DEVICE_FD, nameAddr);
  return { container, group, device };
}

export function deviceInfo(p: Process, device: number) {
  const a = place(
    p,
    vfioDeviceInfo.encode({ argsz: vfioDeviceInfo.size, flags: 0, num_regions: 0, num_irqs: 0, cap_offset: 0 }),
  );
  p.ioctl(device, VFIO_DEVICE_GET_INFO, a);
  return vfioDeviceInfo.read(p.mem.view(a, vfioDeviceInfo.size));
}

export function irqInfo(p: Process, device: number, index: number) {
  const a = place(p, vfioIrqInfo.encode({ argsz: vfioIrqInfo.size, flags: 0, index, count: 0 }));
  p.ioctl(device, VFIO_DEVICE_GET_IRQ_INFO, a);
  return vfioIrqInfo.read(p.mem.view(a, vfioIrqInfo.size));
}

/** VFIO_DEVICE_SET_IRQS with one eventfd (fd -1 disables). */
export function setIrqEventfd(p: Process, device: number, index: number, action: number, fd: number): number {
  return setIrqEventfds(p, device, index, action, 0, [fd]);
}

/** VFIO_DEVICE_SET_IRQS with DATA_EVENTFD: `fds` for the vectors from `start` on (fd -1 unbinds one). */
export function setIrqEventfds(
  p: Process,
  device: number,
  index: number,
  action: number,
  start: number,
  fds: readonly number[],
): number {
  const bytes = vfioIrqSetWithData(
    { flags: VFIO_IRQ_SET_DATA_EVENTFD | action, index, start, count: fds.length },
    vfioIrqSetEventfdData(fds),
  );
  return p.ioctl(device, VFIO_DEVICE_SET_IRQS, place(p, bytes));
}

/** VFIO_DEVICE_SET_IRQS with DATA_NONE (count 1, or `count`). */
export function setIrqNone(p: Process, device: number, index: number, action: number, count = 1): number {
  const bytes = vfioIrqSetWithData({ flags: VFIO_IRQ_SET_DATA_NONE | action, index, start: 0, count });
  return p.ioctl(device, VFIO_DEVICE_SET_IRQS, place(p, bytes));
}

export const trigger = (p: Process, device: number, index: number, fd: number) =>
  setIrqEventfd(p, device, index, VFIO_IRQ_SET_ACTION_TRIGGER, fd);
export const unmaskEventfd = (p: Process, device: number, index: number, fd: number) =>
  setIrqEventfd(p, device, index, VFIO_IRQ_SET_ACTION_UNMASK, fd);
export const unmask = (p: Process, device: number, index: number) =>
  setIrqNone(p, device, index, VFIO_IRQ_SET_ACTION_UNMASK);
export const mask = (p: Process, device: number, index: number) =>
  setIrqNone(p, device, index, VFIO_IRQ_SET_ACTION_MASK);

/** Read an eventfd's count (8 bytes); EAGAIN propagates for a non-blocking empty one. */
export function readEventfd(p: Process, fd: number): bigint {
  const a = p.mem.alloc(8);
  p.read(fd, a, 8);
  const v = p.mem.view(a, 8).getBigUint64(0, true);
  p.mem.free(a);
  return v;
}

/** Write `value` to an eventfd. */
export function writeEventfd(p: Process, fd: number, value: bigint): void {
  const a = p.mem.alloc(8);
  p.mem.view(a, 8).setBigUint64(0, value, true);
  p.write(fd, a, 8);
  p.mem.free(a);
}

// ---------------------------------------------------------------------------------------------------------------
// KVM: the VM as QEMU's arm64 `virt` machine builds it (accel/kvm/kvm-all.c kvm_init, target/arm/kvm.c,
// hw/intc/arm_gic_kvm.c kvm_arm_gic_realize, hw/arm/virt.c memory map)

/** hw/arm/virt.c base_memmap: VIRT_GIC_DIST and VIRT_GIC_CPU. */
export const VIRT_GIC_DIST_BASE = 0x0800_0000;
export const VIRT_GIC_CPU_BASE = 0x0801_0000;
/** QEMU virt's VIRT_GIC_REDIST: the first redistributor region of a GICv3. */
export const VIRT_GIC_REDIST_BASE = 0x080a_0000;

export interface QemuVmOptions {
  vcpus: number;
  /** KVM_DEV_ARM_VGIC_GRP_NR_IRQS: INTIDs of the vGIC (a multiple of 32, 64..992); default 256. */
  nrIrqs?: number;
  distBase?: number;
  cpuBase?: number;
  /** The vGIC model: 'v3' on a GICv3 host (KVM_DEV_TYPE_ARM_VGIC_V3, one redistributor region); default 'v2'. */
  gic?: 'v2' | 'v3';
}

/** The fds of a VM built by `createQemuVm`. */
export interface QemuVm {
  readonly kvm: number;
  readonly vm: number;
  readonly vgic: number;
  readonly vcpus: readonly number[];
}

/** struct kvm_create_device → the new device fd (flags KVM_CREATE_DEVICE_TEST: 0, nothing created). */
export function kvmCreateDevice(p: Process, vm: number, type: number, flags = 0): number {
  const a = place(p, kvmCreateDeviceStruct.encode({ type, fd: 0, flags }));
  p.ioctl(vm, KVM_CREATE_DEVICE, a);
  const fd = kvmCreateDeviceStruct.read(p.mem.view(a, kvmCreateDeviceStruct.size)).fd;
  p.mem.free(a);
  return fd;
}

/** A struct kvm_device_attr with `addr` pointing at `payload` (or 0) in user memory; `mem`: what to free, in order. */
export function layoutDeviceAttr(
  p: Process,
  group: number,
  attr: number,
  payload?: Uint8Array,
): { arg: number; mem: number[] } {
  const addr = payload === undefined ? 0 : place(p, payload);
  const a = place(p, kvmDeviceAttr.encode({ flags: 0, group, attr: BigInt(attr), addr: BigInt(addr) }));
  return { arg: a, mem: addr !== 0 ? [a, addr] : [a] };
}

/** KVM_SET_DEVICE_ATTR with `addr` pointing at `payload` (or 0 with no payload). */
export function kvmSetDeviceAttr(p: Process, dev: number, group: number, attr: number, payload?: Uint8Array): number {
  const { arg, mem } = layoutDeviceAttr(p, group, attr, payload);
  try {
    return p.ioctl(dev, KVM_SET_DEVICE_ATTR, arg);
  } finally {
    for (const a of mem) p.mem.free(a);
  }
}

function u64Bytes(v: number | bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(v), true);
  return b;
}

function u32Bytes(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0, true);
  return b;
}

/** A __s32 as its 4 little-endian bytes. */
export function s32Bytes(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setInt32(0, v, true);
  return b;
}

/**
 * open /dev/kvm; KVM_GET_API_VERSION; KVM_CREATE_VM (IPA size 0 = 40 bits); KVM_CREATE_DEVICE vGIC-v2; its DIST and
 * CPU interface addresses (virt's 0x08000000 / 0x08010000); NR_IRQS; per vCPU KVM_CREATE_VCPU, KVM_GET_VCPU_MMAP_SIZE
 * (the model maps kvm_run at creation) and KVM_ARM_VCPU_INIT with the target KVM_ARM_PREFERRED_TARGET returns; then
 * KVM_DEV_ARM_VGIC_CTRL_INIT.
 */
export function createQemuVm(p: Process, opts: QemuVmOptions): QemuVm {
  const kvm = p.open('/dev/kvm');
  const api = p.ioctl(kvm, KVM_GET_API_VERSION, 0);
  if (api !== KVM_API_VERSION) throw new Error(`KVM_GET_API_VERSION returned ${api}, expected ${KVM_API_VERSION}`);
  const vm = p.ioctl(kvm, KVM_CREATE_VM, 0);
  const v3 = opts.gic === 'v3';
  const vgic = kvmCreateDevice(p, vm, v3 ? KVM_DEV_TYPE_ARM_VGIC_V3 : KVM_DEV_TYPE_ARM_VGIC_V2);
  const dist = u64Bytes(opts.distBase ?? VIRT_GIC_DIST_BASE);
  if (v3) {
    // hw/intc/arm_gicv3_kvm.c kvm_arm_gicv3_realize: the distributor, then one region of redistributors, one per vCPU
    kvmSetDeviceAttr(p, vgic, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, dist);
    const region = kvmVgicV3RdistRegionAttr(opts.vcpus, BigInt(VIRT_GIC_REDIST_BASE), 0, 0);
    kvmSetDeviceAttr(p, vgic, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION, u64Bytes(region));
  } else {
    kvmSetDeviceAttr(p, vgic, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V2_ADDR_TYPE_DIST, dist);
    const cpu = u64Bytes(opts.cpuBase ?? VIRT_GIC_CPU_BASE);
    kvmSetDeviceAttr(p, vgic, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V2_ADDR_TYPE_CPU, cpu);
  }
  kvmSetDeviceAttr(p, vgic, KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0, u32Bytes(opts.nrIrqs ?? 256));
  p.ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
  // target/arm/kvm.c kvm_arm_create_scratch_host_vcpu: KVM_ARM_PREFERRED_TARGET fills a kvm_vcpu_init
  const initAddr = place(p, kvmVcpuInit.encode({ target: 0, features: [0, 0, 0, 0, 0, 0, 0] }));
  p.ioctl(vm, KVM_ARM_PREFERRED_TARGET, initAddr);
  const { target } = kvmVcpuInit.read(p.mem.view(initAddr, kvmVcpuInit.size));
  const vcpus: number[] = [];
  for (let i = 0; i < opts.vcpus; i++) {
    const fd = p.ioctl(vm, KVM_CREATE_VCPU, i);
    kvmVcpuInit.write(p.mem.view(initAddr, kvmVcpuInit.size), { target, features: [0, 0, 0, 0, 0, 0, 0] });
    p.ioctl(fd, KVM_ARM_VCPU_INIT, initAddr);
    vcpus.push(fd);
  }
  p.mem.free(initAddr);
  kvmSetDeviceAttr(p, vgic, KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT);
  return { kvm, vm, vgic, vcpus };
}

// ---------------------------------------------------------------------------------------------------------------
// The normal path: irqfd + resamplefd wiring of a vfio-platform IRQ (hw/vfio/platform.c vfio_start_irqfd_injection)

/** The eventfds of one wired IRQ. */
export interface IrqfdWiring {
  readonly gsi: number;
  /** The irqfd's eventfd = the VFIO trigger. */
  readonly trigger: number;
  /** The resamplefd = the VFIO unmask eventfd, or -1 (edge: plain irqfd). */
  readonly resample: number;
}

/** KVM_IRQFD. */
export function kvmIrqfd(p: Process, vm: number, fd: number, gsi: number, flags = 0, resamplefd = 0): number {
  const a = place(p, kvmIrqfdStruct.encode({ fd, gsi, flags, resamplefd }));
  try {
    return p.ioctl(vm, KVM_IRQFD, a);
  } finally {
    p.mem.free(a);
  }
}

/**
 * Level IRQ with resample: SET_IRQS MASK; two eventfds (event_notifier_init: EFD_NONBLOCK | EFD_CLOEXEC); KVM_IRQFD
 * with KVM_IRQFD_FLAG_RESAMPLE; SET_IRQS UNMASK with DATA_EVENTFD = the resamplefd; SET_IRQS TRIGGER with
 * DATA_EVENTFD = the irqfd's eventfd; UNMASK. Edge (`resample` false): one eventfd, a plain KVM_IRQFD, TRIGGER only.
 */
export function wireIrqfd(
  p: Process,
  vm: number,
  device: number,
  index: number,
  gsi: number,
  resample: boolean,
): IrqfdWiring {
  const efdFlags = EFD_NONBLOCK | EFD_CLOEXEC;
  if (!resample) {
    const trig = p.eventfd(0, efdFlags);
    kvmIrqfd(p, vm, trig, gsi);
    trigger(p, device, index, trig);
    return { gsi, trigger: trig, resample: -1 };
  }
  mask(p, device, index);
  const trig = p.eventfd(0, efdFlags);
  const rfd = p.eventfd(0, efdFlags);
  kvmIrqfd(p, vm, trig, gsi, KVM_IRQFD_FLAG_RESAMPLE, rfd);
  unmaskEventfd(p, device, index, rfd);
  trigger(p, device, index, trig);
  unmask(p, device, index);
  return { gsi, trigger: trig, resample: rfd };
}

/**
 * Undo `wireIrqfd` as QEMU's vfio_platform teardown does: TRIGGER off (count 0, DATA_NONE), the unmask virqfd off
 * (fd -1), KVM_IRQFD DEASSIGN, close the eventfds.
 */
export function unwireIrqfd(p: Process, vm: number, device: number, index: number, w: IrqfdWiring): void {
  setIrqNone(p, device, index, VFIO_IRQ_SET_ACTION_TRIGGER, 0);
  if (w.resample >= 0) unmaskEventfd(p, device, index, -1);
  kvmIrqfd(p, vm, w.trigger, w.gsi, KVM_IRQFD_FLAG_DEASSIGN);
  p.close(w.trigger);
  if (w.resample >= 0) p.close(w.resample);
}

// ---------------------------------------------------------------------------------------------------------------
// MSIs: the vITS and a vfio-pci vector wired to the guest's MSI (hw/intc/arm_gicv3_its_kvm.c, hw/vfio/pci.c,
// accel/kvm/kvm-all.c)

/**
 * hw/intc/arm_gicv3_its_kvm.c kvm_arm_its_realize: KVM_CREATE_DEVICE of the vITS, its explicit CTRL_INIT, then its
 * base, QEMU virt's VIRT_GIC_ITS (kvm_arm_register_device: set at machine-init-done, after the GIC's). Returns the
 * vITS fd.
 */
export function createVits(p: Process, vm: number, base = VIRT_GIC_ITS): number {
  const its = kvmCreateDevice(p, vm, KVM_DEV_TYPE_ARM_VGIC_ITS);
  kvmSetDeviceAttr(p, its, KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT);
  kvmSetDeviceAttr(p, its, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_ITS_ADDR_TYPE, u64Bytes(base));
  return its;
}

/** A KVM MSI route: the guest's doorbell (GITS_TRANSLATER's IPA), data (the EventID) and DeviceID. */
export interface MsiRoute {
  readonly gsi: number;
  readonly address: number;
  readonly data: number;
  readonly devid: number;
}

/**
 * kvm_irqchip_commit_routes: KVM_SET_GSI_ROUTING with the whole table QEMU keeps — GSI i → SPI i for the VM's
 * `nrSpis` SPIs (kvm_arm_gicv3_realize adds them when KVM has GSI routing) and the MSI routes, each with its DeviceID
 * (KVM_MSI_VALID_DEVID: kvm_msi_devid_required on arm64).
 */
export function setGsiRouting(p: Process, vm: number, nrSpis: number, msis: readonly MsiRoute[]): number {
  const n = nrSpis + msis.length;
  const a = p.mem.alloc(kvmIrqRouting.size + n * kvmIrqRoutingEntry.size);
  kvmIrqRouting.write(p.mem.view(a, kvmIrqRouting.size), { nr: n, flags: 0 });
  const entry = (i: number, e: Omit<abi.KvmIrqRoutingEntry, 'pad' | 'upad'>) =>
    kvmIrqRoutingEntry.write(
      p.mem.view(a + kvmIrqRouting.size + i * kvmIrqRoutingEntry.size, kvmIrqRoutingEntry.size),
      {
        ...e,
        pad: 0,
        upad: new Array<number>(16).fill(0),
      },
    );
  for (let i = 0; i < nrSpis; i++)
    entry(i, { gsi: i, type: KVM_IRQ_ROUTING_IRQCHIP, flags: 0, u0: 0, u1: i, u2: 0, u3: 0 });
  msis.forEach((m, i) => {
    entry(nrSpis + i, {
      gsi: m.gsi,
      type: KVM_IRQ_ROUTING_MSI,
      flags: KVM_MSI_VALID_DEVID,
      u0: m.address >>> 0,
      u1: Math.floor(m.address / 2 ** 32),
      u2: m.data,
      u3: m.devid,
    });
  });
  try {
    return p.ioctl(vm, KVM_SET_GSI_ROUTING, a);
  } finally {
    p.mem.free(a);
  }
}

/** The VFIO IRQ index of a function's MSIs: VFIO_PCI_MSIX_IRQ_INDEX or VFIO_PCI_MSI_IRQ_INDEX. */
export function msiIrqIndex(msix: boolean): number {
  return msix ? VFIO_PCI_MSIX_IRQ_INDEX : VFIO_PCI_MSI_IRQ_INDEX;
}

/**
 * One MSI vector to the guest, as hw/vfio/pci.c vfio_msi_enable does it once the guest enabled MSI: an eventfd
 * (event_notifier_init); its MSI route on GSI `gsi` (vfio_add_kvm_msi_virq → kvm_irqchip_add_msi_route) committed
 * with the table by `commit` (vfio_commit_kvm_msi_virq_batch → KVM_SET_GSI_ROUTING); KVM_IRQFD on it
 * (vfio_connect_kvm_msi_virq); then VFIO_DEVICE_SET_IRQS TRIGGER (vfio_enable_vectors). QEMU enables every vector in one call; a step wires one, so the
 * first `enable`s the function's `vectors` vectors (vfio-pci allocates them at the first TRIGGER) with only this one
 * bound, and later ones bind their vector alone (vfio_msi_set_block).
 */
export function wireMsi(
  p: Process,
  vm: number,
  device: number,
  msi: { index: number; vector: number; vectors: number; enable: boolean },
  gsi: number,
  commit: () => void,
): IrqfdWiring {
  const efd = p.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  commit();
  kvmIrqfd(p, vm, efd, gsi);
  const { index, vector } = msi;
  if (msi.enable) {
    const fds = Array.from({ length: msi.vectors }, (_, k) => (k === vector ? efd : -1));
    setIrqEventfds(p, device, index, VFIO_IRQ_SET_ACTION_TRIGGER, 0, fds);
  } else setIrqEventfds(p, device, index, VFIO_IRQ_SET_ACTION_TRIGGER, vector, [efd]);
  return { gsi, trigger: efd, resample: -1 };
}

/**
 * hw/vfio/pci.c vfio_msi_disable for a function's wired vectors: vfio_disable_irqindex (SET_IRQS DATA_NONE count 0:
 * vfio-pci frees the vectors), then per vector vfio_remove_kvm_msi_virq — KVM_IRQFD DEASSIGN, the eventfd closed.
 */
export function unwireMsi(p: Process, vm: number, device: number, index: number, ws: readonly IrqfdWiring[]): void {
  setIrqNone(p, device, index, VFIO_IRQ_SET_ACTION_TRIGGER, 0);
  for (const w of ws) {
    kvmIrqfd(p, vm, w.trigger, w.gsi, KVM_IRQFD_FLAG_DEASSIGN);
    p.close(w.trigger);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Forwarding control: the kvm-vfio device (docs/ABI.md §8.2–8.3)

/** Whether the VM's KVM offers the kvm-vfio device: KVM_CREATE_DEVICE(KVM_DEV_TYPE_VFIO, KVM_CREATE_DEVICE_TEST). */
export function kvmVfioSupported(p: Process, vm: number): boolean {
  try {
    kvmCreateDevice(p, vm, KVM_DEV_TYPE_VFIO, KVM_CREATE_DEVICE_TEST);
    return true;
  } catch (e) {
    if (e instanceof ErrnoError) return false;
    throw e;
  }
}

/** KVM_CREATE_DEVICE KVM_DEV_TYPE_VFIO (QEMU hw/vfio/helpers.c vfio_kvm_device_add_fd creates it on first use). */
export function createKvmVfio(p: Process, vm: number): number {
  return kvmCreateDevice(p, vm, KVM_DEV_TYPE_VFIO);
}

/** KVM_DEV_VFIO_GROUP_ADD with the group fd. */
export function kvmVfioGroupAdd(p: Process, kvmVfio: number, group: number): number {
  return kvmSetDeviceAttr(p, kvmVfio, KVM_DEV_VFIO_GROUP, KVM_DEV_VFIO_GROUP_ADD, s32Bytes(group));
}

/** KVM_DEV_VFIO_GROUP_DEL with the group fd. */
export function kvmVfioGroupDel(p: Process, kvmVfio: number, group: number): number {
  return kvmSetDeviceAttr(p, kvmVfio, KVM_DEV_VFIO_GROUP, KVM_DEV_VFIO_GROUP_DEL, s32Bytes(group));
}

/** struct kvm_arch_forwarded_irq {fd = device, irq_index = index, guest_irq = gsi}. */
export function forwardedIrq(device: number, index: number, gsi: number): Uint8Array {
  return kvmArchForwardedIrq.encode({ fd: device, irq_index: index, guest_irq: gsi });
}

/** KVM_DEV_VFIO_DEVICE_ASSIGN_IRQ {fd, irq_index, guest_irq = gsi}. */
export function assignIrq(p: Process, kvmVfio: number, device: number, index: number, gsi: number): number {
  return kvmSetDeviceAttr(
    p,
    kvmVfio,
    KVM_DEV_VFIO_DEVICE,
    KVM_DEV_VFIO_DEVICE_ASSIGN_IRQ,
    forwardedIrq(device, index, gsi),
  );
}

/** KVM_DEV_VFIO_DEVICE_DEASSIGN_IRQ {fd, irq_index, guest_irq = gsi}. */
export function deassignIrq(p: Process, kvmVfio: number, device: number, index: number, gsi: number): number {
  return kvmSetDeviceAttr(
    p,
    kvmVfio,
    KVM_DEV_VFIO_DEVICE,
    KVM_DEV_VFIO_DEVICE_DEASSIGN_IRQ,
    forwardedIrq(device, index, gsi),
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Signals (the host kernel side of pthread_kill, which the model's process API does not offer yet)

/**
 * Deliver a signal to a VMM thread as kernel/signal.c signal_wake_up → kick_process would: mark it pending, wake the
 * thread if it sleeps, or send the reschedule IPI to the CPU running it in guest mode so KVM_RUN exits with EINTR.
 * QEMU stops its vCPUs this way (pause_all_vcpus → qemu_cpu_kick → SIG_IPI).
 */
export function signalThread(host: Host, th: UThread, fromCpu = 0): void {
  if (!th.busy) return;
  th.ut.sigpending = true;
  const t = th.task;
  if (t.state === TASK_BLOCKED) host.engine.wake(t);
  else if (t.state === TASK_IN_GUEST) gicIpiSend(host.irq, fromCpu, IPI_RESCHEDULE_SGI, 1 << t.cpu);
}

// ---------------------------------------------------------------------------------------------------------------
// Raw ioctls (the scenario `ioctl` step, docs/CLI.md "Raw ioctls"): a request by name or number, an argument that is
// a scalar or a uapi struct laid out in user memory with members given by value, constant name, fd reference or
// pointer to a nested struct / __s32.

/** A raw ioctl argument or struct member: a number, a uapi constant or fd reference, or a pointer to one placed. */
export type RawIoctlValue = number | string | { struct: RawIoctlStruct } | { s32: number | string };
/** A uapi struct by its C name (kvm_device_attr) and the members to set; the others are 0. */
export interface RawIoctlStruct {
  readonly name: string;
  readonly fields: Readonly<Record<string, RawIoctlValue>>;
  /** __s32 elements laid out right after the struct (its flexible array member, e.g. vfio_irq_set's eventfds). */
  readonly data?: readonly (number | string)[];
  /** Structs laid out in place after it, in order (its flexible array of structs: kvm_irq_routing's entries). */
  readonly entries?: readonly RawIoctlStruct[];
}
export interface RawIoctlCall {
  readonly fd: number;
  readonly request: number | string;
  readonly struct?: RawIoctlStruct;
  readonly arg?: number | string;
}

/** The caller's description of a raw ioctl cannot be built (unknown name, member, or an array member given). */
export class RawIoctlError extends Error {
  override readonly name = 'RawIoctlError';
}

type AnyCodec = StructCodec<abi.Fields>;
function isStructCodec(v: unknown): v is AnyCodec {
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof (v as { name?: unknown }).name === 'string' &&
    typeof (v as { fields?: unknown }).fields === 'object' &&
    typeof (v as { size?: unknown }).size === 'number' &&
    typeof (v as { encode?: unknown }).encode === 'function'
  );
}
/** Every struct codec of src/abi by its C name. */
const UAPI_STRUCTS: ReadonlyMap<string, AnyCodec> = new Map(
  (Object.values(abi) as unknown[]).filter(isStructCodec).map((c) => [c.name, c]),
);

/** The codec of a uapi struct by its C name (kvm_irqfd, vfio_irq_set, ...), or undefined. */
export function uapiStruct(name: string): AnyCodec | undefined {
  return UAPI_STRUCTS.get(name);
}

/** A uapi constant (KVM_*, VFIO_*, EFD_*, ...) by its Linux name, or undefined. */
export function uapiConstant(name: string): number | undefined {
  const v = (abi as Readonly<Record<string, unknown>>)[name];
  return typeof v === 'number' ? v : undefined;
}

/** An ioctl request by name (KVM_SET_DEVICE_ATTR) or number. */
export function ioctlRequest(request: number | string): number {
  if (typeof request === 'number') return request >>> 0;
  const v = /^(KVM|VFIO)_/.test(request) ? uapiConstant(request) : undefined;
  if (v === undefined) throw new RawIoctlError(`unknown ioctl request '${request}'`);
  return v >>> 0;
}

/**
 * Lays out a raw ioctl's argument (`struct` and its pointees, or the scalar `arg`) in user memory. `resolveFd` turns
 * an fd reference string (device:foo) into an fd number. Members are converted as a C assignment would (truncated to
 * the member's width: -1 in a __u32 is 0xffffffff; __u64 members as bigint). `mem` lists the memory to free, in order.
 */
export function layoutRawIoctl(
  p: Process,
  call: Omit<RawIoctlCall, 'fd'>,
  resolveFd: (ref: string) => number,
): { request: number; arg: number; mem: readonly number[] } {
  const allocs: number[] = [];
  const free = () => {
    for (const a of allocs) p.mem.free(a);
  };
  const scalar = (v: number | string): number => {
    if (typeof v === 'number') return v;
    return uapiConstant(v) ?? resolveFd(v);
  };
  const value = (v: RawIoctlValue): number => {
    if (typeof v === 'number' || typeof v === 'string') return scalar(v);
    if ('s32' in v) {
      const a = p.mem.alloc(4);
      allocs.push(a);
      p.mem.writeS32(a, Number(BigInt.asIntN(32, BigInt(scalar(v.s32)))));
      return a;
    }
    return placeStruct(v.struct);
  };
  /** The struct's bytes: its members, then its trailing __s32 `data` or `entries`. */
  const encodeStruct = (st: RawIoctlStruct): Uint8Array => {
    const codec = uapiStruct(st.name);
    if (codec === undefined) throw new RawIoctlError(`unknown struct '${st.name}'`);
    for (const key of Object.keys(st.fields))
      if (!(key in codec.fields)) throw new RawIoctlError(`struct ${st.name} has no member '${key}'`);
    const init: Record<string, number | bigint> = {};
    for (const [key, f] of Object.entries(codec.fields)) {
      const given = st.fields[key];
      if (f.kind === 'u8[]' || f.kind === 'u32[]') {
        if (given !== undefined)
          throw new RawIoctlError(`${st.name}.${key} is an array member: a scenario cannot set it (it is zero)`);
        continue;
      }
      const big = BigInt(given === undefined ? 0 : value(given));
      if (f.kind === 'u64') init[key] = BigInt.asUintN(64, big);
      else if (f.kind === 's32') init[key] = Number(BigInt.asIntN(32, big));
      else init[key] = Number(BigInt.asUintN(f.kind === 'u8' ? 8 : f.kind === 'u16' ? 16 : 32, big));
    }
    const head = codec.encode(init as unknown as StructInit<abi.Fields>);
    const data = st.data ?? [];
    const entries = (st.entries ?? []).map(encodeStruct);
    const size = head.length + 4 * data.length + entries.reduce((n, e) => n + e.length, 0);
    const bytes = new Uint8Array(size);
    bytes.set(head);
    const view = new DataView(bytes.buffer);
    data.forEach((v, i) => {
      view.setInt32(head.length + 4 * i, Number(BigInt.asIntN(32, BigInt(scalar(v)))), true);
    });
    let at = head.length + 4 * data.length;
    for (const e of entries) {
      bytes.set(e, at);
      at += e.length;
    }
    return bytes;
  };
  const placeStruct = (st: RawIoctlStruct): number => {
    const a = place(p, encodeStruct(st));
    allocs.push(a);
    return a;
  };
  try {
    const request = ioctlRequest(call.request);
    const arg = call.struct !== undefined ? placeStruct(call.struct) : call.arg !== undefined ? scalar(call.arg) : 0;
    return { request, arg, mem: allocs };
  } catch (e) {
    free();
    throw e;
  }
}

/** The fd a successful `request` created, read where createdFd.ts says it is (before `arg` is freed); -1 if none. */
export function createdFd(p: Process, request: number, ret: number, arg: number): number {
  const at = createdFdAt(request);
  if (at === undefined) return -1;
  return at === 'return' ? ret : kvmCreateDeviceStruct.read(p.mem.view(arg, kvmCreateDeviceStruct.size)).fd;
}
