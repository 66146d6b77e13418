/**
 * A VMM's side of the ABI, written the way QEMU's hw/vfio code drives it: every call is a real ioctl with its
 * struct laid out byte by byte in the process's memory. Scenarios and tests use it; nothing here reaches into the
 * kernel model except through the process's syscalls.
 */
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
  VFIO_SET_IOMMU,
  VFIO_TYPE1_IOMMU,
  vfioDeviceInfo,
  vfioGroupStatus,
  vfioIrqInfo,
  vfioIrqSetEventfdData,
  vfioIrqSetWithData,
} from '../abi/vfio.js';
import type { Process } from '../host/process.js';

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
  const bytes = vfioIrqSetWithData(
    { flags: VFIO_IRQ_SET_DATA_EVENTFD | action, index, start: 0, count: 1 },
    vfioIrqSetEventfdData([fd]),
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
