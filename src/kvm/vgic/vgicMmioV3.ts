/**
 * The guest's GICv3 distributor and redistributors as emulated MMIO, after arch/arm64/kvm/vgic/vgic-mmio-v3.c (Linux
 * 6.1: vgic_v3_dist_registers, vgic_v3_rd_registers) — the registers of the model's affinity-routed GICv3 without
 * LPIs. The per-IRQ registers a GICv3 shares with a GICv2 (IGROUPR, I[SC]ENABLER, I[SC]PENDR, I[SC]ACTIVER,
 * IPRIORITYR, ICFGR) run vgic-mmio.c's handlers (vgicMmioV2.ts): on the distributor for SPIs only (the private
 * INTIDs' words are RAZ/WI there, REGISTER_DESC_WITH_BITS_PER_IRQ_SHARED), on a redistributor's SGI_base frame for its
 * vCPU's SGIs and PPIs. What differs is here: GICD_CTLR (EnableGrp1A, ARE and DS fixed to 1), GICD_TYPER, IIDR,
 * GICD_IROUTER, the RD_base frame (GICR_CTLR, IIDR, TYPER, WAKER) and the ID registers.
 *
 * `offset` is relative to the distributor base, or to the redistributor's RD_base (SGI_base is RD_base + 64 KiB).
 * A guest access that hits no register (or too wide, unaligned, past nr_irqs — check_region) reads as zero and is
 * ignored on write; userspace gets ENXIO for it (vgicUaccessV3.ts). Left out with LPIs (no ITS): GICR_PROPBASER,
 * PENDBASER, INVLPIR, INVALLR, SYNCR and GICR_CTLR.EnableLPIs, which read as zero here.
 */
import {
  GICD_CTLR,
  GICD_CTLR_ARE,
  GICD_CTLR_DS,
  GICD_CTLR_ENABLE_G1,
  GICD_ICACTIVER,
  GICD_ICENABLER,
  GICD_ICFGR,
  GICD_ICPENDR,
  GICD_IGROUPR,
  GICD_IIDR,
  GICD_IPRIORITYR,
  GICD_IROUTER,
  GICD_ISACTIVER,
  GICD_ISENABLER,
  GICD_ISPENDR,
  GICD_PIDR2,
  GICD_TYPER,
  GICD_TYPER_IDBITS_SHIFT,
  GICR_CTLR,
  GICR_IIDR,
  GICR_PIDR2,
  GICR_SGI_BASE,
  GICR_TYPER,
  GICR_TYPER_LAST,
  GICR_WAKER,
} from '../../hw/gicv3/regs.js';
import { ModelError } from '../../sim/errors.js';
import type { Vgic, VgicCpu } from './vgic.js';
import { VGIC_NR_PRIVATE_IRQS } from './vgicIrq.js';
import {
  IMPLEMENTER_ARM,
  PRODUCT_ID_KVM,
  type VgicMmioRegion,
  vgicGetMmioRegion,
  vgicMmioRead,
  vgicMmioWrite,
} from './vgicMmioV2.js';
import { vgicV3RdistIsLast } from './vgicV3Redist.js';

/** vgic-mmio-v3.c: INTERRUPT_ID_BITS_SPIS, reported in GICD_TYPER.IDbits without an ITS. */
const INTERRUPT_ID_BITS_SPIS = 10;
const GICD_IIDR_PRODUCT_ID_SHIFT = 24;
const GICD_IIDR_REVISION_SHIFT = 12;
/** vgic_mmio_read_v3_idregs: GICD_PIDR2 / GICR_PIDR2 report a GICv3 (ArchRev 3). */
const GIC_PIDR2_V3 = 0x3b;
/** KVM_VGIC_V3_DIST_SIZE: the distributor's 64 KiB frame. */
const DIST_FRAME = 0x1_0000n;
const ACCESS_8 = 1;
const ACCESS_32 = 4;

type Kind = 'misc' | 'statusr' | 'shared' | 'irouter' | 'idregs' | 'rctlr' | 'riidr' | 'rtyper' | 'raz' | 'private';

interface Region extends VgicMmioRegion {
  readonly kind: Kind;
}

const reg = (offset: number, len: number, kind: Kind, access = ACCESS_32, bitsPerIrq = 0): Region => ({
  offset,
  len,
  bitsPerIrq,
  access,
  kind,
});
const shared = (offset: number, bits: number, access = ACCESS_32): Region =>
  reg(offset, (1024 * bits) / 8, 'shared', access, bits);
const sgiFrame = (offset: number, bits: number, access = ACCESS_32): Region =>
  reg(GICR_SGI_BASE + offset, (32 * bits) / 8, 'private', access, bits);

