/**
 * GICv3 redistributor regions and the placement checks of the vGIC-v3 (Linux 6.1): vgic-mmio-v3.c
 * (vgic_v3_alloc_redist_region, vgic_v3_set_redist_base, vgic_register_redist_iodev, vgic_register_all_redist_iodevs,
 * vgic_mmio_vcpu_rdist_is_last), vgic-v3.c (vgic_v3_rdist_overlap, vgic_v3_check_base, vgic_v3_rdist_free_slot,
 * vgic_v3_rdist_region_from_index, vgic_v3_map_resources) and vgic.h (vgic_v3_rd_region_size,
 * vgic_v3_redist_region_full, vgic_dist_overlap).
 *
 * A region holds `count` redistributors of 2 × 64 KiB each (RD_base and SGI_base frames), filled in vCPU creation
 * order; a legacy region (KVM_VGIC_V3_ADDR_TYPE_REDIST, count 0) grows with the online vCPUs, so its overlaps can only
 * be checked once they are known — at each vCPU's creation and at the first KVM_RUN.
 * The kvm_io_bus registration itself is not modelled: a redistributor is reached through its vCPU's `rdBase`.
 */
import { errno } from '../../abi/errno.js';
import { KVM_VGIC_V3_DIST_SIZE, KVM_VGIC_V3_REDIST_SIZE } from '../../abi/kvm.js';
import type { KvmVm } from '../vm.js';
import type { Vgic, VgicCpu } from './vgic.js';
import { vgicCheckIorange, vgicIorangeError } from './vgicIorange.js';

const SZ_64K = 0x1_0000n;
const REDIST_SIZE = BigInt(KVM_VGIC_V3_REDIST_SIZE);
const DIST_SIZE = BigInt(KVM_VGIC_V3_DIST_SIZE);
const ADDR_UNDEF = 0xffff_ffff_ffff_ffffn;

/** struct vgic_redist_region. */
export class VgicRedistRegion {
  /** Redistributors handed out so far (free_index). */
  freeIndex = 0;
  constructor(
    readonly index: number,
    readonly base: bigint,
    /** 0 for the legacy single region, sized by the online vCPUs. */
    readonly count: number,
  ) {}
}

/** What the checks need of the VM: its IPA size, distributor base and online vCPUs. */
type Layout = Pick<KvmVm, 'ipaBits' | 'vgicDistBase'> & { readonly vcpus: { readonly length: number } };

/** vgic.h vgic_v3_rd_region_size. */
function rdRegionSize(vm: Layout, r: VgicRedistRegion): bigint {
  return BigInt(r.count !== 0 ? r.count : vm.vcpus.length) * REDIST_SIZE;
}

/** vgic-v3.c vgic_v3_rdist_overlap: [base, base + size) meets a region. */
function rdistOverlap(vm: Layout, vgic: Vgic, base: bigint, size: bigint): boolean {
  for (const r of vgic.rdRegions) if (base + size > r.base && base < r.base + rdRegionSize(vm, r)) return true;
  return false;
}

/** vgic.h vgic_dist_overlap. */
function distOverlap(vm: Layout, base: bigint, size: bigint): boolean {
  const d = vm.vgicDistBase;
  return d !== ADDR_UNDEF && base + size > d && base < d + DIST_SIZE;
}

/** vgic-v3.c vgic_v3_check_base: no region wraps, leaves the IPA space or overlaps the distributor. */
export function vgicV3CheckBase(vm: Layout, vgic: Vgic): boolean {
  const d = vm.vgicDistBase;
  if (d !== ADDR_UNDEF && d + DIST_SIZE > 0xffff_ffff_ffff_ffffn) return false;
  for (const r of vgic.rdRegions)
    if (vgicIorangeError(vm.ipaBits, r.base, SZ_64K, rdRegionSize(vm, r)) !== null) return false;
  if (d === ADDR_UNDEF) return true;
  return !rdistOverlap(vm, vgic, d, DIST_SIZE);
}

/** vgic-v3.c vgic_v3_rdist_free_slot: the first region that is not full (a legacy one never is). */
function rdistFreeSlot(vgic: Vgic): VgicRedistRegion | null {
  for (const r of vgic.rdRegions) if (r.count === 0 || r.freeIndex < r.count) return r;
  return null;
}

/** vgic-v3.c vgic_v3_rdist_region_from_index. */
export function vgicV3RdistRegionFromIndex(vgic: Vgic, index: number): VgicRedistRegion | null {
  for (const r of vgic.rdRegions) if (r.index === index) return r;
  return null;
}

/** The legacy KVM_VGIC_V3_ADDR_TYPE_REDIST base as kvm_vgic_addr reads it: the first region's, else undefined. */
export function vgicV3LegacyRedistBase(vgic: Vgic): bigint {
  return vgic.rdRegions[0]?.base ?? ADDR_UNDEF;
}

/**
 * vgic_register_redist_iodev: a vCPU without a redistributor takes the next one of the first region with room; false
 * (the kernel's -EINVAL) when vgic_v3_check_base fails. A vCPU created before any region waits for one.
 */
