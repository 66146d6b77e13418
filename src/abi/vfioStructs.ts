/**
 * Codecs for the argsz-style structs of include/uapi/linux/vfio.h.
 *
 * Each handler copies `minsz` bytes (offsetofend of its last mandatory member), checks `argsz >= minsz`, and copies
 * `minsz` bytes back (drivers/vfio/platform/vfio_platform_common.c vfio_platform_ioctl). `*_MINSZ` is that number,
 * `*_SIZE` is sizeof(struct).
 */
import { ModelError } from '../sim/errors.js';
import { defineStruct, type StructInit, type StructValue, u16, u32, u64 } from './struct.js';

/** struct vfio_group_status { __u32 argsz; __u32 flags; } */
export const vfioGroupStatus = defineStruct(
  'vfio_group_status',
  8,
  { argsz: u32(0), flags: u32(4) },
  { minszField: 'flags' },
);
export type VfioGroupStatus = StructValue<typeof vfioGroupStatus.fields>;
export const VFIO_GROUP_STATUS_SIZE = vfioGroupStatus.size;
export const VFIO_GROUP_STATUS_MINSZ = vfioGroupStatus.minsz;

/**
 * struct vfio_device_info { __u32 argsz; __u32 flags; __u32 num_regions; __u32 num_irqs; __u32 cap_offset; } —
 * 20 bytes, no trailing pad in the uapi header; minsz stops at num_irqs (cap_offset is VFIO_DEVICE_FLAGS_CAPS only).
 */
export const vfioDeviceInfo = defineStruct(
  'vfio_device_info',
  20,
  { argsz: u32(0), flags: u32(4), num_regions: u32(8), num_irqs: u32(12), cap_offset: u32(16) },
  { minszField: 'num_irqs' },
);
export type VfioDeviceInfo = StructValue<typeof vfioDeviceInfo.fields>;
export const VFIO_DEVICE_INFO_SIZE = vfioDeviceInfo.size;
export const VFIO_DEVICE_INFO_MINSZ = vfioDeviceInfo.minsz;

/** struct vfio_region_info { argsz, flags, index, cap_offset, __aligned_u64 size, __aligned_u64 offset } */
export const vfioRegionInfo = defineStruct(
  'vfio_region_info',
  32,
  { argsz: u32(0), flags: u32(4), index: u32(8), cap_offset: u32(12), size: u64(16), offset: u64(24) },
  { minszField: 'offset' },
);
export type VfioRegionInfo = StructValue<typeof vfioRegionInfo.fields>;
export const VFIO_REGION_INFO_SIZE = vfioRegionInfo.size;
export const VFIO_REGION_INFO_MINSZ = vfioRegionInfo.minsz;

/** struct vfio_irq_info { argsz, flags, index, count } */
export const vfioIrqInfo = defineStruct(
  'vfio_irq_info',
  16,
  { argsz: u32(0), flags: u32(4), index: u32(8), count: u32(12) },
  { minszField: 'count' },
);
export type VfioIrqInfo = StructValue<typeof vfioIrqInfo.fields>;
export const VFIO_IRQ_INFO_SIZE = vfioIrqInfo.size;
export const VFIO_IRQ_INFO_MINSZ = vfioIrqInfo.minsz;

/** struct vfio_irq_set { argsz, flags, index, start, count, __u8 data[] } — the codec covers the fixed header. */
export const vfioIrqSet = defineStruct(
  'vfio_irq_set',
  20,
  { argsz: u32(0), flags: u32(4), index: u32(8), start: u32(12), count: u32(16) },
  { minszField: 'count' },
);
export type VfioIrqSet = StructValue<typeof vfioIrqSet.fields>;
export const VFIO_IRQ_SET_SIZE = vfioIrqSet.size;
export const VFIO_IRQ_SET_MINSZ = vfioIrqSet.minsz;

/** Bytes of one DATA_EVENTFD element (__s32) and one DATA_BOOL element (__u8). */
export const VFIO_IRQ_SET_EVENTFD_ELEM_SIZE = 4;
export const VFIO_IRQ_SET_BOOL_ELEM_SIZE = 1;

/** A whole vfio_irq_set as userspace lays it out: header with argsz = minsz + data.length, then data. */
export function vfioIrqSetWithData(
  header: Omit<StructInit<typeof vfioIrqSet.fields>, 'argsz'>,
  data: Uint8Array = new Uint8Array(0),
): Uint8Array {
  const bytes = new Uint8Array(VFIO_IRQ_SET_MINSZ + data.length);
  bytes.set(vfioIrqSet.encode({ argsz: bytes.length, ...header }));
  bytes.set(data, VFIO_IRQ_SET_MINSZ);
  return bytes;
}

/** DATA_EVENTFD payload: one little-endian __s32 per subindex (-1 = de-assign / skip). */
export function vfioIrqSetEventfdData(fds: readonly number[]): Uint8Array {
  const bytes = new Uint8Array(fds.length * VFIO_IRQ_SET_EVENTFD_ELEM_SIZE);
  const view = new DataView(bytes.buffer);
  fds.forEach((fd, i) => {
    if (!Number.isInteger(fd) || fd < -0x8000_0000 || fd > 0x7fff_ffff) {
      throw new ModelError(`vfio_irq_set eventfd[${i}] = ${fd} is not an __s32`);
    }
    view.setInt32(i * VFIO_IRQ_SET_EVENTFD_ELEM_SIZE, fd, true);
  });
  return bytes;
}

