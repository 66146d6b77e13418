/**
 * The type1 container ioctls as bookkeeping (drivers/vfio/vfio_iommu_type1.c vfio_iommu_type1_get_info,
 * vfio_iommu_iova_build_caps, vfio_iommu_type1_map_dma / vfio_dma_do_map, vfio_iommu_type1_unmap_dma /
 * vfio_dma_do_unmap), as QEMU's vfio_get_iommu_info and vfio_legacy_dma_map/unmap and crosvm's VfioContainer drive them.
 */
import { describe, expect, it } from 'vitest';
import { ethernetDevice } from '../../test/fixtures/vfioDevice.js';
import { errnoOf } from '../abi/errno.js';
import {
  VFIO_CHECK_EXTENSION,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_VADDR,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_DMA_UNMAP_FLAG_ALL,
  VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_GROUP_UNSET_CONTAINER,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_INFO_CAPS,
  VFIO_IOMMU_INFO_PGSIZES,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
  VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION,
  VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_SET_IOMMU,
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  VFIO_UNMAP_ALL,
  vfioInfoCapHeader,
  vfioIommuType1DmaMap,
  vfioIommuType1DmaUnmap,
  vfioIommuType1Info,
  vfioIommuType1InfoCapIovaRange,
  vfioIommuType1InfoDmaAvail,
  vfioIovaRange,
} from '../abi/vfio.js';
import type { Process } from '../host/process.js';
import { createHost } from '../machine.js';
import {
  MSI_IOVA_BASE,
  MSI_IOVA_LENGTH,
  TYPE1_APERTURE_END,
  TYPE1_DMA_ENTRY_LIMIT,
  VfioIommuType1,
} from './containerType1.js';

function container(type = VFIO_TYPE1v2_IOMMU) {
  const host = createHost({ devices: [ethernetDevice()] });
  const p = host.process();
  const c = p.open('/dev/vfio/vfio');
  const g = p.open('/dev/vfio/7');
  const a = p.mem.alloc(4);
  p.mem.writeS32(a, c);
  p.ioctl(g, VFIO_GROUP_SET_CONTAINER, a);
  if (type !== 0) p.ioctl(c, VFIO_SET_IOMMU, type);
  const ram = p.mem.alloc(0x40_0000, 0x1000); // 4 MiB of "guest RAM" (alloc aligns to at most 64 KiB)
  return { host, p, c, g, ram };
}

function map(p: Process, c: number, iova: bigint, size: bigint, vaddr: bigint, flags = 3, argsz = 32): number {
  const a = p.mem.allocBytes(vfioIommuType1DmaMap.encode({ argsz, flags, vaddr, iova, size }));
  return p.ioctl(c, VFIO_IOMMU_MAP_DMA, a);
}

/** UNMAP_DMA; returns the size the kernel wrote back. */
function unmap(p: Process, c: number, iova: bigint, size: bigint, flags = 0): bigint {
  const a = p.mem.allocBytes(vfioIommuType1DmaUnmap.encode({ argsz: 24, flags, iova, size }));
  p.ioctl(c, VFIO_IOMMU_UNMAP_DMA, a);
  return vfioIommuType1DmaUnmap.read(p.mem.view(a, 24)).size;
}

