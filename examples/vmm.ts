/**
 * What both example VMMs share: the host with the passed-through device, the guest kernel the VM runs, and the VMM
 * process whose ioctls are recorded by name (the replayed call sequence). Only the package's public API is used.
 */
import {
  createGuest,
  createHost,
  type GuestKernel,
  type Host,
  isErrnoError,
  KVM_CREATE_DEVICE,
  KVM_CREATE_DEVICE_TEST,
  KVM_EXIT_INTR,
  KVM_HAS_DEVICE_ATTR,
  KVM_SET_DEVICE_ATTR,
  kvmCreateDevice,
  kvmDeviceAttr,
  kvmRun,
  kvmRunAddress,
  type Process,
  type SyscallHandle,
  type UThread,
  VFIO_DEVICE_GET_INFO,
  VFIO_DEVICE_GET_REGION_INFO,
  VFIO_DEVICE_SET_IRQS,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_GROUP_FLAGS_VIABLE,
  VFIO_GROUP_GET_STATUS,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IRQ_SET_DATA_EVENTFD,
  vfioDeviceInfo,
  vfioGroupStatus,
  vfioIommuType1DmaMap,
  vfioIrqSetEventfdData,
  vfioIrqSetWithData,
  vfioRegionInfo,
} from '../src/index.js';

export const DEV = 'fff51000.ethernet';
export const IOMMU_GROUP = 7;
/** The host INTID of the device's level line. */
export const HOST_INTID = 80;
/** The size of the guest RAM stand-in both VMMs map for DMA (4 MiB). */
export const RAM_SIZE = 0x40_0000;

export interface ExampleVmm {
  readonly host: Host;
  readonly p: Process;
  readonly guest: GuestKernel;
  /** Every ioctl in issue order: `NAME = result` or `NAME = ERRNO`. */
  readonly log: string[];
  /** ioctl(2), recorded under `name`; rethrows its ErrnoError. */
  ioctl(name: string, fd: number, request: number, arg?: number): number;
  /** An ioctl the VMM issues expecting it may fail (a probe): the result, or the errno name. */
  probe(name: string, fd: number, request: number, arg?: number): number | string;
}

/**
 * A 2-CPU host with the device, a 1-vCPU guest kernel (its GIC distributor at `gicdBase`) whose driver handles guest
 * SPI `guestSpi`, and the VMM process.
 */
export function exampleVmm(guestSpi: number, gicdBase: bigint): ExampleVmm {
  const host = createHost({
    cpus: 2,
    devices: [{ name: DEV, iommuGroup: IOMMU_GROUP, irqs: [{ intid: HOST_INTID, trigger: 'level' }] }],
  });
  const guest = createGuest(host, {
    vcpus: 1,
    gicdBase: Number(gicdBase),
    devices: [{ device: host.device(DEV), line: 0, intid: guestSpi, handlerCycles: 1000 }],
  });
  const p = host.process();
  const log: string[] = [];
  const ioctl = (name: string, fd: number, request: number, arg = 0): number => {
    try {
      const r = p.ioctl(fd, request, arg);
      log.push(`${name} = ${r}`);
      return r;
    } catch (e) {
      if (isErrnoError(e)) log.push(`${name} = ${e.errno}`);
      throw e;
    }
  };
  const probe = (name: string, fd: number, request: number, arg = 0): number | string => {
    try {
      return ioctl(name, fd, request, arg);
    } catch (e) {
      if (isErrnoError(e)) return e.errno;
      throw e;
    }
  };
  return { host, p, guest, log, ioctl, probe };
}

/** KVM_SET_DEVICE_ATTR with `payload` the address of the value (QEMU's kvm_device_access, crosvm's set_device_attr). */
export function deviceAccess(
  v: ExampleVmm,
  name: string,
  fd: number,
  group: number,
  attr: bigint,
  payload: number,
): number {
  const a = v.p.mem.allocBytes(kvmDeviceAttr.encode({ flags: 0, group, attr, addr: BigInt(payload) }));
  return v.ioctl(name, fd, KVM_SET_DEVICE_ATTR, a);
}

export function u32(v: ExampleVmm, x: number): number {
  const a = v.p.mem.alloc(4);
  v.p.mem.writeU32(a, x);
  return a;
}

export function u64(v: ExampleVmm, x: bigint): number {
  const a = v.p.mem.alloc(8);
  v.p.mem.writeU64(a, x);
  return a;
}

/** KVM_HAS_DEVICE_ATTR == 0 (QEMU's kvm_device_check_attr). */
export function hasAttr(v: ExampleVmm, fd: number, group: number, attr: bigint): boolean {
  const a = v.p.mem.allocBytes(kvmDeviceAttr.encode({ flags: 0, group, attr, addr: 0n }));
  return v.probe('KVM_HAS_DEVICE_ATTR', fd, KVM_HAS_DEVICE_ATTR, a) === 0;
}

