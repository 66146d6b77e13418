/**
 * The type1 IOMMU backend of a container as bookkeeping (drivers/vfio/vfio_iommu_type1.c): VFIO_IOMMU_GET_INFO with
 * its capability chain, VFIO_IOMMU_MAP_DMA and VFIO_IOMMU_UNMAP_DMA with the kernel's checks and errnos, and the
 * list of mappings. No page is pinned and no IOMMU page table exists: the modelled platform devices do no DMA, so
 * what a VMM can observe is the ABI — which calls succeed, what GET_INFO reports, what UNMAP says it unmapped.
 *
 * The IOMMU domain is an SMMU with a 4K granule (pgsize_bitmap 4K|2M|1G) and a 48-bit input address space, whose
 * group reports the software MSI window (arm-smmu MSI_IOVA_BASE/LENGTH) as reserved: the usable IOVA ranges are
 * the aperture minus that window (vfio_iommu_resv_exclude).
 */
import { errno } from '../abi/errno.js';
import {
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_VADDR,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_DMA_UNMAP_FLAG_ALL,
  VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP,
  VFIO_DMA_UNMAP_FLAG_VADDR,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_INFO_CAPS,
  VFIO_IOMMU_INFO_PGSIZES,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
  VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION,
  VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_TYPE1v2_IOMMU,
  type VfioIovaRange,
  vfioIommuType1DmaMap,
  vfioIommuType1DmaUnmap,
  vfioIommuType1Info,
  vfioIommuType1InfoCapIovaRange,
  vfioIommuType1InfoCapMigration,
  vfioIommuType1InfoDmaAvail,
  vfioIovaRange,
} from '../abi/vfio.js';
import type { UserMemory } from '../host/uaccess.js';
import { markImmutable } from '../sim/snapshot.js';

/** The domain's page sizes: 4K, 2M, 1G (io-pgtable-arm with a 4K granule). */
export const TYPE1_PGSIZE_BITMAP = 0x4020_1000n;
/** arm-smmu MSI_IOVA_BASE / MSI_IOVA_LENGTH: the IOMMU_RESV_SW_MSI region every group reports. */
export const MSI_IOVA_BASE = 0x800_0000n;
export const MSI_IOVA_LENGTH = 0x10_0000n;
/** The SMMU's 48-bit input address space (domain->geometry.aperture_end). */
export const TYPE1_APERTURE_END = (1n << 48n) - 1n;
/** vfio_iommu_type1.c dma_entry_limit module parameter default (U16_MAX). */
export const TYPE1_DMA_ENTRY_LIMIT = 65535;
/** DIRTY_BITMAP_SIZE_MAX: the bitmap bytes of DIRTY_BITMAP_PAGES_MAX (INT_MAX) pages. */
const DIRTY_BITMAP_SIZE_MAX = 0x1000_0000n;
const U64_MAX = (1n << 64n) - 1n;

/** struct vfio_dma: one mapping. */
export interface VfioDma {
  readonly iova: bigint;
  readonly size: bigint;
  readonly vaddr: bigint;
  readonly flags: number;
}

/** The smallest page size (1 << __ffs(pgsize_bitmap)). */
function minPgsize(bitmap: bigint): bigint {
  return bitmap & -bitmap;
}

export class VfioIommuType1 {
  /** iommu->dma_list, sorted by iova. */
  readonly dmas: VfioDma[] = [];
  /** iommu->dma_avail. */
  dmaAvail = TYPE1_DMA_ENTRY_LIMIT;
  /**
   * iommu->iova_list: the aperture minus the reserved regions (inclusive ends). No group the model attaches reserves
   * more, so it never changes: immutable (copies of a state share it, the checker's state key hashes it once).
   */
  readonly iovaList: readonly VfioIovaRange[] = markImmutable([
    { start: 0n, end: MSI_IOVA_BASE - 1n },
    { start: MSI_IOVA_BASE + MSI_IOVA_LENGTH, end: TYPE1_APERTURE_END },
  ]);
  readonly pgsizeBitmap = TYPE1_PGSIZE_BITMAP;
  /** iommu->v2: unmaps may not bisect a mapping. */
  readonly v2: boolean;