export function vgicRegisterRedistIodev(vm: Layout, vgic: Vgic, vc: VgicCpu): boolean {
  if (vc.rdBase !== null) return true;
  const r = rdistFreeSlot(vgic);
  if (r === null) return true;
  if (!vgicV3CheckBase(vm, vgic)) return false;
  vc.rdreg = r;
  vc.rdregIndex = r.freeIndex;
  vc.rdBase = r.base + BigInt(r.freeIndex) * REDIST_SIZE;
  r.freeIndex++;
  return true;
}

/**
 * kvm_vgic_vcpu_init's redistributor for a vCPU about to be created (it is not online yet, so a legacy region is
 * sized without it): EINVAL when it would get one and vgic_v3_check_base fails. Changes nothing.
 */
export function vgicV3CheckNewVcpuRedist(vm: Layout, vgic: Vgic): void {
  if (rdistFreeSlot(vgic) !== null && !vgicV3CheckBase(vm, vgic)) {
    throw errno('EINVAL', 'vGIC-v3: the new vCPU’s redistributor would overlap the distributor or leave the IPA space');
  }
}

/**
 * vgic_v3_set_redist_base (vgic_v3_alloc_redist_region, then vgic_register_all_redist_iodevs). `count` 0 is the legacy
 * single region (KVM_VGIC_V3_ADDR_TYPE_REDIST, index 0).
 */
export function vgicV3SetRedistBase(vm: Layout, vgic: Vgic, index: number, base: bigint, count: number): void {
  const size = BigInt(count !== 0 ? count : vm.vcpus.length) * REDIST_SIZE;
  if (base + size > 0xffff_ffff_ffff_ffffn) throw errno('EINVAL', 'vGIC-v3 redistributor region wraps');
  const last = vgic.rdRegions[vgic.rdRegions.length - 1];
  if (last === undefined) {
    if (index !== 0) throw errno('EINVAL', `the first vGIC-v3 redistributor region must have index 0, not ${index}`);
  } else {
    if (count === 0 && last.count !== 0) {
      throw errno('EINVAL', 'cannot mix the legacy REDIST base with REDIST_REGION regions');
    }
    if (count === 0) throw errno('EEXIST', 'the vGIC-v3 redistributor base is already set');
    if (index !== last.index + 1) {
      throw errno('EINVAL', `redistributor region index ${index} does not follow ${last.index} (or mixes with REDIST)`);
    }
  }
  if (count === 0 && distOverlap(vm, base, size)) {
    throw errno('EINVAL', 'the redistributor region overlaps the distributor');
  }
  if (rdistOverlap(vm, vgic, base, size)) throw errno('EINVAL', 'the redistributor region overlaps another one');
  vgicCheckIorange(vm.ipaBits, false, base, SZ_64K, size, 'redistributor');
  const r = new VgicRedistRegion(index, base, count);
  vgic.rdRegions.push(r);
  for (const vc of vgic.vcpus) {
    if (!vgicRegisterRedistIodev(vm, vgic, vc)) {
      vgic.rdRegions.pop(); // vgic_v3_free_redist_region
      throw errno(
        'EINVAL',
        `${vc}'s redistributor in the new region would overlap the distributor or leave the IPA space`,
      );
    }
  }
}

/**
 * vgic_mmio_vcpu_rdist_is_last (GICR_TYPER.Last): the vCPU holds the last redistributor handed out in its region and,
 * when that is the region's last slot, no populated region starts right after it.
 */
export function vgicV3RdistIsLast(vgic: Vgic, vc: VgicCpu): boolean {
  const r = vc.rdreg;
  if (r === null) return false;
  if (vc.rdregIndex < r.freeIndex - 1) return false;
  if (r.count !== 0 && vc.rdregIndex === r.count - 1) {
    const end = r.base + BigInt(r.count) * REDIST_SIZE;
    for (const o of vgic.rdRegions) if (o.base === end && o.freeIndex > 0) return false;
  }
  return true;
}

/**
 * vgic_v3_map_resources (kvm_vgic_map_resources at the first KVM_RUN): ENXIO a vCPU has no redistributor, or the
 * distributor base is unset; EINVAL the frames overlap or leave the IPA space (vgic_v3_check_base); EBUSY the vGIC
 * was not initialised (a GICv3 is never initialised lazily).
 */
export function vgicV3MapResources(vm: Layout, vgic: Vgic): void {
  for (const vc of vgic.vcpus) {
    if (vc.rdBase === null) throw errno('ENXIO', `${vc} has no redistributor: the regions are too small`);
  }
  if (vm.vgicDistBase === ADDR_UNDEF) throw errno('ENXIO', 'vGIC-v3: set the distributor base address first');
  if (!vgicV3CheckBase(vm, vgic)) throw errno('EINVAL', 'vGIC-v3 redistributor and distributor frames overlap');
  if (!vgic.initialized)
    throw errno('EBUSY', 'a vGIC-v3 must be initialised (KVM_DEV_ARM_VGIC_CTRL_INIT) before it runs');
}