/** KVM_CREATE_DEVICE (optionally the TEST probe): the device fd (0 for a probe), or the errno name. */
export function createDevice(v: ExampleVmm, vm: number, type: number, test: boolean): number | string {
  const a = v.p.mem.allocBytes(kvmCreateDevice.encode({ type, fd: 0, flags: test ? KVM_CREATE_DEVICE_TEST : 0 }));
  const r = v.probe('KVM_CREATE_DEVICE', vm, KVM_CREATE_DEVICE, a);
  return typeof r === 'string' || test ? r : kvmCreateDevice.read(v.p.mem.view(a, kvmCreateDevice.size)).fd;
}

/** VFIO_DEVICE_SET_IRQS with one eventfd for `action`. */
export function setIrqEventfd(v: ExampleVmm, name: string, device: number, index: number, action: number, fd: number) {
  const bytes = vfioIrqSetWithData(
    { flags: VFIO_IRQ_SET_DATA_EVENTFD | action, index, start: 0, count: 1 },
    vfioIrqSetEventfdData([fd]),
  );
  return v.ioctl(name, device, VFIO_DEVICE_SET_IRQS, v.p.mem.allocBytes(bytes));
}

/** Wait for the guest to boot, then raise the device line `n` times, each once the guest handled the one before. */
export function raiseDeviceIrqs(v: ExampleVmm, n: number): number {
  const { host, guest } = v;
  host.engine.runUntil(() => guest.booted, 'the guest to boot');
  const hw = host.device(DEV);
  const drv = guest.devices[0]!;
  const base = drv.handled;
  for (let i = 1; i <= n; i++) {
    hw.assert(0);
    host.engine.runUntil(() => drv.handled === base + i && !hw.isAsserted(0), `device IRQ ${i} to be handled`);
    host.settle();
  }
  return drv.handled - base;
}

/**
 * Kick the vCPU thread out of KVM_RUN as both VMMs do: set kvm_run.immediate_exit (when KVM_CAP_IMMEDIATE_EXIT is
 * there), signal the thread, collect KVM_RUN's EINTR, clear immediate_exit. Returns run->exit_reason.
 */
export function kickVcpu(
  v: ExampleVmm,
  th: UThread,
  run: SyscallHandle,
  vcpuFd: number,
  signo: number,
  immediateExit: boolean,
): number {
  const runAddr = kvmRunAddress(v.p, vcpuFd);
  const ie = v.p.mem.view(runAddr + kvmRun.offsetof('immediate_exit'), 1);
  if (immediateExit) ie.setUint8(0, 1);
  th.kill(signo);
  try {
    run.result();
    v.log.push('KVM_RUN = 0');
  } catch (e) {
    if (!isErrnoError(e)) throw e;
    v.log.push(`KVM_RUN = ${e.errno}`);
  }
  ie.setUint8(0, 0);
  const reason = v.p.mem.view(runAddr + kvmRun.offsetof('exit_reason'), 4).getUint32(0, true);
  if (reason !== KVM_EXIT_INTR) throw new Error(`the kicked KVM_RUN returned exit_reason ${reason}`);
  return reason;
}

/** VFIO_GROUP_GET_STATUS; a group that is not viable cannot be used. */
export function checkGroupViable(v: ExampleVmm, group: number): void {
  const st = v.p.mem.allocBytes(vfioGroupStatus.encode({ argsz: vfioGroupStatus.size, flags: 0 }));
  v.ioctl('VFIO_GROUP_GET_STATUS', group, VFIO_GROUP_GET_STATUS, st);
  if ((vfioGroupStatus.read(v.p.mem.view(st, 8)).flags & VFIO_GROUP_FLAGS_VIABLE) === 0) throw new Error('not viable');
}

/** VFIO_IOMMU_MAP_DMA (read/write) of the RAM stand-in at `iova`, as both VMMs map guest memory. */
export function mapGuestRam(v: ExampleVmm, container: number, iova: bigint): void {
  const ram = v.p.mem.alloc(RAM_SIZE, 0x1_0000);
  const map = vfioIommuType1DmaMap.encode({
    argsz: vfioIommuType1DmaMap.size,
    flags: VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
    vaddr: ram,
    iova,
    size: RAM_SIZE,
  });
  v.ioctl('VFIO_IOMMU_MAP_DMA', container, VFIO_IOMMU_MAP_DMA, v.p.mem.allocBytes(map));
}

/** VFIO_DEVICE_GET_INFO, then VFIO_DEVICE_GET_REGION_INFO of every region; returns the IRQ count. */
export function deviceInfoAndRegions(v: ExampleVmm, device: number): number {
  const di = v.p.mem.allocBytes(
    vfioDeviceInfo.encode({ argsz: vfioDeviceInfo.size, flags: 0, num_regions: 0, num_irqs: 0, cap_offset: 0 }),
  );
  v.ioctl('VFIO_DEVICE_GET_INFO', device, VFIO_DEVICE_GET_INFO, di);
  const info = vfioDeviceInfo.read(v.p.mem.view(di, vfioDeviceInfo.size));
  for (let index = 0; index < info.num_regions; index++) {
    const ri = v.p.mem.allocBytes(
      vfioRegionInfo.encode({ argsz: vfioRegionInfo.size, flags: 0, index, cap_offset: 0, size: 0, offset: 0 }),
    );
    v.ioctl('VFIO_DEVICE_GET_REGION_INFO', device, VFIO_DEVICE_GET_REGION_INFO, ri);
  }
  return info.num_irqs;
}
