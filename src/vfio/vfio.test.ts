import { describe, expect, it } from 'vitest';
import { DEV, ethernetDevice } from '../../test/fixtures/vfioDevice.js';
import { errnoOf } from '../abi/errno.js';
import {
  VFIO_API_VERSION,
  VFIO_CHECK_EXTENSION,
  VFIO_DEVICE_FLAGS_PLATFORM,
  VFIO_DEVICE_FLAGS_RESET,
  VFIO_DEVICE_GET_IRQ_INFO,
  VFIO_DEVICE_RESET,
  VFIO_GET_API_VERSION,
  VFIO_GROUP_FLAGS_CONTAINER_SET,
  VFIO_GROUP_FLAGS_VIABLE,
  VFIO_GROUP_GET_DEVICE_FD,
  VFIO_GROUP_GET_STATUS,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_GROUP_UNSET_CONTAINER,
  VFIO_IRQ_INFO_AUTOMASKED,
  VFIO_IRQ_INFO_EVENTFD,
  VFIO_IRQ_INFO_MASKABLE,
  VFIO_SET_IOMMU,
  VFIO_SPAPR_TCE_IOMMU,
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  vfioGroupStatus,
  vfioIrqInfo,
} from '../abi/vfio.js';
import type { Process } from '../host/process.js';
import { createHost } from '../machine.js';
import { deviceInfo, irqInfo, openVfioDevice, place } from '../scenario/vmm.js';

function setup() {
  const host = createHost({
    cpus: 2,
    devices: [ethernetDevice()],
  });
  return { host, p: host.process() };
}

function setContainer(p: Process, group: number, container: number): number {
  const a = p.mem.alloc(4);
  p.mem.writeS32(a, container);
  return p.ioctl(group, VFIO_GROUP_SET_CONTAINER, a);
}

function groupStatus(p: Process, group: number, argsz = 8): number {
  const a = place(p, vfioGroupStatus.encode({ argsz, flags: 0 }));
  p.ioctl(group, VFIO_GROUP_GET_STATUS, a);
  return vfioGroupStatus.read(p.mem.view(a, 8)).flags;
}

describe('VFIO container (drivers/vfio/container.c)', () => {
  it('reports API version 0 and type1 extensions only', () => {
    const { p } = setup();
    const c = p.open('/dev/vfio/vfio');
    expect(p.ioctl(c, VFIO_GET_API_VERSION)).toBe(VFIO_API_VERSION);
    expect(p.ioctl(c, VFIO_CHECK_EXTENSION, VFIO_TYPE1_IOMMU)).toBe(1);
    expect(p.ioctl(c, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU)).toBe(1);
    expect(p.ioctl(c, VFIO_CHECK_EXTENSION, VFIO_SPAPR_TCE_IOMMU)).toBe(0);
    expect(errnoOf(() => p.ioctl(c, 0x3b70))).toBe('EINVAL'); // no IOMMU driver to pass it to (vfio_fops_unl_ioctl)
  });

  it('vfio_ioctl_set_iommu: EINVAL without a group or when already set, ENODEV for an unsupported type', () => {
    const { p } = setup();
    const c = p.open('/dev/vfio/vfio');
    expect(errnoOf(() => p.ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU))).toBe('EINVAL');
    const g = p.open('/dev/vfio/7');
    setContainer(p, g, c);
    expect(errnoOf(() => p.ioctl(c, VFIO_SET_IOMMU, VFIO_SPAPR_TCE_IOMMU))).toBe('ENODEV');
    expect(p.ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU)).toBe(0);
    expect(errnoOf(() => p.ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU))).toBe('EINVAL');
  });
});