/** vgic_v3_dist_registers (the SGI and target registers of a GICv2 are absent: RAZ/WI). */
const DIST_REGIONS: readonly Region[] = [
  reg(GICD_CTLR, 16, 'misc'),
  reg(0x0010, 4, 'statusr'),
  shared(GICD_IGROUPR, 1),
  shared(GICD_ISENABLER, 1),
  shared(GICD_ICENABLER, 1),
  shared(GICD_ISPENDR, 1),
  shared(GICD_ICPENDR, 1),
  shared(GICD_ISACTIVER, 1),
  shared(GICD_ICACTIVER, 1),
  shared(GICD_IPRIORITYR, 8, ACCESS_32 | ACCESS_8),
  shared(GICD_ICFGR, 2),
  reg(GICD_IROUTER, 1024 * 8, 'irouter', ACCESS_32, 64),
  reg(0xffd0, 48, 'idregs'),
];

/** vgic_v3_rd_registers: the RD_base frame, then the SGI_base frame 64 KiB above. */
const REDIST_REGIONS: readonly Region[] = [
  reg(GICR_CTLR, 4, 'rctlr'),
  reg(GICR_IIDR, 4, 'riidr'),
  reg(GICR_TYPER, 8, 'rtyper'),
  reg(GICR_WAKER, 4, 'raz'),
  reg(0xffd0, 48, 'idregs'),
  sgiFrame(GICD_IGROUPR, 1),
  sgiFrame(GICD_ISENABLER, 1),
  sgiFrame(GICD_ICENABLER, 1),
  sgiFrame(GICD_ISPENDR, 1),
  sgiFrame(GICD_ICPENDR, 1),
  sgiFrame(GICD_ISACTIVER, 1),
  sgiFrame(GICD_ICACTIVER, 1),
  sgiFrame(GICD_IPRIORITYR, 8, ACCESS_32 | ACCESS_8),
  sgiFrame(GICD_ICFGR, 2),
];

/** Whether a 32-bit access at `offset` of the distributor (or of a redistributor) hits a register. */
export function vgicV3HasRegister(vgic: Vgic, redist: boolean, offset: number): boolean {
  return vgicGetMmioRegion(vgic, redist ? REDIST_REGIONS : DIST_REGIONS, offset, 4) !== null;
}

function requireInit(vgic: Vgic): void {
  if (!vgic.initialized) throw new ModelError('vgic-v3 mmio before vgic_init (kvm_vgic_map_resources needs it)');
}

/** A guest (or userspace) read of `len` bytes at distributor `offset`, on behalf of vCPU `vcpu`; null: no register. */
export function vgicV3DistRead(vcpu: VgicCpu, offset: number, len: number): number | null {
  const vgic = vcpu.vgic;
  requireInit(vgic);
  const r = vgicGetMmioRegion(vgic, DIST_REGIONS, offset, len);
  if (r === null) return null;
  switch (r.kind) {
    case 'misc':
      return readDistMisc(vgic, offset);
    case 'shared':
      // the private INTIDs' words belong to the redistributors
      if (((offset - r.offset) * 8) / r.bitsPerIrq < VGIC_NR_PRIVATE_IRQS) return 0;
      return vgicMmioRead(vcpu, offset, len);
    case 'irouter': {
      // vgic_mmio_read_irouter: Aff2.Aff1.Aff0 in the low word; Aff3 (KVM keeps none) and IRM read as zero
      const intid = (offset - r.offset) >>> 3;
      if ((offset & 4) !== 0 || intid < VGIC_NR_PRIVATE_IRQS) return 0;
      return vgic.vgicGetIrq(intid)?.mpidr ?? 0;
    }
    case 'idregs':
      return offset === GICD_PIDR2 ? GIC_PIDR2_V3 : 0;
    default:
      return 0;
  }
}

/** A guest (or userspace) write at distributor `offset`; false: no register there. */
export function vgicV3DistWrite(vcpu: VgicCpu, offset: number, len: number, value: number): boolean {
  const vgic = vcpu.vgic;
  requireInit(vgic);
  const r = vgicGetMmioRegion(vgic, DIST_REGIONS, offset, len);
  if (r === null) return false;
  switch (r.kind) {
    case 'misc':
      if (offset === GICD_CTLR) {
        // vgic_mmio_write_v3_misc: only EnableGrp1A is writable; enabling kicks the vCPUs with work
        const was = vgic.enabled;
        vgic.enabled = (value & GICD_CTLR_ENABLE_G1) !== 0;
        if (!was && vgic.enabled) vgic.vgicKickVcpus();
      }
      return true;
    case 'shared':
      if (((offset - r.offset) * 8) / r.bitsPerIrq >= VGIC_NR_PRIVATE_IRQS) vgicMmioWrite(vcpu, offset, len, value);
      return true;
    case 'irouter': {
      // vgic_mmio_write_irouter: Aff3 is WI (KVM keeps none), as is the Interrupt_Routing_Mode bit
      const intid = (offset - r.offset) >>> 3;
      const irq = intid >= VGIC_NR_PRIVATE_IRQS ? vgic.vgicGetIrq(intid) : null;
      if ((offset & 4) !== 0 || irq === null) return true;
      irq.mpidr = value & 0x00ff_ffff;
      irq.targetVcpu = vgic.vcpus.find((c) => c.mpidrAff === irq.mpidr) ?? null; // kvm_mpidr_to_vcpu
      return true;
    }
    default:
      return true;
  }
}