describe('VFIO_IOMMU_GET_INFO (vfio_iommu_type1_get_info, vfio_iommu_iova_build_caps)', () => {
  it('argsz = sizeof: PGSIZES|CAPS, cap_offset 0 and argsz raised to hold the chain; then the chain itself', () => {
    const { p, c } = container();
    const a = p.mem.allocBytes(vfioIommuType1Info.encode({ argsz: 24, flags: 0, iova_pgsizes: 0, cap_offset: 0 }));
    expect(p.ioctl(c, VFIO_IOMMU_GET_INFO, a)).toBe(0);
    const first = vfioIommuType1Info.read(p.mem.view(a, 24));
    expect(first.flags).toBe(VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS);
    expect(first.iova_pgsizes).toBe(0x4020_1000n); // 4K | 2M | 1G
    expect(first.cap_offset).toBe(0);
    expect(first.argsz).toBeGreaterThan(24);
    // QEMU vfio_get_iommu_info: g_realloc to argsz and ask again
    const b = p.mem.alloc(first.argsz);
    p.mem.copyToUser(b, vfioIommuType1Info.encode({ argsz: first.argsz, flags: 0, iova_pgsizes: 0, cap_offset: 0 }));
    p.ioctl(c, VFIO_IOMMU_GET_INFO, b);
    const info = vfioIommuType1Info.read(p.mem.view(b, 24));
    expect(info.cap_offset).toBe(24);
    const ids: number[] = [];
    let at = info.cap_offset;
    let iovaAt = 0;
    let availAt = 0;
    while (at !== 0) {
      const h = vfioInfoCapHeader.read(p.mem.view(b + at, 8));
      ids.push(h.id);
      if (h.id === VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) iovaAt = at;
      if (h.id === VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL) availAt = at;
      at = h.next;
    }
    expect(ids).toEqual([
      VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION,
      VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
      VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
    ]);
    expect(vfioIommuType1InfoDmaAvail.read(p.mem.view(b + availAt, 12)).avail).toBe(TYPE1_DMA_ENTRY_LIMIT);
    const cap = vfioIommuType1InfoCapIovaRange.read(p.mem.view(b + iovaAt, 16));
    expect(cap.nr_iovas).toBe(2);
    const ranges = [0, 1].map((i) => vfioIovaRange.read(p.mem.view(b + iovaAt + 16 + 16 * i, 16)));
    expect(ranges).toEqual([
      { start: 0n, end: MSI_IOVA_BASE - 1n },
      { start: MSI_IOVA_BASE + MSI_IOVA_LENGTH, end: TYPE1_APERTURE_END },
    ]);
  });

  it('EINVAL for argsz < minsz and with no IOMMU driver set (vfio_fops_unl_ioctl); ENOTTY for an unknown one', () => {
    const { p, c } = container(0);
    const a = p.mem.allocBytes(vfioIommuType1Info.encode({ argsz: 24, flags: 0, iova_pgsizes: 0, cap_offset: 0 }));
    expect(errnoOf(() => p.ioctl(c, VFIO_IOMMU_GET_INFO, a))).toBe('EINVAL');
    p.ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU);
    p.mem.writeU32(a, 8);
    expect(errnoOf(() => p.ioctl(c, VFIO_IOMMU_GET_INFO, a))).toBe('EINVAL');
    expect(errnoOf(() => p.ioctl(c, VFIO_IOMMU_GET_INFO, 0x10))).toBe('EFAULT');
    expect(errnoOf(() => p.ioctl(c, 0x3b00 + 99, 0))).toBe('ENOTTY');
    expect(p.ioctl(c, VFIO_CHECK_EXTENSION, VFIO_UNMAP_ALL)).toBe(1);
  });
});