  constructor(type: number) {
    this.v2 = type === VFIO_TYPE1v2_IOMMU;
  }

  /** vfio_iommu_type1_ioctl for the calls it serves; anything else is -ENOTTY. */
  ioctl(mem: UserMemory, cmd: number, arg: number): number {
    switch (cmd) {
      case VFIO_IOMMU_GET_INFO:
        return this.getInfo(mem, arg);
      case VFIO_IOMMU_MAP_DMA:
        return this.mapDma(mem, arg);
      case VFIO_IOMMU_UNMAP_DMA:
        return this.unmapDma(mem, arg);
      default:
        throw errno('ENOTTY', `vfio_iommu_type1 has no ioctl 0x${(cmd >>> 0).toString(16)}`);
    }
  }

  /** vfio_find_dma: a mapping overlapping [start, start + size) (size 0 finds one strictly containing start). */
  private findDma(start: bigint, size: bigint): VfioDma | undefined {
    return this.dmas.find((d) => start + size > d.iova && start < d.iova + d.size);
  }

  /**
   * vfio_iommu_type1_get_info: argsz ≥ minsz (EINVAL), then the info with the capability chain the kernel builds —
   * migration, DMA entries available, IOVA ranges — copied after the info if argsz leaves room for it; otherwise
   * argsz is raised to the size needed (VFIO_IOMMU_INFO_CAPS set, cap_offset 0) so the VMM can ask again.
   */
  private getInfo(mem: UserMemory, arg: number): number {
    const minsz = vfioIommuType1Info.minsz;
    const info = vfioIommuType1Info.read(mem.view(arg, minsz));
    if (info.argsz < minsz) throw errno('EINVAL', `vfio_iommu_type1_info.argsz ${info.argsz} < ${minsz}`);
    const caps = this.buildCaps(vfioIommuType1Info.size);
    const flags = VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS;
    let argsz = info.argsz;
    let capOffset = 0;
    if (argsz < vfioIommuType1Info.size + caps.length) {
      argsz = vfioIommuType1Info.size + caps.length;
    } else {
      mem.copyToUser(arg + vfioIommuType1Info.size, caps);
      capOffset = vfioIommuType1Info.size;
    }
    const out = Math.min(info.argsz, vfioIommuType1Info.size);
    vfioIommuType1Info.write(mem.view(arg, out), {
      argsz,
      flags,
      iova_pgsizes: this.pgsizeBitmap,
      cap_offset: capOffset,
    });
    return 0;
  }

  /** The chain as vfio_info_add_capability appends it, `next` offsets already shifted by `base` (vfio_info_cap_shift). */
  private buildCaps(base: number): Uint8Array {
    const mig = vfioIommuType1InfoCapMigration.size;
    const avail = vfioIommuType1InfoDmaAvail.size;
    const iovaHdr = vfioIommuType1InfoCapIovaRange.size;
    // each capability starts 8-byte aligned (vfio_info_cap_add aligns the buffer)
    const availAt = mig;
    const iovaAt = availAt + ((avail + 7) & ~7);
    const bytes = new Uint8Array(iovaAt + iovaHdr + this.iovaList.length * vfioIovaRange.size);
    const view = new DataView(bytes.buffer);
    vfioIommuType1InfoCapMigration.write(
      view,
      {
        id: VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION,
        version: 1,
        next: base + availAt,
        flags: 0,
        pgsize_bitmap: minPgsize(this.pgsizeBitmap),
        max_dirty_bitmap_size: DIRTY_BITMAP_SIZE_MAX,
      },
      0,
    );
    vfioIommuType1InfoDmaAvail.write(
      view,
      { id: VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, version: 1, next: base + iovaAt, avail: this.dmaAvail },
      availAt,
    );
    vfioIommuType1InfoCapIovaRange.write(
      view,
      { id: VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, version: 1, next: 0, nr_iovas: this.iovaList.length },
      iovaAt,
    );
    this.iovaList.forEach((r, i) => {
      vfioIovaRange.write(view, r, iovaAt + iovaHdr + i * vfioIovaRange.size);
    });
    return bytes;
  }