/** DATA_BOOL payload: one __u8 per subindex. */
export function vfioIrqSetBoolData(values: readonly boolean[]): Uint8Array {
  return Uint8Array.from(values, (v) => (v ? 1 : 0));
}

function needData(what: string, data: Uint8Array, count: number, elem: number): void {
  if (!Number.isInteger(count) || count < 0 || data.length < count * elem) {
    throw new ModelError(`vfio_irq_set ${what}: ${data.length} data bytes cannot hold ${count} elements`);
  }
}

/** Reads `count` __s32 eventfds from a DATA_EVENTFD payload (the bytes after the header). */
export function decodeVfioIrqSetEventfds(data: Uint8Array, count: number): number[] {
  needData('eventfds', data, count, VFIO_IRQ_SET_EVENTFD_ELEM_SIZE);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  return Array.from({ length: count }, (_, i) => view.getInt32(i * VFIO_IRQ_SET_EVENTFD_ELEM_SIZE, true));
}

/** Reads `count` bools from a DATA_BOOL payload; any non-zero byte is true. */
export function decodeVfioIrqSetBools(data: Uint8Array, count: number): boolean[] {
  needData('bools', data, count, VFIO_IRQ_SET_BOOL_ELEM_SIZE);
  return Array.from(data.subarray(0, count), (b) => b !== 0);
}

/**
 * struct vfio_iommu_type1_info { argsz, flags, __aligned_u64 iova_pgsizes, cap_offset, pad } — 24 bytes; minsz stops
 * at iova_pgsizes (vfio_iommu_type1_get_info copies back min(argsz, sizeof) bytes).
 */
export const vfioIommuType1Info = defineStruct(
  'vfio_iommu_type1_info',
  24,
  { argsz: u32(0), flags: u32(4), iova_pgsizes: u64(8), cap_offset: u32(16) },
  { minszField: 'iova_pgsizes' },
);
export type VfioIommuType1Info = StructValue<typeof vfioIommuType1Info.fields>;
export const VFIO_IOMMU_TYPE1_INFO_SIZE = vfioIommuType1Info.size;
export const VFIO_IOMMU_TYPE1_INFO_MINSZ = vfioIommuType1Info.minsz;

/** struct vfio_info_cap_header { __u16 id; __u16 version; __u32 next; } — next is an offset from the info start. */
export const vfioInfoCapHeader = defineStruct('vfio_info_cap_header', 8, { id: u16(0), version: u16(2), next: u32(4) });
export type VfioInfoCapHeader = StructValue<typeof vfioInfoCapHeader.fields>;

/** struct vfio_iommu_type1_info_cap_iova_range { header; __u32 nr_iovas; __u32 reserved; } then nr_iovas ranges. */
export const vfioIommuType1InfoCapIovaRange = defineStruct('vfio_iommu_type1_info_cap_iova_range', 16, {
  id: u16(0),
  version: u16(2),
  next: u32(4),
  nr_iovas: u32(8),
});
/** struct vfio_iova_range { __u64 start; __u64 end; } — end is inclusive. */
export const vfioIovaRange = defineStruct('vfio_iova_range', 16, { start: u64(0), end: u64(8) });
export type VfioIovaRange = StructValue<typeof vfioIovaRange.fields>;

/** struct vfio_iommu_type1_info_cap_migration { header; __u32 flags; __u64 pgsize_bitmap; __u64 max_dirty_bitmap_size; } */
export const vfioIommuType1InfoCapMigration = defineStruct('vfio_iommu_type1_info_cap_migration', 32, {
  id: u16(0),
  version: u16(2),
  next: u32(4),
  flags: u32(8),
  pgsize_bitmap: u64(16),
  max_dirty_bitmap_size: u64(24),
});

/** struct vfio_iommu_type1_info_dma_avail { header; __u32 avail; } */
export const vfioIommuType1InfoDmaAvail = defineStruct('vfio_iommu_type1_info_dma_avail', 12, {
  id: u16(0),
  version: u16(2),
  next: u32(4),
  avail: u32(8),
});

/** struct vfio_iommu_type1_dma_map { argsz, flags, __u64 vaddr, __u64 iova, __u64 size } — minsz = sizeof = 32. */
export const vfioIommuType1DmaMap = defineStruct(
  'vfio_iommu_type1_dma_map',
  32,
  { argsz: u32(0), flags: u32(4), vaddr: u64(8), iova: u64(16), size: u64(24) },
  { minszField: 'size' },
);
export type VfioIommuType1DmaMap = StructValue<typeof vfioIommuType1DmaMap.fields>;
export const VFIO_IOMMU_TYPE1_DMA_MAP_SIZE = vfioIommuType1DmaMap.size;

/**
 * struct vfio_iommu_type1_dma_unmap { argsz, flags, __u64 iova, __u64 size, __u8 data[] } — 24 bytes, minsz = 24;
 * the kernel writes back `size` = the bytes it unmapped.
 */
export const vfioIommuType1DmaUnmap = defineStruct(
  'vfio_iommu_type1_dma_unmap',
  24,
  { argsz: u32(0), flags: u32(4), iova: u64(8), size: u64(16) },
  { minszField: 'size' },
);
export type VfioIommuType1DmaUnmap = StructValue<typeof vfioIommuType1DmaUnmap.fields>;
export const VFIO_IOMMU_TYPE1_DMA_UNMAP_SIZE = vfioIommuType1DmaUnmap.size;