describe('VFIO_IOMMU_MAP_DMA / UNMAP_DMA (vfio_dma_do_map, vfio_dma_do_unmap)', () => {
  it('maps, refuses an overlap with EEXIST, unmaps exactly what is mapped and reports its size', () => {
    const { p, c, ram } = container();
    const va = BigInt(ram);
    expect(map(p, c, 0x4000_0000n, 0x20_0000n, va)).toBe(0);
    expect(map(p, c, 0x4020_0000n, 0x10_0000n, va + 0x20_0000n)).toBe(0);
    expect(errnoOf(() => map(p, c, 0x401f_f000n, 0x2000n, va))).toBe('EEXIST');
    expect(unmap(p, c, 0x5000_0000n, 0x1000n)).toBe(0n); // nothing there: success, 0 bytes
    expect(unmap(p, c, 0x4000_0000n, 0x30_0000n)).toBe(0x30_0000n);
    expect(map(p, c, 0x4000_0000n, 0x1000n, va)).toBe(0); // the range is free again
  });

  it('EINVAL: argsz, unknown flags, no READ/WRITE, unaligned or empty, wrapping, outside the IOVA ranges (MSI window)', () => {
    const { p, c, ram } = container();
    const va = BigInt(ram);
    expect(errnoOf(() => map(p, c, 0x4000_0000n, 0x1000n, va, 3, 16))).toBe('EINVAL');
    expect(errnoOf(() => map(p, c, 0x4000_0000n, 0x1000n, va, 8))).toBe('EINVAL');
    expect(errnoOf(() => map(p, c, 0x4000_0000n, 0x1000n, va, 0))).toBe('EINVAL');
    expect(errnoOf(() => map(p, c, 0x4000_0800n, 0x1000n, va))).toBe('EINVAL');
    expect(errnoOf(() => map(p, c, 0x4000_0000n, 0x800n, va))).toBe('EINVAL');
    expect(errnoOf(() => map(p, c, 0x4000_0000n, 0n, va))).toBe('EINVAL');
    expect(errnoOf(() => map(p, c, 0xffff_ffff_ffff_f000n, 0x2000n, va))).toBe('EINVAL');
    expect(errnoOf(() => map(p, c, MSI_IOVA_BASE, 0x1000n, va))).toBe('EINVAL');
    expect(errnoOf(() => map(p, c, 1n << 48n, 0x1000n, va))).toBe('EINVAL');
    // VADDR alone only re-targets an invalidated mapping: none here
    expect(errnoOf(() => map(p, c, 0x4000_0000n, 0x1000n, va, VFIO_DMA_MAP_FLAG_VADDR))).toBe('ENOENT');
    // pinning an unmapped user range faults
    expect(errnoOf(() => map(p, c, 0x4000_0000n, 0x1000n, 0x7000_0000n))).toBe('EFAULT');
  });

  it('type1v2 refuses to bisect a mapping; type1 (v1) unmaps whole mappings starting in the range', () => {
    const v2 = container(VFIO_TYPE1v2_IOMMU);
    map(v2.p, v2.c, 0x4000_0000n, 0x20_0000n, BigInt(v2.ram));
    expect(errnoOf(() => unmap(v2.p, v2.c, 0x4010_0000n, 0x10_0000n))).toBe('EINVAL');
    expect(errnoOf(() => unmap(v2.p, v2.c, 0x4000_0000n, 0x10_0000n))).toBe('EINVAL');
    const v1 = container(VFIO_TYPE1_IOMMU);
    map(v1.p, v1.c, 0x4000_0000n, 0x20_0000n, BigInt(v1.ram));
    expect(unmap(v1.p, v1.c, 0x4010_0000n, 0x10_0000n)).toBe(0n); // starts inside a mapping: stops there
    expect(unmap(v1.p, v1.c, 0x4000_0000n, 0x1000n)).toBe(0x20_0000n); // the whole mapping goes
  });

  it('UNMAP ALL needs iova = size = 0; GET_DIRTY_BITMAP without tracking and unaligned iova are EINVAL', () => {
    const { p, c, ram } = container();
    map(p, c, 0x4000_0000n, 0x1000n, BigInt(ram));
    map(p, c, 0x8000_0000n, 0x1000n, BigInt(ram));
    expect(errnoOf(() => unmap(p, c, 0x1000n, 0n, VFIO_DMA_UNMAP_FLAG_ALL))).toBe('EINVAL');
    expect(errnoOf(() => unmap(p, c, 0x4000_0000n, 0x1000n, VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP))).toBe('EINVAL');
    expect(errnoOf(() => unmap(p, c, 0x4000_0800n, 0x1000n))).toBe('EINVAL');
    expect(unmap(p, c, 0n, 0n, VFIO_DMA_UNMAP_FLAG_ALL)).toBe(0x2000n);
  });

  it('the last group leaving the container drops the driver and its mappings (vfio_iommu_type1_release)', () => {
    const { p, c, g, ram } = container();
    map(p, c, 0x4000_0000n, 0x1000n, BigInt(ram));
    p.ioctl(g, VFIO_GROUP_UNSET_CONTAINER, 0);
    expect(errnoOf(() => unmap(p, c, 0n, 0n, VFIO_DMA_UNMAP_FLAG_ALL))).toBe('EINVAL'); // no driver any more
    const a = p.mem.alloc(4);
    p.mem.writeS32(a, c);
    p.ioctl(g, VFIO_GROUP_SET_CONTAINER, a);
    p.ioctl(c, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU);
    expect(map(p, c, 0x4000_0000n, 0x1000n, BigInt(ram), VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE)).toBe(0);
  });
});

describe('what set-up fixes is immutable (markImmutable: every copy of a checker state shares it)', () => {
  it('the IOVA list, the device description and its IRQ resources are frozen: a write throws', () => {
    const given = ethernetDevice();
    const host = createHost({ devices: [given] });
    const iommu = new VfioIommuType1(VFIO_TYPE1v2_IOMMU);
    const d = host.devices[0]!;
    expect(() => {
      (iommu.iovaList[0] as { start: bigint }).start = 1n;
    }).toThrow(TypeError);
    expect(() => {
      (d.spec.irqs[0] as { intid: number }).intid = 40;
    }).toThrow(TypeError);
    expect(() => {
      (d.vdev.irqRes[0] as { level: boolean }).level = false;
    }).toThrow(TypeError);
    given.irqs[0]!.intid = 40; // the caller's description stays its own
    expect(d.spec.irqs[0]!.intid).not.toBe(40);
  });
});