describe('VFIO group (drivers/vfio/group.c)', () => {
  it('GET_STATUS: VIABLE, then VIABLE|CONTAINER_SET; EINVAL for a short argsz, EFAULT for a bad pointer', () => {
    const { p } = setup();
    const g = p.open('/dev/vfio/7');
    expect(groupStatus(p, g)).toBe(VFIO_GROUP_FLAGS_VIABLE);
    setContainer(p, g, p.open('/dev/vfio/vfio'));
    expect(groupStatus(p, g)).toBe(VFIO_GROUP_FLAGS_VIABLE | VFIO_GROUP_FLAGS_CONTAINER_SET);
    expect(errnoOf(() => groupStatus(p, g, 4))).toBe('EINVAL');
    expect(errnoOf(() => p.ioctl(g, VFIO_GROUP_GET_STATUS, 0x10))).toBe('EFAULT');
  });

  it('vfio_group_fops_open: a group is open once; another process gets EBUSY; a missing group is ENOENT', () => {
    const { host, p } = setup();
    p.open('/dev/vfio/7');
    expect(errnoOf(() => p.open('/dev/vfio/7'))).toBe('EBUSY');
    expect(errnoOf(() => host.process().open('/dev/vfio/7'))).toBe('EBUSY');
    expect(errnoOf(() => p.open('/dev/vfio/8'))).toBe('ENOENT');
  });

  it('SET_CONTAINER: EBADF for a closed fd, EBADFD for a non-container, EINVAL when already set', () => {
    const { p } = setup();
    const g = p.open('/dev/vfio/7');
    expect(errnoOf(() => setContainer(p, g, 42))).toBe('EBADF');
    expect(errnoOf(() => setContainer(p, g, p.eventfd(0, 0)))).toBe('EBADFD');
    expect(setContainer(p, g, p.open('/dev/vfio/vfio'))).toBe(0);
    expect(errnoOf(() => setContainer(p, g, p.open('/dev/vfio/vfio')))).toBe('EINVAL');
  });

  it('GET_DEVICE_FD: EINVAL before the IOMMU is set, ENODEV for an unknown name, EINVAL without a NUL in 4096 bytes', () => {
    const { p } = setup();
    const c = p.open('/dev/vfio/vfio');
    const g = p.open('/dev/vfio/7');
    setContainer(p, g, c);
    expect(errnoOf(() => p.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, p.mem.writeString(DEV)))).toBe('EINVAL');
    p.ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU);
    expect(errnoOf(() => p.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, p.mem.writeString('nope')))).toBe('ENODEV');
    const long = place(p, new Uint8Array(5000).fill(0x41));
    expect(errnoOf(() => p.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, long))).toBe('EINVAL');
    expect(errnoOf(() => p.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, 0))).toBe('EFAULT');
    const fd = p.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, p.mem.writeString(DEV));
    expect(fd).toBeGreaterThan(g);
    // A platform device can be opened again (open_count).
    expect(p.ioctl(g, VFIO_GROUP_GET_DEVICE_FD, p.mem.writeString(DEV))).toBe(fd + 1);
  });

  it('UNSET_CONTAINER: EBUSY while a device fd is open, EINVAL without a container', () => {
    const { p } = setup();
    const h = openVfioDevice(p, 7, DEV);
    expect(errnoOf(() => p.ioctl(h.group, VFIO_GROUP_UNSET_CONTAINER))).toBe('EBUSY');
    p.close(h.device);
    expect(p.ioctl(h.group, VFIO_GROUP_UNSET_CONTAINER)).toBe(0);
    expect(errnoOf(() => p.ioctl(h.group, VFIO_GROUP_UNSET_CONTAINER))).toBe('EINVAL');
  });
});

describe('vfio-platform device info (vfio_platform_common.c)', () => {
  it('GET_INFO: PLATFORM|RESET, one region, two IRQs; GET_IRQ_INFO by trigger; EINVAL for a bad index or argsz', () => {
    const { p } = setup();
    const h = openVfioDevice(p, 7, DEV);
    const info = deviceInfo(p, h.device);
    expect(info.flags).toBe(VFIO_DEVICE_FLAGS_PLATFORM | VFIO_DEVICE_FLAGS_RESET);
    expect(info.num_regions).toBe(1);
    expect(info.num_irqs).toBe(2);
    expect(irqInfo(p, h.device, 0)).toMatchObject({
      flags: VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED,
      count: 1,
    });
    expect(irqInfo(p, h.device, 1)).toMatchObject({ flags: VFIO_IRQ_INFO_EVENTFD, count: 1 });
    expect(errnoOf(() => irqInfo(p, h.device, 2))).toBe('EINVAL');
    const short = place(p, vfioIrqInfo.encode({ argsz: 8, flags: 0, index: 0, count: 0 }));
    expect(errnoOf(() => p.ioctl(h.device, VFIO_DEVICE_GET_IRQ_INFO, short))).toBe('EINVAL');
    expect(p.ioctl(h.device, VFIO_DEVICE_RESET)).toBe(0);
  });
});