/** vgic_mmio_read_v3_misc. */
function readDistMisc(vgic: Vgic, offset: number): number {
  switch (offset) {
    case GICD_CTLR:
      return (vgic.enabled ? GICD_CTLR_ENABLE_G1 : 0) | GICD_CTLR_ARE | GICD_CTLR_DS;
    case GICD_TYPER:
      // ITLinesNumber, IDbits; no LPIs (no ITS), no CPUNumber with affinity routing
      return (((vgic.nrIrqs >> 5) - 1) | ((INTERRUPT_ID_BITS_SPIS - 1) << GICD_TYPER_IDBITS_SHIFT)) >>> 0;
    case GICD_IIDR:
      return iidr(vgic);
    default:
      return 0; // GICD_TYPER2: no GICv4.1 vSGIs
  }
}

function iidr(vgic: Vgic): number {
  return (
    ((PRODUCT_ID_KVM << GICD_IIDR_PRODUCT_ID_SHIFT) |
      (vgic.implementationRev << GICD_IIDR_REVISION_SHIFT) |
      IMPLEMENTER_ARM) >>>
    0
  );
}

/** A read of `len` bytes at `offset` of vCPU `rd`'s redistributor (RD_base, or SGI_base + 64 KiB); null: no register. */
export function vgicV3RedistRead(rd: VgicCpu, offset: number, len: number): number | null {
  const vgic = rd.vgic;
  requireInit(vgic);
  const r = vgicGetMmioRegion(vgic, REDIST_REGIONS, offset, len);
  if (r === null) return null;
  switch (r.kind) {
    case 'private':
      return vgicMmioRead(rd, offset - GICR_SGI_BASE, len);
    case 'riidr':
      return iidr(vgic);
    case 'rtyper':
      // vgic_mmio_read_v3r_typer: Processor_Number = vcpu_id, Last, and the vCPU's affinity in the high word
      if ((offset & 4) !== 0) return rd.mpidrAff;
      return (((rd.vcpuId & 0xffff) << 8) | (vgicV3RdistIsLast(vgic, rd) ? GICR_TYPER_LAST : 0)) >>> 0;
    case 'idregs':
      return offset === GICR_PIDR2 ? GIC_PIDR2_V3 : 0;
    default:
      return 0; // GICR_CTLR without LPIs, GICR_WAKER (RAZ/WI: the vCPU never sleeps)
  }
}

/** A write at `offset` of vCPU `rd`'s redistributor; false: no register there. */
export function vgicV3RedistWrite(rd: VgicCpu, offset: number, len: number, value: number): boolean {
  const vgic = rd.vgic;
  requireInit(vgic);
  const r = vgicGetMmioRegion(vgic, REDIST_REGIONS, offset, len);
  if (r === null) return false;
  if (r.kind === 'private') vgicMmioWrite(rd, offset - GICR_SGI_BASE, len, value);
  return true;
}

/** The vCPU whose redistributor frames contain IPA `ipa`, and the offset in them; null when none does. */
export function vgicV3RedistAt(vgic: Vgic, ipa: bigint): { rd: VgicCpu; offset: number } | null {
  for (const vc of vgic.vcpus) {
    if (vc.rdBase !== null && ipa >= vc.rdBase && ipa < vc.rdBase + 2n * BigInt(GICR_SGI_BASE)) {
      return { rd: vc, offset: Number(ipa - vc.rdBase) };
    }
  }
  return null;
}

/** Whether a data abort at `ipa` hits the vGIC-v3 distributor or a redistributor (their kvm_io_bus devices). */
export function vgicV3MmioHit(vgic: Vgic, distBase: bigint, ipa: bigint): boolean {
  return (ipa >= distBase && ipa < distBase + DIST_FRAME) || vgicV3RedistAt(vgic, ipa) !== null;
}

/**
 * The guest access vgicV3MmioHit accepted, made by vCPU `vc` (dispatch_mmio_read/write): returns the value read (0 for a
 * write); a register that is not there reads as zero and ignores writes.
 */
export function vgicV3MmioAccess(
  vc: VgicCpu,
  distBase: bigint,
  ipa: bigint,
  isWrite: boolean,
  len: number,
  data: number,
): number {
  const at = ipa >= distBase && ipa < distBase + DIST_FRAME ? null : vgicV3RedistAt(vc.vgic, ipa);
  if (at === null) {
    const off = Number(ipa - distBase);
    if (isWrite) vgicV3DistWrite(vc, off, len, data);
    return isWrite ? 0 : (vgicV3DistRead(vc, off, len) ?? 0);
  }
  if (isWrite) vgicV3RedistWrite(at.rd, at.offset, len, data);
  return isWrite ? 0 : (vgicV3RedistRead(at.rd, at.offset, len) ?? 0);
}