  /**
   * vfio_iommu_type1_map_dma + vfio_dma_do_map: argsz and flags (EINVAL), READ/WRITE xor VADDR (EINVAL), a non-zero
   * size and page-aligned iova/vaddr/size (EINVAL), no wrap (EINVAL), no overlap with a mapping (EEXIST), an entry
   * left (ENOSPC), inside a usable IOVA range (EINVAL), the user range mapped (pinning it: EFAULT).
   * VFIO_DMA_MAP_FLAG_VADDR only re-targets a mapping whose vaddr an UNMAP_FLAG_VADDR invalidated, which the
   * model never does (VFIO_UPDATE_VADDR is not offered): ENOENT with no mapping there, else EINVAL.
   */
  private mapDma(mem: UserMemory, arg: number): number {
    const map = vfioIommuType1DmaMap.read(mem.view(arg, vfioIommuType1DmaMap.minsz));
    const mask = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE | VFIO_DMA_MAP_FLAG_VADDR;
    if (map.argsz < vfioIommuType1DmaMap.minsz) throw errno('EINVAL', `vfio_iommu_type1_dma_map.argsz ${map.argsz}`);
    if ((map.flags & ~mask) !== 0) throw errno('EINVAL', `MAP_DMA flags 0x${map.flags.toString(16)} unknown`);
    const prot = map.flags & (VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE);
    const setVaddr = (map.flags & VFIO_DMA_MAP_FLAG_VADDR) !== 0;
    if ((prot !== 0) === setVaddr) throw errno('EINVAL', 'MAP_DMA needs READ/WRITE, or VADDR alone');
    const { iova, size, vaddr } = map;
    const pg = minPgsize(this.pgsizeBitmap);
    if (size === 0n || ((size | iova | vaddr) & (pg - 1n)) !== 0n) {
      throw errno(
        'EINVAL',
        `MAP_DMA iova 0x${iova.toString(16)} vaddr 0x${vaddr.toString(16)} size 0x${size.toString(16)}: not ${pg}-byte aligned or empty`,
      );
    }
    if (iova + size - 1n > U64_MAX || vaddr + size - 1n > U64_MAX) throw errno('EINVAL', 'MAP_DMA range wraps');
    const dma = this.findDma(iova, size);
    if (setVaddr) {
      if (dma === undefined) throw errno('ENOENT', `MAP_DMA VADDR: nothing mapped at iova 0x${iova.toString(16)}`);
      throw errno('EINVAL', 'MAP_DMA VADDR: the mapping has a valid vaddr (no UNMAP_FLAG_VADDR before it)');
    }
    if (dma !== undefined) {
      throw errno(
        'EEXIST',
        `MAP_DMA 0x${iova.toString(16)}+0x${size.toString(16)} overlaps the mapping at 0x${dma.iova.toString(16)}`,
      );
    }
    if (this.dmaAvail === 0)
      throw errno('ENOSPC', `all ${TYPE1_DMA_ENTRY_LIMIT} DMA entries (dma_entry_limit) are used`);
    const end = iova + size - 1n;
    if (!this.iovaList.some((r) => iova >= r.start && end <= r.end)) {
      throw errno('EINVAL', `MAP_DMA 0x${iova.toString(16)}..0x${end.toString(16)} is not inside a usable IOVA range`);
    }
    // vfio_pin_map_dma: pinning the user pages faults on an unmapped range
    if (size > BigInt(Number.MAX_SAFE_INTEGER) || !mem.isMapped(vaddr, Number(size))) {
      throw errno(
        'EFAULT',
        `MAP_DMA vaddr 0x${vaddr.toString(16)}+0x${size.toString(16)} is not mapped in the process`,
      );
    }
    let at = 0;
    while (at < this.dmas.length && this.dmas[at]!.iova < iova) at++;
    this.dmas.splice(at, 0, { iova, size, vaddr, flags: map.flags });
    this.dmaAvail--;
    return 0;
  }

  /**
   * vfio_iommu_type1_unmap_dma + vfio_dma_do_unmap: argsz and flags (EINVAL; the dirty bitmap and VADDR flavours are
   * not offered), iova page-aligned, ALL with iova = size = 0, else a non-empty page-aligned range that does not wrap
   * (EINVAL); type1v2 refuses to bisect a mapping (EINVAL). Every mapping inside the range goes (type1 v1: those
   * starting in it, whole) and `size` is written back with the bytes unmapped — 0 is a success too.
   */
  private unmapDma(mem: UserMemory, arg: number): number {
    const minsz = vfioIommuType1DmaUnmap.minsz;
    const unmap = vfioIommuType1DmaUnmap.read(mem.view(arg, minsz));
    const mask = VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP | VFIO_DMA_UNMAP_FLAG_ALL | VFIO_DMA_UNMAP_FLAG_VADDR;
    if (unmap.argsz < minsz) throw errno('EINVAL', `vfio_iommu_type1_dma_unmap.argsz ${unmap.argsz} < ${minsz}`);
    if ((unmap.flags & ~mask) !== 0) throw errno('EINVAL', `UNMAP_DMA flags 0x${unmap.flags.toString(16)} unknown`);
    const all = (unmap.flags & VFIO_DMA_UNMAP_FLAG_ALL) !== 0;
    if ((unmap.flags & VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP) !== 0) {
      // with ALL or VADDR the kernel refuses the combination; alone it needs dirty tracking started (not offered)
      throw errno('EINVAL', 'UNMAP_DMA GET_DIRTY_BITMAP: dirty page tracking is not started');
    }
    if ((unmap.flags & VFIO_DMA_UNMAP_FLAG_VADDR) !== 0) {
      throw errno('EINVAL', 'UNMAP_DMA VADDR: VFIO_UPDATE_VADDR is not offered by this container');
    }
    let { iova, size } = unmap;
    const pg = minPgsize(this.pgsizeBitmap);
    if ((iova & (pg - 1n)) !== 0n) throw errno('EINVAL', `UNMAP_DMA iova 0x${iova.toString(16)} not page aligned`);
    if (all) {
      if (iova !== 0n || size !== 0n) throw errno('EINVAL', 'UNMAP_DMA ALL takes iova = size = 0');
      size = U64_MAX;
    } else if (size === 0n || (size & (pg - 1n)) !== 0n || iova + size - 1n > U64_MAX) {
      throw errno('EINVAL', `UNMAP_DMA size 0x${size.toString(16)}: empty, unaligned or wrapping`);
    }
    if (this.v2 && !all) {
      const first = this.findDma(iova, 1n);
      if (first !== undefined && first.iova !== iova) {
        throw errno(
          'EINVAL',
          `UNMAP_DMA at 0x${iova.toString(16)} would bisect the mapping at 0x${first.iova.toString(16)}`,
        );
      }
      const last = this.findDma(iova + size - 1n, 0n);
      if (last !== undefined && last.iova + last.size !== iova + size) {
        throw errno(
          'EINVAL',
          `UNMAP_DMA end 0x${(iova + size).toString(16)} would bisect the mapping at 0x${last.iova.toString(16)}`,
        );
      }
    }
    let unmapped = 0n;
    for (let i = 0; i < this.dmas.length; ) {
      const d = this.dmas[i]!;
      if (d.iova >= iova + size) break;
      if (d.iova + d.size <= iova) {
        i++;
        continue;
      }
      // type1 v1 stops at a first mapping that starts below the range (`!iommu->v2 && iova > dma->iova`)
      if (!this.v2 && d.iova < iova) break;
      unmapped += d.size;
      this.dmas.splice(i, 1);
      this.dmaAvail++;
    }
    vfioIommuType1DmaUnmap.write(mem.view(arg, minsz), { ...unmap, size: unmapped });
    return 0;
  }
}
